#!/usr/bin/env bash
# Where one full-size training step's GPU time goes, kernel by kernel: train-bench at LEN tokens
# run twice under kernel_trace.c (CUPTI, preloaded), with 2 and with 3 steps; the difference is
# one steady step (gpu/tools/kernel_trace_diff.py), written to OUT_DIR/kernels-LEN.md.
#
# Usage: gpu/tools/gpu-kernel-trace.sh OUT_DIR LEN [train-bench flags, e.g. --tf32]
# Q4B: a folder holding the random 4B (gpu/tools/qwen35_4b_reference.py), else it is made here.
# Needs target/cuda/train-bench.gz (gpu/tools/build-cuda.sh) and target/kernel-trace
# (gpu/tools/build-kernel-trace.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=gpu/tools/gpu-common.sh
source gpu/tools/gpu-common.sh
OUT=$1
LEN=$2
shift 2
mkdir -p "$OUT"
WORK=$(mktemp -d)
unpack "${TRAIN_BENCH_GZ:-target/cuda/train-bench.gz}" "$WORK/train-bench"
nvidia_libs
export LD_LIBRARY_PATH=$PWD/target/kernel-trace:$LD_LIBRARY_PATH
Q4B=${Q4B:-$WORK/q4b}
random_4b "$Q4B" "$OUT"
for STEPS in 2 3; do
  KERNEL_TRACE_OUT="$WORK/trace-$STEPS.csv" LD_PRELOAD=$PWD/target/kernel-trace/libkernel_trace.so \
    "$WORK/train-bench" --model "$Q4B/snapshot" --lengths "$LEN" --steps "$STEPS" "$@" \
    >"$WORK/bench-$STEPS.jsonl" 2>"$WORK/bench-$STEPS.err" || { tail -5 "$WORK/bench-$STEPS.err"; exit 1; }
done
{
  echo "train-bench --lengths $LEN $*: one step (3 steps' trace minus 2 steps')"
  echo
  python3 gpu/tools/kernel_trace_diff.py "$WORK/trace-3.csv" "$WORK/trace-2.csv" --top ${TRACE_TOP:-45}
} | tee "$OUT/kernels-$LEN.md"
cp "$WORK/trace-3.csv" "$OUT/trace-$LEN-3steps.csv"
rm -rf "$WORK"

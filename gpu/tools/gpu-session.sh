#!/usr/bin/env bash
# One device call for the open GPU measurements, stage by stage, inside the call's 10 minutes:
# each stage runs under `timeout` with what is left of the budget, a stage that cannot start in
# time is skipped, and everything written (even by a stage cut short) is packed into
# $OUT/results.tgz, with one summary on the terminal.
#
# Usage (on the GPU machine, carry ["target/carry"] from gpu/tools/prepare-carry.sh):
#   bash gpu/tools/gpu-session.sh [STAGE ...]
# Stages (default: kernels retrieval prefill train):
#   kernels    lamar-model's CUDA kernel tests                 (gpu-kernel-tests.sh)
#   retrieval  wgpu/CPU retrieval against NumPy and PyTorch    (gpu-retrieval-bench.sh)
#   embed      Qwen3-Embedding-4B against transformers         (gpu-embed-bench.sh)
#   prefill    3,000-token prefill and the greedy checks against transformers + FLA (gpu-bench.sh)
#   train      training steps at 8,192 and 24,576 tokens against transformers + PEFT
#              (gpu-train-bench.sh; transformers at 24,576 only on a card of over 100 GiB)
#   parity     loss and LoRA gradients against transformers + PEFT at 2,048 tokens
#   trace      one 8,192-token training step's GPU time kernel by kernel (gpu-kernel-trace.sh;
#              needs target/carry/kernel-trace, which prepare-carry.sh adds when
#              gpu/tools/build-kernel-trace.sh has built it)
# SESSION_S: the seconds this script may take (default 570, under the call's 600).
# LAMAR_TRAIN_ARGS: passed to train-bench (default --adapter-products model).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=gpu/tools/gpu-common.sh
source gpu/tools/gpu-common.sh
STARTED=$(date +%s)
BUDGET=${SESSION_S:-570}
RESULTS=${OUT:-/tmp/out}
mkdir -p "$RESULTS"
R=$(mktemp -d)
CARRY=target/carry
STAGES=("${@:-kernels retrieval prefill train}")
read -r -a STAGES <<<"${STAGES[*]}"
for s in "${STAGES[@]}"; do
  case $s in
    kernels | retrieval | embed | prefill | train | parity | trace) ;;
    *) echo "unknown stage '$s' (kernels retrieval embed prefill train parity trace)" >&2; exit 2 ;;
  esac
done
pack() {
  tar czf "$RESULTS/results.tgz" -C "$R" . 2>/dev/null
  echo "results: $RESULTS/results.tgz ($(du -h "$RESULTS/results.tgz" | cut -f1))"
}
trap pack EXIT

# The carried binaries where the stage scripts look for them.
mkdir -p target/cuda
for gz in "$CARRY"/bin/*.gz; do
  case $(basename "$gz") in baseline-*) ;; *) cp "$gz" target/cuda/ ;; esac
done
for dir in wheels baseline kernel-trace; do
  [ -e "$CARRY/$dir" ] && [ ! -e "target/$dir" ] && ln -sfn "carry/$dir" "target/$dir"
done
gpu_info "$R"
MEMORY_MIB=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
# The random 4B snapshot (several GB) outside the results, which are packed whatever happens.
Q4B=$(mktemp -d)/q4b
export Q4B XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

# stage NAME MIN_S MAX_S COMMAND...: runs COMMAND under what is left of the budget (at most
# MAX_S), its output in $R/NAME/log.txt; skipped when less than MIN_S is left.
stage() {
  local name=$1 min=$2 max=$3
  shift 3
  local left=$((BUDGET - ($(date +%s) - STARTED) - 15))
  mkdir -p "$R/$name"
  if [ "$left" -lt "$min" ]; then
    echo "== $name: skipped ($left s left, needs $min)" | tee "$R/$name/log.txt"
    return
  fi
  local limit=$((left < max ? left : max)) begun rc
  begun=$(date +%s)
  timeout -k 10 "$limit" "$@" >"$R/$name/log.txt" 2>&1
  rc=$?
  echo "== $name: rc $rc in $(($(date +%s) - begun)) s (limit $limit s)"
}

for s in "${STAGES[@]}"; do
  case $s in
    kernels) stage kernels 30 120 gpu/tools/gpu-kernel-tests.sh "$R/kernels" ;;
    retrieval)
      base=()
      [ -f "$CARRY/bin/baseline-retrieval-bench.gz" ] && base=(BASELINE_GZ="$CARRY/bin/baseline-retrieval-bench.gz")
      stage retrieval 60 150 env GL_DEBS="$CARRY/gl" "${base[@]}" gpu/tools/gpu-retrieval-bench.sh "$R/retrieval" ;;
    embed) stage embed 60 150 gpu/tools/gpu-embed-bench.sh "$R/embed" ;;
    prefill) stage prefill 150 300 env ONLY_MAIN=1 FLA_WHEELS="$CARRY/fla-wheels" gpu/tools/gpu-bench.sh "$R/prefill" 64 8 ;;
    train)
      lens=8192
      [ "${MEMORY_MIB:-0}" -gt 102400 ] && lens="8192 24576"
      stage train 90 240 env LAMAR_TRAIN_ARGS="${LAMAR_TRAIN_ARGS:---adapter-products model}" \
        BASELINE_LENS="$lens" gpu/tools/gpu-train-bench.sh "$R/train" 8192 24576 ;;
    parity) stage parity 90 200 gpu/tools/gpu-train-parity.sh "$R/parity" 2048 ;;
    trace)
      if [ -f target/kernel-trace/libkernel_trace.so ]; then
        stage trace 90 200 gpu/tools/gpu-kernel-trace.sh "$R/trace" 8192 ${LAMAR_TRAIN_ARGS:---adapter-products model}
      else
        mkdir -p "$R/trace"
        echo "== trace: skipped (no CUPTI timer carried: gpu/tools/build-kernel-trace.sh, then prepare-carry.sh)" |
          tee "$R/trace/log.txt"
      fi ;;
  esac
done
rm -rf "$(dirname "$Q4B")"

# The summary: what each stage printed last, and its result files' last lines.
for s in "${STAGES[@]}"; do
  [ -d "$R/$s" ] || continue
  echo "---- $s"
  tail -n 4 "$R/$s/log.txt" | cut -c1-300
  for f in "$R/$s"/*.jsonl "$R/$s"/*.md "$R/$s"/kernel-tests.txt; do
    [ -f "$f" ] || continue
    echo "# $(basename "$f")"
    grep -v '^\s*$' "$f" | tail -n 6 | cut -c1-400
  done
done

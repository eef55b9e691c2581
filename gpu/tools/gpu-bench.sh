#!/usr/bin/env bash
# The GPU measurements of BENCHMARKS.md, in one go on a machine with an NVIDIA GPU, PyTorch and
# transformers >= 5.2 (no Rust needed): builds a random full-size Qwen3.5-4B with transformers,
# measures transformers, then lamar's CUDA bench binary and `lamar infer` on the same snapshot.
#
# Usage: gpu/tools/gpu-bench.sh OUT_DIR [new tokens for lamar (default 512)] [for transformers (64)]
#        (transformers' timing is skipped when its token count is 0; its reference logits are not)
#        gpu/tools/gpu-bench.sh OUT_DIR mixed   (static vs continuous batching only: 96 requests,
#        prompts of 500-3000 tokens, 188-1500 new tokens each, 32 slots)
# Needs target/cuda/qwen35-bench.gz and target/cuda/lamar.gz (gpu/tools/build-cuda.sh; lamar.gz
# not with ONLY_MAIN).
# BASELINE=path/to/an/earlier/qwen35-bench.gz runs that build's bench first, for ratios;
# LAMAR_BENCH_ARGS=--profile adds lamar's step profile; SKIP_UNFUSED=1 skips the candle-only run;
# ONLY_MAIN=1 stops after lamar's main run (no runs without graphs or fusion, no f32, no CLI).
# FLA_WHEELS=DIR installs flash-linear-attention from the wheels in DIR (fla_core-*,
# flash_linear_attention-*, einops-*; carried like PEFT's, from shared/wheels) for this run only,
# so that transformers uses its Triton delta-rule kernels (the baseline's `delta_rule` field
# names the implementation it picked).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=gpu/tools/gpu-common.sh
source gpu/tools/gpu-common.sh
OUT=$1
LAMAR_NEW=${2:-512}
HF_NEW=${3:-64}
MIXED=0
if [ "$LAMAR_NEW" = mixed ]; then MIXED=1 LAMAR_NEW=1500 HF_NEW=0; fi
mkdir -p "$OUT"
WORK=$(mktemp -d)
unpack target/cuda/qwen35-bench.gz "$WORK/qwen35-bench"
if [ -z "${ONLY_MAIN:-}" ]; then
  unpack target/cuda/lamar.gz "$WORK/lamar"
fi
nvidia_libs
gpu_info "$OUT"
if [ -n "${FLA_WHEELS:-}" ]; then
  install_wheels "$WORK/fla" "$FLA_WHEELS"/fla_core-*.whl \
    "$FLA_WHEELS"/flash_linear_attention-*.whl "$FLA_WHEELS"/einops-*.whl
fi
# Q4B: where the random 4B snapshot goes (kept after this script, for others of one call).
SNAP=${Q4B:-$WORK/q4b}
HF_ARGS=(--new-tokens "$HF_NEW")
[ "$HF_NEW" = 0 ] && HF_ARGS=(--no-timing)
python3 gpu/tools/qwen35_4b_reference.py "$SNAP" "${HF_ARGS[@]}" 2>&1 | grep -v Warning | tee "$OUT/transformers.jsonl"
if [ "$MIXED" = 1 ]; then
  "$WORK/qwen35-bench" --model "$SNAP/snapshot" --prompt-tokens 3000 --new-tokens "$LAMAR_NEW" \
    --batches none --mixed 96 2>&1 | tee "$OUT/lamar_mixed.jsonl"
  rm -rf "$WORK"
  exit 0
fi
BENCH=(--model "$SNAP/snapshot" --prompt-tokens 3000 --new-tokens "$LAMAR_NEW" --batches 1,32)
# e.g. LAMAR_BENCH_ARGS=--profile (only lamar's own runs get them, not the baseline's)
read -ra EXTRA <<<"${LAMAR_BENCH_ARGS:-}"
# The driver compiles lamar's kernels (PTX) on their first use on a machine and caches them: a
# short warm-up first, so that no measured run pays for it.
"$WORK/qwen35-bench" --model "$SNAP/snapshot" --prompt-tokens 64 --new-tokens 8 --batches 1 \
  >"$OUT/warm_up.jsonl" 2>&1
if [ -n "${BASELINE:-}" ]; then
  # An earlier build's bench: the same measurement on the same machine, for ratios, and the same
  # logits comparisons (a change that should not move a number can be checked value for value).
  unpack "$BASELINE" "$WORK/baseline-bench"
  "$WORK/baseline-bench" "${BENCH[@]}" --reference "$SNAP/reference.safetensors" 2>&1 |
    tee "$OUT/baseline.jsonl"
fi
"$WORK/qwen35-bench" "${BENCH[@]}" "${EXTRA[@]}" --reference "$SNAP/reference.safetensors" 2>&1 |
  tee "$OUT/lamar.jsonl"
if [ -n "${ONLY_MAIN:-}" ]; then
  rm -rf "$WORK"
  exit 0
fi
# The same without lamar's fused CUDA kernels (every step as candle operations).
# Fused kernels, but every step launched from the host (no CUDA graphs).
"$WORK/qwen35-bench" "${BENCH[@]}" "${EXTRA[@]}" --reference "$SNAP/reference.safetensors" --no-graphs 2>&1 |
  tee "$OUT/lamar_no_graphs.jsonl"
if [ -z "${SKIP_UNFUSED:-}" ]; then
  "$WORK/qwen35-bench" "${BENCH[@]}" --reference "$SNAP/reference.safetensors" --fused none 2>&1 |
    tee "$OUT/lamar_unfused.jsonl"
fi
# The same comparison with lamar in f32 (the algorithm, without bf16 rounding), with all fused
# kernels and CUDA graphs, then with candle operations only.
for FUSED in all none; do
  "$WORK/qwen35-bench" --model "$SNAP/snapshot" --reference "$SNAP/reference.safetensors" \
    --dtype f32 --batches none --fused "$FUSED" 2>&1 | tee "$OUT/lamar_f32_$FUSED.jsonl"
done
# lamar infer on CUDA with the tiny snapshot of the tests (the CLI path, not a benchmark).
"$WORK/lamar" synth --out "$WORK/corpus" --docs 8 >/dev/null
python3 - "$WORK" <<'PY'
import json, pathlib, sys
w = pathlib.Path(sys.argv[1])
rows = [{"file_id": p.stem, "raw_text": p.read_text()} for p in sorted((w / "corpus" / "raw_text").glob("*.txt"))]
(w / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
PY
# The demo writes the tiny snapshot (its plugin and viewer steps skip here: no wasm builds).
if ! "$WORK/lamar" demo --out "$WORK/demo" --docs 20 >"$OUT/demo.log" 2>&1; then
  echo "lamar demo failed (see $OUT/demo.log):" >&2
  tail -20 "$OUT/demo.log" >&2
  exit 1
fi
"$WORK/lamar" infer --model "$WORK/demo/tiny-qwen35" --input "$WORK/docs.jsonl" --out "$OUT/infer_cuda.jsonl" \
  --device cuda --max-new-tokens 64 --batch-size 4 2>&1 | tail -3 | tee "$OUT/infer_cuda.txt"
"$WORK/lamar" infer --model "$WORK/demo/tiny-qwen35" --input "$WORK/docs.jsonl" --out "$OUT/infer_cpu.jsonl" \
  --device cpu --max-new-tokens 64 --batch-size 4 2>&1 | tail -3 | tee "$OUT/infer_cpu.txt"
rm -rf "$WORK"

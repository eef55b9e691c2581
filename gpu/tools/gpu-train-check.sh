#!/usr/bin/env bash
# Training on CUDA checked against the CPU, and lamar's adapters in Python's PEFT, in one go on
# a machine with an NVIDIA GPU, PyTorch, transformers and PEFT (no Rust needed).
#
# 1. gpu/tools/check_peft_adapter.py: PEFT loads tests/golden/qwen35_tiny_peft_check/adapter
#    (written by lamar's trainer) and writes the logits it computes with it (OUT/peft/).
# 2. `lamar train dft` on the same synthetic windows and tiny random snapshot on the CPU (f32),
#    on CUDA in f32 and on CUDA in bf16 (OUT/train-*/); gpu/tools/compare_train_metrics.py
#    compares their losses step by step (OUT/compare.json), then the CUDA-trained adapter tags
#    on CUDA.
#
# Usage: gpu/tools/gpu-train-check.sh OUT_DIR
# Needs target/cuda/lamar.gz (gpu/tools/build-cuda.sh) and a tiny snapshot in
# target/tiny-snapshot (any `lamar demo` writes one: OUT/tiny-qwen35); PEFT from
# target/wheels when the machine has none.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=gpu/tools/gpu-common.sh
source gpu/tools/gpu-common.sh
OUT=$1
mkdir -p "$OUT"
WORK=$(mktemp -d)
unpack target/cuda/lamar.gz "$WORK/lamar"
LAMAR=$WORK/lamar
nvidia_libs
gpu_info "$OUT"
with_peft "$WORK"
python3 gpu/tools/check_peft_adapter.py tests/golden/qwen35_tiny \
  tests/golden/qwen35_tiny_peft_check/adapter "$OUT/peft" 2>&1 | grep -v Warning

SNAP=target/tiny-snapshot
"$LAMAR" synth --out "$WORK/corpus" --docs 12 --seed 4 >/dev/null
"$LAMAR" tag --gold-dir "$WORK/corpus/data" --raw-text-dir "$WORK/corpus/raw_text" \
  --split "$WORK/corpus/splits/train.txt" --out "$WORK/rows.jsonl" --window-chars 300 >/dev/null
head -48 "$WORK/rows.jsonl" >"$OUT/rows.jsonl"
printf 'Tag the decisions:\n{raw_text}' >"$WORK/prompt.txt"
FLAGS=(--model "$SNAP" --data "$OUT/rows.jsonl" --prompt-file "$WORK/prompt.txt" --rank 8
  --alpha 16 --lr 2e-3 --accumulation 4 --epochs 1 --loss dft)
for run in "cpu f32" "cuda f32" "cuda bf16"; do
  read -r device dtype <<<"$run"
  "$LAMAR" train dft "${FLAGS[@]}" --device "$device" --dtype "$dtype" \
    --out "$OUT/train-$device-$dtype" 2>&1 | tail -2 | tee "$OUT/train-$device-$dtype.txt"
done
python3 gpu/tools/compare_train_metrics.py "$OUT/train-cpu-f32" "$OUT/train-cuda-f32" \
  "$OUT/train-cuda-bf16" | tee "$OUT/compare.json"
head -4 "$OUT/rows.jsonl" >"$WORK/docs.jsonl"
"$LAMAR" infer --model "$SNAP" --adapter "$OUT/train-cuda-bf16" --input "$WORK/docs.jsonl" \
  --out "$OUT/tagged.jsonl" --device cuda --prompt-file "$WORK/prompt.txt" \
  --max-new-tokens 32 2>&1 | tail -1 | tee "$OUT/infer.txt"
rm -rf "$WORK"

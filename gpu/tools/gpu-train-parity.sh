#!/usr/bin/env bash
# Full-size training parity, lamar against transformers + PEFT, in one call on a machine with an
# NVIDIA GPU, PyTorch and transformers: a random full-size Qwen3.5-4B (gpu/tools/
# qwen35_4b_reference.py), one LoRA adapter (r 256, alpha 32, rsLoRA, every linear layer, B
# random), one sequence of LEN random tokens (half prompt, half response), the DFT loss.
# transformers computes the loss and every LoRA gradient in f32 and with a bf16 base
# (gpu/tools/full_size_train_golden.py); lamar does the same with its training path
# (cli/src/bin/train-parity.rs: each layer recomputed, blocked attention, chunked delta rule);
# gpu/tools/compare_train_gradients.py compares them.
#
# Usage: gpu/tools/gpu-train-parity.sh OUT_DIR [LEN (default 2048)]
# Writes OUT_DIR/parity.jsonl: lamar bf16 against transformers bf16 (the issue's bar: loss
# within 1 %, every tensor's cosine >= 0.99), lamar f32 against transformers f32, and
# transformers bf16 against its own f32 (the yardstick: what bf16 alone costs), and lamar with
# its adapter products in bf16 (--adapter-products model) against transformers bf16.
# Needs target/cuda/train-parity.gz (gpu/tools/build-cuda.sh) and target/wheels (PEFT).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=gpu/tools/gpu-common.sh
source gpu/tools/gpu-common.sh
OUT=$1
LEN=${2:-2048}
mkdir -p "$OUT"
WORK=$(mktemp -d)
unpack target/cuda/train-parity.gz "$WORK/train-parity"
nvidia_libs
gpu_info "$OUT"
with_peft "$WORK"
# Q4B: a folder where qwen35_4b_reference.py already wrote the random 4B (shared by scripts of
# one call); otherwise it is made here.
Q4B=${Q4B:-$WORK/q4b}
random_4b "$Q4B" "$OUT"
python3 gpu/tools/full_size_train_golden.py "$Q4B/snapshot" "$WORK/g" --tokens "$LEN" 2>&1 |
  grep -v Warning | tee "$OUT/transformers.jsonl"
for DTYPE in bf16 f32; do
  "$WORK/train-parity" --model "$Q4B/snapshot" --adapter "$WORK/g/adapter" \
    --step "$WORK/g/step.safetensors" --dtype "$DTYPE" --out "$WORK/g/lamar_$DTYPE.safetensors" |
    tee -a "$OUT/lamar.jsonl"
done
# The adapter's products in bf16 (`--adapter-products model`), the weights still f32.
"$WORK/train-parity" --model "$Q4B/snapshot" --adapter "$WORK/g/adapter" \
  --step "$WORK/g/step.safetensors" --dtype bf16 --adapter-products model \
  --out "$WORK/g/lamar_bf16_products.safetensors" | tee -a "$OUT/lamar.jsonl"
{
  python3 gpu/tools/compare_train_gradients.py "$WORK/g/lamar_bf16.safetensors" \
    "$WORK/g/torch_bf16.safetensors" "lamar bf16 vs transformers bf16"
  python3 gpu/tools/compare_train_gradients.py "$WORK/g/lamar_f32.safetensors" \
    "$WORK/g/torch_f32.safetensors" "lamar f32 vs transformers f32"
  python3 gpu/tools/compare_train_gradients.py "$WORK/g/torch_bf16.safetensors" \
    "$WORK/g/torch_f32.safetensors" "transformers bf16 vs transformers f32"
  python3 gpu/tools/compare_train_gradients.py "$WORK/g/lamar_bf16.safetensors" \
    "$WORK/g/torch_f32.safetensors" "lamar bf16 vs transformers f32"
  python3 gpu/tools/compare_train_gradients.py "$WORK/g/lamar_bf16_products.safetensors" \
    "$WORK/g/torch_bf16.safetensors" "lamar bf16, bf16 adapter products vs transformers bf16"
} | tee "$OUT/parity.jsonl"
rm -rf "$WORK"

#!/usr/bin/env bash
# Qwen3-Embedding throughput at full size on the GPU machine, in one call: a random
# Qwen3-Embedding-4B snapshot (gpu/tools/make_random_qwen3_embedding_4b.py), lamar
# (cli/src/bin/embed-bench.rs, bf16) and transformers (gpu/tools/transformers_qwen3_embedding.py,
# bf16, sdpa) on batches of the same shape, and the cosine of their embeddings of lamar's ids.
# Usage: gpu/tools/gpu-embed-bench.sh OUT_DIR [BATCH (8)] [TOKENS (2048)]
# Needs target/cuda/embed-bench.gz (gpu/tools/build-cuda.sh). Results in OUT_DIR/*.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=gpu/tools/gpu-common.sh
source gpu/tools/gpu-common.sh
OUT=$1
BATCH=${2:-8}
TOKENS=${3:-2048}
mkdir -p "$OUT"
WORK=$(mktemp -d)
unpack target/cuda/embed-bench.gz "$WORK/embed-bench"
nvidia_libs
python3 gpu/tools/make_random_qwen3_embedding_4b.py "$WORK/q3e" tests/golden/qwen3_embedding_tiny/tokenizer.json 2>&1 | grep -v Warning | tail -1
"$WORK/embed-bench" --model "$WORK/q3e" --batch "$BATCH" --tokens "$TOKENS" --dump "$WORK/dump.json" \
  2>"$OUT/lamar-stderr.txt" | tee "$OUT/lamar.jsonl" || tail -5 "$OUT/lamar-stderr.txt"
python3 gpu/tools/transformers_qwen3_embedding.py "$WORK/q3e" --batch "$BATCH" --tokens "$TOKENS" \
  --compare "$WORK/dump.json" 2>&1 | grep -v Warning | tee "$OUT/transformers.jsonl" || true
rm -rf "$WORK"

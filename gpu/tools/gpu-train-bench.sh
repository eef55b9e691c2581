#!/usr/bin/env bash
# A first look at full-size training on the GPU: `lamar train dft` (CUDA, bf16 base, f32 LoRA
# r 256 on every linear layer, DFT) on a random full-size Qwen3.5-4B, and transformers + PEFT's
# step (shared/tools/transformers_lora_dft_step.py, carried as target/baseline/) at the same
# sequence length, in one call on a machine with an NVIDIA GPU, PyTorch and transformers.
#
# Usage: gpu/tools/gpu-train-bench.sh OUT_DIR [tokens per sequence ... (default 2048)]
# lamar trains two sequences (two optimiser steps: the first pays for start-up) at each length.
# LAMAR_TRAIN_ARGS adds flags to `lamar train dft` (e.g. --profile: where the time goes);
# SKIP_BASELINE=1 leaves transformers out.
# Needs target/cuda/lamar.gz, target/tiny-snapshot (its tokenizer and chat template stand in for
# Qwen's: every id is below the full vocabulary), target/wheels (PEFT) and
# target/baseline/transformers_lora_dft_step.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=$1
shift
LENS=("${@:-2048}")
mkdir -p "$OUT"
WORK=$(mktemp -d)
gunzip -c target/cuda/lamar.gz >"$WORK/lamar" && chmod +x "$WORK/lamar"
LAMAR=$WORK/lamar
LIBS=$(python3 -c 'import nvidia, os; print(":".join(sorted({os.path.dirname(os.path.join(r, f)) for p in nvidia.__path__ for r, _, fs in os.walk(p) for f in fs if f.startswith(("libcublas", "libcurand", "libcudart"))})))')
export LD_LIBRARY_PATH=$LIBS:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 gpu/tools/qwen35_4b_reference.py "$WORK/q4b" --no-timing --logit-tokens 8 2>&1 |
  grep -v Warning | tail -2 >"$OUT/snapshot.txt"
SNAP=$WORK/q4b/snapshot
cp target/tiny-snapshot/{tokenizer.json,tokenizer_config.json,chat_template.jinja} "$SNAP/"
"$LAMAR" synth --out "$WORK/corpus" --docs 40 --seed 4 >/dev/null
"$LAMAR" tag --gold-dir "$WORK/corpus/data" --raw-text-dir "$WORK/corpus/raw_text" \
  --split "$WORK/corpus/splits/train.txt" --out "$WORK/rows.jsonl" >/dev/null
printf '{raw_text}' >"$WORK/prompt.txt"
for LEN in "${LENS[@]}"; do
  # Two rows of exactly LEN tokens: notes joined (text and tagged copy alike) until the note
  # part is over half of LEN, then cut at LEN by --max-length.
  python3 - "$WORK/rows.jsonl" "$WORK/rows2-$LEN.jsonl" "$LEN" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
need, out, k = int(sys.argv[3]) * 8 // 5, [], 0
for _ in range(2):
    raw, tagged = [], []
    while sum(map(len, raw)) < need:
        raw.append(rows[k % len(rows)]["raw_text"]); tagged.append(rows[k % len(rows)]["gold_span"]); k += 1
    out.append({"file_id": f"joined{len(out)}", "raw_text": "\n".join(raw),
                "gold_span": "\n".join(tagged), "gold_offsets": []})
open(sys.argv[2], "w").write("".join(json.dumps(r) + "\n" for r in out))
PY
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 250 \
    >"$OUT/lamar_memory_mib-$LEN.txt" &
  WATCH=$!
  "$LAMAR" train dft --model "$SNAP" --data "$WORK/rows2-$LEN.jsonl" --out "$OUT/lamar-$LEN" \
    --prompt-file "$WORK/prompt.txt" --device cuda --accumulation 1 --epochs 1 \
    --max-length "$LEN" --checkpoint-every 1000 ${LAMAR_TRAIN_ARGS:-} 2>&1 | tail -40 |
    tee "$OUT/lamar-$LEN.txt" || true
  kill $WATCH || true
  echo "lamar $LEN: peak GPU memory (MiB, whole device) $(sort -n "$OUT/lamar_memory_mib-$LEN.txt" | tail -1)" |
    tee -a "$OUT/lamar-$LEN.txt"
  cat "$OUT/lamar-$LEN/metrics.jsonl" 2>/dev/null || true
done
if [ "${SKIP_BASELINE:-0}" = 1 ]; then
  rm -rf "$WORK"
  exit 0
fi
if ! python3 -c 'import peft' 2>/dev/null; then
  pip install -q --no-deps --target "$WORK/pp" target/wheels/peft-*.whl target/wheels/accelerate-*.whl
  export PYTHONPATH=$WORK/pp
fi
python3 target/baseline/transformers_lora_dft_step.py "${LENS[@]}" 2>&1 | grep -v Warning |
  tee "$OUT/transformers.jsonl"
rm -rf "$WORK"

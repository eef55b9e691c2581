#!/usr/bin/env bash
# Full-size LoRA training steps, lamar against transformers + PEFT, in one call on a machine
# with an NVIDIA GPU, PyTorch and transformers: a random full-size Qwen3.5-4B (made here by
# gpu/tools/qwen35_4b_reference.py), LAMAR's recipe (r 256, alpha 32, rsLoRA on every linear
# layer, bf16 base, DFT, AdamW, batch 1), sequences of LEN random tokens.
#
# Usage: gpu/tools/gpu-train-bench.sh OUT_DIR [LEN ... (default 2048)]
# lamar: cli/src/bin/train-bench.rs (three steps per length: the first is start-up, the
# fastest of the others is reported, as transformers' script does), one process per length
# while nvidia-smi samples the whole device's memory every 250 ms. transformers:
# shared/tools/transformers_lora_dft_step.py (carried as target/baseline/; PEFT from
# target/wheels when the machine has none), which reports PyTorch's peak allocation. Both go into OUT_DIR/table.md.
# LAMAR_TRAIN_ARGS adds flags to train-bench (e.g. --profile: where the time goes, to
# OUT_DIR/profile-LEN.jsonl); SKIP_BASELINE=1 leaves transformers out, BASELINE_LENS="8192"
# runs it at those lengths only.
# TRAIN_BENCH_GZ names another build's train-bench.gz (two builds compared in one call).
# Needs target/cuda/train-bench.gz (gpu/tools/build-cuda.sh), target/baseline and target/wheels.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=gpu/tools/gpu-common.sh
source gpu/tools/gpu-common.sh
OUT=$1
shift
LENS=("${@:-2048}")
mkdir -p "$OUT"
WORK=$(mktemp -d)
unpack "${TRAIN_BENCH_GZ:-target/cuda/train-bench.gz}" "$WORK/train-bench"
nvidia_libs
gpu_info "$OUT"
# Q4B: a folder where qwen35_4b_reference.py already wrote the random 4B (shared by scripts of
# one call); otherwise it is made here.
Q4B=${Q4B:-$WORK/q4b}
random_4b "$Q4B" "$OUT"
: >"$OUT/lamar.jsonl"
for LEN in "${LENS[@]}"; do
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 250 \
    >"$OUT/lamar_memory_mib-$LEN.txt" &
  WATCH=$!
  if "$WORK/train-bench" --model "$Q4B/snapshot" --lengths "$LEN" ${LAMAR_TRAIN_ARGS:-} \
    >"$WORK/one.jsonl" 2>"$OUT/profile-$LEN.jsonl"; then
    PEAK=$(sort -n "$OUT/lamar_memory_mib-$LEN.txt" | tail -1)
    python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read()); r["peak_mib"]=int(sys.argv[2]); print(json.dumps(r))' \
      "$WORK/one.jsonl" "$PEAK" | tee -a "$OUT/lamar.jsonl"
  else
    echo "{\"len\": $LEN, \"error\": $(tail -c 300 "$OUT/profile-$LEN.jsonl" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}" |
      tee -a "$OUT/lamar.jsonl"
  fi
  kill $WATCH || true
done
if [ "${SKIP_BASELINE:-0}" != 1 ]; then
  with_peft "$WORK"
  # BASELINE_LENS: the lengths transformers runs (default all; its 24,576 needs the whole card).
  read -r -a BASE <<<"${BASELINE_LENS:-${LENS[*]}}"
  python3 target/baseline/transformers_lora_dft_step.py "${BASE[@]}" 2>&1 | grep -v Warning |
    tee "$OUT/transformers.jsonl" || true
fi
python3 - "$OUT" <<'PY' | tee "$OUT/table.md"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
def rows(name):
    p = out / name
    return [json.loads(l) for l in p.read_text().splitlines() if l.startswith("{") and '"len"' in l] if p.exists() else []
ours = {r["len"]: r for r in rows("lamar.jsonl")}
theirs = {r["len"]: r for r in rows("transformers.jsonl")}
print("| tokens | transformers + PEFT: step, tokens/s, memory | lamar: step, tokens/s, memory | lamar vs transformers |")
print("|---|---|---|---|")
for n in sorted(set(ours) | set(theirs)):
    t, o = theirs.get(n), ours.get(n)
    ts = f'{t["step_s"]:.2f} s, {t["tok_per_s"]:.0f}, {t["peak_gib"]:.1f} GiB (PyTorch peak)' if t and "step_s" in t else "—"
    os_ = (f'{o["step_s"]:.2f} s, {o["tok_per_s"]:.0f}, {o["peak_mib"] / 1024:.1f} GiB (device)'
           if o and "step_s" in o else (f'failed: {o["error"][-120:]}' if o else "—"))
    ratio = f'{t["step_s"] / o["step_s"]:.2f}×' if t and o and "step_s" in t and "step_s" in o else "—"
    print(f"| {n:,} | {ts} | {os_} | {ratio} |")
PY
rm -rf "$WORK"

#!/usr/bin/env bash
# Where a decoding step's device time goes, kernel by kernel: Nsight Compute (ncu) times every
# kernel of a window of decoding steps of qwen35-bench (BATCH rows after a PROMPT-token prompt,
# CUDA graphs on, their kernels profiled one by one), and the kernels are summed by name.
#
# Usage: gpu/tools/gpu-decode-profile.sh OUT_DIR [BATCH (default 8)] [PROMPT (default 3000)]
#   SKIP, COUNT: kernels skipped before the window (prefill and the first steps) and timed in it
#   (defaults 30000 and 3000).
# Output: OUT_DIR/ncu.csv (ncu's rows) and OUT_DIR/kernels.md (per kernel name: launches, total
# and mean time, share of the window). Needs target/cuda/qwen35-bench.gz and ncu on the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=gpu/tools/gpu-common.sh
source gpu/tools/gpu-common.sh
OUT=$1
BATCH=${2:-8}
PROMPT=${3:-3000}
mkdir -p "$OUT"
WORK=$(mktemp -d)
unpack target/cuda/qwen35-bench.gz "$WORK/qwen35-bench"
nvidia_libs
Q4B=${Q4B:-$WORK/q4b}
random_4b "$Q4B" "$OUT"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
"$NCU" --graph-profiling node --launch-skip "${SKIP:-30000}" --launch-count "${COUNT:-3000}" \
  --metrics gpu__time_duration.sum --csv \
  "$WORK/qwen35-bench" --model "$Q4B/snapshot" --batches "$BATCH" --prompt-tokens "$PROMPT" \
  --new-tokens 256 >"$OUT/ncu.csv" 2>"$OUT/ncu-stderr.txt" || tail -5 "$OUT/ncu-stderr.txt"
python3 - "$OUT" <<'PY' | tee "$OUT/kernels.md"
import csv, collections, pathlib, sys
out = pathlib.Path(sys.argv[1])
lines = [l for l in (out / "ncu.csv").read_text().splitlines() if l.startswith('"')]
scale = {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3}
total, count = collections.Counter(), collections.Counter()
for row in csv.DictReader(lines):
    if row.get("Metric Name") != "gpu__time_duration.sum":
        continue
    name = row["Kernel Name"].split("(")[0][:70]
    total[name] += float(row["Metric Value"].replace(",", "")) * scale.get(row["Metric Unit"], 1.0)
    count[name] += 1
window = sum(total.values())
print(f"{sum(count.values())} kernels, {window / 1e3:.2f} ms in all\n")
print("| kernel | launches | total (ms) | mean (µs) | share |")
print("|---|---|---|---|---|")
for name, t in total.most_common(25):
    print(f"| `{name}` | {count[name]} | {t / 1e3:.2f} | {t / count[name]:.1f} | {100 * t / window:.1f} % |")
PY
rm -rf "$WORK"

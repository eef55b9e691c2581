#!/usr/bin/env bash
# Throughput and peak memory of `lamar pseudo extract` against Python's csv module on one
# generated NOTEEVENTS-shaped file, in the same run (BENCHMARKS.md, issue 20).
#
# Usage: cli/tools/extract-bench.sh [MEGABYTES (default 1200)] [WORK_DIR (default a temp dir)]
# Needs a release build: cargo build --release -p lamar-cli
set -euo pipefail
cd "$(dirname "$0")/../.."
MB=${1:-1200}
WORK=${2:-$(mktemp -d)}
mkdir -p "$WORK"
[ -f "$WORK/NOTEEVENTS.csv" ] || python3 cli/tools/make_noteevents.py "$WORK/NOTEEVENTS.csv" "$MB"
ls -l "$WORK/NOTEEVENTS.csv"
measure() { # name, command...
  local name=$1; shift
  /usr/bin/time -f "$name: %e s wall, %M KiB peak RSS" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" ||
    { cat "$WORK/$name.err"; exit 1; }
  tail -1 "$WORK/$name.err"
}
measure lamar target/release/lamar pseudo extract --noteevents "$WORK/NOTEEVENTS.csv" --out "$WORK/lamar.jsonl"
measure python python3 cli/tools/python_extract_baseline.py "$WORK/NOTEEVENTS.csv" "$WORK/python.jsonl"
cmp "$WORK/lamar.jsonl" "$WORK/python.jsonl" && echo "outputs identical: $(wc -l <"$WORK/lamar.jsonl") notes"

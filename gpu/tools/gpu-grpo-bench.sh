#!/usr/bin/env bash
# One GRPO step at full size, lamar against transformers' rollout, in one call on a machine with
# an NVIDIA GPU, PyTorch and transformers: a random full-size Qwen3.5-4B (made here by
# gpu/tools/qwen35_4b_reference.py), 8 completions of NEW tokens from a PROMPT-token prompt.
#
# Usage: gpu/tools/gpu-grpo-bench.sh OUT_DIR [NEW_TOKENS (default 2048)] [PROMPT (default 3000)]
# lamar: cli/src/bin/grpo-bench.rs (two steps: the first is start-up; rollout, scoring, update
# and optimiser timed apart). transformers: gpu/tools/transformers_grpo_rollout.py (generate with
# a fresh PEFT adapter, TRL's rollout without vLLM) with BASELINE_NEW_TOKENS new tokens (default
# NEW_TOKENS; fewer keeps the call short: its tokens/s is what is compared). Results in
# OUT_DIR/lamar.jsonl, OUT_DIR/transformers.jsonl and OUT_DIR/table.md. LAMAR_GRPO_ARGS: more
# grpo-bench arguments (e.g. --compare-unshared: the update also without the shared prompt).
# Needs target/cuda/grpo-bench.gz (gpu/tools/build-cuda.sh) and target/wheels (PEFT).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=gpu/tools/gpu-common.sh
source gpu/tools/gpu-common.sh
OUT=$1
NEW=${2:-2048}
PROMPT=${3:-3000}
mkdir -p "$OUT"
WORK=$(mktemp -d)
unpack target/cuda/grpo-bench.gz "$WORK/grpo-bench"
nvidia_libs
gpu_info "$OUT"
# Q4B: a folder where qwen35_4b_reference.py already wrote the random 4B (shared by scripts of
# one call); otherwise it is made here.
Q4B=${Q4B:-$WORK/q4b}
random_4b "$Q4B" "$OUT"
"$WORK/grpo-bench" --model "$Q4B/snapshot" --prompt-tokens "$PROMPT" --new-tokens "$NEW" \
  ${LAMAR_GRPO_ARGS:-} 2>"$OUT/lamar-stderr.txt" | tee "$OUT/lamar.jsonl" || tail -5 "$OUT/lamar-stderr.txt"
with_peft "$WORK"
python3 gpu/tools/transformers_grpo_rollout.py "$Q4B/snapshot" --prompt-tokens "$PROMPT" \
  --new-tokens "${BASELINE_NEW_TOKENS:-$NEW}" 2>&1 | grep -v Warning | tee "$OUT/transformers.jsonl" || true
python3 - "$OUT" <<'PY' | tee "$OUT/table.md"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
def rows(name):
    p = out / name
    return [json.loads(l) for l in p.read_text().splitlines() if l.startswith("{")] if p.exists() else []
ours = [r for r in rows("lamar.jsonl") if "step" in r and not r.get("startup")]
theirs = rows("transformers.jsonl")
print("| | new tokens | rollout | rollout tokens/s | scoring | update (log-probs + backward) | optimiser | whole step |")
print("|---|---|---|---|---|---|---|---|")
for t in theirs:
    print(f'| transformers {t["transformers"]} + PEFT generate | {t["new_tokens"]:,} | {t["rollout_s"]:.2f} s | {t["rollout_tok_per_s"]:,.0f} | — | — | — | — |')
for o in ours:
    print(f'| lamar | {o["new_tokens"]:,} | {o["rollout_s"]:.2f} s | {o["rollout_tok_per_s"]:,.0f} | {o["scoring_s"]:.3f} s | {o["update_s"]:.2f} s | {o["optimiser_s"]:.3f} s | {o["step_s"]:.2f} s |')
for o in ours:
    if o.get("unshared"):
        u = o["unshared"]
        print(f'\nstep {o["step"]}: update with the prompt shared {o["update_s"]:.2f} s, whole sequences '
              f'{u["update_s"]:.2f} s; gradients differ by {u["grad_relative_difference"]:.2e} (relative norm; '
              f'whole sequences with flash vs candle attention: {u.get("whole_flash_vs_blocks_relative_difference", float("nan")):.2e}); '
              f'log-prob drift {o["logprob_drift"]:.3f} shared, {u["logprob_drift"]:.3f} whole')
if ours and theirs:
    o, t = ours[-1], theirs[-1]
    full = t["rollout_s"] * o["new_tokens"] / t["new_tokens"]
    print(f'\ntransformers rollout of {o["new_tokens"]:,} tokens at its rate: {full:.1f} s; '
          f'lamar whole step {o["step_s"]:.2f} s: {full / o["step_s"]:.1f}x')
PY
rm -rf "$WORK"

"""Golden rewards for the exact-match reward plugin, computed by LAMAR's own reward function.

The reference: `reward_exact_match_f1` in `utils/rewards.py` of
https://github.com/biodatlab/medexact-lamar at commit 2c0d9c5f8b54dfd20e0bc0411c3bee7f02c519cc
(read and run, never copied into lamar). Fetch it, then run:

    curl -LO https://raw.githubusercontent.com/biodatlab/medexact-lamar/2c0d9c5f8b54dfd20e0bc0411c3bee7f02c519cc/utils/rewards.py
    PYTHONHASHSEED=0 python3 plugins/tools/golden_exact_match_reward.py rewards.py

It reads tests/golden/exact_match_reward/inputs.jsonl ({"completion", "gold"} per line; written
by `LAMAR_WRITE_REWARD_INPUTS=1 cargo test -p lamar-plugins --test plugins exact_match`) and
writes tests/golden/exact_match_reward/rewards.jsonl ({"reward"} per line). Python 3.11, no
package needed: the module imports `sacrebleu` for a reward not used here, so a stand-in is
registered when it is not installed. PYTHONHASHSEED=0 fixes the set order in which the
reference averages its per-tag scores (it moves only the last bits).
"""
import importlib.util
import json
import pathlib
import sys
import types

GOLDEN = pathlib.Path(__file__).resolve().parents[2] / "tests" / "golden" / "exact_match_reward"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    if importlib.util.find_spec("sacrebleu") is None:
        sys.modules["sacrebleu"] = types.ModuleType("sacrebleu")
    spec = importlib.util.spec_from_file_location("lamar_reference_rewards", sys.argv[1])
    rewards = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rewards)
    rows = [json.loads(line) for line in (GOLDEN / "inputs.jsonl").read_text().splitlines()]
    scores = rewards.reward_exact_match_f1([r["completion"] for r in rows], [r["gold"] for r in rows])
    assert len(scores) == len(rows)
    (GOLDEN / "rewards.jsonl").write_text("".join(json.dumps({"reward": s}) + "\n" for s in scores))
    print(f"{len(scores)} rewards written to {GOLDEN / 'rewards.jsonl'}")


if __name__ == "__main__":
    main()

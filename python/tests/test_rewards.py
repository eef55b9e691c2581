"""The rewards against LAMAR's utils/rewards.py (goldens it computed, tests/golden/rewards), the
CLI, and TRL's calling convention."""

import json

import lamar
import pytest

from conftest import GOLDEN, run_cli

ROWS = [json.loads(line) for line in (GOLDEN / "rewards" / "inputs.jsonl").read_text().splitlines()]
EXPECTED = [json.loads(line)
            for line in (GOLDEN / "rewards" / "rewards.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", list(lamar.REWARDS))
def test_rewards_equal_the_reference(name):
    function = lamar.REWARDS[name]
    assert function.__name__ == f"reward_{name}"
    # As TRL calls it: prompts, completions and every dataset column as keywords.
    got = function(prompts=["p"] * len(ROWS), completions=[r["completion"] for r in ROWS],
                   completion_ids=[[0]] * len(ROWS), gold=[r["gold"] for r in ROWS],
                   raw_text=[r["raw_text"] for r in ROWS], file_id=["x"] * len(ROWS))
    want = [e[name] for e in EXPECTED]
    assert len(got) == len(want) == len(ROWS) > 100
    # The reference sums its per-tag scores in Python's set order: the last bits may differ.
    assert all(abs(g - w) <= 1e-12 for g, w in zip(got, want)), name
    assert sum(0 < w < 1 for w in want) >= 10


def test_conversational_completions_use_the_last_message():
    gold = "<drug_decision>start aspirin</drug_decision> today"
    conversation = [{"role": "assistant", "content": "<think>x</think>" + gold}]
    assert lamar.reward_exact_match_f1([conversation], gold=[gold]) == [1.0]
    assert lamar.reward_exact_match_f1([[]], gold=[gold]) == [0.0]
    assert lamar.reward_fidelity([conversation], raw_text=["start aspirin today"]) == [1.0]


def test_missing_columns_are_named():
    with pytest.raises(TypeError, match="'raw_text'"):
        lamar.reward_fidelity(["x"], gold=["x"])
    with pytest.raises(TypeError, match="'gold'"):
        lamar.reward_fast_token_f1(["x"])
    with pytest.raises(lamar.LamarError, match="1 completions but 2 gold"):
        lamar.reward_fast_token_f1(["x"], gold=["a", "b"])


@pytest.mark.parametrize("name", ["fidelity", "fast_token_f1", "exact_match_f1"])
def test_rewards_equal_lamar_reward(name, tmp_path):
    rows = ROWS[:40]
    completions = tmp_path / "completions.jsonl"
    completions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "scores.jsonl"
    run_cli("reward", "--reward", name, "--input", completions, "--out", out)
    cli = [json.loads(line)["reward"] for line in out.read_text().splitlines()]
    ours = lamar.REWARDS[name]([r["completion"] for r in rows], gold=[r["gold"] for r in rows],
                               raw_text=[r["raw_text"] for r in rows])
    assert ours == cli

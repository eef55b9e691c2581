"""Golden outputs of LAMAR's reward functions, computed by LAMAR's own `utils/rewards.py`.

The reference: `utils/rewards.py` of https://github.com/biodatlab/medexact-lamar at commit
2c0d9c5f8b54dfd20e0bc0411c3bee7f02c519cc (read and run, never copied into lamar). With it saved
as rewards.py and sacrebleu 2.6.0 installed:

    PYTHONHASHSEED=0 python3 core/tests/python/golden_rewards.py rewards.py

1. Inputs (`tests/golden/rewards/inputs.jsonl`, {"completion", "gold", "raw_text"}): the 89
   completions of `tests/golden/exact_match_reward/inputs.jsonl` with the raw text recovered
   from their gold (the nine tags removed), then for every fourth row copies of its completion
   with 1, 3 and 8 % of its characters changed at seeded random places (to land between the
   fidelity reward's thresholds), and a few hand-made cases.
2. Outputs (`tests/golden/rewards/rewards.jsonl`): one object per input with every reward,
   keyed by its name without the `reward_` prefix.

`reward_bleu_exact_tags` asks sacrebleu for a tokenizer named "whitespace", which sacrebleu
does not have (KeyError on every non-empty pair); the text it passes is already split on
whitespace and re-joined with single spaces, so the goldens use sacrebleu's "none" tokenizer,
which splits on spaces: what the reference meant.
"""
import importlib.util
import json
import pathlib
import random
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
SOURCE = ROOT / "tests" / "golden" / "exact_match_reward" / "inputs.jsonl"
GOLDEN = ROOT / "tests" / "golden" / "rewards"
TAGS = ("contact_related|gather_info|define_problem|treatment_goal|drug_decision|"
        "therapeutic_procedure|evaluate_result|defer_decision|advice_and_precaution")
NAMES = ["fidelity", "fast_token_f1", "exact_match_f1", "fast_token_precision",
         "exact_match_precision", "fast_token_f05", "exact_match_f05", "bleu_exact_tags"]


def mutated(text, fraction, rng):
    chars = list(text)
    for _ in range(max(1, int(len(chars) * fraction))):
        k = rng.randrange(len(chars))
        chars[k] = rng.choice("abcxyz .,\n")
    return "".join(chars)


def inputs():
    rng = random.Random(20261205)
    rows = []
    for line in SOURCE.read_text().splitlines():
        row = json.loads(line)
        row["raw_text"] = re.sub(rf"</?(?:{TAGS})>", "", row["gold"])
        rows.append(row)
    for row in list(rows[::4]):
        if row["completion"]:
            for fraction in (0.01, 0.03, 0.08):
                rows.append(dict(row, completion=mutated(row["completion"], fraction, rng)))
    gold = "Start <drug_decision>aspirin 81 mg</drug_decision> and <drug_decision>aspirin 81 mg</drug_decision>."
    rows += [
        {"completion": "<think>plan</think>" + gold, "gold": gold, "raw_text": ""},
        {"completion": "Start aspirin.", "gold": "Start aspirin.", "raw_text": "Start aspirin."},
        {"completion": "", "gold": "", "raw_text": "x"},
        {"completion": "<drug_decision>aspirin aspirin</drug_decision>", "gold": gold, "raw_text": "x"},
        {"completion": "a\u001cb <gather_info>CT\u2028scan</gather_info>",
         "gold": "a b <gather_info>CT scan</gather_info>", "raw_text": "a b CT scan"},
    ]
    return rows


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    import sacrebleu

    original = sacrebleu.sentence_bleu

    def sentence_bleu(hypothesis, references, tokenize="13a", **kwargs):
        return original(hypothesis, references,
                        tokenize="none" if tokenize == "whitespace" else tokenize, **kwargs)

    sacrebleu.sentence_bleu = sentence_bleu
    spec = importlib.util.spec_from_file_location("lamar_reference_rewards", sys.argv[1])
    rewards = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rewards)
    rows = inputs()
    completions = [r["completion"] for r in rows]
    scores = {}
    for name in NAMES:
        function = getattr(rewards, "reward_" + name)
        scores[name] = function(completions, gold=[r["gold"] for r in rows],
                                raw_text=[r["raw_text"] for r in rows])
        assert len(scores[name]) == len(rows)
    GOLDEN.mkdir(exist_ok=True)
    (GOLDEN / "inputs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (GOLDEN / "rewards.jsonl").write_text("".join(
        json.dumps({name: scores[name][k] for name in NAMES}) + "\n" for k in range(len(rows))))
    print(f"{len(rows)} rows, {len(NAMES)} rewards each, written to {GOLDEN}")


if __name__ == "__main__":
    main()

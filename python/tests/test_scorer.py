"""Scorer against the official evaluate.py's golden outputs (tests/golden/official, computed by
the published evaluator under four NLTK releases) and against `lamar evaluate`."""

import json
import math

import lamar
import pytest

from conftest import GOLDEN, read_json, run_cli

OFFICIAL = GOLDEN / "official"


def assert_same_scores(ours, theirs, case):
    """The comparison cli/tests/golden_official.rs makes: counts and span F1 exactly, token F1
    and the averages within 1e-12 (the evaluator sums in another order)."""
    assert ours["span_f1"] == theirs["span_f1"], case
    assert math.isclose(ours["token_f1"], theirs["token_f1"], rel_tol=0, abs_tol=1e-12), case
    assert ours["statistics"] == theirs["statistics"], case
    s, t = ours["shared_task"], theirs["shared_task"]
    for key in ("base_score", "worst_group_score", "final_score"):
        assert math.isclose(s[key], t[key], rel_tol=0, abs_tol=1e-12), (case, key)
    for dim in ("sex", "race", "language"):
        assert list(s["subgroups"][dim]) == list(t["subgroups"][dim]), (case, dim)
        for name, group in s["subgroups"][dim].items():
            other = t["subgroups"][dim][name]
            for key in ("n_files", "n_spans", "span_f1"):
                assert group[key] == other[key], (case, dim, name, key)
            for key in ("token_f1", "base_score"):
                assert math.isclose(group[key], other[key], rel_tol=0, abs_tol=1e-12)


CASES = [
    ("official_3.9.4_model_0", "3.9", "model_0", None),
    ("official_3.9.4_model_1", "3.9", "model_1", None),
    ("official_3.9.4_model_2", "3.9", "model_2", None),
    ("official_3.9.4_model_0_val", "3.9", "model_0", "splits/val.txt"),
    ("official_3.8.1_model_0", "3.8", "model_0", None),
    ("official_3.9.2_model_0", "3.9.2", "model_0", None),
    ("official_3.10.4_model_0", "3.10", "model_0", None),
]


@pytest.mark.parametrize("case,nltk,model,split", CASES)
def test_scorer_equals_the_official_evaluator(case, nltk, model, split):
    scorer = lamar.Scorer(OFFICIAL / "data", OFFICIAL / "raw_text", OFFICIAL / "stats.csv",
                          split=None if split is None else OFFICIAL / split, nltk=nltk)
    predictions = read_json(OFFICIAL / "predictions" / f"{model}.json")
    # A list of dicts and a path give the same result.
    ours = scorer.score(predictions)
    assert scorer.score(OFFICIAL / "predictions" / f"{model}.json") == ours
    assert_same_scores(ours, read_json(OFFICIAL / f"{case}.json"), case)


@pytest.mark.parametrize("release,nltk", [("3.8.1", "3.8"), ("3.9.2", "3.9.2"),
                                          ("3.9.4", "3.9"), ("3.10.4", "3.10")])
def test_each_nltk_release_where_they_differ(release, nltk):
    versions = OFFICIAL / "versions"
    scorer = lamar.Scorer(versions / "data", versions / "raw_text", versions / "stats.csv",
                          nltk=nltk)
    ours = scorer.score(versions / "predictions" / "model_0.json")
    assert_same_scores(ours, read_json(OFFICIAL / f"official_{release}_versions.json"), release)


def test_scorer_equals_lamar_evaluate_everywhere(corpus, tmp_path):
    """Every key, token F1 per file included, on the synthetic corpus's three models, with and
    without a split, both token F1 rules."""
    for split in (None, "test"):
        for rule in ("official", "lamar"):
            scorer = lamar.Scorer(corpus / "data", corpus / "raw_text", corpus / "stats.csv",
                                  split=None if split is None else corpus / "splits" / f"{split}.txt",
                                  token_f1=rule)
            for model in range(3):
                predictions = corpus / "predictions" / f"model_{model}.json"
                out = tmp_path / f"{split}_{rule}_{model}.json"
                args = ["evaluate", "--gold-dir", corpus / "data", "--raw-text-dir",
                        corpus / "raw_text", "--stats-csv", corpus / "stats.csv",
                        "--predictions", predictions, "--token-f1", rule, "--output", out]
                if split:
                    args += ["--split", corpus / "splits" / f"{split}.txt"]
                run_cli(*args)
                assert scorer.score(predictions) == read_json(out), (split, rule, model)


def test_documents_only_predictions_name_are_scored_on_their_text(corpus, tmp_path):
    ids = sorted(p.stem for p in (corpus / "data").iterdir())
    gold = tmp_path / "gold"
    gold.mkdir()
    for i in ids[:-1]:
        (gold / f"{i}.json").write_bytes((corpus / "data" / f"{i}.json").read_bytes())
    predictions = read_json(corpus / "predictions" / "model_0.json")
    scorer = lamar.Scorer(gold, corpus / "raw_text")
    out = tmp_path / "cli.json"
    run_cli("evaluate", "--gold-dir", gold, "--raw-text-dir", corpus / "raw_text",
            "--predictions", corpus / "predictions" / "model_0.json", "--output", out)
    assert scorer.score(predictions) == read_json(out)
    assert scorer.score(predictions)["statistics"]["prediction_files"] == len(ids)


def test_errors_carry_the_cli_message(corpus, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(lamar.LamarError) as error:
        lamar.Scorer(missing, corpus / "raw_text")
    code, _, stderr = run_cli("evaluate", "--gold-dir", missing, "--raw-text-dir",
                              corpus / "raw_text", "--predictions",
                              corpus / "predictions" / "model_0.json", ok=False)
    assert code != 0 and str(error.value) in stderr, (str(error.value), stderr)
    with pytest.raises(lamar.LamarError, match="NLTK version `2.0`"):
        lamar.Scorer(corpus / "data", corpus / "raw_text", nltk="2.0")
    scorer = lamar.Scorer(corpus / "data", corpus / "raw_text")
    with pytest.raises(lamar.LamarError, match="no_such_doc"):
        scorer.score([{"file_name": "no_such_doc", "predictions": []}])
    with pytest.raises(lamar.LamarError, match="predictions"):
        scorer.score(json.loads('[{"predictions": []}]'))


def test_lists_and_files_give_the_same_scores_and_errors(corpus, tmp_path):
    scorer = lamar.Scorer(corpus / "data", corpus / "raw_text")
    predictions = read_json(corpus / "predictions" / "model_1.json")
    predictions[0]["predictions"][0]["decision"] = "kept text"
    predictions.append(dict(predictions[1], predictions=[]))  # a later entry replaces one
    path = tmp_path / "p.json"
    path.write_text(json.dumps(predictions))
    assert scorer.score(predictions) == scorer.score(path)
    for bad in ({"start_offset": True, "end_offset": 4, "category": 1},
                {"start_offset": 1.5, "end_offset": 4, "category": 1},
                {"start_offset": 1, "category": 1}):
        broken = [{"file_name": predictions[0]["file_name"], "predictions": [bad]}]
        path.write_text(json.dumps(broken))
        with pytest.raises(lamar.LamarError) as from_list:
            scorer.score(broken)
        with pytest.raises(lamar.LamarError) as from_file:
            scorer.score(path)
        assert str(from_list.value) == str(from_file.value).replace(str(path), "predictions")

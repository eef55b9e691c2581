"""consensus/vote against `lamar ensemble` and LAMAR's own ensemble/mbr.py (its goldens)."""

import json

import lamar
import pytest

from conftest import GOLDEN, read_json, run_cli


@pytest.mark.parametrize("voter", lamar.VOTERS)
def test_every_voter_equals_lamar_ensemble(corpus, tmp_path, voter):
    models = [corpus / "predictions" / f"model_{k}.json" for k in range(3)]
    out = tmp_path / "merged.json"
    run_cli("ensemble", "--voter", voter, "--predictions", *models, "--out", out)
    expected = read_json(out)
    assert lamar.vote(voter, [read_json(m) for m in models]) == expected
    assert lamar.vote(voter, models) == expected
    assert sum(len(e["predictions"]) for e in expected) > 0


def test_thresholds_and_boundary_rule_pass_through(corpus, tmp_path):
    models = [corpus / "predictions" / f"model_{k}.json" for k in range(3)]
    out = tmp_path / "merged.json"
    run_cli("ensemble", "--predictions", *models, "--min-cluster-support", "0.7",
            "--boundary", "independent", "--out", out)
    ours = lamar.consensus(models, params={"min_cluster_support": 0.7}, boundary="independent")
    assert ours == read_json(out)
    assert ours != lamar.consensus(models)
    with pytest.raises(lamar.LamarError, match="unknown threshold \"min_support\""):
        lamar.consensus(models, params={"min_support": 0.5})
    with pytest.raises(lamar.LamarError, match="unknown voter"):
        lamar.vote("borda", models)


def test_consensus_equals_mbr_py():
    """LAMAR's ensemble/mbr.py on 16 threshold sets × 40 documents (invalid entries, missing
    models, duplicates): tests/golden/reference_ensemble."""
    cases = read_json(GOLDEN / "reference_ensemble" / "cases.json")
    documents = 0
    for case in cases:
        params = dict(zip(("min_cluster_iou", "min_pairwise_iou", "min_cluster_support",
                           "min_iou_same_cat"), case["params"]))
        for doc in case["docs"]:
            n = max(int(k) for k in doc["models"]) + 1 if doc["models"] else 0
            # Model k has an entry for the document only when the case gives it one.
            models = [[{"file_name": doc["file_name"], "predictions": doc["models"][str(k)]}]
                      if str(k) in doc["models"] else [] for k in range(n)]
            merged = lamar.consensus(models, params=params)
            got = [(s["start_offset"], s["end_offset"], s["category"])
                   for e in merged for s in e["predictions"]]
            want = [tuple(int(x) for x in t) for t in doc["expected"]]
            assert got == want, (case["params"], doc["file_name"])
            documents += 1
    assert documents == 640


def test_lists_and_files_give_the_same_votes_whatever_they_hold(tmp_path):
    """Lists are read without JSON; anything unusual in them must end as it does in a file."""
    odd = [
        {"file_name": "a", "predictions": [
            {"start_offset": 0, "end_offset": 5, "category": 1},
            {"start_offset": True, "end_offset": 4, "category": 1},
            {"start_offset": 1.0, "end_offset": 4, "category": 1},
            {"start_offset": 1, "end_offset": 4, "category": "1"},
            [1, 4, 1], None, {"start_offset": 1, "end_offset": 4},
            {"start_offset": 2, "end_offset": 2 ** 70, "category": 2},
        ]},
        {"file_name": 7, "predictions": [{"start_offset": 0, "end_offset": 3, "category": 3}]},
        {"file_name": None, "predictions": []},
        {"predictions": [{"start_offset": 0, "end_offset": 3, "category": 3}]},
        "not an entry",
        {"file_name": "b", "predictions": {"start_offset": 0}},
        {"file_name": "a", "predictions": [{"start_offset": 0, "end_offset": 9, "category": 4}]},
    ]
    plain = [{"file_name": "a", "predictions": [{"start_offset": 0, "end_offset": 6, "category": 1}]}]
    for models in ([odd, plain], [plain, odd], [odd[:1], plain], [odd[:6], odd[:1]]):
        paths = []
        for k, m in enumerate(models):
            path = tmp_path / f"m{k}.json"
            path.write_text(json.dumps(m))
            paths.append(path)
        for voter in lamar.VOTERS:
            assert lamar.vote(voter, models) == lamar.vote(voter, paths), (voter, models)

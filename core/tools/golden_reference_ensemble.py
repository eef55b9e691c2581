"""Writes tests/golden/reference_ensemble/cases.json: random multi-model prediction sets (with
invalid entries, models missing a document, duplicates, thresholds at 0 and 1) and what LAMAR's
Span-Cluster Consensus (ensemble/mbr.py) makes of them, for core/tests/reference_ensemble.rs.

The reference is not part of this repository. What to fetch: `ensemble/mbr.py` of
https://github.com/biodatlab/medexact-lamar at commit f6c8b34e491d96a9a09426f3c5797b6433d75aba
(curl -LO https://raw.githubusercontent.com/biodatlab/medexact-lamar/f6c8b34e491d96a9a09426f3c5797b6433d75aba/ensemble/mbr.py).
REF_DIR holds it and a module `ref_mbr.py` that imports it and exposes
`mbr(indexed_predictions, min_cluster_iou, min_pairwise_iou, min_cluster_support,
min_iou_same_cat) -> (final_predictions, weights_by_category)`: mbr.py's per-document
consensus with its model weights per category. Python 3.11, standard library only.

    python core/tools/golden_reference_ensemble.py REF_DIR
"""
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[1])
import ref_mbr  # noqa: E402

rng = random.Random(4242)
INVALID = [
    lambda s: {**s, "start_offset": float(s["start_offset"])},
    lambda s: {**s, "category": str(s["category"])},
    lambda s: {**s, "category": 0},
    lambda s: {**s, "category": 10},
    lambda s: {**s, "end_offset": s["start_offset"]},
    lambda s: {**s, "start_offset": -3},
    lambda s: {k: v for k, v in s.items() if k != "end_offset"},
    lambda s: [s["start_offset"], s["end_offset"], s["category"]],
    lambda s: None,
    lambda s: {**s, "start_offset": True, "end_offset": s["end_offset"] + 2},
]


def base_spans(n):
    out = []
    for _ in range(n):
        start = rng.randrange(0, 300)
        out.append({"start_offset": start, "end_offset": start + rng.randrange(1, 40),
                    "category": rng.choice([3, 3, 3, 5, 5, 7, 1, 6, 9, 2, 4, 8])})
    return out


def model_view(truth):
    spans = []
    for s in truth:
        if rng.random() < 0.25:
            continue
        t = dict(s)
        if rng.random() < 0.3:
            t["start_offset"] = max(0, t["start_offset"] + rng.randrange(-4, 5))
            t["end_offset"] = max(t["start_offset"] + 1, t["end_offset"] + rng.randrange(-4, 5))
        if rng.random() < 0.05:
            t["category"] = rng.randrange(1, 10)
        spans.append(t)
        if rng.random() < 0.05:
            spans.append(dict(t))
    spans.extend(base_spans(rng.randrange(0, 4)))
    valid = [s for s in spans]
    for _ in range(rng.randrange(0, 3)):
        if valid:
            spans.insert(rng.randrange(len(spans) + 1), rng.choice(INVALID)(rng.choice(valid)))
    rng.shuffle(spans)
    return spans


PARAMS = [(0.1, 0.1, 0.34, 0.8), (0.0, 0.0, 0.0, 0.0), (1.0, 1.0, 1.0, 1.0), (0.5, 0.3, 0.5, 0.2),
          (0.1, 0.1, 0.34, 0.05), (0.0, 0.5, 0.6, 0.0)]
PARAMS += [tuple(round(rng.random(), 3) for _ in range(4)) for _ in range(10)]

cases = []
for params in PARAMS:
    docs = []
    for d in range(40):
        n_models = rng.choice([1, 2, 3, 3, 3, 4])
        truth = base_spans(rng.randrange(0, 25))
        models = {}
        for m in range(n_models):
            r = rng.random()
            if r < 0.1 and n_models > 1:
                continue  # model has no entry for this document
            models[str(m)] = None if r < 0.13 else model_view(truth)
        if not models:  # a document appears only if some model lists it
            models["0"] = model_view(truth)
        indexed = {int(k): v for k, v in models.items()}
        final, weights = ref_mbr.mbr(indexed, *params)
        docs.append({
            "file_name": f"doc{d:03d}",
            "models": models,
            "expected": [[s["start_offset"], s["end_offset"], s["category"]] for s in final],
            "weights": {str(c): [[m, w] for m, w in ws.items()] for c, ws in weights.items()},
        })
    cases.append({"params": params, "docs": docs})

out = Path("tests/golden/reference_ensemble")
out.mkdir(parents=True, exist_ok=True)
(out / "cases.json").write_text(json.dumps(cases))
print(len(cases), "parameter sets,", sum(len(c["docs"]) for c in cases), "documents")

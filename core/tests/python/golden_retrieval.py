"""Goldens of the greedy unique nearest-neighbour assignment (`lamar-spec.md` §8.3), written
from the reference's `retrieve.py` in plain Python: top-`CANDIDATES` corpus rows per query by
dot product (equal scores: the lower corpus index first, lamar's documented tie rule where
numpy's order is unspecified), then every (score, query, row) pair sorted by score with
Python's stable sort, and the greedy walk (a row once claimed is gone; at most K per query).

Vectors have small integer entries, so every dot product is exact in float32 and here, and
many scores tie (duplicated corpus rows make more ties). Writes
tests/golden/retrieval/cases.jsonl: one case per line, {"dim", "k", "candidates", "queries",
"corpus", "assigned": [[[row, score], ...] per query]}.

Usage: python3 core/tests/python/golden_retrieval.py
"""
import json
import os
import random

rng = random.Random(20)
out = os.path.join(os.path.dirname(__file__), "../../../tests/golden/retrieval/cases.jsonl")
lines = []
for case in range(40):
    dim = rng.choice([3, 5, 8, 13])
    nq, nr = rng.randrange(1, 12), rng.randrange(1, 60)
    k, cand = rng.randrange(1, 6), rng.randrange(1, 20)
    queries = [[rng.randrange(-2, 3) for _ in range(dim)] for _ in range(nq)]
    corpus = [[rng.randrange(-2, 3) for _ in range(dim)] for _ in range(nr)]
    for _ in range(rng.randrange(0, 5)):  # duplicate rows: exact ties
        corpus[rng.randrange(nr)] = list(corpus[rng.randrange(nr)])
    candidates = []
    for q in queries:
        sims = [sum(a * b for a, b in zip(q, r)) for r in corpus]
        order = sorted(range(nr), key=lambda i: (-sims[i], i))[:cand]
        candidates.append([(i, sims[i]) for i in order])
    pairs = [(s, qi, r) for qi, lst in enumerate(candidates) for (r, s) in lst]
    pairs.sort(key=lambda x: x[0], reverse=True)
    claimed, assigned = set(), [[] for _ in queries]
    for s, qi, r in pairs:
        if r in claimed or len(assigned[qi]) >= k:
            continue
        assigned[qi].append([r, s])
        claimed.add(r)
    lines.append(json.dumps({"dim": dim, "k": k, "candidates": cand, "queries": queries,
                             "corpus": corpus, "assigned": assigned}))
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
print(f"{len(lines)} cases written to {out}")

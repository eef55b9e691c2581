"""Times LAMAR's Span-Cluster Consensus (`ensemble/mbr.py`) for `benches/ensemble.rs`.

Usage: python3 reference_mbr_timing.py DIR < files.json
DIR holds a module `ref_mbr` with the reference's `mbr(indexed_predictions, ...)` (not part of
this repository). stdin: a JSON list of predictions-file texts (model k = position k).
Prints two times in seconds, best of three: mbr() over every document on the loaded lists, and
json.loads of the files plus mbr().
"""

import json
import sys
import time

sys.path.insert(0, sys.argv[1])
import ref_mbr  # noqa: E402

files = json.load(sys.stdin)


def load():
    docs = {}
    for k, text in enumerate(files):
        for item in json.loads(text):
            docs.setdefault(item["file_name"], {})[k] = item["predictions"]
    return docs


def run(docs):
    for name in sorted(docs):
        ref_mbr.mbr(docs[name])


merge, both = [], []
for _ in range(3):
    docs = load()
    t = time.perf_counter()
    run(docs)
    merge.append(time.perf_counter() - t)
    t = time.perf_counter()
    run(load())
    both.append(time.perf_counter() - t)
print(min(merge), min(both))

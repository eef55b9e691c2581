"""Compares the metrics.jsonl of training runs step by step against the first run (the CPU's):
the largest relative difference of the loss and of the cross-entropy at the first step (where
every run starts from the same weights) and over all steps. Prints JSON.

Usage: python3 gpu/tools/compare_train_metrics.py REFERENCE_RUN_DIR OTHER_RUN_DIR...
"""
import json
import sys


def read(run):
    with open(f"{run}/metrics.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


reference = read(sys.argv[1])
report = {"reference": sys.argv[1], "steps": len(reference), "runs": {}}
for run in sys.argv[2:]:
    other = read(run)
    assert len(other) == len(reference), f"{run}: {len(other)} steps, not {len(reference)}"
    rel = lambda a, b: abs(a - b) / max(abs(b), 1e-12)
    runs = {}
    for key in ["loss", "cross_entropy", "grad_norm"]:
        diffs = [rel(o[key], r[key]) for o, r in zip(other, reference)]
        runs[key] = {"first_step": diffs[0], "max": max(diffs)}
    runs["last_loss"] = other[-1]["loss"]
    report["runs"][run] = runs
report["reference_last_loss"] = reference[-1]["loss"]
print(json.dumps(report, indent=1))

"""Compares the loss and LoRA gradients of two runs of one training step (safetensors with `loss`
and one gradient per adapter tensor, as full_size_train_golden.py and lamar's train-parity write
them): the loss's relative difference, each tensor's cosine similarity and relative error
|a - b| / |b| (b the reference), summarised with the worst tensors.

Usage: python3 compare_train_gradients.py OURS.safetensors REFERENCE.safetensors LABEL
Prints one JSON object.
"""
import json
import sys

import torch
from safetensors import safe_open

ours_path, ref_path, label = sys.argv[1:4]
device = "cuda" if torch.cuda.is_available() else "cpu"
with safe_open(ours_path, "pt", device=device) as ours, safe_open(ref_path, "pt", device=device) as ref:
    missing = sorted(set(ref.keys()) ^ set(ours.keys()))
    if missing:
        raise SystemExit(f"{label}: tensors in one file only: {missing[:5]} ({len(missing)})")
    loss_ours, loss_ref = ours.get_tensor("loss").item(), ref.get_tensor("loss").item()
    rows = []
    for key in sorted(k for k in ref.keys() if k != "loss"):
        a = ours.get_tensor(key).double().flatten()
        b = ref.get_tensor(key).double().flatten()
        cos = (a @ b / (a.norm() * b.norm()).clamp_min(1e-300)).item()
        rel = ((a - b).norm() / b.norm().clamp_min(1e-300)).item()
        rows.append((cos, rel, key))
rows.sort()
cosines = [r[0] for r in rows]
print(json.dumps({
    "compare": label,
    "loss": loss_ours, "loss_reference": loss_ref,
    "loss_relative_difference": abs(loss_ours - loss_ref) / abs(loss_ref),
    "tensors": len(rows),
    "cosine_min": cosines[0],
    "cosine_median": cosines[len(cosines) // 2],
    "relative_error_max": max(r[1] for r in rows),
    "relative_error_median": sorted(r[1] for r in rows)[len(rows) // 2],
    "worst": [{"tensor": k, "cosine": c, "relative_error": e} for c, e, k in rows[:3]],
}))

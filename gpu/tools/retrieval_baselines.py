"""Retrieval baselines for cli/src/bin/retrieval-bench.rs, on the same shapes: NumPy as the
reference's retrieve.py computes it (batches of 128 queries: sims = Q @ R.T, argsort, the last
100 reversed) and PyTorch's (Q @ R.T).topk(100) in f32 on the GPU (TF32 off, PyTorch's default
for matrix products), with the matrices already on the device. Random unit vectors; one JSON
line per baseline.

Usage: python3 retrieval_baselines.py [QUERIES CORPUS DIM CANDIDATES] (default 451 60000 2560 100)
"""
import json
import sys
import time

import numpy as np

nq, nr, dim, cand = (int(a) for a in (sys.argv[1:5] if len(sys.argv) >= 5 else (451, 60000, 2560, 100)))
rng = np.random.default_rng(0)
Q = rng.standard_normal((nq, dim), dtype=np.float32)
R = rng.standard_normal((nr, dim), dtype=np.float32)
Q /= np.linalg.norm(Q, axis=1, keepdims=True)
R /= np.linalg.norm(R, axis=1, keepdims=True)

started = time.perf_counter()
for b in range(0, nq, 128):
    sims = Q[b:b + 128] @ R.T
    top = np.argsort(sims, axis=1)[:, -cand:][:, ::-1]
numpy_s = time.perf_counter() - started
import os  # noqa: E402
print(json.dumps({"path": "numpy argsort", "threads": os.cpu_count(), "queries": nq, "corpus": nr,
                  "dim": dim, "search_s": numpy_s}), flush=True)

try:
    import torch
except ImportError:
    sys.exit(0)
if torch.cuda.is_available():
    q = torch.from_numpy(Q).cuda()
    r = torch.from_numpy(R).cuda()
    best = float("inf")
    for k in range(4):
        torch.cuda.synchronize()
        started = time.perf_counter()
        values, indices = (q @ r.T).topk(cand, dim=1)
        torch.cuda.synchronize()
        if k:
            best = min(best, time.perf_counter() - started)
    print(json.dumps({"path": "pytorch f32 topk", "device": torch.cuda.get_device_name(),
                      "torch": torch.__version__, "tf32": torch.backends.cuda.matmul.allow_tf32,
                      "queries": nq, "corpus": nr, "dim": dim, "search_s": best,
                      "tflops": 2 * nq * nr * dim / best / 1e12}), flush=True)

"""Compares `lamar tune` with Optuna's TPE on the very same objective.

Optuna (TPESampler, default settings but seeded, the default thresholds enqueued first, as
LAMAR's optimize.py does) asks for parameters; a `lamar tune --serve-objective` process computes
each score, so both samplers face an identical objective. Reports the best score of each per seed
and on average, and the time each needed.

    python3 -m venv target/optuna-env
    target/optuna-env/bin/pip install --no-deps -r core/tools/requirements-optuna.txt
    cargo build --release -p lamar-cli && target/release/lamar demo --out out/demo
    target/optuna-env/bin/python core/tools/compare_optuna.py target/release/lamar out/demo \
        TRIALS SEED [SEED ...] --json RESULTS.json

CORPUS_DIR: a `lamar demo` output folder (decoded/model_*.json, data/, raw_text/, splits/val.txt,
stats.csv). The Optuna environment is pinned (core/tools/requirements-optuna.txt: Optuna 5.0.0
and every package it imports); the script refuses another Optuna. --json writes every figure it
prints, with the versions, the machine and the lamar binary's hash: BENCHMARKS.md quotes that
file.
"""
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

OPTUNA = "5.0.0"
if optuna.__version__ != OPTUNA:
    sys.exit(f"Optuna {optuna.__version__} installed; this comparison is pinned to {OPTUNA}")
args = sys.argv[1:]
json_out = None
if "--json" in args:
    k = args.index("--json")
    json_out = Path(args[k + 1])
    del args[k:k + 2]
binary, corpus, trials = args[0], Path(args[1]), int(args[2])
seeds = [int(s) for s in args[3:]]
models = sorted(str(p) for p in (corpus / "decoded").glob("model_*.json"))
common = ["--gold-dir", str(corpus / "data"), "--raw-text-dir", str(corpus / "raw_text"),
          "--split", str(corpus / "splits" / "val.txt"), "--stats-csv", str(corpus / "stats.csv"),
          "--predictions", *models]
NAMES = ["min_cluster_iou", "min_pairwise_iou", "min_cluster_support", "min_iou_same_cat"]
optuna.logging.set_verbosity(optuna.logging.WARNING)

server = subprocess.Popen([binary, "tune", "--serve-objective", "--out", "/dev/null", *common],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)


def objective(trial):
    params = {n: trial.suggest_float(n, 0.0, 1.0) for n in NAMES}
    server.stdin.write(json.dumps(params) + "\n")
    server.stdin.flush()
    return float(server.stdout.readline())


rows = []
for seed in seeds:
    start = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({"min_cluster_iou": 0.1, "min_pairwise_iou": 0.1, "min_cluster_support": 0.34,
                         "min_iou_same_cat": 0.8})
    study.optimize(objective, n_trials=trials)
    optuna_time = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "trials.jsonl"
        start = time.perf_counter()
        subprocess.run([binary, "tune", "--trials", str(trials), "--seed", str(seed), "--jobs", "1",
                        "--log", str(log), "--out", str(Path(tmp) / "best.json"), *common],
                       check=True, stdout=subprocess.DEVNULL)
        lamar_time = time.perf_counter() - start
        lamar_best = max(json.loads(l)["score"] for l in log.read_text().splitlines())
    rows.append((seed, study.best_value, optuna_time, lamar_best, lamar_time))
    print(f"seed {seed}: optuna best {study.best_value:.6f} ({optuna_time:.1f} s), "
          f"lamar best {lamar_best:.6f} ({lamar_time:.1f} s, one job)", flush=True)
server.stdin.close()
server.wait()
n = len(rows)
means = {k: sum(r[i] for r in rows) / n for k, i in
         [("optuna_best", 1), ("optuna_seconds", 2), ("lamar_best", 3), ("lamar_seconds", 4)]}
print(f"mean over {n} seeds, {trials} trials: optuna {means['optuna_best']:.6f} "
      f"({means['optuna_seconds']:.1f} s), lamar {means['lamar_best']:.6f} "
      f"({means['lamar_seconds']:.1f} s): lamar {means['optuna_seconds'] / means['lamar_seconds']:.1f}x "
      f"faster")
if json_out:
    lamar_version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    json_out.write_text(json.dumps({
        "trials": trials,
        "seeds": [{"seed": r[0], "optuna_best": r[1], "optuna_seconds": r[2], "lamar_best": r[3],
                   "lamar_seconds": r[4]} for r in rows],
        "mean": means,
        "speedup": means["optuna_seconds"] / means["lamar_seconds"],
        "optuna": optuna.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "lamar": lamar_version,
        "lamar_sha256": hashlib.sha256(Path(binary).read_bytes()).hexdigest(),
    }, indent=1) + "\n")
    print(f"written to {json_out}")

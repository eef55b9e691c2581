"""Compares `lamar tune` with Optuna's TPE on the very same objective.

Optuna (TPESampler, default settings but seeded, the default thresholds enqueued first, as
LAMAR's optimize.py does) asks for parameters; a `lamar tune --serve-objective` process computes
each score, so both samplers face an identical objective. Reports the best score of each per seed
and on average, and the time each needed.

    python core/tools/compare_optuna.py LAMAR_BINARY CORPUS_DIR TRIALS SEED [SEED ...]

CORPUS_DIR: a `lamar demo` output folder (decoded/model_*.json, data/, raw_text/, splits/val.txt,
stats.csv). Needs `pip install optuna`.
"""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

binary, corpus, trials = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
seeds = [int(s) for s in sys.argv[4:]]
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
print(f"mean over {n} seeds, {trials} trials: optuna {sum(r[1] for r in rows) / n:.6f}, "
      f"lamar {sum(r[3] for r in rows) / n:.6f}")

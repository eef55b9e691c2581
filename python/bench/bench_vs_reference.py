"""Scoring, consensus and rewards through the `lamar` wheel against the pure-Python reference
functions, in one process, on the same inputs (BENCHMARKS.md, "The Python package").

The references are not part of this repository (read them, run them, never copy them):

* scoring: `evaluate.py` of https://github.com/CLU-UML/MedDec at commit f4374cd (the official
  evaluator); its functions are called in-process (load once, then per prediction set
  `compute_span_f1`, `compute_token_f1`, `compute_shared_task_scores`), which needs NLTK 3.9.4
  and `NLTK_DATA` with punkt_tab (`tests/golden/official/make_goldens.py` builds both under
  target/golden-official/3.9.4);
* consensus: a module `ref_mbr` in MBR_DIR with `mbr(indexed_predictions)` = the final
  predictions of `mbr_cluster_and_refine_single_doc` of LAMAR's `ensemble/mbr.py` (medexact-lamar
  2c0d9c5; the file runs a job at import, so its functions are taken as they are);
* rewards: LAMAR's `utils/rewards.py` (medexact-lamar 2c0d9c5; imports sacrebleu).

    python bench_vs_reference.py --evaluate evaluate.py --mbr-dir DIR --rewards rewards.py

Input: `lamar.synth(docs=451, seed=7)` with three simulated models (the corpus of the Rust
benches). Both sides get the predictions as Python lists already loaded; lamar's times include
every Python call and conversion (the lists go in and the results come out as Python objects).
Each lamar time is the best of five runs, each reference time the best of `--repeat` (1).
The results are compared before any time is printed.
"""

import argparse
import importlib.util
import json
import math
import pathlib
import sys
import tempfile
import time

import lamar


def best_of(n, function):
    best, result = math.inf, None
    for _ in range(n):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_scoring(evaluate, corpus, models, repeat):
    reference = load_module("official_evaluate", evaluate)
    gold = {}
    for path in sorted((corpus / "data").glob("*.json")):
        gold.update(reference.load_gold_annotations(str(path)))
    raw = {name: reference.load_raw_text(str(corpus / "raw_text"), name) for name in gold}

    def reference_run():
        out = []
        for predictions in models:
            by_file = {e["file_name"]: e["predictions"] for e in predictions}
            span = reference.compute_span_f1(gold, by_file, raw)
            token = reference.compute_token_f1(gold, by_file, raw)
            shared = reference.compute_shared_task_scores(
                gold, by_file, raw, str(corpus / "stats.csv"), span["f1"], token)
            out.append((span["f1"], token, shared["final_score"]))
        return out

    def lamar_run():
        scorer = lamar.Scorer(corpus / "data", corpus / "raw_text", corpus / "stats.csv")
        return [scorer.score(p) for p in models]

    ref_time, ref_scores = best_of(repeat, reference_run)
    lamar_time, ours = best_of(5, lamar_run)
    scorer = lamar.Scorer(corpus / "data", corpus / "raw_text", corpus / "stats.csv")
    one_time, _ = best_of(5, lambda: scorer.score(models[0]))
    for (span, token, final), e in zip(ref_scores, ours):
        assert span == e["span_f1"]["f1"], (span, e["span_f1"])
        assert abs(token - e["token_f1"]) <= 1e-12 and abs(final - e["shared_task"]["final_score"]) <= 1e-12
    return [
        ("scoring: prepare the gold, score three sets (span F1, token F1, shared-task score)",
         ref_time, lamar_time),
        ("scoring: one more set on a prepared `Scorer` (reference: its three functions again)",
         ref_time / 3, one_time),
    ]


def bench_consensus(mbr_dir, models, repeat):
    sys.path.insert(0, str(mbr_dir))
    import ref_mbr  # noqa: E402

    def reference_run():
        docs = {}
        for k, predictions in enumerate(models):
            for item in predictions:
                docs.setdefault(item["file_name"], {})[k] = item["predictions"]
        return [{"file_name": name, "predictions": ref_mbr.mbr(docs[name])}
                for name in sorted(docs)]

    ref_time, theirs = best_of(max(repeat, 3), reference_run)
    lamar_time, ours = best_of(5, lambda: lamar.consensus(models))
    assert ours == theirs
    return [("Span-Cluster Consensus of three models (lists in, merged list out)",
             ref_time, lamar_time)]


def bench_rewards(rewards_py, repeat):
    reference = load_module("lamar_rewards", rewards_py)
    golden = pathlib.Path(__file__).resolve().parents[2] / "tests" / "golden" / "rewards"
    rows = [json.loads(line) for line in (golden / "inputs.jsonl").read_text().splitlines()]
    completions = [r["completion"] for r in rows]
    columns = {"gold": [r["gold"] for r in rows], "raw_text": [r["raw_text"] for r in rows]}
    out = []
    for name in ("fidelity", "fast_token_f1", "exact_match_f1"):
        theirs_f = getattr(reference, f"reward_{name}")
        ours_f = lamar.REWARDS[name]
        ref_time, theirs = best_of(max(repeat, 3), lambda: theirs_f(completions, **columns))
        lamar_time, ours = best_of(5, lambda: ours_f(completions, **columns))
        assert all(abs(a - b) <= 1e-12 for a, b in zip(ours, theirs))
        out.append((f"reward_{name}, {len(rows)} completions (TRL's call)", ref_time, lamar_time))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evaluate", type=pathlib.Path, help="the official evaluate.py")
    parser.add_argument("--mbr-dir", type=pathlib.Path, help="folder with ref_mbr.py")
    parser.add_argument("--rewards", type=pathlib.Path, help="LAMAR's utils/rewards.py")
    parser.add_argument("--docs", type=int, default=451)
    parser.add_argument("--repeat", type=int, default=1, help="reference runs (best of)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = pathlib.Path(tmp)
        lamar.synth(docs=args.docs, seed=7, out=corpus, simulate_models=3)
        models = [json.loads((corpus / "predictions" / f"model_{k}.json").read_text())
                  for k in range(3)]
        rows = []
        if args.evaluate:
            rows += bench_scoring(args.evaluate, corpus, models, args.repeat)
        if args.mbr_dir:
            rows += bench_consensus(args.mbr_dir, models, args.repeat)
        if args.rewards:
            rows += bench_rewards(args.rewards, args.repeat)
    print(f"lamar {lamar.__version__}, Python {sys.version.split()[0]}, {args.docs} documents")
    print("| what | pure-Python reference | lamar wheel | ratio |")
    print("|---|---|---|---|")
    for what, ref, ours in rows:
        print(f"| {what} | {ref:.3f} s | {ours * 1000:.1f} ms | **{ref / ours:.0f}×** |")


if __name__ == "__main__":
    main()

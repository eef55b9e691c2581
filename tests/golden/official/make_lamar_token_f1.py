"""Goldens of LAMAR's token-F1 rule (`lamar evaluate --token-f1 lamar`): the token F1 that
LAMAR's own evaluator computes, where a token overlapped by two or more spans is ambiguous (-1)
and left out of the gold.

What to fetch: `evaluate/evaluate.py` of https://github.com/biodatlab/medexact-lamar at commit
2c0d9c5f8b54dfd20e0bc0411c3bee7f02c519cc (read and run, never copied into lamar):

    curl -L -o lamar_evaluate.py https://raw.githubusercontent.com/biodatlab/medexact-lamar/2c0d9c5f8b54dfd20e0bc0411c3bee7f02c519cc/evaluate/evaluate.py
    python3 tests/golden/official/make_lamar_token_f1.py lamar_evaluate.py

It runs under the NLTK 3.9.4 environment of make_goldens.py (created if missing), imports the
file and calls its `compute_token_f1` on the inputs of this folder (models 0-2) and of
`versions/`, with PYTHONHASHSEED=0, and writes lamar_token_f1_3.9.4.json.
"""
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
RELEASE = "3.9.4"
CASES = {"model_0": (".", "model_0"), "model_1": (".", "model_1"), "model_2": (".", "model_2"),
         "versions": ("versions", "model_0")}


def score(evaluate_py):
    spec = importlib.util.spec_from_file_location("lamar_reference_evaluate", evaluate_py)
    ev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ev)
    out = {}
    for name, (folder, model) in CASES.items():
        root = HERE / folder
        gold = {}
        for f in sorted(os.listdir(root / "data")):
            gold.update(ev.load_gold_annotations(str(root / "data" / f)))
        predictions = ev.load_predictions(str(root / "predictions" / f"{model}.json"))
        texts = {n: ev.load_raw_text(str(root / "raw_text"), n) for n in set(gold) | set(predictions)}
        out[name] = ev.compute_token_f1(gold, predictions, texts)
    return out


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--inside":
        print(json.dumps(score(sys.argv[2])))
        return
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.path.insert(0, str(HERE))
    from make_goldens import environment

    python, data = environment(RELEASE)
    env = {"NLTK_DATA": str(data), "PYTHONHASHSEED": "0", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([str(python), __file__, "--inside", str(pathlib.Path(sys.argv[1]).resolve())],
                         env=env, check=True, capture_output=True, text=True)
    result = json.loads(out.stdout)
    path = HERE / f"lamar_token_f1_{RELEASE}.json"
    path.write_text(json.dumps({"nltk": RELEASE, "token_f1": result}, indent=1) + "\n")
    print(f"{path.name}: {result}")


if __name__ == "__main__":
    main()

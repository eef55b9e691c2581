"""Regenerates the official evaluator's goldens in this folder (see README.md).

What to fetch: `evaluate.py` of https://github.com/CLU-UML/MedDec at commit
f4374cdf4f84ab71c75cf85a173b827adcd0d149 (sha256 8370885f3d503efb7960b757195b39db5607098e2a48a70f7616c0f589b12380):

    curl -LO https://raw.githubusercontent.com/CLU-UML/MedDec/f4374cdf4f84ab71c75cf85a173b827adcd0d149/evaluate.py
    python3 tests/golden/official/make_goldens.py evaluate.py [RELEASE ...]

For each NLTK release (default: 3.8.1 3.9.2 3.9.4 3.10.4) it makes a virtual environment under
target/golden-official/ with exactly the packages of core/tests/python/requirements-nltk.txt
(NLTK's own dependencies pinned too, as for the differential tests' oracles), an NLTK data folder built from lamar's vendored punkt_tab files
(core/data/punkt_tab; for NLTK 3.8.1, which reads the pickled `punkt`, the same parameters
pickled), and runs the evaluator from this folder with PYTHONHASHSEED=0 on the cases below.
Writes official_<release>_<model>[_val].{json,txt}. Needs Python 3 with venv and PyPI access.
"""
import hashlib
import os
import pathlib
import platform
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
EVALUATE_SHA256 = "8370885f3d503efb7960b757195b39db5607098e2a48a70f7616c0f589b12380"
RELEASES = ["3.8.1", "3.9.2", "3.9.4", "3.10.4"]
# (golden name suffix, predictions file, split file, folder of the inputs)
CORPUS = [("model_0", "model_0", None, ".")]
# A few notes written where the NLTK releases tokenize differently (contractions before a
# newline, a leading quote, Unicode dashes): their token F1 differs between releases.
VERSIONS = [("versions", "model_0", None, "versions")]
CASES = {
    "3.8.1": CORPUS + VERSIONS,
    "3.9.2": CORPUS + VERSIONS,
    "3.9.4": CORPUS + [("model_1", "model_1", None, "."), ("model_2", "model_2", None, "."),
                       ("model_0_val", "model_0", "splits/val.txt", ".")] + VERSIONS,
    "3.10.4": CORPUS + VERSIONS,
}
# The pickle NLTK 3.8.1 reads, made from the punkt_tab files by the oracles' own helper.
PUNKT_PICKLE = """
import pickle, sys
sys.path.insert(0, sys.argv[3])
from punkt_tab import punkt_from
with open(sys.argv[2], "wb") as f:
    pickle.dump(punkt_from(sys.argv[1]), f)
"""


def environment(release):
    root = ROOT / "target" / "golden-official" / release
    python = root / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
        pins = (ROOT / "core" / "tests" / "python" / "requirements-nltk.txt").read_text()
        pins = pins.replace("NLTK_RELEASE", release)
        (root / "requirements.txt").write_text(pins)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "-r", str(root / "requirements.txt")], check=True)
    data = root / "nltk_data"
    tab = data / "tokenizers" / "punkt_tab" / "english"
    tab.mkdir(parents=True, exist_ok=True)
    for f in (ROOT / "core" / "data" / "punkt_tab" / "english").iterdir():
        (tab / f.name).write_bytes(f.read_bytes())
    # The evaluator asks for `punkt` too (and tries to download it when it is missing).
    pickled = data / "tokenizers" / "punkt" / "PY3"
    pickled.mkdir(parents=True, exist_ok=True)
    if release == "3.8.1":
        helpers = ROOT / "core" / "tests" / "python"
        subprocess.run([str(python), "-c", PUNKT_PICKLE, str(tab), str(pickled / "english.pickle"),
                        str(helpers)], check=True)
    return python, data


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    evaluate = pathlib.Path(sys.argv[1]).resolve()
    digest = hashlib.sha256(evaluate.read_bytes()).hexdigest()
    if digest != EVALUATE_SHA256:
        sys.exit(f"{evaluate}: sha256 {digest}, not the evaluator of MedDec f4374cd")
    for release in sys.argv[2:] or RELEASES:
        python, data = environment(release)
        for name, model, split, folder in CASES[release]:
            stem = f"official_{release}_{name}"
            args = [str(python), str(evaluate), "--gold_dir", "data", "--raw_text_dir", "raw_text",
                    "--predictions", f"predictions/{model}.json", "--stats_csv", "stats.csv",
                    "--output", os.path.relpath(HERE / f"{stem}.json", HERE / folder)]
            if split:
                args += ["--split_file", split]
            env = {"NLTK_DATA": str(data), "PYTHONHASHSEED": "0", "PATH": "/usr/bin:/bin"}
            out = subprocess.run(args, cwd=HERE / folder, env=env, check=True, capture_output=True, text=True)
            (HERE / f"{stem}.txt").write_text(out.stdout)
            print(f"{stem}: written (Python {platform.python_version()})")


if __name__ == "__main__":
    main()

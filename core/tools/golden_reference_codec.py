"""Writes tests/golden/reference_codec/: what LAMAR's own gt_to_tag and pred_to_offset functions
produce on the golden synthetic corpus, for core/tests/reference_codec.rs.

The reference functions are not part of this repository. What to fetch: `utils/gt_to_tag.py`
and `utils/pred_to_offset.py` of https://github.com/biodatlab/medexact-lamar at commit
f6c8b34e491d96a9a09426f3c5797b6433d75aba:

    for f in gt_to_tag pred_to_offset; do curl -LO \
      https://raw.githubusercontent.com/biodatlab/medexact-lamar/f6c8b34e491d96a9a09426f3c5797b6433d75aba/utils/$f.py; done

REF_DIR holds those two files and a module `ref_lamar.py` that imports them and exposes
`convert_xml_from_loaded(file_id, raw_text, gold_json)` (gt_to_tag's per-document conversion,
returning its `gold_span` and `gold_offsets`) and `convert_rows(rows)` (pred_to_offset's
per-row loop over `file_id, predicted, raw_text`: `extract_spans_from_tags`, then
`find_span_in_raw` for each span, returning the rows' predictions and the dropped spans with
their reason, text and closest match).

    python core/tools/golden_reference_codec.py REF_DIR SIMULATED_OUTPUTS_DIR

SIMULATED_OUTPUTS_DIR: the outputs/ folder of
`lamar synth --out DIR --docs 80 --seed 21 --simulate-models 3` (same corpus as the golden one).
"""
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[1])
import ref_lamar as ref  # noqa: E402

corpus = Path("tests/golden/official")
out = Path("tests/golden/reference_codec")
ids = sorted(p.stem for p in (corpus / "data").glob("*.json"))
raw = {i: open(corpus / "raw_text" / f"{i}.txt", encoding="utf-8").read() for i in ids}

# gt_to_tag on every document.
tagged = []
for i in ids:
    gold = json.load(open(corpus / "data" / f"{i}.json", encoding="utf-8"))
    rec = ref.convert_xml_from_loaded(i, raw[i], gold)
    tagged.append({"file_id": i, "gold_span": rec["gold_span"], "gold_offsets": rec["gold_offsets"]})

# Model outputs: the simulated models, plus adversarial edits of the gold targets.
rows = []
for path in sorted(Path(sys.argv[2]).glob("model_*.jsonl")):
    for line in open(path, encoding="utf-8"):
        r = json.loads(line)
        rows.append({"source": path.stem, "file_id": r["file_id"], "predicted": r["predicted"]})
rng = random.Random(2026)
tag_re = re.compile(r"</?[a-z_]+>")
for t in tagged[:24]:
    text = t["gold_span"]
    edits = {
        "newlines_collapsed": re.sub(r"\s+", " ", text),
        "upper_case": tag_re.sub(lambda m: m.group(0), "".join(
            c.upper() if rng.random() < 0.3 else c for c in text)),
        "junk_tags": text.replace("\n\n", "\n<br>\n", 3).replace("<drug_decision>", "<Drug_Decision>", 1),
        "dropped_closes": re.sub(r"</define_problem>", lambda m: "" if rng.random() < 0.2 else m.group(0), text),
        "leading_space_raw_view": "   " + text.strip(),
    }
    # Span texts the model rewrote: half kept (truncated), replaced (not in text), lightly edited.
    edits["rewritten"] = re.sub(
        r"(<(evaluate_result|drug_decision|contact_related)>)([^<]{12,})",
        lambda m: m.group(1) + rng.choice([
            m.group(3)[: len(m.group(3)) // 2] + " qzx vvv wkk",
            "zqxv wwkk yyqz",
            m.group(3)[:3] + "#" + m.group(3)[4:8] + "##" + m.group(3)[9:],
        ]),
        text,
    )
    # Character edits outside tags.
    chars = list(text)
    for _ in range(15):
        k = rng.randrange(len(chars))
        if chars[k].isalpha():
            chars[k] = rng.choice("xyzq")
    edits["typos"] = "".join(chars)
    for name, predicted in edits.items():
        rows.append({"source": name, "file_id": t["file_id"], "predicted": predicted})

results, dropped = [], []
for r in rows:
    res, drop = ref.convert_rows([{"file_id": r["file_id"], "predicted": r["predicted"], "raw_text": raw[r["file_id"]]}])
    results.append({"source": r["source"], **res[0]})
    dropped.extend({"source": r["source"], **d} for d in drop)

out.mkdir(parents=True, exist_ok=True)
with open(out / "tagged.jsonl", "w", encoding="utf-8") as f:
    for t in tagged:
        f.write(json.dumps(t, ensure_ascii=False) + "\n")
with open(out / "model_outputs.jsonl", "w", encoding="utf-8") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
with open(out / "offsets.jsonl", "w", encoding="utf-8") as f:
    for r in results:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
with open(out / "dropped.jsonl", "w", encoding="utf-8") as f:
    for d in dropped:
        f.write(json.dumps(d, ensure_ascii=False) + "\n")
print(len(tagged), "tagged rows,", len(rows), "model outputs,", len(dropped), "dropped spans")

"""Metric oracle for core/tests/scorer_parity.rs.

Computes the MedDec shared-task metrics with the installed NLTK, following the formulas of the
published evaluator (CLU-UML/MedDec evaluate.py) step by step: refine_span with
TreebankWordTokenizer, span F1 over (file, label, refined lower-cased text) sets, token F1 over
word_tokenize tokens (official first-span rule or LAMAR's ambiguous-token rule), and subgroup
scores from stats rows. One deliberate choice: per-file scores are averaged in sorted file order
(the published script uses set order, which depends on PYTHONHASHSEED).

stdin: {"punkt_dir", "evaluations": [{"texts", "gold", "preds", "stats", "rule"}]}
stdout: one result per evaluation, floats as repr (exact).
"""
import json
import re
import sys

from nltk.tokenize import TreebankWordTokenizer
from nltk.tokenize.destructive import NLTKWordTokenizer
from punkt_tab import punkt_from

request = json.load(sys.stdin)
punkt = punkt_from(request["punkt_dir"])
words = NLTKWordTokenizer()
treebank = TreebankWordTokenizer()


def category_of(label):
    m = re.match(r"Category\s*(\d+)", label)
    n = int(m.group(1)) if m else 0
    return n if 1 <= n <= 9 else 0


def refine(text, start, end):
    if not text:
        return None
    while 0 < start < len(text) and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while 0 < end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
        end += 1
    piece = text[start:end]
    if not piece.strip():
        return None
    spans = list(treebank.span_tokenize(piece))
    toks = [piece[a:b] for a, b in spans]

    def content(w):
        return any(c.isalnum() for c in w) or "**" in w

    i = 0
    while i < len(toks) and not content(toks[i]) and not (toks[i] == "[" and i + 1 < len(toks) and "**" in toks[i + 1]):
        i += 1
    j = len(toks)
    while j > i and not content(toks[j - 1]) and not (toks[j - 1] == "]" and j - 2 >= 0 and "**" in toks[j - 2]):
        j -= 1
    if i >= j:
        return None
    return text[start + spans[i][0]:start + spans[j - 1][1]]


def tokens_of(text):
    out, pos = [], 0
    for s, e in punkt.span_tokenize(text):
        for t in words.tokenize(text[s:e]):
            k = text.find(t, pos)
            if k != -1:
                out.append((k, k + len(t)))
                pos = k + len(t)
    return out


def labels(tokens, spans, rule):
    lab = [0] * len(tokens)
    count = [0] * len(tokens)
    for start, end, label in spans:
        for i, (a, b) in enumerate(tokens):
            if a < end and b > start:
                if rule == "official":
                    if lab[i] == 0:
                        lab[i] = label
                else:
                    count[i] += 1
                    if count[i] == 1:
                        lab[i] = label
                    elif count[i] == 2:
                        lab[i] = -1
    return lab


def f1_of(tp, fp, fn):
    p = tp / (tp + fp) if tp + fp > 0 else 0.0
    r = tp / (tp + fn) if tp + fn > 0 else 0.0
    return p, r, (2 * p * r / (p + r) if p + r > 0 else 0.0)


def token_f1(g, p, rule):
    if rule == "lamar":
        pairs = [(a, b) for a, b in zip(g, p) if a != -1]
        if not pairs:
            return 1.0
        g, p = [a for a, _ in pairs], [b for _, b in pairs]
    present = set(g) | set(p)
    present.discard(0)
    present.discard(-1)
    if not present:
        return 1.0 if g == p else 0.0
    scores = []
    for label in sorted(present):
        tp = sum(1 for a, b in zip(g, p) if a == label and b == label)
        fp = sum(1 for a, b in zip(g, p) if a != label and b == label)
        fn = sum(1 for a, b in zip(g, p) if a == label and b != label)
        scores.append(f1_of(tp, fp, fn)[2])
    return sum(scores) / len(scores)


def sex(v):
    v = str(v or "").strip().upper()
    return "Female" if v in ("F", "FEMALE") else "Male" if v in ("M", "MALE") else "Other"


def race(v):
    v = str(v or "").strip().upper()
    if v == "W" or "WHITE" in v:
        return "White"
    if v == "AA" or "BLACK" in v or "AFRICAN" in v:
        return "African American"
    if v.startswith("HISP"):
        return "Hispanic"
    if "ASIAN" in v:
        return "Asian"
    return "Other"


def language(v):
    v = str(v or "").strip().upper()
    return "English" if v in ("ENGL", "ENGLISH") else "Non-English"


def ids_of(name):
    parts = name.split("_")
    if len(parts) < 3:
        return None
    try:
        return int(parts[0]), int(parts[1]), int(parts[2].split("-")[0])
    except ValueError:
        return None


def evaluate(ev):
    texts, rule = ev["texts"], ev["rule"]
    gold = {f: [(s, e, category_of(c)) for s, e, c in anns] for f, anns in ev["gold"].items()}
    preds = {f: [(s, e, c) for s, e, c in ps] for f, ps in ev["preds"].items()}
    gsets, psets = {}, {}
    for f, anns in gold.items():
        gsets[f] = {(c, r.lower()) for s, e, c in anns if c for r in [refine(texts.get(f, ""), s, e)] if r is not None}
    for f, ps in preds.items():
        psets[f] = {(c, r.lower()) for s, e, c in ps if 1 <= c <= 9 for r in [refine(texts.get(f, ""), s, e)] if r is not None}
    every = sorted(set(gold) | set(preds))
    by_file = {}
    for f in every:
        text = texts.get(f)
        if not text:
            continue
        toks = tokens_of(text)
        if not toks:
            continue
        g = labels(toks, [x for x in gold.get(f, []) if x[2]], rule)
        p = labels(toks, [x for x in preds.get(f, []) if 1 <= x[2] <= 9], rule)
        by_file[f] = token_f1(g, p, rule)

    def span_scores(files, keyed):
        tp = fp = fn = 0
        for f in files:
            g, p = gsets.get(f, set()), psets.get(f, set())
            tp += len(g & p)
            fp += len(p - g)
            fn += len(g - p)
        return f1_of(tp, fp, fn)

    def mean(values):
        values = list(values)
        return sum(values) / len(values) if values else 0.0

    p, r, f = span_scores(every, True)
    tok = mean(by_file[k] for k in sorted(by_file))
    result = {"span": [p, r, f], "token_f1": tok, "by_file": by_file}
    if ev["stats"] is not None:
        table = {}
        for row in ev["stats"]:
            try:
                key = (int(row["SUBJECT_ID"]), int(row["HADM_ID"]), int(row["ROW_ID"]))
            except ValueError:
                continue
            table[key] = {"sex": sex(row["GENDER"]), "race": race(row["ETHNICITY"]), "language": language(row["LANGUAGE"])}
        groups = {f: table[ids_of(f)] for f in sorted(gold) if ids_of(f) in table}
        defs = {"sex": ["Female", "Male"], "race": ["White", "African American", "Hispanic", "Asian", "Other"],
                "language": ["English", "Non-English"]}
        sub, bases = {}, []
        for dim, values in defs.items():
            sub[dim] = {}
            for v in values:
                files = sorted(f for f, g in groups.items() if g[dim] == v)
                if not files:
                    continue
                sf = span_scores(files, False)[2]
                tf = mean(by_file[f] for f in files if f in by_file)
                n = sum(len(gsets.get(f, set())) for f in files)
                sub[dim][v] = [len(files), n, sf, tf, (sf + tf) / 2]
                bases.append((sf + tf) / 2)
        base = (f + tok) / 2
        worst = min(bases) if bases else 0.0
        result["shared_task"] = {"base": base, "worst": worst, "final": (base + worst) / 2, "subgroups": sub}
    return result


json.dump([evaluate(ev) for ev in request["evaluations"]], sys.stdout)

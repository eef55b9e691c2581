"""Oracle for the exact-match reward plugin: LAMAR's `reward_exact_match_f1` as lamar-spec.md
§6.4 describes it (the reference's `_get_text`, `_extract_clean_strings_with_tags` and `clean`),
in plain Python with `re`.

stdin: a JSON list of {"completion", "gold"}; stdout: a JSON list of scores. Tags are averaged
in sorted order (the reference uses set order; the tests allow for the last bits).
"""
import json
import re
import sys

ALLOWED = {"contact_related", "gather_info", "define_problem", "treatment_goal", "drug_decision",
           "therapeutic_procedure", "evaluate_result", "defer_decision", "advice_and_precaution"}


def get_text(completion):
    text = str(completion)
    if "</think>" in text:
        return text.rsplit("</think>", 1)[1].strip()
    if text.strip().startswith("<think>"):
        return ""
    return text


def clean(x):
    x = re.sub(r"</?[a-zA-Z_]+>", "", x).strip()
    if x == "":
        return ""
    pre = "[**" if x.startswith("[**") else ""
    x = x[len(pre):]
    x = pre + re.sub(r"^[^a-zA-Z0-9*]+", "", x)
    suf = "**]" if x.endswith("**]") else ""
    x = x[:len(x) - len(suf)]
    x = re.sub(r"[^a-zA-Z0-9*]+$", "", x) + suf
    return x.lower()


def extract(t):
    stack = {tag: [] for tag in ALLOWED}
    out = []
    i = 0
    while i < len(t):
        if t[i] == "<":
            k = t.find(">", i)
            if k == -1:
                i += 1
                continue
            content = t[i + 1:k]
            close = content.startswith("/")
            name = content[1:] if close else content
            if name in ALLOWED:
                if not close:
                    stack[name].append(k + 1)
                elif stack[name]:
                    s = stack[name].pop()
                    c = clean(t[s:i])
                    if c:
                        out.append((name, c))
                i = k + 1
            else:
                i += 1
        else:
            i += 1
    return out


def exact_match_f1(pred, gold):
    p, g = extract(pred), extract(gold)
    if not p and not g:
        return 1.0
    if not p or not g:
        return 0.0
    tags = sorted({t for t, _ in p} | {t for t, _ in g})
    total = 0.0
    for tag in tags:
        ps = {s for t, s in p if t == tag}
        gs = {s for t, s in g if t == tag}
        if not ps or not gs:
            total += 0.0
            continue
        tp = len(ps & gs)
        precision, recall = tp / len(ps), tp / len(gs)
        total += 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return total / len(tags)


samples = json.load(sys.stdin)
print(json.dumps([exact_match_f1(get_text(s["completion"]), s["gold"]) for s in samples]))

"""NLTK oracle for core/tests/nltk_parity.rs.

Reads {"punkt_dir": DIR, "texts": [...]} as JSON from stdin and writes, for each text, what the
installed NLTK makes of it: TreebankWordTokenizer().span_tokenize (or the error it raises), the
Punkt sentence spans with the English punkt_tab parameters from DIR, the NLTKWordTokenizer tokens
of each sentence (i.e. word_tokenize), and the MedDec evaluator's offset reconstruction of them.
"""
import json
import sys

import nltk
from nltk.tokenize import TreebankWordTokenizer
from nltk.tokenize.destructive import NLTKWordTokenizer
from punkt_tab import punkt_from

request = json.load(sys.stdin)
punkt = punkt_from(request["punkt_dir"])
treebank = TreebankWordTokenizer()
words = NLTKWordTokenizer()

out = []
for text in request["texts"]:
    try:
        tb = [list(s) for s in treebank.span_tokenize(text)]
    except (ValueError, IndexError) as e:
        tb = {"error": type(e).__name__}
    sentences = [list(s) for s in punkt.span_tokenize(text)]
    tokens = [t for s, e in sentences for t in words.tokenize(text[s:e])]
    spans, pos = [], 0
    for t in tokens:
        i = text.find(t, pos)
        if i != -1:
            spans.append([i, i + len(t)])
            pos = i + len(t)
    out.append({"treebank": tb, "sentences": sentences, "words": tokens, "token_spans": spans})
json.dump({"version": nltk.__version__, "results": out}, sys.stdout)

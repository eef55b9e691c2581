"""Builds NLTK's Punkt sentence tokenizer from a punkt_tab folder (shared by the oracles here)."""
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer


def punkt_from(folder):
    """PunktSentenceTokenizer with the parameters of FOLDER's four punkt_tab files."""

    def lines(name):
        with open(f"{folder}/{name}", encoding="utf-8", newline="") as f:
            return f.read().split("\n")

    params = PunktParameters()
    params.abbrev_types = set(lines("abbrev_types.txt"))
    params.sent_starters = set(lines("sent_starters.txt"))
    params.collocations = {tuple(l.split("\t")) for l in lines("collocations.tab")}
    for l in lines("ortho_context.tab"):
        k, v = l.split("\t")
        params.ortho_context[k] = int(v)
    return PunktSentenceTokenizer(params)

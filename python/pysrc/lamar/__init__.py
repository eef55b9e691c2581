"""lamar for Python: LAMAR's span codec, the official MedDec scorer, Span-Cluster Consensus and
the GRPO rewards, implemented in Rust (lamar-core) and exact.

Everything speaks MedDec's JSON shapes as plain Python values:

* a span is ``{"start_offset": int, "end_offset": int, "category": int}`` (code-point offsets,
  half-open, as Python indexes a ``str``; categories 1 to 9); functions that take spans also
  accept ``(start, end, category)`` tuples;
* a predictions file is ``[{"file_name": str, "predictions": [span, ...]}, ...]``.

Functions:

* :func:`encode` / :func:`decode`: spans ⇄ tagged text (``<drug_decision>…</drug_decision>``);
* :class:`Scorer`: span F1, token F1 and the shared-task score, bit-exact with the official
  ``evaluate.py`` (NLTK 3.8.1 to 3.10.4);
* :func:`consensus` (Span-Cluster Consensus) and :func:`vote` (any built-in voter);
* :func:`reward_fidelity`, :func:`reward_fast_token_f1`, :func:`reward_exact_match_f1` and the
  unused variants, with TRL's reward-function signature
  (``GRPOTrainer(reward_funcs=[lamar.reward_fidelity, ...])``);
* :func:`synth`: the synthetic MedDec-format corpus.

Errors lamar-core reports are raised as :class:`LamarError` (a ``ValueError``) with the message
the ``lamar`` command line prints.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from ._native import LamarError, __version__

__all__ = [
    "LamarError",
    "Scorer",
    "REWARDS",
    "VOTERS",
    "consensus",
    "decode",
    "encode",
    "reward_bleu_exact_tags",
    "reward_exact_match_f05",
    "reward_exact_match_f1",
    "reward_exact_match_precision",
    "reward_fast_token_f05",
    "reward_fast_token_f1",
    "reward_fast_token_precision",
    "reward_fidelity",
    "synth",
    "vote",
    "__version__",
]

Span = Dict[str, int]
SpanLike = Union[Mapping[str, int], Sequence[int]]
Predictions = List[Dict[str, Any]]
PredictionsLike = Union[Sequence[Mapping[str, Any]], str, "os.PathLike[str]"]

#: The built-in voters :func:`vote` knows.
VOTERS: Tuple[str, ...] = tuple(_native.voter_names())


def _span_tuple(span: SpanLike, k: int) -> Tuple[int, int, int]:
    if isinstance(span, Mapping):
        try:
            return (span["start_offset"], span["end_offset"], span["category"])
        except KeyError as missing:
            raise LamarError(f"span {k}: no {missing.args[0]!r}") from None
    if len(span) != 3:
        raise LamarError(f"span {k}: expected (start, end, category), got {span!r}")
    return (span[0], span[1], span[2])


def encode(raw_text: str, spans: Iterable[SpanLike]) -> str:
    """Writes ``spans`` into ``raw_text`` as inline tags, exactly as LAMAR's ``gt_to_tag.py``
    (the training target of the tagging model).

    Spans may nest and overlap; crossing spans of one category come back nested from
    :func:`decode` (tags carry no identity). Raises :class:`LamarError` for a span outside the
    text or a category outside 1 to 9.

    >>> encode("Start aspirin today.", [{"start_offset": 0, "end_offset": 13, "category": 5}])
    '<drug_decision>Start aspirin</drug_decision> today.'
    """
    return _native.encode(raw_text, [_span_tuple(s, k) for k, s in enumerate(spans)])


def decode(
    raw_text: str, tagged: str, *, reference: bool = False, report: bool = False
) -> Union[List[Span], Dict[str, Any]]:
    """Reads a model's tagged output back into spans of ``raw_text`` (LAMAR's
    ``pred_to_offset.py``), robust to malformed markup and to text the model changed.

    With ``reference=True`` it behaves exactly as the reference (no verbatim shortcut, its
    alignment quirks). Returns the spans sorted by ``(start, end)``; with ``report=True`` a dict
    ``{"spans": [...], "dropped": [...]}`` where each span also names the alignment ``method``
    that placed it and each dropped span its ``reason``, ``text`` and ``closest`` raw text.

    >>> decode("Start aspirin today.", "<drug_decision>Start aspirin</drug_decision> today.")
    [{'start_offset': 0, 'end_offset': 13, 'category': 5}]
    """
    result = json.loads(_native.decode(raw_text, tagged, reference))
    if report:
        return result
    return [
        {k: s[k] for k in ("start_offset", "end_offset", "category")} for s in result["spans"]
    ]


def _predictions(predictions: PredictionsLike) -> Tuple[Union[str, list], str]:
    """What the native functions take, and a name for errors: a path's JSON text, or the
    predictions as a list (read without JSON in between)."""
    if isinstance(predictions, (str, os.PathLike)):
        path = os.fspath(predictions)
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    return (predictions if isinstance(predictions, list) else list(predictions)), "predictions"


class Scorer:
    """The official MedDec scorer bound to one gold set (read once, tokenized once).

    ``Scorer(gold_dir, raw_text_dir, stats_csv=None, split=None, nltk="3.9")`` reads the gold
    JSON folder, the raw texts, an optional split file (only its documents count) and an
    optional ``stats.csv`` (adds the shared-task score: the mean of span and token F1, the worst
    demographic group and their average). ``nltk`` picks the NLTK release whose tokenizers
    decide token boundaries (``"3.8"``, ``"3.9.2"``, ``"3.9"`` = 3.9.4, ``"3.10"``);
    ``token_f1="lamar"`` uses LAMAR's own rule for tokens under several spans.

    :meth:`score` returns what the official ``evaluate.py --output`` writes, plus
    ``token_f1_by_file``.
    """

    def __init__(
        self,
        gold_dir: Union[str, "os.PathLike[str]"],
        raw_text_dir: Union[str, "os.PathLike[str]"],
        stats_csv: Optional[Union[str, "os.PathLike[str]"]] = None,
        split: Optional[Union[str, "os.PathLike[str]"]] = None,
        nltk: str = "3.9",
        token_f1: str = "official",
    ) -> None:
        self._scorer = _native.Scorer(
            os.fspath(gold_dir),
            os.fspath(raw_text_dir),
            None if stats_csv is None else os.fspath(stats_csv),
            None if split is None else os.fspath(split),
            nltk,
            token_f1,
        )

    def score(self, predictions: PredictionsLike) -> Dict[str, Any]:
        """Scores one prediction set: a list in MedDec's predictions shape, or the path of a
        predictions JSON file."""
        value, source = _predictions(predictions)
        return json.loads(self._scorer.score(value, source))


def vote(
    voter: str,
    predictions_per_model: Sequence[PredictionsLike],
    params: Optional[Mapping[str, float]] = None,
    boundary: str = "joint",
) -> Predictions:
    """Merges several models' predictions with a built-in voter (one of :data:`VOTERS`):
    ``"scc"`` (Span-Cluster Consensus), ``"majority"``, ``"union"``, ``"intersection"`` or
    ``"wbf"`` (weighted boundary fusion).

    Model ``k`` is ``predictions_per_model[k]`` (a predictions list or a file path); a model
    takes part in a document only if it has an entry for it, and invalid spans are skipped as
    LAMAR's ``ensemble/mbr.py`` skips them. ``params`` overrides any of LAMAR's thresholds
    (``min_cluster_iou`` 0.1, ``min_pairwise_iou`` 0.1, ``min_cluster_support`` 0.34,
    ``min_iou_same_cat`` 0.8); ``boundary`` is ``"joint"`` (LAMAR's) or ``"independent"``.
    Returns the merged predictions, documents sorted by name.
    """
    models = [_predictions(p)[0] for p in predictions_per_model]
    overrides = None if params is None else json.dumps(dict(params))
    return _native.vote(voter, models, overrides, boundary)


def consensus(
    predictions_per_model: Sequence[PredictionsLike],
    params: Optional[Mapping[str, float]] = None,
    boundary: str = "joint",
) -> Predictions:
    """Span-Cluster Consensus, exactly as LAMAR's ``ensemble/mbr.py``: ``vote("scc", ...)``."""
    return vote("scc", predictions_per_model, params, boundary)


# ── Rewards ─────────────────────────────────────────────────────────────────────────────────


def _completion_text(completion: Any) -> str:
    """TRL's completion formats: a string, or a conversation whose last message's content
    counts (anything else in a list gives no text), as LAMAR's ``_get_text``."""
    if isinstance(completion, list):
        if completion and isinstance(completion[-1], dict):
            return str(completion[-1].get("content", ""))
        return ""
    return str(completion)


def _reward(
    name: str,
    completions: Sequence[Any],
    gold: Optional[Sequence[str]],
    raw_text: Optional[Sequence[str]],
    needs: str,
) -> List[float]:
    given = {"gold": gold, "raw_text": raw_text}[needs]
    if given is None:
        raise TypeError(
            f"reward_{name} needs the {needs!r} column (TRL passes dataset columns as keyword "
            "arguments)"
        )
    texts = [_completion_text(c) for c in completions]
    n = len(texts)
    gold = list(gold) if gold is not None else [""] * n
    raw_text = list(raw_text) if raw_text is not None else [""] * n
    return _native.reward(name, texts, gold, raw_text)


def reward_fidelity(
    completions: Sequence[Any], raw_text: Optional[Sequence[str]] = None, **kwargs: Any
) -> List[float]:
    """How much of the note each completion reproduces, in [0, 1] (GRPO reward 1).

    The completion's answer (after its last ``</think>``) and the raw text lose their decision
    tags and runs of whitespace; with ``r`` their ``difflib`` ratio, ``r >= 0.99`` scores 1,
    ``r < 0.90`` scores 0, and in between ``(r - 0.90) / 0.09``.
    """
    return _reward("fidelity", completions, kwargs.get("gold"), raw_text, "raw_text")


def _span_reward(name: str, summary: str):
    def reward(
        completions: Sequence[Any], gold: Optional[Sequence[str]] = None, **kwargs: Any
    ) -> List[float]:
        return _reward(name, completions, gold, kwargs.get("raw_text"), "gold")

    reward.__name__ = reward.__qualname__ = f"reward_{name}"
    reward.__doc__ = (
        f"{summary}\n\n"
        "Spans are the ``(tag, cleaned text)`` of every closed tag pair of the completion's answer "
        "and of the gold tagged text (per-tag stacks; cleaning drops tag-shaped text, leading "
        "and trailing punctuation except MIMIC's ``[** **]`` brackets, and lower-cases). No "
        "spans on either side scores 1, on one side 0; per tag likewise. The score is the mean "
        "over the tags either side has. TRL signature: ``(completions, gold=..., **kwargs)``."
    )
    return reward


reward_fast_token_f1 = _span_reward(
    "fast_token_f1", "Per tag, the multiset F1 of the words of its spans (GRPO reward 2)."
)
reward_exact_match_f1 = _span_reward(
    "exact_match_f1", "Per tag, the set F1 of its cleaned span strings (GRPO reward 3)."
)
reward_fast_token_precision = _span_reward(
    "fast_token_precision", "Per tag, the word precision of its spans (defined, unused by LAMAR)."
)
reward_exact_match_precision = _span_reward(
    "exact_match_precision", "Per tag, the set precision of its span strings (unused by LAMAR)."
)
reward_fast_token_f05 = _span_reward(
    "fast_token_f05", "Per tag, the word F0.5 of its spans (unused by LAMAR)."
)
reward_exact_match_f05 = _span_reward(
    "exact_match_f05", "Per tag, the set F0.5 of its span strings (unused by LAMAR)."
)


def reward_bleu_exact_tags(
    completions: Sequence[Any], gold: Optional[Sequence[str]] = None, **kwargs: Any
) -> List[float]:
    """Sentence BLEU-4 of the answer against the gold, tags spaced out as words, in [0, 1]
    (sacrebleu's defaults; unused by LAMAR, whose version asks sacrebleu for a tokenizer that
    does not exist). An empty answer and empty gold score 1, one of them empty 0."""
    return _reward("bleu_exact_tags", completions, gold, kwargs.get("raw_text"), "gold")


#: Every built-in reward by name (without the ``reward_`` prefix); GRPO's three come first.
REWARDS = {
    "fidelity": reward_fidelity,
    "fast_token_f1": reward_fast_token_f1,
    "exact_match_f1": reward_exact_match_f1,
    "fast_token_precision": reward_fast_token_precision,
    "exact_match_precision": reward_exact_match_precision,
    "fast_token_f05": reward_fast_token_f05,
    "exact_match_f05": reward_exact_match_f05,
    "bleu_exact_tags": reward_bleu_exact_tags,
}
assert list(REWARDS) == _native.reward_names()


# ── The synthetic corpus ────────────────────────────────────────────────────────────────────


def synth(
    docs: int = 60,
    seed: int = 7,
    out: Optional[Union[str, "os.PathLike[str]"]] = None,
    simulate_models: int = 0,
) -> List[Dict[str, Any]]:
    """The synthetic MedDec-format corpus ``lamar synth --docs DOCS --seed SEED`` makes (a pure
    function of both), as a list of ``{"file_name", "text", "spans", "split"}``.

    With ``out``, also writes it there in MedDec's layout exactly as the CLI does (gold JSON,
    raw texts, splits, ``stats.csv``, and ``simulate_models`` simulated models' predictions and
    tagged outputs at the default noise).
    """
    text = _native.synth(docs, seed, None if out is None else os.fspath(out), simulate_models)
    documents = json.loads(text)["documents"]
    for d in documents:
        d["spans"] = [
            {"start_offset": s, "end_offset": e, "category": c} for s, e, c in d["spans"]
        ]
    return documents

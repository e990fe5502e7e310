"""Official SQuAD answer normalisation and EM/F1, plus the small statistics the reports use."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, collapse whitespace (SQuAD's evaluate-v2.0.py)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_tokens(text: str | None) -> list[str]:
    return normalize_answer(text).split() if text else []


def exact_match(prediction: str | None, gold: str) -> float:
    return float(normalize_answer(prediction or "") == normalize_answer(gold))


def f1(prediction: str | None, gold: str) -> float:
    predicted, expected = answer_tokens(prediction), answer_tokens(gold)
    if not predicted or not expected:
        # SQuAD 2.0: when either side is empty, F1 is 1 only if both are.
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def score_prediction(prediction: str | None, answers: Sequence[str]) -> tuple[float, float]:
    """(EM, F1) of one prediction, max over the gold answers.

    No gold answers means the question is unanswerable: EM = F1 = 1 iff the prediction is
    no-answer (None or empty). Gold answers that normalise to nothing are ignored, as in
    the official script.
    """
    answers = [a for a in answers if normalize_answer(a)]
    if not answers:
        return (1.0, 1.0) if not (prediction or "").strip() else (0.0, 0.0)
    return (max(exact_match(prediction, a) for a in answers),
            max(f1(prediction, a) for a in answers))


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    """True when some answer occurs in `text` as whole normalised tokens."""
    haystack = f" {normalize_answer(text)} "
    return any(f" {normalize_answer(a)} " in haystack for a in answers if normalize_answer(a))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else math.nan

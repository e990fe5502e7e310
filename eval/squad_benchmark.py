"""Reader-only SQuAD benchmark: each question is asked of its own paragraph alone.

Scores follow the official evaluate-v2.0.py (percentages): exact, f1, total, and for files with
`is_impossible` questions (v2.0) the HasAns_/NoAns_ splits, where a question gets no answer when
the reader's best span scores below the configured no-answer threshold.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from eval.metrics import mean, score_prediction

PROGRESS_EVERY = 500
BATCH = 64  # questions per call: their windows share padded forward passes


class SquadFormatError(ValueError):
    pass


@dataclass(frozen=True)
class SquadQuestion:
    id: str
    question: str
    context: str
    answers: tuple[str, ...]
    impossible: bool


def load_squad(path: str | Path) -> tuple[list[SquadQuestion], bool]:
    """The file's questions in file order, and whether it is a v2.0 file (has is_impossible)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
        questions, has_impossible = [], False
        for article in data:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    has_impossible |= "is_impossible" in qa
                    questions.append(SquadQuestion(
                        str(qa["id"]), qa["question"], paragraph["context"],
                        tuple(a["text"] for a in qa.get("answers", [])), bool(qa.get("is_impossible", False))))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SquadFormatError(f"{path} is not a readable SQuAD JSON file ({type(exc).__name__}: {exc})") from None
    if not questions:
        raise SquadFormatError(f"{path} has no questions")
    return questions, has_impossible


def spread_sample(questions: list, limit: int | None) -> list:
    """`limit` questions taken at even steps over the whole list (deterministic), or all of them."""
    if not limit or limit >= len(questions):
        return questions
    return [questions[i * len(questions) // limit] for i in range(limit)]


def best_span(reader, question: str, context: str) -> tuple[str | None, float]:
    return reader.best_spans([question], [context])[0]


def run_squad(reader, questions: list[SquadQuestion], v2: bool, no_answer_threshold: float) -> dict:
    """Ask every question of its paragraph; return the official-style summary."""
    scored: list[tuple[bool, float, float]] = []  # (impossible, EM, F1) per question
    for begin in range(0, len(questions), BATCH):
        batch = questions[begin:begin + BATCH]
        for q, (text, score) in zip(batch, reader.best_spans([q.question for q in batch], [q.context for q in batch])):
            prediction = None if v2 and score < no_answer_threshold else text
            scored.append((q.impossible, *score_prediction(prediction, [] if q.impossible else q.answers)))
        if len(scored) % PROGRESS_EVERY < BATCH:
            print(f"squad: {len(scored)}/{len(questions)} questions", file=sys.stderr, flush=True)

    def split(prefix: str, rows: list[tuple[bool, float, float]]) -> dict:
        return {f"{prefix}exact": 100 * mean(r[1] for r in rows),
                f"{prefix}f1": 100 * mean(r[2] for r in rows), f"{prefix}total": len(rows)}

    summary = split("", scored)
    if v2:
        for prefix, impossible in (("HasAns_", False), ("NoAns_", True)):
            rows = [r for r in scored if r[0] == impossible]
            if rows:
                summary |= split(prefix, rows)
        summary["no_answer_threshold"] = no_answer_threshold
    return summary

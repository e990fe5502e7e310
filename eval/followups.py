"""`byline eval --followups FILE`: follow-up questions asked in a conversation.

The collection is the bundled corpus plus the made-up distractor articles of eval/followup-articles/
(facts of the same kinds as the Xiaomi stories', about another company), in a scratch data directory
(build/followups-eval/, built once). One JSON object a line:

    {"id": "...", "tags": ["pronoun", ...], "turns": [{"question": "...", "answers": ["..."]}, ...],
     "fresh": false}

The turns are asked in order, each with the earlier ones as its context, as the terminal chat and a
Slack thread do (each turn builds on Byline's own earlier answers, right or wrong). The last turn is
scored: correct when its answer's SQuAD F1 against the best gold answer is at least 0.5 (no gold
answers, `"answers": []`, only on the last turn: correct when Byline gives no answer) and, for a
`fresh` item (a new question or a new subject), when it was not read as a follow-up. The same last
question asked alone, without its context, is the baseline.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from eval.metrics import mean, score_prediction
from retrieval.config import REPO_ROOT
from retrieval.conversation import Turn

DEFAULT_FOLLOWUPS = Path(__file__).resolve().parent / "followups.jsonl"
DISTRACTORS = Path(__file__).resolve().parent / "followup-articles"
SCRATCH = REPO_ROOT / "build" / "followups-eval"
CORRECT_F1 = 0.5


class FollowUpFileError(ValueError):
    """A follow-up file that cannot be run; the message names the line."""


@dataclass(frozen=True)
class FollowUpItem:
    id: str
    tags: tuple[str, ...]
    turns: tuple[tuple[str, tuple[str, ...]], ...]  # (question, gold answers)
    fresh: bool


def load_followups(path: Path) -> list[FollowUpItem]:
    items = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FollowUpFileError(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            turns = tuple((t["question"], tuple(t["answers"])) for t in record["turns"])
            if len(turns) < 2 or not all(q.strip() for q, _ in turns) or not all(a for _, a in turns[:-1]):
                raise ValueError("needs two or more turns, each with a question, and answers to all but the last")
            items.append(FollowUpItem(str(record["id"]), tuple(record.get("tags", ())), turns,
                                      bool(record.get("fresh", False))))
        except (ValueError, KeyError, TypeError) as exc:
            raise FollowUpFileError(f"{path}:{number}: not a follow-up item ({type(exc).__name__}: {exc})") from None
    if not items:
        raise FollowUpFileError(f"{path} holds no follow-up items")
    return items


def followup_pipeline(config: dict):
    """The pipeline on the scratch collection: the bundled corpus, then the distractors (skipped when unchanged)."""
    from retrieval.pipeline import BylinePipeline

    pipeline = BylinePipeline({**config, "data_dir": str(SCRATCH / "data")})
    pipeline.ingest(sorted(DISTRACTORS.glob("*.md")))
    return pipeline


def _answer(result) -> str | None:
    return None if result.no_answer else result.best.text


def answered_correctly(prediction: str | None, answers) -> bool:
    return score_prediction(prediction, answers)[1] >= CORRECT_F1


def ask_item(pipeline, item: FollowUpItem) -> dict:
    turns: list[Turn] = []
    results = []
    for question, _ in item.turns:
        results.append(pipeline.ask(question, context=tuple(turns)))
        turns.append(Turn.from_result(results[-1]))
    last, gold = results[-1], item.turns[-1][1]
    alone = pipeline.ask(item.turns[-1][0])
    f1, alone_f1 = score_prediction(_answer(last), gold)[1], score_prediction(_answer(alone), gold)[1]
    read_fresh = last.read_as is None
    return {"id": item.id, "tags": list(item.tags), "questions": [q for q, _ in item.turns],
            "answers": [_answer(r) for r in results], "expected": list(gold), "read_as": last.read_as,
            "f1": f1, "correct": f1 >= CORRECT_F1 and (read_fresh or not item.fresh),
            "first_turns_correct": all(answered_correctly(_answer(r), g)
                                       for r, (_, g) in zip(results[:-1], item.turns[:-1])),
            "alone": _answer(alone), "alone_f1": alone_f1, "alone_correct": alone_f1 >= CORRECT_F1}


def summarize(rows: list[dict]) -> dict:
    return {"items": len(rows), "correct": sum(r["correct"] for r in rows),
            "correct_alone": sum(r["alone_correct"] for r in rows),
            "first_turns_correct": sum(r["first_turns_correct"] for r in rows),
            "f1": mean(r["f1"] for r in rows), "f1_alone": mean(r["alone_f1"] for r in rows)}


def print_report(summary: dict, rows: list[dict], out=sys.stdout) -> None:
    print(f"follow-ups answered correctly: {summary['correct']}/{summary['items']} (F1 {summary['f1']:.3f}); "
          f"asked alone, without their thread: {summary['correct_alone']}/{summary['items']} "
          f"(F1 {summary['f1_alone']:.3f}); earlier turns answered correctly in {summary['first_turns_correct']}",
          file=out)
    for row in rows:
        mark = "ok  " if row["correct"] else "FAIL"
        print(f"\n{mark} {row['id']} [{', '.join(row['tags'])}]", file=out)
        for question, answer in zip(row["questions"], row["answers"]):
            print(f"    {question}  ->  {answer or '(no answer)'}", file=out)
        print(f"    read as: {row['read_as'] or '(as asked)'}", file=out)
        print(f"    expected: {' | '.join(row['expected']) or '(no answer)'}; alone: {row['alone'] or '(no answer)'}", file=out)


def run_followups(path: Path, config: dict, as_json: bool = False) -> int:
    items = load_followups(path)
    pipeline = followup_pipeline(config)
    rows = [ask_item(pipeline, item) for item in items]
    summary = summarize(rows)
    if as_json:
        print_report(summary, rows, out=sys.stderr)
        print(json.dumps({"summary": summary, "items": rows}, ensure_ascii=False))
    else:
        print_report(summary, rows)
    return 0

"""The 👍/👎 feedback log, and its export as gold-set candidates for review."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime, timezone
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: the in-process lock is all there is
    fcntl = None

FEEDBACK_FILE = "feedback.jsonl"


class FeedbackLog:
    """Append-only JSONL under the data dir; safe across threads (and, on POSIX, processes)."""

    def __init__(self, data_dir: str | Path):
        self.path = Path(data_dir) / FEEDBACK_FILE
        self._lock = threading.Lock()

    def record(self, *, vote: str, user: str, question: str, answer: str | None,
               citations: list[str], **extra) -> dict:
        entry = _entry(vote, user, question, answer, citations, extra)
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            if fcntl:
                fcntl.flock(f, fcntl.LOCK_EX)
            f.write(line)
        return entry

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]


class PostgresFeedbackLog:
    """The same log as a table (byline_feedback), shared by every replica on the database."""

    def __init__(self, database) -> None:
        self.database = database

    def record(self, *, vote: str, user: str, question: str, answer: str | None,
               citations: list[str], **extra) -> dict:
        from psycopg.types.json import Jsonb

        entry = _entry(vote, user, question, answer, citations, extra)
        self.database.call(lambda c: c.execute("INSERT INTO byline_feedback (entry) VALUES (%s)", (Jsonb(entry),)))
        return entry

    def entries(self) -> list[dict]:
        return [row[0] for row in self.database.call(
            lambda c: c.execute("SELECT entry FROM byline_feedback ORDER BY id").fetchall())]


def feedback_log(config: dict):
    """The configured log: a table when the store is on Postgres, else the data dir's JSONL file."""
    from retrieval.pipeline import shared_database

    database = shared_database(config)
    return PostgresFeedbackLog(database) if database else FeedbackLog(config["data_dir"])


def _entry(vote: str, user: str, question: str, answer: str | None, citations: list[str], extra: dict) -> dict:
    if vote not in ("up", "down"):
        raise ValueError(f"vote must be 'up' or 'down', not {vote!r}")
    return {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "vote": vote,
            "user": user, "question": question, "answer": answer, "citations": citations, **extra}


def export_feedback(data_dir: str | Path, out_path: str | Path, log=None) -> int:
    """Write each distinct 👎 (question, answer) as a gold-set candidate line; returns how many.

    The bot's answer goes in `answers` for a reviewer to correct (empty when the bot found none),
    and its cited articles in `sources`.
    """
    candidates: dict[str, dict] = {}
    for entry in (log or FeedbackLog(data_dir)).entries():
        if entry.get("vote") != "down":
            continue
        answer = entry.get("answer")
        key = json.dumps([" ".join(entry["question"].split()).lower(), answer])
        candidate_id = "feedback-" + hashlib.sha1(key.encode()).hexdigest()[:12]
        candidates.setdefault(candidate_id, {
            "id": candidate_id,
            "question": entry["question"],
            "answers": [answer] if answer else [],
            "sources": list(dict.fromkeys(entry.get("citations") or [])),
            "tags": ["feedback"],
        })
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in candidates.values()),
                        encoding="utf-8")
    return len(candidates)

"""Questions acknowledged to Slack but not yet answered, kept on disk so a killed process loses none.

Slack does not redeliver an event it got an ack for, so a question is recorded *before* the ack and marked
done once its reply (or refusal) is posted; at start-up whatever is still pending is answered. A question
answered just before a kill, but not yet marked done, is answered twice: at least once, never silence.

Stored with the standard library's sqlite3 in the data directory, in write-ahead-log mode with
synchronous=NORMAL: a committed record survives the process being killed (the operating system has it), not
a power cut; without an fsync per record, recording takes microseconds instead of ~8 ms on this disk, which
every ack waits for.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path

from retrieval.errors import BylineError

JOURNAL_FILE = "slack-journal.sqlite3"
KEEP_DONE_S = 24 * 3600  # done questions are remembered this long, so a late redelivery is not answered again
MAX_STARTS = 3  # a question still pending after this many starts is given up (it may be what kills the bot)
logger = logging.getLogger(__name__)


class QuestionJournal:
    """record / done / pending, safe across threads; the file is opened on first use."""

    def __init__(self, data_dir: str | Path):
        self.path = Path(data_dir) / JOURNAL_FILE
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("CREATE TABLE IF NOT EXISTS questions (key TEXT PRIMARY KEY, body TEXT NOT NULL, "
                           "recorded REAL NOT NULL, done REAL, starts INTEGER NOT NULL DEFAULT 0)")
                db.execute("CREATE INDEX IF NOT EXISTS questions_done ON questions (done)")
            except (OSError, sqlite3.Error) as exc:
                raise BylineError(f"cannot open the Slack question journal {self.path}: {exc}") from exc
            self._connection = db
        return self._connection

    def record(self, key: str, body: dict) -> bool:
        """Keeps `body` (the event as Slack sent it) under `key`; False if `key` is already known."""
        with self._lock:
            self._db.execute("DELETE FROM questions WHERE done < ?", (time.time() - KEEP_DONE_S,))
            cursor = self._db.execute("INSERT OR IGNORE INTO questions (key, body, recorded) VALUES (?, ?, ?)",
                                      (key, json.dumps(body), time.time()))
            return cursor.rowcount == 1

    def done(self, key: str) -> None:
        with self._lock:
            self._db.execute("UPDATE questions SET done = ? WHERE key = ? AND done IS NULL", (time.time(), key))

    def pending(self) -> list[tuple[str, dict]]:
        """The questions not done, oldest first. Counts this start against each; one pending through
        MAX_STARTS starts is marked done with a warning instead (it may be what stops the bot)."""
        with self._lock:
            rows = self._db.execute("SELECT key, body, starts FROM questions WHERE done IS NULL "
                                    "ORDER BY recorded").fetchall()
            self._db.execute("UPDATE questions SET starts = starts + 1 WHERE done IS NULL")
        for key, _, starts in rows:
            if starts >= MAX_STARTS:
                logger.warning("giving up on the Slack question %s: still unanswered after %d starts", key, starts)
                self.done(key)
        return [(key, json.loads(body)) for key, body, starts in rows if starts < MAX_STARTS]

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

"""Thread records: the turns Byline answered in each thread, so that a follow-up can be read with them.

The interface is two calls on a thread key (a Slack thread is "slack:CHANNEL:THREAD_TS"):
`get(key)` -> the last turns, oldest first, and `append(key, turn)`. `SqliteThreadRecords` keeps them
in `<data_dir>/threads.sqlite3` (stdlib sqlite3), next to the index, so that bot processes sharing a
data directory share them; `PostgresThreadRecords` keeps them in the Postgres store's database, so
that every replica on it shares them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Protocol

from retrieval.conversation import Turn
from retrieval.errors import BylineError

THREADS_FILE = "threads.sqlite3"


class ThreadRecordError(BylineError):
    """A thread's record could not be read or written."""


class ThreadRecords(Protocol):
    def get(self, key: str) -> list[Turn]: ...

    def append(self, key: str, turn: Turn) -> None: ...


class SqliteThreadRecords:
    """Up to `max_turns` turns per thread; a thread is forgotten `keep_days` after its last turn."""

    def __init__(self, path: Path, max_turns: int = 5, keep_days: float = 30) -> None:
        self.path = Path(path)
        self.max_turns = max_turns
        self.keep_seconds = keep_days * 86400

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("CREATE TABLE IF NOT EXISTS turns (id INTEGER PRIMARY KEY AUTOINCREMENT, thread TEXT NOT NULL, "
                   "at REAL NOT NULL, turn TEXT NOT NULL)")
        db.execute("CREATE INDEX IF NOT EXISTS turns_by_thread ON turns (thread, id)")
        return db

    def get(self, key: str) -> list[Turn]:
        try:
            with closing(self._connect()) as db:
                rows = db.execute("SELECT turn FROM turns WHERE thread = ? AND at >= ? ORDER BY id DESC LIMIT ?",
                                  (key, time.time() - self.keep_seconds, self.max_turns)).fetchall()
            return [Turn.from_dict(json.loads(turn)) for (turn,) in reversed(rows)]
        except (sqlite3.Error, OSError, ValueError, KeyError) as exc:
            raise ThreadRecordError(f"cannot read the record of thread {key} in {self.path}: {exc}") from exc

    def append(self, key: str, turn: Turn) -> None:
        now = time.time()
        try:
            with closing(self._connect()) as db, db:  # one transaction
                db.execute("INSERT INTO turns (thread, at, turn) VALUES (?, ?, ?)",
                           (key, now, json.dumps(turn.to_dict(), ensure_ascii=False)))
                db.execute("DELETE FROM turns WHERE thread = ? AND id NOT IN "
                           "(SELECT id FROM turns WHERE thread = ? ORDER BY id DESC LIMIT ?)",
                           (key, key, self.max_turns))
                db.execute("DELETE FROM turns WHERE thread IN (SELECT thread FROM turns GROUP BY thread "
                           "HAVING MAX(at) < ?)", (now - self.keep_seconds,))
        except (sqlite3.Error, OSError) as exc:
            raise ThreadRecordError(f"cannot write the record of thread {key} in {self.path}: {exc}") from exc


class PostgresThreadRecords:
    """`SqliteThreadRecords` in PostgreSQL (table byline_thread_turns), through a retrieval.index.pg.Database."""

    def __init__(self, database, max_turns: int = 5, keep_days: float = 30) -> None:
        self.database = database
        self.max_turns = max_turns
        self.keep_days = keep_days

    def get(self, key: str) -> list[Turn]:
        def read(connection) -> list:
            return connection.execute(
                "SELECT turn FROM byline_thread_turns WHERE thread = %s AND at >= now() - %s * interval '1 day' "
                "ORDER BY id DESC LIMIT %s", (key, self.keep_days, self.max_turns)).fetchall()

        try:
            return [Turn.from_dict(turn) for (turn,) in reversed(self.database.call(read))]
        except (BylineError, ValueError, KeyError, TypeError) as exc:
            raise ThreadRecordError(f"cannot read the record of thread {key} in PostgreSQL at "
                                    f"{self.database.where}: {exc}") from exc

    def append(self, key: str, turn: Turn) -> None:
        from psycopg.types.json import Jsonb

        def write(connection) -> None:
            with connection.transaction():
                connection.execute("INSERT INTO byline_thread_turns (thread, turn) VALUES (%s, %s)",
                                   (key, Jsonb(turn.to_dict())))
                connection.execute("DELETE FROM byline_thread_turns WHERE thread = %s AND id NOT IN (SELECT id FROM "
                                   "byline_thread_turns WHERE thread = %s ORDER BY id DESC LIMIT %s)",
                                   (key, key, self.max_turns))
                connection.execute("DELETE FROM byline_thread_turns WHERE thread IN (SELECT thread FROM "
                                   "byline_thread_turns GROUP BY thread HAVING max(at) < now() - %s * interval '1 day')",
                                   (self.keep_days,))

        try:
            self.database.call(write)
        except BylineError as exc:
            raise ThreadRecordError(f"cannot write the record of thread {key} in PostgreSQL at "
                                    f"{self.database.where}: {exc}") from exc

"""A Slack thread's earlier turns, for reading a follow-up: its record in the thread store, keyed by
channel and thread. A record that cannot be read or written costs the context, never the answer."""

from __future__ import annotations

from logging import Logger

from retrieval.conversation import Turn
from retrieval.threads import ThreadRecordError, ThreadRecords


class SlackThread:
    def __init__(self, records: ThreadRecords, logger: Logger, *, channel: str, ts: str, thread_ts: str) -> None:
        self.records = records
        self.logger = logger
        self.key = f"slack:{channel}:{thread_ts}"
        self.is_reply = ts != thread_ts  # a message that starts a thread inherits nothing
        self.unreadable = False

    def turns(self) -> tuple[Turn, ...]:
        if not self.is_reply:
            return ()
        try:
            return tuple(self.records.get(self.key))
        except ThreadRecordError as exc:
            self.logger.warning("%s; answering without the thread's context", exc)
            self.unreadable = True
            return ()

    def record(self, result) -> None:
        if self.unreadable:  # already reported once
            return
        try:
            self.records.append(self.key, Turn.from_result(result))
        except ThreadRecordError as exc:
            self.logger.warning("%s; a follow-up in this thread will be read without this answer", exc)

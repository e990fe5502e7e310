"""What the Slack listeners share: the pipeline, settings, the answering pool, the question journal and small
thread-safe stores."""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict, defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bot.feedback import FeedbackLog, PostgresFeedbackLog
from bot.slack.journal import QuestionJournal
from retrieval.answer import AnswerResult
from retrieval.threads import THREADS_FILE, PostgresThreadRecords, SqliteThreadRecords

BOLT_LISTENER_THREADS = 5  # Bolt's own default


class SeenEvents:
    """Event ids already handled, so a retried or replayed event is answered once; bounded, oldest forgotten."""

    def __init__(self, max_size: int = 10_000):
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._max_size = max_size
        self._lock = threading.Lock()

    def first_time(self, event_id: str) -> bool:
        """Records the id; True only the first time it is seen."""
        with self._lock:
            if event_id in self._ids:
                return False
            self._ids[event_id] = None
            if len(self._ids) > self._max_size:
                self._ids.popitem(last=False)
            return True


class UserRateLimiter:
    """At most `per_minute` questions per user in any 60 s window; 0 means no limit."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.per_minute = per_minute
        self._clock = clock
        self._asked: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, user: str) -> bool:
        if self.per_minute <= 0:
            return True
        now = self._clock()
        with self._lock:
            for other in [u for u, times in self._asked.items() if times[-1] <= now - 60]:
                del self._asked[other]  # keeps memory bounded by the users active in the last minute
            times = self._asked[user]
            while times and times[0] <= now - 60:
                times.popleft()
            if len(times) >= self.per_minute:
                return False
            times.append(now)
            return True


class PostgresSeenEvents:
    """`SeenEvents` across replicas: an event is claimed by inserting its id under a unique key, before answering."""

    def __init__(self, database, keep_days: int = 2):
        self.database = database
        self.keep_days = keep_days
        self._claims = 0

    def first_time(self, event_id: str) -> bool:
        def claim(connection) -> bool:
            self._claims += 1
            if self._claims % 1000 == 1:  # Slack retries for minutes, not days
                connection.execute("DELETE FROM byline_slack_events WHERE claimed_at < now() - make_interval(days => %s)",
                                   (self.keep_days,))
            return connection.execute("INSERT INTO byline_slack_events (event_id) VALUES (%s) ON CONFLICT DO NOTHING "
                                      "RETURNING event_id", (event_id,)).fetchone() is not None

        return self.database.call(claim)


class PostgresRateLimiter:
    """`UserRateLimiter` across replicas: each user's questions of the last minute, counted in one table."""

    def __init__(self, per_minute: int, database):
        self.per_minute = per_minute
        self.database = database

    def allow(self, user: str) -> bool:
        if self.per_minute <= 0:
            return True

        def count_and_record(connection) -> bool:
            with connection.transaction():
                connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"byline-user:{user}",))
                connection.execute("DELETE FROM byline_questions WHERE user_id = %s AND asked_at <= now() - "
                                   "interval '60 seconds'", (user,))
                asked = connection.execute("SELECT count(*) FROM byline_questions WHERE user_id = %s",
                                           (user,)).fetchone()[0]
                if asked >= self.per_minute:
                    return False
                connection.execute("INSERT INTO byline_questions (user_id) VALUES (%s)", (user,))
                return True

        return self.database.call(count_and_record)


class RecentResults:
    """The last answers shown, by reference, so "Share in channel" can post one without asking again."""

    def __init__(self, max_size: int = 1_000):
        self._results: OrderedDict[str, AnswerResult] = OrderedDict()
        self._max_size = max_size
        self._lock = threading.Lock()

    def add(self, result: AnswerResult) -> str:
        ref = uuid.uuid4().hex[:16]
        with self._lock:
            self._results[ref] = result
            if len(self._results) > self._max_size:
                self._results.popitem(last=False)
        return ref

    def get(self, ref: str | None) -> AnswerResult | None:
        with self._lock:
            return self._results.get(ref) if ref else None


class WorkPool(ThreadPoolExecutor):
    """Worker threads that count the work taken and not yet finished (waiting or running): `offer` refuses
    work past `limit`, and `drain` waits for what was taken, up to a timeout."""

    def __init__(self, workers: int, name: str, limit: int = 0):
        super().__init__(max_workers=workers, thread_name_prefix=name)
        self.limit = limit
        self._unfinished = 0
        self._changed = threading.Condition()

    @property
    def unfinished(self) -> int:
        """Tasks taken and not finished: waiting or running."""
        with self._changed:
            return self._unfinished

    def submit(self, fn, /, *args, **kwargs):
        with self._changed:
            self._unfinished += 1
        return self._counted(fn, args, kwargs)

    def offer(self, fn, /, *args, **kwargs) -> bool:
        """Submits `fn` unless `limit` tasks are already waiting or running (limit 0: no limit); False if refused."""
        with self._changed:
            if self.limit and self._unfinished >= self.limit:
                return False
            self._unfinished += 1
        self._counted(fn, args, kwargs)
        return True

    def drain(self, timeout: float | None = None) -> bool:
        """True once all work taken has finished; False if `timeout` seconds pass first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._unfinished == 0, timeout)

    def _counted(self, fn, args, kwargs):
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._finished()
            raise
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _future=None) -> None:
        with self._changed:
            self._unfinished -= 1
            self._changed.notify_all()


class SlackContext:
    """Injected into every listener as the `byline` argument."""

    def __init__(self, pipeline, data_dir: str | Path, *, channel_allowlist=(), user_rate_limit_per_minute: int = 0,
                 max_citations: int = 3, workers: int = 4, conversation: dict | None = None, database=None,
                 ingest_allowlist=(), answer_queue_limit: int = 0):
        """With `database` (a retrieval.index.pg.Database), event claims, feedback, the rate limit and thread
        records are shared by every replica on it; without, they live in this process (feedback: the data dir's log)."""
        self.pipeline = pipeline
        self.channel_allowlist = frozenset(channel_allowlist or ())
        self.ingest_allowlist = frozenset(ingest_allowlist or ())  # who may add articles; empty = nobody
        self.max_citations = max_citations
        self.workers = workers
        if database is None:
            self.feedback = FeedbackLog(data_dir)
            self.seen_events = SeenEvents()
            self.rate_limiter = UserRateLimiter(user_rate_limit_per_minute)
        else:
            self.feedback = PostgresFeedbackLog(database)
            self.seen_events = PostgresSeenEvents(database)
            self.rate_limiter = PostgresRateLimiter(user_rate_limit_per_minute, database)
        self.results = RecentResults()
        conversation = conversation or {}
        turns = {"max_turns": conversation.get("max_turns", 5), "keep_days": conversation.get("keep_days", 30)}
        self.threads = (SqliteThreadRecords(Path(data_dir) / THREADS_FILE, **turns) if database is None
                        else PostgresThreadRecords(database, **turns))
        self.pool = WorkPool(workers, "byline-answer", limit=answer_queue_limit)  # answers, in arrival order
        self.listener_pool = WorkPool(BOLT_LISTENER_THREADS, "byline-listener")  # App(listener_executor=…)
        self.journal = QuestionJournal(data_dir)

    @classmethod
    def from_config(cls, config: dict, pipeline) -> SlackContext:
        slack = config.get("slack") or {}
        from retrieval.pipeline import shared_database

        database = shared_database(config) if config.get("store") else None
        return cls(pipeline, config["data_dir"], database=database,
                   channel_allowlist=slack.get("channel_allowlist") or (),
                   user_rate_limit_per_minute=int(slack.get("user_rate_limit_per_minute") or 0),
                   max_citations=int(slack.get("max_citations") or 3),
                   workers=int(slack.get("workers") or 4), conversation=config.get("conversation"),
                   ingest_allowlist=slack.get("ingest_allowlist") or (),
                   answer_queue_limit=int(slack.get("answer_queue_limit") or 0))

    def allows_channel(self, channel: str) -> bool:
        # DMs (D…) are always allowed: the allowlist is about which shared channels the bot speaks in.
        return not self.channel_allowlist or channel in self.channel_allowlist or channel.startswith("D")

    def close(self, timeout: float | None = None) -> bool:
        """Lets the listeners and answers under way finish, up to `timeout` seconds in all; True if they all
        did. What is cut short stays in the journal, to be answered at the next start."""
        deadline = None if timeout is None else time.monotonic() + timeout
        finished = self.listener_pool.drain(timeout) and \
            self.pool.drain(None if deadline is None else max(0.0, deadline - time.monotonic()))
        for pool in (self.listener_pool, self.pool):
            pool.shutdown(wait=finished, cancel_futures=not finished)
        if finished:
            self.journal.close()
        return finished

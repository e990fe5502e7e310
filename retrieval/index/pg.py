"""One PostgreSQL connection for Byline (psycopg 3), with errors a user can act on and reconnection.

Everything on Postgres — the article store and the Slack bot's shared state — goes through
`Database`: a failed connect names host and port in one line, a database without pgvector says
how to enable it, and a connection lost between calls is reopened once before giving up.
Schema creation and upgrades are versioned (`byline_schema.version`) and run on first use.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Callable, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict

from retrieval.errors import BylineError

logger = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_LOCK = 0x42594C4E  # advisory lock keys ("BYLN", "BYLW")
WRITE_LOCK = 0x42594C57

# Each step upgrades the schema by one version; a database is brought to the last one on first use.
# The chunk table itself (byline_chunks: id, embedding, content, meta ...) and its HNSW and full-text
# indexes are created by pgvector-haystack's PgvectorDocumentStore, before these steps run.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        """CREATE TABLE byline_articles (
               doc_id text PRIMARY KEY, title text, publisher text, published text, url text,
               text text NOT NULL, fingerprint text NOT NULL)""",
        """CREATE TABLE byline_sentences (
               doc_id text NOT NULL REFERENCES byline_articles (doc_id) ON DELETE CASCADE,
               position integer NOT NULL, start_char integer NOT NULL, end_char integer NOT NULL,
               embedding vector(384) NOT NULL, PRIMARY KEY (doc_id, position))""",
        "CREATE INDEX byline_chunks_doc_id ON byline_chunks ((meta->>'doc_id'))",
        "CREATE INDEX byline_chunks_duplicate_of ON byline_chunks ((meta->>'duplicate_of'))",
    ]),
    (2, [  # the Slack bot's state, shared by every replica
        "CREATE TABLE byline_slack_events (event_id text PRIMARY KEY, claimed_at timestamptz NOT NULL DEFAULT now())",
        "CREATE TABLE byline_feedback (id bigserial PRIMARY KEY, entry jsonb NOT NULL)",
        """CREATE TABLE byline_questions (user_id text NOT NULL, asked_at timestamptz NOT NULL DEFAULT now())""",
        "CREATE INDEX byline_questions_user ON byline_questions (user_id, asked_at)",
    ]),
    (3, [  # thread records (retrieval.threads), so that a follow-up reaching another replica has its context
        """CREATE TABLE byline_thread_turns (id bigserial PRIMARY KEY, thread text NOT NULL,
               at timestamptz NOT NULL DEFAULT now(), turn jsonb NOT NULL)""",
        "CREATE INDEX byline_thread_turns_by_thread ON byline_thread_turns (thread, id)",
    ]),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def where(url: str) -> str:
    """host:port of a connection string, for messages (a Unix socket directory stands for the host)."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "?"
    return f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}"


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else exc.__class__.__name__


def connect(url: str) -> psycopg.Connection:
    if not url:
        raise BylineError("store.backend is postgres but no URL is set: set store.url (BYLINE_STORE__URL) or "
                          "DATABASE_URL; `byline db start` starts a local server and prints one")
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise BylineError(f"store.url is not a PostgreSQL URL ({_first_line(exc)})") from None
    try:
        connection = psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise BylineError(f"cannot connect to PostgreSQL at {where(url)}: {_first_line(exc)}") from None
    _require_pgvector(connection, url)
    from pgvector.psycopg import register_vector

    register_vector(connection)
    return connection


def _require_pgvector(connection: psycopg.Connection, url: str) -> None:
    if connection.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
        return
    database = connection.info.dbname
    if not connection.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone():
        connection.close()
        raise BylineError(f"PostgreSQL at {where(url)} has no pgvector extension: install pgvector on the server "
                          f"(e.g. the postgresql-16-pgvector package; managed services: allow 'vector'), then run "
                          f"CREATE EXTENSION vector; in database {database}")
    try:
        connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as exc:
        connection.close()
        raise BylineError(f"database {database} at {where(url)} lacks the pgvector extension and this user may not "
                          f"enable it ({_first_line(exc)}): have an administrator run CREATE EXTENSION vector; "
                          f"in {database}") from None


def migrate(connection: psycopg.Connection, before_steps: Callable[[], None]) -> bool:
    """Bring the schema to SCHEMA_VERSION, once across processes; True if it was created just now."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        connection.execute("""CREATE TABLE IF NOT EXISTS byline_schema (
                                  id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL,
                                  revision bigint NOT NULL DEFAULT 0, bootstrapped boolean NOT NULL DEFAULT false)""")
        row = connection.execute("SELECT version FROM byline_schema").fetchone()
        current = row[0] if row else 0
        if current > SCHEMA_VERSION:
            raise BylineError(f"the database's Byline schema is version {current}, newer than this Byline's "
                              f"({SCHEMA_VERSION}): upgrade Byline")
        if current == SCHEMA_VERSION:
            return False
        before_steps()
        for version, statements in MIGRATIONS:
            if version > current:
                for statement in statements:
                    connection.execute(statement)
                logger.info("Byline schema upgraded to version %d", version)
        connection.execute("""INSERT INTO byline_schema (id, version) VALUES (1, %s)
                              ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version""", (SCHEMA_VERSION,))
        return current == 0


CHUNK_TABLE = "byline_chunks"


def chunk_document_store(url: str, ef_search: int | None = None):
    """pgvector-haystack's document store over the chunk table (HNSW, cosine; full-text index on content)."""
    from haystack.utils.auth import Secret
    from haystack_integrations.document_stores.pgvector import PgvectorDocumentStore

    return PgvectorDocumentStore(connection_string=Secret.from_token(url), create_extension=False,
                                 table_name=CHUNK_TABLE, embedding_dimension=384,
                                 vector_function="cosine_similarity", search_strategy="hnsw",
                                 hnsw_index_name="byline_chunks_hnsw", hnsw_ef_search=ef_search,
                                 keyword_index_name="byline_chunks_keyword", language="english")


def create_chunk_table(url: str) -> None:
    """The integration creates its table and indexes when it first connects."""
    store = chunk_document_store(url)
    store.count_documents()
    store.close()


class Database:
    """A connection shared by one object's threads (one call at a time), reopened once if it was lost."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.where = where(url)
        self._lock = threading.RLock()
        self._connection = connect(url)
        self.created = migrate(self._connection, lambda: create_chunk_table(url))

    @property
    def connection(self) -> psycopg.Connection:
        return self._connection

    def call(self, work: Callable[[psycopg.Connection], T]) -> T:
        """`work(connection)`, again on a new connection if the first one turned out to be dead."""
        with self._lock:
            try:
                return work(self._connection)
            except psycopg.OperationalError as exc:
                if not self._connection.closed and not self._connection.broken:
                    raise BylineError(f"PostgreSQL at {self.where}: {_first_line(exc)}") from None
                logger.warning("lost the connection to PostgreSQL at %s; reconnecting", self.where)
            try:
                self._connection = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
            except psycopg.OperationalError:
                raise BylineError(f"lost the connection to PostgreSQL at {self.where}; try again in a "
                                  "moment") from None
            from pgvector.psycopg import register_vector

            register_vector(self._connection)
            try:
                return work(self._connection)
            except psycopg.OperationalError as exc:
                raise BylineError(f"PostgreSQL at {self.where}: {_first_line(exc)}") from None

    @contextmanager
    def advisory_lock(self, key: int, wait: bool, busy_message: str):
        """A session-level advisory lock: across every process on this database."""
        if wait:
            self.call(lambda c: c.execute("SELECT pg_advisory_lock(%s)", (key,)))
        elif not self.call(lambda c: c.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]):
            raise BylineError(busy_message)
        try:
            yield
        finally:
            with self._lock:
                if not self._connection.closed:
                    self._connection.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def close(self) -> None:
        self._connection.close()

"""A real PostgreSQL 16 with pgvector for the test run (the pgserver wheel; started once, ~1-4 s), and a
Byline pipeline on it holding the bundled corpus, copied from the session's local store by `byline store copy`."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest
from pg_support import postgres_config, run_byline

from retrieval.index.devserver import start_server, stop_server


@pytest.fixture(scope="session")
def postgres_server():
    # Not under pytest's temporary folder: running as root, pgserver runs the server as its own user, and
    # pytest resets its base folder to owner-only access when any pytest session starts.
    folder = Path(tempfile.mkdtemp(prefix="byline-test-postgres-")) / "db"
    url = start_server(folder)
    yield url
    stop_server(folder)
    shutil.rmtree(folder.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def new_database(postgres_server):
    """new_database() -> the URL of a new, empty database on the test server."""

    def create() -> str:
        name = f"byline_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(postgres_server, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return postgres_server.replace("/postgres?", f"/{name}?")

    return create


@pytest.fixture(scope="session")
def corpus_database(real_pipeline, test_config, new_database):
    """A database holding the bundled corpus, copied (vectors and all) from the session's local store."""
    url = new_database()
    done = run_byline("store", "copy", "--to", "postgres", "--url", url, config=test_config)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"it now holds {len(real_pipeline.doc_ids())} articles")
    return url


@pytest.fixture(scope="session")
def pg_pipeline(corpus_database, test_config, tmp_path_factory):
    from retrieval.pipeline import BylinePipeline

    return BylinePipeline(postgres_config(test_config, corpus_database, tmp_path_factory.mktemp("pg-data")))

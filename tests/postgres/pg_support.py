"""Helpers for the Postgres tests (not fixtures)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

from retrieval.config import REPO_ROOT

BYLINE = [sys.executable, "-m", "bot.cli"]


def postgres_config(config: dict, url: str, data_dir: Path) -> dict:
    return {**config, "data_dir": str(data_dir), "store": {**config["store"], "backend": "postgres", "url": url}}


def run_byline(*args, config: dict, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """The byline command on `config`'s data dir and store."""
    store = config["store"]
    settings = ["--set", "store.backend=postgres", "--set", f"store.url={store['url']}"] \
        if store["backend"] == "postgres" else []
    return subprocess.run([*BYLINE, "--data-dir", config["data_dir"], *settings, *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO_ROOT, **kwargs)


def snapshot(url: str) -> dict:
    """Everything stored, as plain data: articles, chunk ids and their copies, sentences."""
    with psycopg.connect(url) as connection:
        return {
            "articles": connection.execute("SELECT doc_id, fingerprint, text FROM byline_articles ORDER BY 1").fetchall(),
            "chunks": connection.execute("SELECT id, content, meta->>'duplicate_of' FROM byline_chunks ORDER BY 1").fetchall(),
            "sentences": connection.execute("SELECT doc_id, position, start_char, end_char FROM byline_sentences "
                                            "ORDER BY 1, 2").fetchall()}

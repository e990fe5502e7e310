"""`byline db start | stop | status`: a local PostgreSQL 16 with pgvector, from the pgserver wheel.

For development and tests. It listens on a Unix socket in (or near) its folder; the URL is printed
on the last line. Production uses any PostgreSQL >= 15 with pgvector (README, Scale-out).
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from pathlib import Path

from retrieval.errors import BylineError


def _pgserver():
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (it falls back to /tmp)
        warnings.simplefilter("ignore")
        import pgserver
        import pgserver.utils
    return pgserver


def _info(folder: Path):
    PostmasterInfo = _pgserver().utils.PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(folder) if (folder / "postmaster.pid").exists() else None
    return info if info is not None and info.is_running() else None


def start_server(folder: Path) -> str:
    """Start (or find running) the server whose data lives in `folder`; its URL."""
    pgserver = _pgserver()

    folder = Path(folder).resolve()
    if (info := _info(folder)) is not None:
        return info.get_uri()
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = pgserver.get_server(folder, cleanup_mode=None)  # keeps running after this process
    except Exception as exc:  # pgserver raises plain errors (initdb, pg_ctl); the log says why
        log = folder / "log"
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        raise BylineError(f"could not start PostgreSQL in {folder}: {exc}{' — ' + tail[0] if tail else ''}") from None
    return server.get_uri()


def stop_server(folder: Path, timeout: float = 30) -> bool:
    """Fast shutdown (SIGINT: open sessions are ended); False if it was not running."""
    info = _info(Path(folder).resolve())
    if info is None:
        return False
    os.kill(info.pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and info.process.is_running() and info.process.status() != "zombie":
        time.sleep(0.1)
    return True


def server_url(folder: Path) -> str | None:
    info = _info(Path(folder).resolve())
    return info.get_uri() if info else None

"""Progress bars for Byline's long commands (tqdm), shown only to a person at a terminal.

A bar is drawn on stderr when stdout and stderr are both terminals and `--quiet` was not given;
otherwise every call here does nothing, so piped output and logs stay clean.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

_quiet = False


def set_quiet(quiet: bool) -> None:
    """`byline --quiet`: no bars anywhere in this process."""
    global _quiet
    _quiet = quiet


def bars_enabled() -> bool:
    return not _quiet and sys.stdout.isatty() and sys.stderr.isatty()


def progress_bar(total: float, desc: str, unit: str) -> tqdm:
    """A bar of `total` `unit`s; a disabled one (updates are no-ops) when bars are off."""
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not bars_enabled(),
                dynamic_ncols=True, leave=False, smoothing=0.1)


class IngestProgress:
    """The ingest bar: articles, chunks/s and ETA.

    First it counts articles through sentence splitting; then, while the encoder works through
    length-sorted batches that mix all the articles, it advances by the share of tokens encoded
    (`tokens_done / tokens_total` of the articles and of their chunks).
    """

    def __init__(self, desc: str = "ingest", enabled: bool | None = None) -> None:
        self.desc = desc
        self.enabled = bars_enabled() if enabled is None else enabled
        self.bar: tqdm | None = None
        self.articles = self.chunks = 0
        self.started = time.perf_counter()

    def _new_bar(self, total: int, desc: str, postfix: str = "") -> None:
        self.close()
        self.bar = tqdm(total=total, desc=desc, file=sys.stderr, disable=not self.enabled or not total,
                        dynamic_ncols=True, leave=False, postfix=postfix or None,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total_fmt} articles "
                                   "[{elapsed}<{remaining}{postfix}]")

    def splitting(self, articles: int) -> None:
        self._new_bar(articles, f"{self.desc} (sentences)")

    def split_one(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def encoding(self, articles: int, chunks: int) -> None:
        self.articles, self.chunks = articles, chunks
        self.started = time.perf_counter()
        self._new_bar(articles, self.desc, f"{chunks} chunks")

    def encoded(self, tokens_done: int, tokens_total: int) -> None:
        if self.bar is None or self.bar.disable or not tokens_total:
            return
        share = tokens_done / tokens_total
        self.bar.update(share * self.articles - self.bar.n)
        elapsed = max(time.perf_counter() - self.started, 1e-6)
        self.bar.set_postfix_str(f"{share * self.chunks / elapsed:.1f} chunks/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

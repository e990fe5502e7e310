"""`byline watch`: poll feeds and ingest only their new or changed items.

Each feed's ETag and Last-Modified, and a digest of each item as the feed last showed it, are
kept in `<data_dir>/feeds.json`. A poll sends them as a conditional request; a 304 (or a feed
whose items are all as they were) writes nothing. Items that were refused are not remembered,
so the next poll tries them again.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from retrieval.errors import BylineError
from retrieval.index.base import IngestReport
from retrieval.ingest.feeds import feed_articles, item_doc_id, parse_feed
from retrieval.ingest.loaders import read_file
from retrieval.ingest.web import Fetcher, check_scheme, is_url

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(text: str) -> float:
    """Seconds in "90", "30s", "15m", "1h", "1d"."""
    match = DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise BylineError(f"'{text}' is not a duration; use e.g. 30s, 15m or 1h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


@dataclass
class PollResult:
    feed: str
    not_modified: bool = False
    new_items: int = 0
    report: IngestReport = field(default_factory=IngestReport)


class FeedWatcher:
    """Polls feeds (URLs or files) into `pipeline`; remembers what it saw in `state_path`."""

    def __init__(self, pipeline, fetcher: Fetcher, state_path: Path, max_bytes: int) -> None:
        self.pipeline = pipeline
        self.fetcher = fetcher
        self.state_path = Path(state_path)
        self.max_bytes = max_bytes

    def load_state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise BylineError(f"{self.state_path}: unreadable feed state ({exc}); delete it to start afresh") from exc

    def save_state(self, state: dict) -> None:
        temporary = self.state_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(state, indent=1, sort_keys=True, ensure_ascii=False), encoding="utf-8")
        os.replace(temporary, self.state_path)

    def poll(self, source: str, progress=None) -> PollResult:
        """One poll of one feed. A feed that cannot be fetched or parsed raises (one line naming it)."""
        state = self.load_state()
        known = state.get(source, {})
        result = PollResult(source)
        if is_url(source):
            check_scheme(source)
            fetched = self.fetcher.get(source, etag=known.get("etag"), last_modified=known.get("last_modified"))
            if fetched.not_modified:
                result.not_modified = True
                return result
            feed = parse_feed(fetched.content, source, fetched.content_type)
            validators = {"etag": fetched.etag, "last_modified": fetched.last_modified}
        else:
            feed = parse_feed(read_file(Path(source), self.max_bytes), source)
            validators = {"etag": None, "last_modified": None}
        seen = known.get("items", {})
        changed = [item for item in feed.items if seen.get(item.key) != item.digest]
        result.new_items = len(changed)
        articles, refused = feed_articles(feed, changed, self.fetcher)
        if articles:
            result.report = self.pipeline.ingest_articles(articles, progress=progress)
        result.report.refused = refused
        ingested = {article.doc_id for article in articles}
        changed_keys = {item.key for item in changed}
        # what the feed shows now, less the refused items (so that the next poll tries them again)
        items = {item.key: item.digest for item in feed.items
                 if (item.key in seen if item.key not in changed_keys else item_doc_id(item, feed) in ingested)}
        if refused:  # no validators: a 304 next time would hide the refused items
            validators = {"etag": None, "last_modified": None}
        updated = {**validators, "items": items}
        if updated != known:
            state[source] = updated
            self.save_state(state)
        return result

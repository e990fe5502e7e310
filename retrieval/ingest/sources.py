"""Where articles come from: files and folders, web pages (URLs), and RSS/Atom feeds (files or URLs).

Sources named by the user are all-or-nothing: a bad file, an unreachable or refused URL, or a
feed that does not parse stops the whole load with one line naming it, before anything is
indexed. A feed's items stand on their own: an item that cannot be made into an article is
refused with one line, and the feed's other items still load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from retrieval.ingest.feeds import (FEED_EXTENSIONS, feed_articles, looks_like_feed, page_article, parse_feed)
from retrieval.ingest.loaders import Article, check_unique_ids, load_paths, read_file
from retrieval.ingest.web import Fetched, Fetcher, check_scheme, is_url, url_doc_id


@dataclass
class LoadedSources:
    articles: list[Article] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # one line per feed item refused on its own

    def extend(self, articles: list[Article], refused: list[str]) -> None:
        self.articles.extend(articles)
        self.refused.extend(refused)


def load_sources(sources: list, max_bytes: int, fetcher: Fetcher) -> LoadedSources:
    """Every article in `sources`: paths to files or folders, feed files, http(s) URLs of pages or feeds."""
    loaded = LoadedSources()
    texts = [str(source) for source in sources]
    urls = [text for text in texts if is_url(text)]
    for url in urls:
        check_scheme(url)  # file:, ftp: ... refused before anything is fetched
    feeds = [Path(text) for text in texts if not is_url(text) and Path(text).suffix.lower() in FEED_EXTENSIONS]
    paths = [Path(text) for text in texts if not is_url(text) and Path(text) not in feeds]
    if paths:
        loaded.articles.extend(load_paths(paths, max_bytes))
    for path in feeds:
        feed = parse_feed(read_file(path, max_bytes), str(path))
        loaded.extend(*feed_articles(feed, feed.items, fetcher))
    for url in urls:
        loaded.extend(*fetched_articles(fetcher.get(url), fetcher))
    check_unique_ids(loaded.articles)
    return loaded


def fetched_articles(fetched: Fetched, fetcher: Fetcher) -> tuple[list[Article], list[str]]:
    """A fetched feed's items, or a fetched page as one article."""
    if looks_like_feed(fetched.content, fetched.content_type):
        feed = parse_feed(fetched.content, fetched.url, fetched.content_type)
        return feed_articles(feed, feed.items, fetcher)
    return [page_article(fetched, url_doc_id(fetched.url))], []

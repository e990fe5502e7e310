"""RSS and Atom feeds (feedparser) and web pages, as articles.

A feed item becomes one article: its title, its date, its link as the URL, and its text from
the item's own content or, when the feed carries none, from fetching the link and extracting
the page as for an .html file. An item that cannot be made into an article is refused on its
own, with one line naming the feed and the item; the other items still count.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from dataclasses import dataclass

from retrieval.errors import BylineError
from retrieval.ingest.loaders import build_article, decode_text, html_article, plain_article
from retrieval.ingest.web import Fetched, Fetcher, check_scheme, url_doc_id
from retrieval.progress import progress_bar

FEED_EXTENSIONS = (".rss", ".atom", ".xml")
FEED_MEDIA_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/xml",
                    "text/xml", "application/feed+xml")
HTML_MEDIA_TYPES = ("text/html", "application/xhtml+xml")
FEED_START = re.compile(rb"\A(\xef\xbb\xbf)?\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(rss|feed|rdf:RDF)\b", re.DOTALL)


@dataclass
class FeedItem:
    key: str  # what identifies the item across polls: its guid, else its link
    title: str | None
    link: str | None
    published: str | None
    content: str | None  # the item's full content (content:encoded, Atom content), HTML or text
    summary: str | None  # RSS description / Atom summary
    digest: str  # changes when the item as the feed shows it changes
    number: int  # position in the feed, from 1

    def where(self, feed: "Feed") -> str:
        label = f"'{self.title}'" if self.title else (self.link or f"#{self.number}")
        return f"{feed.source}: item {self.number} ({label})"


@dataclass
class Feed:
    source: str  # the URL or path it came from
    title: str | None
    items: list[FeedItem]


def looks_like_feed(data: bytes, media_type: str = "") -> bool:
    """A feed (or XML that must be one to be ingested) by its media type, else by its root element."""
    return media_type in FEED_MEDIA_TYPES or bool(FEED_START.match(data[:4096]))


def parse_feed(data: bytes, source: str, media_type: str | None = None) -> Feed:
    """The items of an RSS or Atom document; one line naming `source` if it is not one."""
    import feedparser

    headers = {"content-location": source}
    if media_type:
        headers["content-type"] = media_type
    # a stream, never the bytes themselves: feedparser opens a string that looks like a path or URL
    parsed = feedparser.parse(io.BytesIO(data), response_headers=headers)
    if not parsed.get("version") or (parsed.get("bozo") and not parsed.entries):
        reason = parsed.get("bozo_exception")
        detail = f" ({_first_line(reason)})" if reason else ""
        raise BylineError(f"{source}: not an RSS or Atom feed{detail}")
    title = (parsed.feed.get("title") or "").strip() or None
    return Feed(source, title, [_item(entry, number) for number, entry in enumerate(parsed.entries, start=1)])


def _item(entry, number: int) -> FeedItem:
    contents = [c for c in entry.get("content") or [] if (c.get("value") or "").strip()]
    content = contents[0]["value"] if contents else None
    summary = (entry.get("summary") or "").strip() or None
    link = (entry.get("link") or "").strip() or None
    title = (entry.get("title") or "").strip() or None
    # dict.get: feedparser's own get() maps "updated" to "published" with a deprecation warning
    parsed_date = dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")
    published = time.strftime("%Y-%m-%d", parsed_date) if parsed_date else None
    shown = [title, link, published, dict.get(entry, "updated"), content, summary]
    digest = hashlib.sha256(json.dumps(shown, ensure_ascii=False).encode()).hexdigest()[:16]
    key = (entry.get("id") or "").strip() or link or f"digest:{digest}"
    return FeedItem(key, title, link, published, content, summary, digest, number)


def item_doc_id(item: FeedItem, feed: Feed) -> str:
    """The link's id (so the same story added by its link is the same article), else the guid's."""
    if item.link:
        return url_doc_id(item.link)
    return f"{url_doc_id(feed.source)}-{hashlib.sha1(item.key.encode()).hexdigest()[:8]}"


def fragment_text(fragment: str) -> str:
    """The text of an HTML fragment (a feed item's content), paragraph by paragraph."""
    import lxml.html
    import trafilatura

    if "<" not in fragment:
        return fragment
    text = trafilatura.extract(f"<html><body><article>{fragment}</article></body></html>", favor_recall=True)
    if text and text.strip():
        return text
    return lxml.html.fromstring(f"<div>{fragment}</div>").text_content()


def feed_articles(feed: Feed, items: list[FeedItem], fetcher: Fetcher) -> tuple[list, list[str]]:
    """(articles, one refusal line per item that could not become one) for `items` of `feed`."""
    articles, refused, seen = [], [], set()
    fetches = sum(1 for item in items if not item.content and item.link)
    with progress_bar(fetches, f"fetching {feed.title or feed.source}", "page") as bar:
        for item in items:
            if item_doc_id(item, feed) in seen:
                continue  # the same story listed twice
            seen.add(item_doc_id(item, feed))
            try:
                articles.append(item_article(item, feed, fetcher, on_fetch=bar.update))
            except BylineError as exc:
                refused.append(str(exc))
    return articles, refused


def item_article(item: FeedItem, feed: Feed, fetcher: Fetcher, on_fetch=None):
    where = item.where(feed)
    doc_id = item_doc_id(item, feed)
    meta = {"title": item.title, "published": item.published, "url": item.link, "publisher": feed.title}
    if item.content:
        return build_article(doc_id, fragment_text(item.content), meta, where)
    if item.link:
        try:
            check_scheme(item.link)
            page = page_article(fetcher.get(item.link), doc_id)
        except BylineError as exc:
            raise BylineError(f"{where}: {exc}") from None
        finally:
            if on_fetch:
                on_fetch(1)
        page.title = item.title or page.title
        page.published = item.published or page.published
        page.publisher = page.publisher or feed.title
        page.source_path = where
        return page
    if item.summary:
        return build_article(doc_id, fragment_text(item.summary), meta, where)
    raise BylineError(f"{where}: the item has no link and no content")


def page_article(fetched: Fetched, doc_id: str):
    """A fetched page as an article: HTML by trafilatura (as for .html files), or plain text."""
    where = fetched.url
    if not fetched.content.strip():
        raise BylineError(f"{where}: the page is empty")
    if fetched.content_type in HTML_MEDIA_TYPES:
        if b"\x00" in fetched.content[:8192]:
            raise BylineError(f"{where}: looks like a binary file, not a page")
        # with no declared charset, trafilatura finds it in the page (meta charset) or guesses
        html = decode_text(fetched.content, where, fetched.charset) if fetched.charset else fetched.content
        return html_article(html, doc_id, where, url=fetched.url)
    if fetched.content_type.startswith("text/"):
        text = decode_text(fetched.content, where, fetched.charset)
        return plain_article(text, doc_id, where, markdown=fetched.content_type == "text/markdown",
                             url=fetched.url)
    raise BylineError(f"{where}: cannot ingest '{fetched.content_type}' content; "
                      "Byline takes web pages, text, and RSS or Atom feeds")


def _first_line(exc) -> str:
    return str(exc).strip().splitlines()[0][:120] if str(exc).strip() else exc.__class__.__name__

"""Read article files (.txt, .md, .html, .jsonl) into cleaned `Article`s with metadata.

Every check that can refuse a file runs here, before the index is touched, so a bad file
fails the whole ingest with one clear line and leaves the index as it was.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from retrieval.errors import BylineError
from retrieval.ingest.cleaning import clean_article, parse_date

SUPPORTED_EXTENSIONS = (".txt", ".md", ".markdown", ".html", ".htm", ".jsonl")
FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
MARKDOWN_MARKUP = re.compile(r"^\s{0,3}(#{1,6}\s+|>\s?|[-*+]\s+)|(\*\*|__|`)", re.MULTILINE)


@dataclass
class Article:
    doc_id: str
    text: str  # cleaned story text; every offset Byline reports points into it
    title: str
    publisher: str | None = None
    published: str | None = None
    url: str | None = None
    source_path: str | None = None
    extra: dict = field(default_factory=dict)

    def metadata(self) -> dict:
        return {"doc_id": self.doc_id, "title": self.title, "publisher": self.publisher,
                "published": self.published, "url": self.url}


def check_type(suffix: str, where: str) -> None:
    if suffix not in SUPPORTED_EXTENSIONS:
        raise BylineError(f"{where}: unsupported file type '{suffix or '(none)'}'; "
                          f"use one of {', '.join(SUPPORTED_EXTENSIONS)}")


def check_size(size: int, max_bytes: int, where: str) -> None:
    if size == 0:
        raise BylineError(f"{where}: the file is empty")
    if size > max_bytes:
        raise BylineError(f"{where}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit for one file")


def decode_text(data: bytes, where: str, charset: str | None = None) -> str:
    """`data` as text: UTF-8 (or a declared `charset`), not binary, not blank."""
    if b"\x00" in data[:8192]:
        raise BylineError(f"{where}: looks like a binary file, not text")
    try:
        text = data.decode(charset or "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BylineError(f"{where}: not {charset or 'UTF-8'} text (invalid byte at position {exc.start})") from exc
    except LookupError:
        raise BylineError(f"{where}: unknown character set '{charset}'") from None
    if not text.strip():
        raise BylineError(f"{where}: the file has no text")
    return text


def _normalise_date(value) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    return parse_date(text[:10]) or parse_date(text) or text


def build_article(doc_id: str, raw_text: str, meta: dict, where: str) -> Article:
    cleaned = clean_article(raw_text)
    if not cleaned.text.strip():
        raise BylineError(f"{where}: no article text left after removing page chrome")
    title = meta.get("title") or cleaned.title or doc_id
    return Article(doc_id=doc_id, text=cleaned.text, title=str(title),
                   publisher=meta.get("publisher") or None,
                   published=_normalise_date(meta.get("published") or meta.get("date")) or cleaned.published,
                   url=meta.get("url") or None, source_path=where)


def _split_front_matter(text: str, where: str) -> tuple[dict, str]:
    match = FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise BylineError(f"{where}: malformed front matter ({exc.__class__.__name__})") from exc
    if not isinstance(meta, dict):
        raise BylineError(f"{where}: front matter must be key: value pairs")
    return meta, text[match.end():]


def plain_article(text: str, doc_id: str, where: str, markdown: bool, url: str | None = None) -> Article:
    meta, body = _split_front_matter(text, where)
    if markdown:
        body = MARKDOWN_MARKUP.sub(lambda m: "" if m.group(1) or m.group(2) else m.group(0),
                                   MARKDOWN_LINK.sub(r"\1", body))
    return build_article(str(meta.get("id") or doc_id), body, {"url": url, **meta}, where)


def html_article(html: str | bytes, doc_id: str, where: str, url: str | None = None) -> Article:
    """The main text and metadata of a page, by trafilatura; `url` overrides the page's own."""
    import trafilatura

    extracted = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                            include_tables=False, favor_precision=True)
    if extracted is None or not (extracted.text or "").strip():
        raise BylineError(f"{where}: no article text found in the HTML")
    meta = {"title": extracted.title, "publisher": extracted.sitename, "published": extracted.date,
            "url": url or extracted.url}
    return build_article(doc_id, extracted.text, meta, where)


def jsonl_articles(text: str, stem: str, where_file: str) -> list[Article]:
    articles = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{where_file}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BylineError(f"{where}: malformed JSON line ({exc.msg})") from exc
        if not isinstance(record, dict) or not isinstance(record.get("text"), str) or not record["text"].strip():
            raise BylineError(f"{where}: each line needs a non-empty \"text\" field")
        doc_id = str(record.get("id") or f"{stem}-{number}")
        articles.append(build_article(doc_id, record["text"], record, where))
    if not articles:
        raise BylineError(f"{where_file}: no articles in the file")
    return articles


def load_document(data: bytes, name: str, where: str, max_bytes: int, url: str | None = None) -> list[Article]:
    """The articles in one file's bytes, by the extension of `name` (a file, a download, an upload)."""
    suffix = Path(name).suffix.lower()
    check_type(suffix, where)
    check_size(len(data), max_bytes, where)
    text = decode_text(data, where)
    stem = Path(name).stem
    if suffix in (".html", ".htm"):
        return [html_article(text, stem, where, url)]
    if suffix == ".jsonl":
        return jsonl_articles(text, stem, where)
    return [plain_article(text, stem, where, markdown=suffix in (".md", ".markdown"), url=url)]


def read_file(path: Path, max_bytes: int) -> bytes:
    """A file's bytes, once its size is known to be within `max_bytes` (and not zero)."""
    try:
        check_size(path.stat().st_size, max_bytes, str(path))
        return path.read_bytes()
    except OSError as exc:
        raise BylineError(f"{path}: cannot read ({exc.strerror})") from exc


def load_file(path: Path, max_bytes: int) -> list[Article]:
    check_type(path.suffix.lower(), str(path))
    return load_document(read_file(path, max_bytes), path.name, str(path), max_bytes)


def load_paths(paths: list[Path], max_bytes: int) -> list[Article]:
    """Every article under `paths` (files, or folders searched for supported files)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS))
        elif path.exists():
            files.append(path)
        else:
            raise BylineError(f"{path}: no such file or folder")
    if not files:
        raise BylineError(f"no article files found in {', '.join(map(str, paths))}")
    return check_unique_ids([article for file in files for article in load_file(file, max_bytes)])


def check_unique_ids(articles: list[Article]) -> list[Article]:
    seen: dict[str, str] = {}
    for article in articles:
        if article.doc_id in seen:
            raise BylineError(f"two articles share the id '{article.doc_id}': {seen[article.doc_id]} and {article.source_path}")
        seen[article.doc_id] = article.source_path or ""
    return articles

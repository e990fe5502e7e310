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


def _read_text(path: Path, max_bytes: int) -> str:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BylineError(f"{path}: cannot read ({exc.strerror})") from exc
    if size == 0:
        raise BylineError(f"{path}: the file is empty")
    if size > max_bytes:
        raise BylineError(f"{path}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit for one file")
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise BylineError(f"{path}: looks like a binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BylineError(f"{path}: not UTF-8 text (invalid byte at position {exc.start})") from exc
    if not text.strip():
        raise BylineError(f"{path}: the file has no text")
    return text


def _normalise_date(value) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    return parse_date(text[:10]) or parse_date(text) or text


def _build(doc_id: str, raw_text: str, meta: dict, where: str) -> Article:
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


def _load_plain(path: Path, max_bytes: int, markdown: bool) -> list[Article]:
    meta, body = _split_front_matter(_read_text(path, max_bytes), str(path))
    if markdown:
        body = MARKDOWN_MARKUP.sub(lambda m: "" if m.group(1) or m.group(2) else m.group(0),
                                   MARKDOWN_LINK.sub(r"\1", body))
    return [_build(str(meta.get("id") or path.stem), body, meta, str(path))]


def _load_html(path: Path, max_bytes: int) -> list[Article]:
    import trafilatura

    html = _read_text(path, max_bytes)
    extracted = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False,
                                            include_tables=False, favor_precision=True)
    if extracted is None or not (extracted.text or "").strip():
        raise BylineError(f"{path}: no article text found in the HTML")
    meta = {"title": extracted.title, "publisher": extracted.sitename, "published": extracted.date,
            "url": extracted.url}
    return [_build(path.stem, extracted.text, meta, str(path))]


def _load_jsonl(path: Path, max_bytes: int) -> list[Article]:
    articles = []
    for number, line in enumerate(_read_text(path, max_bytes).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BylineError(f"{where}: malformed JSON line ({exc.msg})") from exc
        if not isinstance(record, dict) or not isinstance(record.get("text"), str) or not record["text"].strip():
            raise BylineError(f"{where}: each line needs a non-empty \"text\" field")
        doc_id = str(record.get("id") or f"{path.stem}-{number}")
        articles.append(_build(doc_id, record["text"], record, where))
    if not articles:
        raise BylineError(f"{path}: no articles in the file")
    return articles


def load_file(path: Path, max_bytes: int) -> list[Article]:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise BylineError(f"{path}: unsupported file type '{suffix or '(none)'}'; "
                          f"use one of {', '.join(SUPPORTED_EXTENSIONS)}")
    if suffix in (".html", ".htm"):
        return _load_html(path, max_bytes)
    if suffix == ".jsonl":
        return _load_jsonl(path, max_bytes)
    return _load_plain(path, max_bytes, markdown=suffix in (".md", ".markdown"))


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
    articles = [article for file in files for article in load_file(file, max_bytes)]
    seen: dict[str, str] = {}
    for article in articles:
        if article.doc_id in seen:
            raise BylineError(f"two articles share the id '{article.doc_id}': {seen[article.doc_id]} and {article.source_path}")
        seen[article.doc_id] = article.source_path or ""
    return articles

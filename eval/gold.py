"""The gold question set: loading, schema checks, and checks against the articles' cleaned text.

One JSON object a line: {"id", "question", "answers": [...], "sources": [doc_id...], "tags": [...]}.
Empty `answers` marks an unanswerable question, whose `sources` must be empty too. Every answer
must occur verbatim in the cleaned body text of each of its sources.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

REQUIRED_TAGS = ("single", "multi", "paraphrase", "date", "number", "list", "chrome", "unanswerable")


class GoldError(ValueError):
    """A gold file that cannot be evaluated; the message names the line, item or doc id."""


@dataclass(frozen=True)
class GoldItem:
    id: str
    question: str
    answers: tuple[str, ...]
    sources: tuple[str, ...]
    tags: tuple[str, ...]

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def _string_list(record: dict, key: str, where: str) -> tuple[str, ...]:
    value = record.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise GoldError(f"{where}: '{key}' must be a list of non-empty strings")
    return tuple(value)


def parse_gold(lines: Iterable[str], name: str = "gold") -> list[GoldItem]:
    items: list[GoldItem] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise GoldError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise GoldError(f"{where}: expected a JSON object")
        for key in ("id", "question"):
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise GoldError(f"{where}: '{key}' must be a non-empty string")
        item = GoldItem(record["id"], record["question"], *(_string_list(record, key, where)
                                                            for key in ("answers", "sources", "tags")))
        if item.id in seen:
            raise GoldError(f"{where}: duplicate id {item.id!r}")
        if item.answerable != bool(item.sources):
            raise GoldError(f"{where}: item {item.id!r} must have sources iff it has answers")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise GoldError(f"{name}: no questions")
    return items


def load_gold(path: str | Path) -> list[GoldItem]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GoldError(f"cannot read gold file {path}: {exc}") from None
    return parse_gold(text.splitlines(), name=str(path))


def check_against_articles(items: Iterable[GoldItem], article_texts: Mapping[str, str]) -> None:
    """Raise GoldError for a source the corpus lacks, or an answer missing from a source's text."""
    for item in items:
        for doc_id in item.sources:
            if doc_id not in article_texts:
                raise GoldError(f"gold item {item.id!r}: unknown doc id {doc_id!r} in sources")
            for answer in item.answers:
                if answer not in article_texts[doc_id]:
                    raise GoldError(f"gold item {item.id!r}: answer {answer!r} does not occur "
                                    f"in the cleaned text of {doc_id}")

"""Strip page chrome from scraped article text and pull out what the page says about itself.

Scraped pages arrive as lines: headline, dek, navigation, share links, photo credits, the
story, then newsletter offers and unrelated headlines. The story is kept; chrome is dropped;
a date line and the headline become metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

# A line equal to one of these (case-insensitive, punctuation-trimmed) is chrome.
CHROME_LINES = {
    "skip to main content", "share this story", "share this article", "share", "read more",
    "manage subscription", "advertisement", "related", "related articles", "most popular",
    "sign up", "subscribe", "open wechat and scan the qr code",
}
# A line starting with one of these is chrome.
CHROME_PREFIXES = (
    "photo by ", "photo: ", "image: ", "image credit", "credit: ", "illustration by ",
    "download our app", "get our ", "sign up for ", "subscribe to ", "you've accessed an article",
    "we ‘ve added you", "we've added you", "contact reporter", "contact editor", "follow us on",
)
# Once one of these starts a line, the rest of the page is footer: offers and other stories.
FOOTER_PREFIXES = ("download our app", "get our weekly", "you've accessed an article available only")
# A caption ends with a credit: "... Photo: VCG".
CAPTION_CREDIT = re.compile(r"(Photo|Image|Credit|Illustration)\s*:\s*[^.]{1,60}\.?$")
# "Andrew is half-human, half-gamer." / "Jonathan Keane is a freelance ... journalist"
AUTHOR_BIO = re.compile(
    r"^[A-Z][\w'’-]+(?: [A-Z][\w'’-]+)? is (?:a|an|half)\b.*\b(journalist|writer|author|reporter|editor|"
    r"correspondent|gamer|contributor)\b", re.IGNORECASE)

DATE_FORMATS = ("%B %d, %Y %I:%M %p", "%B %d, %Y", "%d %B %Y", "%b %d, %Y", "%Y-%m-%d")


@dataclass
class CleanedArticle:
    text: str
    title: str | None
    published: str | None


def parse_date(line: str) -> str | None:
    """An ISO date if the whole line is a date (and optionally a time)."""
    candidate = line.strip()
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(candidate, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def _key(line: str) -> str:
    return re.sub(r"[\s\W]+$", "", re.sub(r"^[\s\W]+", "", line)).lower()


def _is_chrome(line: str) -> bool:
    key = _key(line)
    lowered = line.strip().lower()
    return (key in CHROME_LINES or lowered.startswith(CHROME_PREFIXES)
            or bool(CAPTION_CREDIT.search(line.strip())) or bool(AUTHOR_BIO.match(line.strip())))


def _is_headline(line: str) -> bool:
    stripped = line.strip()
    return 0 < len(stripped.split()) <= 25 and not stripped.endswith((".", "”", '"', ":", "?", "!"))


def clean_article(raw: str) -> CleanedArticle:
    """Return the story text (paragraphs separated by blank lines), its headline and date."""
    lines = [line.strip() for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    title = published = None
    kept: list[str] = []
    seen: set[str] = set()
    skip_next_headline = False
    for line in lines:
        if not line:
            continue
        lowered = line.lower()
        if lowered.startswith(FOOTER_PREFIXES):
            break
        if published is None and not kept and (date := parse_date(line)):
            published = date
            continue
        if _key(line) == "read more":
            skip_next_headline = True  # the next line is a teaser headline for another story
            continue
        if skip_next_headline:
            skip_next_headline = False
            if _is_headline(line):
                continue
        if _is_chrome(line) or line in seen or line == title:
            continue
        seen.add(line)
        if title is None and not kept and _is_headline(line):
            title = line
            continue
        kept.append(line)
    # A trailing headline after the story is another story's teaser.
    while kept and _is_headline(kept[-1]) and len(kept) > 1 and not _is_headline(kept[-2]):
        kept.pop()
    return CleanedArticle(text="\n\n".join(kept), title=title, published=published)


def clean_article_text(raw: str) -> str:
    return clean_article(raw).text

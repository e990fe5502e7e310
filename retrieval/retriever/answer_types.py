"""The kind of answer a question asks for, by its wh-word, and whether a span looks like one.

Only three kinds are told apart, the ones a span's surface shows: a date or time ("when", "what
year"), a number ("how many", "how much") and a person or named thing ("who"). Other questions
take any span. An "Also possible" answer must fit; the lead answer is left to the reader
(a penalty on it measured +0.004 gold-set F1, nothing on the tuning set, and turned "judge" into
"Defense Department" for "Who blocked the Pentagon's designation of Xiaomi?").
"""

from __future__ import annotations

import functools
import itertools
import re

_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december|"
           r"(jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)(\.|(?= ?\d))")  # "Jun" alone is a name
_NUMBER_WORDS = ("one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
                 "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
                 "hundred|thousand|million|billion|trillion|dozen|half|third|quarter|twice|double|triple|"
                 "a few|several|multiple|percent|per cent")
_DATE_QUESTION = re.compile(r"^(in |by |since |until )?(when\b|what (year|date|day|month|century|decade|time)\b|"
                            r"which (year|date|day|month|century|decade)\b)")
_NUMBER_QUESTION = re.compile(r"^how (many|much|long|old|far|tall|large|big|high)\b|"
                              r"^what (percentage|percent|number|amount|share)\b")
_PERSON_QUESTION = re.compile(r"^who(m|se)?\b")
_DATE_SPAN = re.compile(rf"\d|\b({_MONTHS})\b|centur|decade|\byears?\b|\b(today|yesterday|week|spring|summer|"
                        r"autumn|fall|winter|morning|evening|night|monday|tuesday|wednesday|thursday|friday|"
                        r"saturday|sunday)\b")
_NUMBER_SPAN = re.compile(rf"\d|\b({_NUMBER_WORDS})s?\b")
_NAME_SPAN = re.compile(r"\b[A-Z][\w'’.-]")
_LEADING_WORD = re.compile(r"^(?:the|a|an|this|that|these|those|its|his|her|their)\s+", re.IGNORECASE)


def answer_kind(question: str) -> str | None:
    """"date", "number", "person" or None (any span will do)."""
    q = " ".join(question.lower().split())
    if _DATE_QUESTION.match(q):
        return "date"
    if _NUMBER_QUESTION.match(q):
        return "number"
    if _PERSON_QUESTION.match(q):
        return "person"
    return None


def fits(kind: str | None, span: str) -> bool:
    if kind == "date":
        return bool(_DATE_SPAN.search(span.lower()))
    if kind == "number":
        return bool(_NUMBER_SPAN.search(span.lower()))
    if kind == "person":  # "The judge" is no name: a determiner is capitalised where a sentence starts
        return bool(_NAME_SPAN.search(_LEADING_WORD.sub("", span.strip())))
    return True


_FOLLOWING_WORDS = re.compile(r"(?: [A-Za-z][\w-]*){1,3}")
_ASKED_KIND = re.compile(r"\b(?:which|what)((?: [a-z][\w-]*){1,3})")
_AUXILIARIES = {"is", "was", "are", "were", "did", "does", "do", "has", "had", "have", "can", "could", "will",
                "would", "should", "may", "might", "of", "in", "on", "to", "for", "from", "by", "with"}


@functools.lru_cache(maxsize=256)
def _asked_kind_words(question: str) -> tuple[str, ...]:
    """Up to three words after "which"/"what", stopping at an auxiliary or preposition: the kind asked for,
    and perhaps a verb ("Which stock exchange struggled …" -> stock, exchange, struggled), which is harmless
    since only capitalised words after a name are taken. Every span of a question asks it."""
    asked = _ASKED_KIND.search(" ".join(question.lower().replace("?", " ").split()))
    words = asked.group(1).split() if asked else []
    return tuple(itertools.takewhile(lambda word: word not in _AUXILIARIES, words))


def completed_name(question: str, text: str, start: int, end: int) -> int:
    """The end of a name answer taken on through the capitalised words after it that name the kind of
    thing the question asks for: "Which stock exchange …?" read as "New York" in "the New York Stock
    Exchange" -> "New York Stock Exchange". The model often stops at a name's distinctive part."""
    if start >= end or not text[end - 1:end].isalpha() or not text[text.rfind(" ", start, end) + 1].isupper():
        return end
    kind_words = _asked_kind_words(question)
    following = _FOLLOWING_WORDS.match(text, end)
    if not kind_words or not following:
        return end
    taken = position = end
    for word in following.group(0).split(" ")[1:]:
        position += 1 + len(word)
        if not word[0].isupper() or word.lower() not in kind_words:  # part of the name, not a verb after it
            break
        taken = position
    if taken > end and re.match(r" [A-Z]", text[taken:taken + 2]):
        return end  # the name goes on ("District" -> "District Judge" of "District Judge Rudolph Contreras")
    return taken

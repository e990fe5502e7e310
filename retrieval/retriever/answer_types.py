"""The kind of answer a question asks for, by its wh-word, and whether a span looks like one.

Only three kinds are told apart, the ones a span's surface shows: a date or time ("when", "what
year"), a number ("how many", "how much") and a person or named thing ("who"). Other questions
take any span. An "Also possible" answer must fit; the lead answer is left to the reader
(a penalty on it measured +0.004 gold-set F1, nothing on the tuning set, and turned "judge" into
"Defense Department" for "Who blocked the Pentagon's designation of Xiaomi?").
"""

from __future__ import annotations

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
    if kind == "person":
        return bool(_NAME_SPAN.search(span))
    return True

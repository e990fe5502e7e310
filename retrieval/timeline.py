"""Time-aware answers: the step after `assemble`, when stories move.

- With a date limit (`byline ask --as-of`), an answer keeps only citations of articles published on
  or before it (retrieval already read only those; this drops corroborating citations found later).
- When the answers above the no-answer threshold come from articles of different dates and differ,
  and are about the same story, the answer of the newest article leads and the answers only older
  articles give are kept apart as `earlier` (rendered "Earlier (DATE, PUBLISHER): …"), never merged
  into the lead. Same story: every name in the question ("Lumen Bank", "Marcus Webb") occurs in an
  article giving each answer; a question naming nothing keeps the reader's order, as does one whose
  best answer comes from articles that do not name all of it (another story that merely matched).
- When they agree (one answer, however many articles), the renderings say how many articles and over
  what dates (`retrieval.answer.sources_phrase`).

An answer's date is the newest date among the articles that give it: an answer an older article gave
and a newer one repeats is still current. Undated articles count as older than any dated one.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import date

from haystack import component

from retrieval.answer import Answer, AnswerResult
from retrieval.conversation import names_in
from retrieval.errors import BylineError
from retrieval.retriever.components import normalize_answer

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def check_date(text: str) -> str:
    """`text` as an ISO date, or a BylineError naming the expected format."""
    if ISO_DATE.fullmatch(text.strip()):
        try:
            return date.fromisoformat(text.strip()).isoformat()
        except ValueError:  # 2021-02-30
            pass
    raise BylineError(f"the date must be YYYY-MM-DD (e.g. 2021-05-26), not '{text}'")


def answer_date(answer: Answer) -> str:
    return max((c.published for c in answer.citations if c.published), default="")


def same_answer(a: Answer, b: Answer) -> bool:
    """Equal, or one inside the other ("Peter Varga" and "Varga"): not a change in the story."""
    x, y = normalize_answer(a.text), normalize_answer(b.text)
    return x in y or y in x


def within_date(result: AnswerResult, last_date: str) -> AnswerResult:
    """`result` citing only articles published on or before `last_date` (undated ones are left out)."""
    def kept(citations):
        return [c for c in citations if c.published and ISO_DATE.match(c.published) and c.published <= last_date]

    answers = [dataclasses.replace(a, citations=kept(a.citations)) for a in result.answers]
    answers = [a for a in answers if a.citations]
    return dataclasses.replace(result, answers=answers, no_answer=not answers, closest=kept(result.closest),
                               published_on_or_before=last_date)


def newest_first(result: AnswerResult, on_story) -> AnswerResult:
    """The newest article's answer leads; differing answers that only older articles give become
    `earlier` (one per answer: "Olsen" is not repeated after "Maria Olsen"). Only answers `on_story`
    (from articles about the question's subject) take part, and only when the best answer is one."""
    story = [a for a in result.answers if on_story(a)]
    if len(story) < 2 or story[0] is not result.answers[0]:
        return result
    newest = max(answer_date(a) for a in story)
    lead = next(a for a in story if answer_date(a) == newest)  # the best-scored of the newest
    earlier: list[Answer] = []
    for answer in story:
        if answer_date(answer) < newest and not any(same_answer(answer, kept) for kept in [lead, *earlier]):
            earlier.append(answer)
    if not earlier:
        return result
    older = [a for a in story if answer_date(a) < newest]
    others = [a for a in result.answers if a is not lead and not any(a is o for o in older)]
    earlier.sort(key=answer_date, reverse=True)
    return dataclasses.replace(result, answers=[lead, *others], earlier=earlier)


@component
class TimeAwareAnswers:
    """Orders the assembled answers by their articles' dates (see the module docstring)."""

    def __init__(self, store) -> None:
        self.store = store

    @component.output_types(result=AnswerResult)
    def run(self, result: AnswerResult, question: str, published_on_or_before: str | None = None) -> dict:
        if published_on_or_before:
            result = within_date(result, published_on_or_before)
        names = [n.lower() for n in names_in(question)]

        def on_story(answer: Answer) -> bool:
            return bool(names) and any(all(n in self.store.article_text(c.doc_id).lower() for n in names)
                                       for c in answer.citations)

        return {"result": newest_first(result, on_story)}

"""The answer type every front end renders: the CLI's JSON and text, the terminal chat, Slack."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Citation:
    doc_id: str
    title: str
    publisher: str | None
    published: str | None  # ISO date, YYYY-MM-DD
    url: str | None
    snippet: str  # the sentence(s) around the answer span
    answer_start: int  # span offsets in `snippet`; snippet[answer_start:answer_end] == answer text
    answer_end: int
    article_start: int  # span offsets in the cleaned article text
    article_end: int

    @property
    def span_text(self) -> str:
        return self.snippet[self.answer_start:self.answer_end]


@dataclass
class Answer:
    text: str
    score: float
    citations: list[Citation] = field(default_factory=list)

    @property
    def articles(self) -> list[str]:
        return list(dict.fromkeys(c.doc_id for c in self.citations))

    @property
    def newest_citation(self) -> Citation | None:
        """The cited article published last (undated articles count as oldest)."""
        return max(self.citations, key=lambda c: c.published or "", default=None)

    def published_span(self) -> tuple[str, str] | None:
        """The first and last publication dates among the cited articles."""
        dates = [c.published for c in self.citations if c.published]
        return (min(dates), max(dates)) if dates else None


@dataclass
class AnswerResult:
    question: str
    no_answer: bool
    answers: list[Answer] = field(default_factory=list)
    latency_ms: float = 0.0
    # When there is no answer: the passages that came closest, as citations whose span is empty.
    closest: list[Citation] = field(default_factory=list)
    # Answers from older articles that differ from the lead answer, newest first (see retrieval/timeline.py).
    earlier: list[Answer] = field(default_factory=list)
    # The question as Byline read it with the thread's earlier turns, when that changed it.
    read_as: str | None = None
    # Only articles published on or before this date were read (`byline ask --as-of`).
    published_on_or_before: str | None = None

    def to_dict(self) -> dict:
        """The `byline ask --json` shape; `earlier`, `read_as` and `published_on_or_before` only when set."""
        def answers(items: list[Answer]) -> list[dict]:
            return [{"text": a.text, "score": round(a.score, 4), "citations": [asdict(c) for c in a.citations]}
                    for a in items]

        payload = {"question": self.question, "no_answer": self.no_answer, "answers": answers(self.answers),
                   "latency_ms": round(self.latency_ms, 1)}
        if self.earlier:
            payload["earlier"] = answers(self.earlier)
        if self.read_as:
            payload["read_as"] = self.read_as
        if self.published_on_or_before:
            payload["published_on_or_before"] = self.published_on_or_before
        return payload

    @property
    def best(self) -> Answer | None:
        return self.answers[0] if self.answers else None

    def newest_published(self) -> str | None:
        """The date of the newest article cited by the best answer ("as of")."""
        best = self.best
        dates = [c.published for c in (best.citations if best else []) if c.published]
        return max(dates) if dates else None


def sources_phrase(answer: Answer) -> str:
    """How many articles say the answer, and over what dates: "3 articles, 2021-01-14 to 2021-05-26",
    "2 articles, both dated 2021-05-26"."""
    count = len(answer.articles)
    phrase = f"{count} article{'' if count == 1 else 's'}"
    dates = {c.doc_id: c.published for c in answer.citations if c.published}
    if count < 2 or not dates:
        return phrase
    first, last = min(dates.values()), max(dates.values())
    if first != last:
        return f"{phrase}, {first} to {last}"
    if len(dates) < count:
        return f"{phrase}, {len(dates)} dated {first}"
    return f"{phrase}, {'both' if count == 2 else 'all'} dated {first}"


def earlier_label(answer: Answer) -> str:
    """ "Earlier (2021-01-10, The Courier)": the date and publisher of the newest article giving `answer`."""
    citation = answer.newest_citation
    parts = [p for p in (citation.published, citation.publisher or citation.title) if p] if citation else []
    return f"Earlier ({', '.join(parts)})" if parts else "Earlier"


def confidence_label(score: float) -> str:
    """Confidence in words, for people; the thresholds follow the reader's calibrated score."""
    if score >= 0.75:
        return "high confidence"
    if score >= 0.45:
        return "medium confidence"
    return "low confidence"

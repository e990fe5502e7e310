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


@dataclass
class AnswerResult:
    question: str
    no_answer: bool
    answers: list[Answer] = field(default_factory=list)
    latency_ms: float = 0.0
    # When there is no answer: the passages that came closest, as citations whose span is empty.
    closest: list[Citation] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The `byline ask --json` shape."""
        return {
            "question": self.question,
            "no_answer": self.no_answer,
            "answers": [{"text": a.text, "score": round(a.score, 4),
                         "citations": [asdict(c) for c in a.citations]} for a in self.answers],
            "latency_ms": round(self.latency_ms, 1),
        }

    @property
    def best(self) -> Answer | None:
        return self.answers[0] if self.answers else None

    def newest_published(self) -> str | None:
        """The date of the newest article cited by the best answer ("as of")."""
        best = self.best
        dates = [c.published for c in (best.citations if best else []) if c.published]
        return max(dates) if dates else None


def confidence_label(score: float) -> str:
    """Confidence in words, for people; the thresholds follow the reader's calibrated score."""
    if score >= 0.75:
        return "high confidence"
    if score >= 0.45:
        return "medium confidence"
    return "low confidence"

"""Render an `AnswerResult` for a terminal (`byline ask`, `byline chat`)."""

from __future__ import annotations

import textwrap

from retrieval.answer import AnswerResult, Citation, confidence_label, earlier_label, sources_phrase

BOLD, RESET = "\033[1m", "\033[0m"


def _mark(citation: Citation, ansi: bool) -> str:
    left, right = (BOLD, RESET) if ansi else ("**", "**")
    s, e = citation.answer_start, citation.answer_end
    if s == e:
        return citation.snippet
    return f"{citation.snippet[:s]}{left}{citation.snippet[s:e]}{right}{citation.snippet[e:]}"


def _source_line(citation: Citation) -> str:
    parts = [citation.title]
    parts += [p for p in (citation.publisher, citation.published) if p]
    line = " · ".join(parts)
    return f"{line}  <{citation.url}>" if citation.url else line


def _wrap(text: str, indent: str, width: int) -> str:
    return "\n".join(textwrap.fill(p, width=width, initial_indent=indent, subsequent_indent=indent)
                     for p in text.split("\n") if p.strip())


def render_text(result: AnswerResult, ansi: bool = False, width: int = 88, max_citations: int = 3) -> str:
    lines: list[str] = []
    if result.read_as:
        lines.append(f"(read with the conversation as: {result.read_as})")
    if result.published_on_or_before:
        lines.append(f"(from articles published on or before {result.published_on_or_before})")
    if result.no_answer:
        lines.append("I couldn't find that in the articles.")
        if result.closest:
            lines.append("The closest passages:")
            for citation in result.closest:
                lines += [f"  - {_source_line(citation)}", _wrap(citation.snippet, "      ", width)]
        return "\n".join(lines)
    best = result.answers[0]
    answer = f"{BOLD}{best.text}{RESET}" if ansi else best.text
    as_of = result.newest_published()
    lines.append(f"{answer}   ({confidence_label(best.score)}, {best.score:.2f}"
                 f"{f'; as of {as_of}' if as_of else ''})")
    for number, citation in enumerate(best.citations[:max_citations], start=1):
        lines += [f"  [{number}] {_source_line(citation)}", _wrap(_mark(citation, ansi), "      ", width)]
    lines.append(f"  Sources: {sources_phrase(best)}")
    for earlier in result.earlier:
        lines.append(f"  {earlier_label(earlier)}: {earlier.text}   ({earlier.score:.2f})")
        lines.append(_wrap(_mark(earlier.newest_citation, ansi), "      ", width))
    for other in result.answers[1:]:
        lines.append(f"  Also possible: {other.text} ({other.score:.2f}, "
                     f"{len(other.articles)} article{'s' if len(other.articles) != 1 else ''})")
    return "\n".join(lines)

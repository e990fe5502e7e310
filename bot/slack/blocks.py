"""Renders an AnswerResult as a Slack message: Block Kit blocks plus the plain `text` fallback.

Everything taken from articles or users goes through `escape`, so `<!channel>` or `<@U123>` in a
snippet shows as text and never pings anyone.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

from retrieval.answer import AnswerResult, Citation, confidence_label, earlier_label, sources_phrase

NO_ANSWER = "I couldn't find that in the articles."
APOLOGY = "Sorry, something went wrong while answering. Please try again in a moment."

MAX_BLOCKS = 50
MAX_TEXT_CHARS = 3000  # a section's or context element's text
MAX_VALUE_CHARS = 2000  # a button's value
ANSWER_CHARS = 1000
TITLE_CHARS = 200
SNIPPET_CHARS = 600
CLOSEST_SHOWN = 2

SHARE_ACTION = "share_answer"
FEEDBACK_ACTIONS = {"feedback_up": "up", "feedback_down": "down"}


def escape(text: str) -> str:
    """Escapes the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _squash(text: str) -> str:
    return " ".join(text.split())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def bold(text: str) -> str:
    # mrkdwn bold needs the asterisks against non-space characters.
    text = _squash(text)
    return f"*{escape(text)}*" if text else ""


def link(url: str | None, label: str) -> str:
    if not url or not url.lower().startswith(("http://", "https://")):
        return escape(label)
    for raw, encoded in (("|", "%7C"), ("<", "%3C"), (">", "%3E"), (" ", "%20")):
        url = url.replace(raw, encoded)
    return f"<{url}|{escape(label)}>"


def text_fragment_url(url: str | None, span: str) -> str | None:
    """The article URL with a `#:~:text=` fragment, so browsers scroll to and highlight the span."""
    words = span.split()
    if not url or not words:
        return url

    def encode(text: str) -> str:  # "-", "," and "&" are syntax inside a text directive
        return quote(text, safe="").replace("-", "%2D")

    directive = (encode(" ".join(words)) if len(words) <= 8
                 else f"{encode(' '.join(words[:4]))},{encode(' '.join(words[-4:]))}")
    return url + (":~:text=" if "#" in url else "#:~:text=") + directive


def snippet_mrkdwn(citation: Citation, limit: int = SNIPPET_CHARS) -> str:
    """The snippet with the answer span in bold, trimmed to about `limit` characters around the span."""
    snippet = citation.snippet
    start = max(0, min(citation.answer_start, len(snippet)))
    end = max(start, min(citation.answer_end, len(snippet)))
    before, span, after = (re.sub(r"\s+", " ", part) for part in (snippet[:start], snippet[start:end], snippet[end:]))
    stripped = span.strip()  # spaces at the span's edges go outside the asterisks
    if stripped:
        before, after = before + span[:span.index(stripped)], span[span.index(stripped) + len(stripped):] + after
    span = _clip(stripped, limit)
    room = max(0, limit - len(span))
    keep_before = min(len(before), max(room // 2, room - len(after)))
    keep_after = min(len(after), room - keep_before)
    if keep_before < len(before):  # cut at a word boundary
        kept = before[len(before) - keep_before:]
        before = "…" + (kept.split(" ", 1)[1] if " " in kept else kept)
    if keep_after < len(after):
        kept = after[:keep_after]
        after = (kept.rsplit(" ", 1)[0] if " " in kept else kept) + "…"
    return (escape(before) + bold(span) + escape(after)).strip()


def _citation_block(citation: Citation, with_span: bool) -> dict:
    url = text_fragment_url(citation.url, citation.span_text) if with_span else citation.url
    byline = " · ".join(escape(_clip(_squash(p), TITLE_CHARS)) for p in (citation.publisher, citation.published) if p)
    lines = [f"*{link(url, _clip(_squash(citation.title) or citation.doc_id, TITLE_CHARS))}*"]
    if byline:
        lines.append(f"_{byline}_")
    lines.append("> " + snippet_mrkdwn(citation))
    return {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def button_value(ref: str, result: AnswerResult) -> str:
    """What a button carries: enough to record feedback even after the bot restarts."""
    best = result.best
    data = {"ref": ref, "q": result.question, "a": best.text if best and not result.no_answer else None,
            "d": best.articles if best and not result.no_answer else []}
    value = json.dumps(data, ensure_ascii=False)
    while len(value) > MAX_VALUE_CHARS:  # clip the longest text until it fits
        field = max(("q", "a"), key=lambda k: len(data[k] or ""))
        if data[field]:
            data[field] = data[field][:max(0, len(data[field]) - (len(value) - MAX_VALUE_CHARS) - 1)]
        else:
            data["d"] = data["d"][:-1]
        value = json.dumps(data, ensure_ascii=False)
    return value


def _actions(ref: str, result: AnswerResult, shareable: bool) -> dict:
    value = button_value(ref, result)
    buttons = [{"type": "button", "action_id": action, "value": value,
                "text": {"type": "plain_text", "text": label, "emoji": True}}
               for action, label in (("feedback_up", "👍"), ("feedback_down", "👎"))]
    if shareable:
        buttons.insert(0, {"type": "button", "action_id": SHARE_ACTION, "value": value, "style": "primary",
                           "text": {"type": "plain_text", "text": "Share in channel"}})
    return {"type": "actions", "block_id": "byline_actions", "elements": buttons}


def _fit(blocks: list[dict]) -> list[dict]:
    """Enforces Block Kit's limits whatever the content: at most 50 blocks, texts of at most 3000 chars."""
    blocks = blocks[:MAX_BLOCKS - 1] + blocks[-1:] if len(blocks) > MAX_BLOCKS else blocks
    for block in blocks:
        texts = {"section": [block.get("text")], "context": block.get("elements")}.get(block["type"]) or []
        for text in texts:
            text["text"] = _clip(text["text"], MAX_TEXT_CHARS)
    return blocks


def render_answer(result: AnswerResult, *, ref: str, max_citations: int = 3, asked_by: str | None = None,
                  shareable: bool = False) -> dict:
    """`chat.postMessage`-ready kwargs: `text` (notification fallback) and `blocks`.

    `asked_by` (a user id) adds who asked what, for messages seen outside the question's thread;
    `shareable` adds the "Share in channel" button (for ephemeral answers).
    """
    blocks: list[dict] = []
    if asked_by:
        blocks.append(_context(f"<@{asked_by}> asked: {escape(_clip(_squash(result.question), ANSWER_CHARS))}"))
    if result.read_as:
        blocks.append(_context(f"Read with this thread as: {escape(_clip(_squash(result.read_as), ANSWER_CHARS))}"))
    if result.published_on_or_before:
        blocks.append(_context(f"From articles published on or before {escape(result.published_on_or_before)}"))
    best = result.best
    if result.no_answer or best is None:
        text = NO_ANSWER
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": NO_ANSWER}})
        if result.closest:
            blocks.append(_context("The closest passages I found:"))
            blocks += [_citation_block(c, with_span=False) for c in result.closest[:CLOSEST_SHOWN]]
    else:
        answer = _clip(_squash(best.text), ANSWER_CHARS)
        text = f"{escape(answer)} ({confidence_label(best.score)})"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": bold(answer)}})
        facts = [f"{confidence_label(best.score).capitalize()} ({best.score:.2f})"]
        if as_of := result.newest_published():
            facts.append(f"as of {escape(as_of)}")
        others = [f"{escape(_clip(_squash(a.text), 100))} ({a.score:.2f})" for a in result.answers[1:]]
        if others:
            facts.append("also possible: " + "; ".join(others))
        blocks.append(_context(" · ".join(facts)))
        blocks += [_citation_block(c, with_span=True) for c in best.citations[:max_citations]]
        blocks.append(_context(f"Sources: {escape(sources_phrase(best))}"))
        for earlier in result.earlier:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
                f"*{escape(earlier_label(earlier))}:* {escape(_clip(_squash(earlier.text), ANSWER_CHARS))} "
                f"({earlier.score:.2f})\n> {snippet_mrkdwn(earlier.newest_citation)}")}})
    blocks.append(_actions(ref, result, shareable))
    return {"text": text, "blocks": _fit(blocks)}

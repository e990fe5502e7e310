"""Adding articles from Slack, over real signed HTTP: a link in "@Byline add <link>" (served by a local web
site) and a file uploaded with a mention (served by the Slack stand-in, to the bot token only)."""

import os
from pathlib import Path

import pytest

from bot.slack.context import SlackContext
from bot.slack.listeners.ingest.add_article import NOT_ALLOWED
from bot.slack.standin import dm_event, mention_event
from local_site import article_page
from retrieval.index.local import IndexLocation
from retrieval.ingest.web import url_doc_id
from slack_support import BOT_TOKEN, visible_texts

EDITOR = "U0EDITOR"


@pytest.fixture
def pipeline(scratch_pipeline):
    """The real pipeline with a data directory of its own (the bot adds articles to it)."""
    return scratch_pipeline


@pytest.fixture
def byline(pipeline, tmp_path):
    context = SlackContext(pipeline, tmp_path, workers=2, ingest_allowlist=[EDITOR])
    yield context
    context.close()


def snapshot(pipeline):
    location = IndexLocation(Path(pipeline.config["data_dir"]))
    return os.readlink(location.link), sorted(location.load().chunks)


def ask_in_thread(http_bot, question: str, user: str, thread_ts: str) -> str:
    """The bot's answer to a follow-up mention in the thread, as the user would read it."""
    replies = len(http_bot.api.calls("chat.postMessage"))
    http_bot.slack.event(mention_event(question, user=user, thread_ts=thread_ts))
    reply = http_bot.api.wait_for("chat.postMessage", replies + 1, timeout=120)[-1]
    return " ".join(visible_texts(reply.params))


def test_an_allowed_user_adds_a_link_and_is_then_answered_from_it(http_bot, local_site, pipeline):
    link = local_site.serve("/2024/tram", article_page("Osterby tram line opens in June", [
        "The new Osterby tram line will open on 14 June, the regional transit authority said on Friday.",
        "The line links the harbour with the university campus in eleven stops."],
        published="2024-06-01", site_name="Osterby Times"))
    mention = mention_event(f"add <{link}>", user=EDITOR)
    assert http_bot.slack.event(mention)[0] == 200

    reply, = http_bot.api.wait_for("chat.postMessage", timeout=120)
    assert reply.params["thread_ts"] == mention["ts"]
    doc_id = url_doc_id(link)
    chunks = sum(1 for d in pipeline.store.all_chunks() if d.meta["doc_id"] == doc_id)
    assert chunks >= 1
    assert reply.params["text"] == (f"Added <{link}|Osterby tram line opens in June> — Osterby Times · 2024-06-01 · "
                                    f"{chunks} chunk{'s' if chunks > 1 else ''}")
    http_bot.api.wait_for("reactions.remove")
    answer = ask_in_thread(http_bot, "When will the Osterby tram line open?", EDITOR, mention["ts"])
    assert "14 June" in answer and "Osterby tram line opens in June" in answer


def test_an_allowed_user_adds_an_uploaded_file_fetched_with_the_bot_token(http_bot, pipeline):
    file = http_bot.api.add_file("kirkwall-tide.md", (
        "---\ntitle: Storm Hilde brings record surge\npublisher: Orkney Echo\npublished: 2024-01-09\n---\n"
        "The Kirkwall tide gauge recorded a surge of 1.9 metres during Storm Hilde on Monday night.\n\n"
        "Harbour staff closed the flood gates an hour before high water.").encode("utf-8"), "text/markdown")
    message = dm_event("here is a story", user=EDITOR, subtype="file_share", files=[{"id": file["id"]}])
    assert http_bot.slack.event(message)[0] == 200  # a DM with only the file's id: files.info gives the rest

    reply, = http_bot.api.wait_for("chat.postMessage", timeout=120)
    assert reply.params["text"].startswith("Added *Storm Hilde brings record surge* — Orkney Echo · 2024-01-09 · 1 chunk")
    download, = http_bot.api.calls("files.download")
    assert download.token == BOT_TOKEN
    assert "kirkwall-tide" in pipeline.doc_ids()
    answer = ask_in_thread(http_bot, "What surge did the Kirkwall tide gauge record?", EDITOR, message["ts"])
    assert "1.9 metres" in answer


def test_a_user_not_on_the_list_is_refused_politely_and_nothing_is_fetched(http_bot, local_site, pipeline):
    link = local_site.serve("/story", article_page("A story", ["Nobody may add this story from Slack."]))
    before = snapshot(pipeline)
    mention = mention_event(f"add <{link}>", user="U0STRANGER")
    http_bot.slack.event(mention)
    notice, = http_bot.api.wait_for("chat.postEphemeral")
    assert notice.params["user"] == "U0STRANGER" and notice.params["text"] == NOT_ALLOWED
    assert not local_site.hits and not http_bot.api.calls("chat.postMessage")
    assert snapshot(pipeline) == before


@pytest.mark.parametrize("name, content, reason", [
    ("scan.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "scan.txt: looks like a binary file, not text"),
    ("report.pdf", b"%PDF-1.4", "report.pdf: I can add .txt, .md and .html files, not '.pdf'"),
])
def test_a_bad_file_is_refused_with_its_reason_and_the_index_is_unchanged(http_bot, pipeline, name, content, reason):
    file = http_bot.api.add_file(name, content, "application/octet-stream")
    before = snapshot(pipeline)
    mention = mention_event("", user=EDITOR)
    http_bot.slack.event({**mention, "files": [file]})
    reply, = http_bot.api.wait_for("chat.postMessage", timeout=60)
    assert reply.params["text"] == f"I couldn't add that: {reason}"
    assert reply.params["thread_ts"] == mention["ts"]
    assert snapshot(pipeline) == before


def test_a_file_url_is_refused_in_one_line(http_bot, pipeline):
    before = snapshot(pipeline)
    http_bot.slack.event(mention_event("add file:///etc/passwd", user=EDITOR))
    reply, = http_bot.api.wait_for("chat.postMessage", timeout=60)
    assert reply.params["text"] == ("I couldn't add that: file:///etc/passwd: only http and https links are fetched, "
                                    "not file: URLs")
    assert snapshot(pipeline) == before


def test_a_question_that_starts_with_add_is_still_a_question(http_bot):
    http_bot.slack.event(mention_event("add up the bridge budget for me", user="U0STRANGER"))
    http_bot.api.wait_for("chat.postMessage", timeout=120)  # answered, not refused as an add
    assert not http_bot.api.calls("chat.postEphemeral")

"""The bot over real HTTP: signed requests into waitress, replies recorded by the stand-in Web API."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.feedback import export_feedback
from bot.slack.answering import APOLOGY
from bot.slack.blocks import escape
from bot.slack.standin import (BOT_ID, BOT_USER_ID, block_actions, dm_event, event_callback, mention_event,
                               slash_command)
from slack_support import BRIDGE_QUESTION, MEMO_QUESTION, AskOnce, visible_texts


def button_row(message: dict) -> list[dict]:
    return next(b["elements"] for b in message["blocks"] if b["type"] == "actions")


def button(message: dict, action_id: str) -> dict:
    return next(e for e in button_row(message) if e["action_id"] == action_id)


def settle(seconds: float = 1.0) -> None:
    """Gives anything wrongly started time to show up in the stand-in's record before counting."""
    time.sleep(seconds)


def test_mention_gets_one_threaded_reply_with_the_answer_and_a_citation(http_bot, pipeline):
    expected = pipeline.ask(BRIDGE_QUESTION)
    assert not expected.no_answer
    mention = mention_event(BRIDGE_QUESTION)

    assert http_bot.slack.event(mention)[0] == 200

    reply, = http_bot.api.wait_for("chat.postMessage")
    assert reply.params["channel"] == mention["channel"] and reply.params["thread_ts"] == mention["ts"]
    texts = visible_texts(reply.params)
    assert texts[1] == f"*{' '.join(expected.best.text.split())}*"
    assert any(t.startswith(f"*{expected.best.citations[0].title}*") for t in texts)  # the citation
    assert any(t.startswith("Sources: ") for t in texts)
    http_bot.api.wait_for("reactions.remove")
    added, = http_bot.api.calls("reactions.add")
    assert added.params == {"channel": mention["channel"], "timestamp": mention["ts"], "name": "eyes",
                            "team_id": added.params["team_id"]}
    assert http_bot.api.calls("reactions.remove")[0].params["timestamp"] == mention["ts"]


def test_follow_up_mention_in_a_thread_replies_in_that_thread(http_bot):
    mention = mention_event(MEMO_QUESTION, thread_ts="1700000000.000100")
    http_bot.slack.event(mention)
    reply, = http_bot.api.wait_for("chat.postMessage")
    assert reply.params["thread_ts"] == "1700000000.000100"


def test_direct_message_is_answered_in_the_dm_threaded_under_it(http_bot):
    message = dm_event(BRIDGE_QUESTION)
    http_bot.slack.event(message)
    reply, = http_bot.api.wait_for("chat.postMessage")
    assert reply.params["channel"] == message["channel"] and reply.params["thread_ts"] == message["ts"]


def test_a_retried_or_repeated_event_gets_no_second_reply(http_bot):
    body = event_callback(mention_event(BRIDGE_QUESTION))
    assert http_bot.slack.event_body(body)[0] == 200
    assert http_bot.slack.event_body(body, retry_num=1)[0] == 200  # Slack's retry: same event_id
    http_bot.api.wait_for("chat.postMessage")
    assert http_bot.slack.event_body(body, retry_num=2)[0] == 200
    assert http_bot.slack.event_body(body)[0] == 200
    settle()
    assert len(http_bot.api.calls("chat.postMessage")) == 1
    assert len(http_bot.api.calls("reactions.add")) == 1


@pytest.mark.parametrize("tamper", ["signature", "stale", "body"])
def test_bad_or_stale_signature_gets_401_and_no_reply(http_bot, tamper):
    body = json.dumps(event_callback(mention_event(BRIDGE_QUESTION)))
    if tamper == "signature":
        status, _ = http_bot.slack.post(body, "application/json", signature="v0=" + "0" * 64)
    elif tamper == "stale":  # correctly signed, but 10 minutes old
        status, _ = http_bot.slack.post(body, "application/json", timestamp=int(time.time()) - 600)
    else:
        signature = http_bot.slack.sign(str(int(time.time())), body.encode())
        status, _ = http_bot.slack.post(body.replace("budget", "BUDGET"), "application/json", signature=signature)
    assert status == 401
    settle(0.3)
    assert http_bot.api.calls("chat.postMessage") == [] and http_bot.api.calls("reactions.add") == []


def test_url_verification_and_other_paths(http_bot):
    status, body = http_bot.slack.event_body({"type": "url_verification", "challenge": "c-123", "token": "x"})
    assert (status, json.loads(body)) == (200, {"challenge": "c-123"})
    other = type(http_bot.slack)(http_bot.url.replace("/slack/events", "/other"), "test-signing-secret")
    assert other.event(mention_event(BRIDGE_QUESTION))[0] == 404


def test_snippet_control_sequences_never_ping(http_bot, pipeline):
    # The memo article's text holds "<@U123>" and "<!channel>"; whichever of its spans and sentences the
    # reader shows (the answer, a cited snippet, another candidate answer), none may reach Slack raw.
    result = pipeline.ask(MEMO_QUESTION)
    shown = [a.text for a in result.answers] + [c.snippet for c in (result.best.citations if result.best else [])] \
        + [c.snippet for c in result.closest]
    markers = [m for m in ("<@U123>", "<!channel>", "<!") if any(m in s for s in shown)]
    assert markers, f"the memo article should be cited or answered from; got {shown}"
    http_bot.slack.event(mention_event(MEMO_QUESTION))

    reply, = http_bot.api.wait_for("chat.postMessage")
    everything = "\n".join(visible_texts(reply.params))
    for raw in ("<!channel>", "<!here>", "<@U123>", "<!"):
        assert raw not in everything
    assert any(escape(m) in everything for m in markers)


def test_slash_command_answers_privately_and_share_posts_to_the_channel(http_bot, pipeline):
    expected = pipeline.ask(BRIDGE_QUESTION).best.text
    form = slash_command(BRIDGE_QUESTION, response_url=http_bot.api.response_url("command"))
    assert http_bot.slack.command(form) == (200, "")

    private, = http_bot.api.wait_for("response_url")
    assert private.params["response_type"] == "ephemeral"
    assert any(expected.split()[0] in t for t in visible_texts(private.params))
    assert http_bot.api.calls("chat.postMessage") == []

    click = block_actions(button(private.params, "share_answer"), response_url=http_bot.api.response_url("share"),
                          channel=form["channel_id"], user=form["user_id"])
    assert http_bot.slack.action(click)[0] == 200

    shared, = http_bot.api.wait_for("chat.postMessage")
    assert shared.params["channel"] == form["channel_id"] and "thread_ts" not in shared.params
    texts = visible_texts(shared.params)
    assert texts[1] == f"<@{form['user_id']}> asked: {BRIDGE_QUESTION}"
    assert texts[2] == f"*{' '.join(expected.split())}*"
    assert all(e["action_id"] != "share_answer" for e in button_row(shared.params))
    deleted = http_bot.api.wait_for("response_url", 2)[1]
    assert deleted.params["delete_original"] is True


def test_share_where_the_bot_cannot_post_tells_the_user(http_bot):
    form = slash_command(BRIDGE_QUESTION, response_url=http_bot.api.response_url())
    http_bot.slack.command(form)
    private, = http_bot.api.wait_for("response_url")
    http_bot.api.fail_next("chat.postMessage", error="not_in_channel")
    http_bot.slack.action(block_actions(button(private.params, "share_answer"),
                                        response_url=http_bot.api.response_url()))
    notice = http_bot.api.wait_for("response_url", 2)[1]
    assert "/invite" in notice.params["text"] and notice.params["response_type"] == "ephemeral"


def test_feedback_click_is_recorded_and_exported(http_bot, pipeline, tmp_path):
    expected = pipeline.ask(BRIDGE_QUESTION).best
    http_bot.slack.event(mention_event(BRIDGE_QUESTION))
    reply, = http_bot.api.wait_for("chat.postMessage")

    click = block_actions(button(reply.params, "feedback_down"), response_url=http_bot.api.response_url(),
                          user="U0CRITIC", ephemeral=False)
    assert http_bot.slack.action(click)[0] == 200
    thanks, = http_bot.api.wait_for("response_url")
    assert thanks.params["text"] == "Thanks for the feedback!"

    entry, = http_bot.byline.feedback.entries()
    assert entry["vote"] == "down" and entry["user"] == "U0CRITIC" and entry["question"] == BRIDGE_QUESTION
    assert entry["answer"] == expected.text and entry["citations"] == expected.articles

    out = tmp_path / "candidates.jsonl"
    assert export_feedback(http_bot.byline.feedback.path.parent, out) == 1
    candidate = json.loads(out.read_text())
    assert candidate == {"id": candidate["id"], "question": BRIDGE_QUESTION, "answers": [expected.text],
                         "sources": expected.articles, "tags": ["feedback"]}


def test_twenty_concurrent_mentions_get_twenty_replies_each_exactly_once(http_bot, real_pipeline):
    http_bot.byline.pipeline = AskOnce(real_pipeline)  # not yet asked: the first answers run concurrently
    mentions = [mention_event(BRIDGE_QUESTION if i % 2 else MEMO_QUESTION, channel=f"C{i:03d}") for i in range(20)]
    with ThreadPoolExecutor(20) as senders:
        statuses = list(senders.map(lambda m: http_bot.slack.event(m)[0], mentions))
    assert statuses == [200] * 20

    http_bot.api.wait_for("chat.postMessage", 20, timeout=90)
    settle(0.5)
    replies = http_bot.api.calls("chat.postMessage")
    assert sorted((r.params["channel"], r.params["thread_ts"]) for r in replies) == \
        sorted((m["channel"], m["ts"]) for m in mentions)
    assert all(r.params.get("blocks") for r in replies)


def test_a_rate_limited_reply_is_retried_after_retry_after(http_bot):
    http_bot.api.fail_next("chat.postMessage")  # 429, Retry-After: 1
    http_bot.slack.event(mention_event(BRIDGE_QUESTION))
    reply, = http_bot.api.wait_for("chat.postMessage", timeout=15)
    first, second = http_bot.api.calls("chat.postMessage", ok_only=False)
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0
    assert reply.params.get("blocks")


def test_an_api_error_ends_in_an_apology_not_silence(http_bot):
    http_bot.api.fail_next("chat.postMessage", error="invalid_blocks")
    mention = mention_event(BRIDGE_QUESTION)
    http_bot.slack.event(mention)
    apology, = http_bot.api.wait_for("chat.postMessage")
    assert apology.params == {"channel": mention["channel"], "thread_ts": mention["ts"], "text": APOLOGY,
                              "team_id": apology.params["team_id"]}
    http_bot.api.wait_for("reactions.remove")


def test_own_and_other_bots_messages_are_ignored(http_bot):
    http_bot.slack.event(dm_event(BRIDGE_QUESTION, user=BOT_USER_ID, bot_id=BOT_ID))  # our own reply
    http_bot.slack.event(dm_event(BRIDGE_QUESTION, user="U0OTHERBOT", bot_id="B0OTHER"))
    http_bot.slack.event(dm_event(BRIDGE_QUESTION, subtype="bot_message", bot_id="B0OTHER", user=None))
    http_bot.slack.event(dm_event(BRIDGE_QUESTION, subtype="message_changed"))
    bot_mention = mention_event(BRIDGE_QUESTION)
    bot_mention["bot_id"] = "B0OTHER"
    http_bot.slack.event(bot_mention)
    settle()
    assert http_bot.api.calls("chat.postMessage") == [] and http_bot.api.calls("reactions.add") == []


def test_a_bare_mention_gets_help_not_silence(http_bot):
    mention = mention_event("")
    http_bot.slack.event(mention)
    notice, = http_bot.api.wait_for("chat.postEphemeral")
    assert notice.params["user"] == mention["user"] and "/byline" in notice.params["text"]


def test_ack_comes_before_the_answer(http_bot, pipeline):
    # The answer is held back until the ack has arrived: a slow pipeline never delays Slack's ack.
    release = threading.Event()
    ask = pipeline.ask
    http_bot.byline.pipeline = type("Held", (), {"ask": lambda self, q: (release.wait(10), ask(q))[1]})()
    assert http_bot.slack.event(mention_event(BRIDGE_QUESTION))[0] == 200
    assert http_bot.api.calls("chat.postMessage") == []
    release.set()
    http_bot.api.wait_for("chat.postMessage")

"""Bad input over real signed HTTP: one 4xx and one log line, never a 500, a traceback or a stray reply; the
answer queue's bound; the question journal. The fuzzed and killed-process versions are in test_reliability.py."""

import json
import logging
import threading
import time
from urllib.parse import urlencode

import pytest

from bot.slack.answering import BUSY, FEEDBACK_FAILED
from slack_bolt import BoltRequest

from bot.slack.app import answer_pending_questions, build_app
from bot.slack.context import SlackContext, WorkPool
from bot.slack.http import create_http_server, stop_http_server
from bot.slack.journal import MAX_STARTS, QuestionJournal
from bot.slack.standin import SlackSender, block_actions, event_callback, mention_event, slash_command
from slack_support import BRIDGE_QUESTION, MEMO_QUESTION, SIGNING_SECRET

REPLIES = ("chat.postMessage", "chat.postEphemeral", "response_url")


def replies(api) -> list:
    return [call for call in api.calls() if call.method in REPLIES]


def mention_body(**event_fields) -> dict:
    return event_callback({**mention_event(BRIDGE_QUESTION), **event_fields})


def deeply_nested(depth: int) -> str:
    return json.dumps(mention_body(blocks="DEEP")).replace('"DEEP"', "[" * depth + "]" * depth)


MALFORMED = {  # what a correctly signed request carries -> (status, what the log line says)
    "not JSON": (b'{"type": "event_callback", "event": {', "application/json", 400, "unreadable body"),
    "not UTF-8": (json.dumps(mention_body()).encode() + b"\xff", "application/json", 400, "not UTF-8"),
    "a JSON array": (b"[1, 2]", "application/json", 400, "the body is an array, not an object"),
    "form body as JSON": (urlencode({"text": "hi"}).encode(), "application/json", 400, "unreadable body"),
    "channel a number": (json.dumps(mention_body(channel=5)).encode(), "application/json", 400,
                         "event.channel: is a number, not string"),
    "text null": (json.dumps(mention_body(text=None)).encode(), "application/json", 400, "event.text: is null"),
    "event a list": (json.dumps({**mention_body(), "event": [1]}).encode(), "application/json", 400,
                     "event: is an array, not object"),
    "ts not a timestamp": (json.dumps(mention_body(ts="yesterday")).encode(), "application/json", 400,
                           "event.ts: fails pattern"),
    "1 MB text": (json.dumps(mention_body(text="x" * 1_000_000)).encode(), "application/json", 400,
                  "event.text: fails maxLength 40000"),
    "nested 200 deep": (deeply_nested(200).encode(), "application/json", 400, "nested deeper than 64"),
    "nested 100,000 deep": (deeply_nested(100_000).encode(), "application/json", 400, "unreadable body"),
    "lone surrogate": (json.dumps(mention_body(text="Who \ud800?")).encode(), "application/json", 400,
                       "lone UTF-16 surrogate"),
    "unknown request type": (b'{"type": "surprise"}', "application/json", 400, "not a kind of request"),
    "broken payload JSON": (urlencode({"payload": '{"type": "block_actions", "user": '}).encode(),
                            "application/x-www-form-urlencoded", 400, "unreadable body"),
    "click without actions": (urlencode({"payload": json.dumps({**block_actions(
        {"action_id": "feedback_up", "value": "{}"}, response_url="http://127.0.0.1:9/r"), "actions": []})}).encode(),
        "application/x-www-form-urlencoded", 400, "actions: fails minItems 1"),
    "files not a list": (json.dumps(mention_body(files="report.txt")).encode(), "application/json", 400,
                         "event.files: is a string, not array"),
    "command without a channel": (urlencode({k: v for k, v in slash_command(
        BRIDGE_QUESTION, response_url="http://127.0.0.1:9/r").items() if k != "channel_id"}).encode(),
        "application/x-www-form-urlencoded", 400, "'channel_id' is a required property"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_signed_request_gets_a_4xx_and_one_log_line(http_bot, caplog, case):
    body, content_type, status, said = MALFORMED[case]
    with caplog.at_level(logging.WARNING):
        got, _ = http_bot.slack.post(body, content_type)
    assert got == status
    lines = caplog.records
    assert len(lines) == 1 and said in lines[0].getMessage() and lines[0].exc_info is None
    assert "\n" not in lines[0].getMessage()
    time.sleep(0.2)
    assert replies(http_bot.api) == [] and http_bot.api.calls("reactions.add") == []


@pytest.mark.parametrize("timestamp", ["abc", "", "9" * 5000, "1e9"])
def test_a_timestamp_that_is_not_a_number_gets_401_not_500(http_bot, timestamp):
    assert http_bot.slack.post(json.dumps(mention_body()), "application/json", timestamp=timestamp)[0] == 401


def test_unknown_events_commands_and_buttons_are_acknowledged_and_dropped(http_bot, caplog):
    with caplog.at_level(logging.WARNING):
        assert http_bot.slack.event({"type": "reaction_added", "user": "U1", "reaction": "eyes"})[0] == 200
        other = {**slash_command("hi", response_url=http_bot.api.response_url()), "command": "/other"}
        assert http_bot.slack.command(other)[0] == 200
        assert http_bot.slack.action(block_actions({"action_id": "not_ours", "value": "x"},
                                                   response_url=http_bot.api.response_url()))[0] == 200
    time.sleep(0.3)
    assert replies(http_bot.api) == [] and not caplog.records


def test_a_slash_command_about_a_payload_is_answered(http_bot):
    # Bolt reads any form body containing "payload" as an interactivity payload; the question must not vanish.
    question = "What payload did the Riverside council approve for the bridge?"
    form = slash_command(question, response_url=http_bot.api.response_url("payload"))
    assert http_bot.slack.command(form) == (200, "")
    answer, = http_bot.api.wait_for("response_url")
    assert answer.params["response_type"] == "ephemeral" and answer.params.get("blocks")


def test_a_button_value_byline_did_not_make_gets_a_note_and_one_log_line(http_bot, caplog):
    click = block_actions({"action_id": "feedback_down", "value": json.dumps({"q": 5})},
                          response_url=http_bot.api.response_url())
    with caplog.at_level(logging.WARNING):
        assert http_bot.slack.action(click)[0] == 200
        note, = http_bot.api.wait_for("response_url")
    assert note.params["text"] == FEEDBACK_FAILED
    line, = caplog.records
    assert "q: is a number, not string" in line.getMessage() and line.exc_info is None
    assert http_bot.byline.feedback.entries() == []


def test_past_the_queue_limit_a_mention_gets_busy_not_silence(slack_api, slack_client, pipeline, tmp_path):
    release = threading.Event()
    held = type("Held", (), {"ask": lambda self, q: (release.wait(30), pipeline.ask(q))[1]})()
    byline = SlackContext(held, tmp_path, workers=2, answer_queue_limit=3)
    app = build_app({}, held, slack_client, byline=byline, environ={"SLACK_SIGNING_SECRET": SIGNING_SECRET})
    server = create_http_server(app, SIGNING_SECRET, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    slack = SlackSender(f"http://127.0.0.1:{server.effective_port}/slack/events", SIGNING_SECRET)
    try:
        mentions = [mention_event(BRIDGE_QUESTION, channel=f"CQ{i}") for i in range(5)]
        for mention in mentions:  # one after another: the first three fill the queue (2 running, 1 waiting)
            assert slack.event(mention)[0] == 200
            time.sleep(0.3)
        busy = slack_api.wait_for("chat.postEphemeral", 2)
        assert sorted(b.params["channel"] for b in busy) == ["CQ3", "CQ4"]
        assert all(b.params["text"] == BUSY and b.params["thread_ts"] == mentions[3 + i]["ts"]
                   for i, b in enumerate(sorted(busy, key=lambda b: b.params["channel"])))
        command = slash_command(MEMO_QUESTION, response_url=slack_api.response_url())
        assert slack.command(command) == (200, BUSY)  # a command is told in its ack
        release.set()
        answers = slack_api.wait_for("chat.postMessage", 3, timeout=60)
        assert sorted(a.params["channel"] for a in answers) == ["CQ0", "CQ1", "CQ2"]
        time.sleep(0.5)
        assert len(replies(slack_api)) == 5  # every mention exactly one reply
    finally:
        release.set()
        stop_http_server(server, thread)
        byline.close()


def test_every_way_a_mention_is_handled_marks_it_done_in_the_journal(http_bot):
    mentions = [mention_event(BRIDGE_QUESTION, channel="CJ1"), mention_event("", channel="CJ2"),
                mention_event("add <https://news.example/a>", channel="CJ3")]  # not on slack.ingest_allowlist
    for mention in mentions:
        assert http_bot.slack.event(mention)[0] == 200
    http_bot.api.wait_for("chat.postEphemeral", 2)  # help, and "only for the people my admins have listed"
    http_bot.api.wait_for("reactions.remove", timeout=60)  # after the answer
    time.sleep(0.5)
    assert http_bot.byline.journal.pending() == []
    assert not http_bot.byline.journal.record(f"CJ3/{mentions[2]['ts']}", {})  # known, and done


def test_work_pool_offers_up_to_its_limit_and_drains_with_a_timeout():
    gate = threading.Event()
    pool = WorkPool(1, "test", limit=2)
    assert pool.offer(gate.wait) and pool.offer(gate.wait) and not pool.offer(gate.wait)
    assert pool.unfinished == 2 and not pool.drain(timeout=0.2)
    gate.set()
    assert pool.drain(timeout=5) and pool.unfinished == 0 and pool.offer(lambda: None)
    pool.shutdown()


def test_the_journal_records_once_and_keeps_what_is_not_done(tmp_path):
    journal = QuestionJournal(tmp_path)
    body = mention_body()
    assert journal.record("C1/1.1", body) and not journal.record("C1/1.1", body)
    assert journal.record("C1/2.2", {"n": 2})
    journal.done("C1/1.1")
    journal.close()
    reopened = QuestionJournal(tmp_path)  # as a restarted process finds it
    assert reopened.pending() == [("C1/2.2", {"n": 2})]
    assert not reopened.record("C1/1.1", body)  # done, and remembered: a redelivery is not answered again


def test_a_question_pending_through_max_starts_is_given_up(tmp_path, caplog):
    journal = QuestionJournal(tmp_path)
    journal.record("C1/1.1", {"n": 1})
    for _ in range(MAX_STARTS):
        assert journal.pending() == [("C1/1.1", {"n": 1})]
    with caplog.at_level(logging.WARNING):
        assert journal.pending() == []
    assert "giving up on the Slack question C1/1.1" in caplog.text
    assert journal.pending() == []


def test_after_a_restart_a_pending_question_is_answered_once_and_a_redelivery_skipped(
        slack_api, slack_client, pipeline, tmp_path):
    earlier = mention_body()
    event = earlier["event"]
    QuestionJournal(tmp_path).record(f"{event['channel']}/{event['ts']}", earlier)  # taken, then the process died
    byline = SlackContext(pipeline, tmp_path, workers=2)
    app = build_app({}, pipeline, slack_client, byline=byline, environ={"SLACK_SIGNING_SECRET": SIGNING_SECRET})
    try:
        assert answer_pending_questions(app, byline) == 1
        answer, = slack_api.wait_for("chat.postMessage", timeout=60)
        assert (answer.params["channel"], answer.params["thread_ts"]) == (event["channel"], event["ts"])
        slack_api.wait_for("reactions.remove")
        again = app.dispatch(BoltRequest(body=event_callback(event), mode="socket_mode"))  # a new event_id
        assert again.status == 200
        time.sleep(0.5)
        assert len(slack_api.calls("chat.postMessage")) == 1
        assert byline.close(timeout=30)
        byline = SlackContext(pipeline, tmp_path, workers=2)  # the next start: nothing left
        app = build_app({}, pipeline, slack_client, byline=byline, environ={"SLACK_SIGNING_SECRET": SIGNING_SECRET})
        assert answer_pending_questions(app, byline) == 0
    finally:
        byline.close()

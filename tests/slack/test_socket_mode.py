"""Socket Mode: apps.connections.open hands out a local ws:// URL; envelopes come in, acks go out."""

import json
import uuid

import pytest

from bot.slack.app import start_socket_mode
from bot.slack.standin import event_callback, mention_event, slash_command
from slack_support import APP_TOKEN, BRIDGE_QUESTION, visible_texts



@pytest.fixture
def socket_bot(slack_app, slack_api, socket_mode_server):
    slack_api.socket_url = socket_mode_server.url
    handler = start_socket_mode(slack_app, APP_TOKEN)
    yield socket_mode_server
    handler.close()  # takes ~3 s: the SDK's client waits out its socket read timeout


def envelope(kind: str, payload: dict, **fields) -> dict:
    return {"envelope_id": str(uuid.uuid4()), "type": kind, "payload": payload,
            "accepts_response_payload": kind != "events_api", **fields}


def test_a_mention_over_socket_mode_is_acked_and_answered_once(socket_bot, slack_api, pipeline):
    opened, = slack_api.calls("apps.connections.open")
    assert opened.token == APP_TOKEN
    mention = mention_event(BRIDGE_QUESTION)
    body = event_callback(mention)
    first = envelope("events_api", body, retry_attempt=0, retry_reason="")
    socket_bot.send(first)

    assert socket_bot.wait_for_ack(first["envelope_id"]) == {"envelope_id": first["envelope_id"]}
    reply, = slack_api.wait_for("chat.postMessage")
    assert reply.params["thread_ts"] == mention["ts"]
    assert visible_texts(reply.params)[1] == f"*{' '.join(pipeline.ask(BRIDGE_QUESTION).best.text.split())}*"

    retry = envelope("events_api", body, retry_attempt=1, retry_reason="timeout")  # same event_id
    socket_bot.send(retry)
    socket_bot.wait_for_ack(retry["envelope_id"])
    slack_api.wait_for("reactions.remove")
    assert len(slack_api.calls("chat.postMessage")) == 1


def test_slash_command_over_socket_mode(socket_bot, slack_api):
    command = envelope("slash_commands", slash_command(BRIDGE_QUESTION, response_url=slack_api.response_url()))
    socket_bot.send(command)
    assert socket_bot.wait_for_ack(command["envelope_id"])["envelope_id"] == command["envelope_id"]
    private, = slack_api.wait_for("response_url")
    assert private.params["response_type"] == "ephemeral" and json.dumps(private.params).count("share_answer") == 1

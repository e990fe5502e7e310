"""Listener functions called directly (no HTTP), with a real WebClient on the stand-in Web API."""

import json
import logging
import socket
import threading

import pytest
import yaml

from bot.slack.answering import APOLOGY, FEEDBACK_FAILED, HELP, NOT_HERE, RATE_LIMITED, plain_question
from bot.slack.app import build_app, run_slack
from bot.slack.context import SeenEvents, SlackContext, UserRateLimiter
from bot.slack.listeners.actions.feedback import feedback_callback
from bot.slack.listeners.commands.byline_command import byline_command_callback
from bot.slack.listeners.events.app_mention import app_mention_callback
from bot.slack.standin import BOT_USER_ID, block_actions, mention_event, slash_command
from retrieval.config import REPO_ROOT
from retrieval.errors import BylineError
from slack_support import BRIDGE_QUESTION

log = logging.getLogger("test")


class Context(dict):
    bot_user_id = BOT_USER_ID


class Pipeline:
    def __init__(self, error: Exception):
        self.error = error

    def ask(self, question):
        raise self.error


def mention(byline, client, **event_fields):
    app_mention_callback(event=mention_event(BRIDGE_QUESTION, **event_fields), context=Context(), client=client,
                         logger=log, byline=byline)
    byline.pool.shutdown(wait=True)  # the answer, if any, has been posted


@pytest.fixture
def make_context(tmp_path, pipeline):
    made = []

    def make(**options):
        options.setdefault("workers", 2)
        made.append(SlackContext(options.pop("pipeline", pipeline), tmp_path, **options))
        return made[-1]
    yield make
    for context in made:
        context.close()


def test_plain_question():
    assert plain_question(f"<@{BOT_USER_ID}> who said &lt;this&gt; &amp; that?", BOT_USER_ID) == \
        "who said <this> & that?"
    assert plain_question("<@U0OTHER|ann> and <#C1|news> on <https://x.example|the site> <https://y.example>?") == \
        "ann and news on the site https://y.example?"
    assert plain_question(f"  <@{BOT_USER_ID}>  ", BOT_USER_ID) == ""


def test_channel_allowlist(make_context, slack_client, slack_api):
    byline = make_context(channel_allowlist=["C0ALLOWED"])
    mention(byline, slack_client, channel="C0ELSEWHERE")
    notice, = slack_api.calls("chat.postEphemeral")
    assert notice.params["text"] == NOT_HERE and slack_api.calls("chat.postMessage") == []

    byline = make_context(channel_allowlist=["C0ALLOWED"])
    mention(byline, slack_client, channel="C0ALLOWED")
    assert len(slack_api.calls("chat.postMessage")) == 1


def test_user_rate_limit_gets_a_polite_message(make_context, slack_client, slack_api):
    byline = make_context(user_rate_limit_per_minute=2)
    for _ in range(3):
        app_mention_callback(event=mention_event(BRIDGE_QUESTION), context=Context(), client=slack_client,
                             logger=log, byline=byline)
    byline.pool.shutdown(wait=True)
    assert len(slack_api.calls("chat.postMessage")) == 2
    notice, = slack_api.calls("chat.postEphemeral")
    assert notice.params["text"] == RATE_LIMITED and notice.params["user"] == "U0ASKER"


def test_a_crashing_pipeline_gets_an_apology_without_a_traceback(make_context, slack_client, slack_api):
    byline = make_context(pipeline=Pipeline(RuntimeError("Traceback: CUDA exploded at 0xdeadbeef")))
    mention(byline, slack_client)
    reply, = slack_api.calls("chat.postMessage")
    assert reply.params["text"] == APOLOGY and "blocks" not in reply.params
    assert len(slack_api.calls("reactions.remove")) == 1


def test_a_byline_error_message_is_shown_to_the_user(make_context, slack_client, slack_api):
    byline = make_context(pipeline=Pipeline(BylineError("Questions are limited to 1000 characters <here>.")))
    mention(byline, slack_client)
    reply, = slack_api.calls("chat.postMessage")
    assert reply.params["text"] == "Questions are limited to 1000 characters &lt;here&gt;."


def test_slash_command_refusals_are_in_the_ack(make_context):
    byline = make_context(channel_allowlist=["C0ALLOWED"])
    acks = []
    for text, channel in (("", "C0ALLOWED"), ("Who?", "C0ELSEWHERE")):
        byline_command_callback(ack=lambda **kw: acks.append(kw), command=slash_command(
            text, channel=channel, response_url="http://127.0.0.1:9/unused"), respond=None, logger=log, byline=byline)
    assert acks == [{"text": HELP}, {"text": NOT_HERE}]


def test_seen_events_is_thread_safe_and_bounded():
    seen = SeenEvents(max_size=100)
    firsts = []
    threads = [threading.Thread(target=lambda: firsts.extend(seen.first_time(f"E{i}") for i in range(50)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(firsts) == 50
    for i in range(500):
        seen.first_time(f"F{i}")
    assert len(seen._ids) == 100 and seen.first_time("E0")  # the oldest were forgotten


def test_user_rate_limiter_window():
    now = [0.0]
    limiter = UserRateLimiter(2, clock=lambda: now[0])
    assert limiter.allow("U1") and limiter.allow("U1") and not limiter.allow("U1")
    assert limiter.allow("U2")
    now[0] = 60.5
    assert limiter.allow("U1")
    assert UserRateLimiter(0).allow("U1")


def test_missing_tokens_are_clear_errors(tmp_path):
    config = {"data_dir": str(tmp_path), "slack": {"port": 0}}
    with pytest.raises(BylineError, match="SLACK_BOT_TOKEN"):
        run_slack(config, None, environ={})
    with pytest.raises(BylineError, match="SLACK_SIGNING_SECRET"):
        run_slack(config, None, environ={"SLACK_BOT_TOKEN": "xoxb-1"})
    with pytest.raises(BylineError, match="SLACK_BOT_TOKEN"):
        build_app(config, None, environ={})


def test_refused_tokens_and_a_busy_port_are_clear_errors(tmp_path, slack_api):
    config = {"data_dir": str(tmp_path), "slack": {}}
    environ = {"SLACK_BOT_TOKEN": "xoxb-bad", "SLACK_SIGNING_SECRET": "s", "SLACK_API_URL": slack_api.base_url}
    slack_api.fail_next("auth.test", error="invalid_auth")
    with pytest.raises(BylineError, match="SLACK_BOT_TOKEN: .*invalid_auth"):
        run_slack(config, None, environ=environ)
    slack_api.fail_next("apps.connections.open", error="invalid_auth")
    with pytest.raises(BylineError, match="SLACK_APP_TOKEN: invalid_auth"):
        run_slack(config, None, environ={**environ, "SLACK_APP_TOKEN": "xapp-bad"})
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        with pytest.raises(BylineError, match="cannot listen on port"):
            run_slack(config, None, port=busy.getsockname()[1], environ=environ)


def test_the_manifest_declares_what_the_app_listens_for():
    manifest = yaml.safe_load((REPO_ROOT / "slack" / "manifest.yaml").read_text())
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == {"app_mention", "message.im"}
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/byline"]
    assert manifest["settings"]["interactivity"]["is_enabled"] and manifest["settings"]["socket_mode_enabled"]
    assert {"app_mentions:read", "chat:write", "commands", "im:history", "reactions:write"} <= \
        set(manifest["oauth_config"]["scopes"]["bot"])


def test_feedback_that_cannot_be_written_gets_a_message_not_silence(tmp_path):
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("")
    byline = SlackContext(None, not_a_dir, workers=1)
    said = []
    action = {"action_id": "feedback_down", "value": json.dumps({"ref": "gone", "q": "Who?", "a": "Ann", "d": []})}
    feedback_callback(ack=lambda: None, body=block_actions(action, response_url="unused"), action=action,
                      respond=lambda **message: said.append(message), logger=log, byline=byline)
    byline.close()
    assert said == [{"response_type": "ephemeral", "replace_original": False, "text": FEEDBACK_FAILED}]

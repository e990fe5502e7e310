"""Two `byline slack` processes on one database, over real signed HTTP, against the local stand-in of Slack's
Web API: the same event delivered to both is answered once; the rate limit, feedback and articles are shared."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from pg_support import BYLINE

from bot.slack.answering import RATE_LIMITED
from bot.slack.standin import SlackSender, StandInSlackAPI, block_actions, event_callback, mention_event
from retrieval.config import REPO_ROOT

SIGNING_SECRET = "replica-signing-secret"
QUESTION = "Who is the chair of Xiaomi?"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_listening(port: int, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"no bot listening on port {port}")


@pytest.fixture
def replicas(corpus_database, tmp_path):
    """Two bots on the corpus database, and the stand-in Slack they call."""
    with StandInSlackAPI() as api:
        environment = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-replica", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                       "SLACK_API_URL": api.base_url}
        environment.pop("SLACK_APP_TOKEN", None)
        ports = [free_port(), free_port()]
        bots = [subprocess.Popen([*BYLINE, "--data-dir", str(tmp_path / f"replica-{i}"),
                                  "--set", "store.backend=postgres", "--set", f"store.url={corpus_database}",
                                  "--set", "slack.user_rate_limit_per_minute=2", "slack", "--port", str(port)],
                                 cwd=REPO_ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)
                for i, port in enumerate(ports)]
        try:
            for bot, port in zip(bots, ports):
                wait_until_listening(port, bot)
            yield api, [SlackSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET) for port in ports]
        finally:
            for bot in bots:
                bot.terminate()
            for bot in bots:
                bot.wait(timeout=30)


def replies(api: StandInSlackAPI, count: int, settle: float = 2.0) -> list:
    found = api.wait_for("chat.postMessage", count, timeout=120)
    time.sleep(settle)  # anything answered twice would show up by now
    return api.calls("chat.postMessage")


def test_two_replicas_share_one_database(replicas, pg_pipeline, corpus_database, tmp_path):
    api, (first, second) = replicas

    # the same event, delivered to both at once: exactly one reply
    body = event_callback(mention_event(QUESTION, user="U0ONCE"))
    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda sender: sender.event_body(body)[0], (first, second))) == [200, 200]
    posted = replies(api, 1)
    assert len(posted) == 1 and "Lei Jun" in posted[0].params["text"]
    assert len(api.calls("reactions.add")) == 1

    # the rate limit counts one user's questions on every replica: the third within a minute is refused
    for sender in (first, second, first):
        sender.event(mention_event(QUESTION, user="U0BUSY"))
    refusal, = api.wait_for("chat.postEphemeral", timeout=60)
    assert refusal.params["text"] == RATE_LIMITED and refusal.params["user"] == "U0BUSY"
    assert len(replies(api, 3)) == 3

    # a vote on one replica lands in the shared table
    button = next(e for b in posted[0].params["blocks"] if b["type"] == "actions" for e in b["elements"]
                  if e["action_id"] == "feedback_down")
    assert second.action(block_actions(button, response_url=api.response_url(), user="U0CRITIC",
                                       ephemeral=False))[0] == 200
    api.wait_for("response_url")
    with psycopg.connect(corpus_database) as connection:
        votes = [row[0] for row in connection.execute("SELECT entry FROM byline_feedback")]
    assert [(v["vote"], v["user"], v["answer"]) for v in votes] == [("down", "U0CRITIC", "Lei Jun")]

    # an article ingested elsewhere (here: this test's own pipeline on the same database) is answered at once
    article = tmp_path / "greyport.md"
    article.write_text("---\ntitle: Greyport lighthouse to be repainted\n---\nThe Greyport lighthouse will be "
                       "repainted bright red, the harbour trust said on Tuesday.", encoding="utf-8")
    pg_pipeline.ingest([article])
    try:
        second.event(mention_event("What colour will the Greyport lighthouse be repainted?", user="U0READER"))
        answer = replies(api, 4)[-1]
        assert "red" in answer.params["text"]
    finally:
        pg_pipeline.remove("greyport")

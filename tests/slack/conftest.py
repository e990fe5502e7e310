"""Fixtures for the Slack tests: the bot, with the real pipeline (tests/conftest.py), served over real HTTP
(waitress) or Socket Mode and talking to a local stand-in of Slack's Web API. Nothing here contacts Slack.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from bot.slack.app import build_app, web_client
from bot.slack.context import SlackContext
from bot.slack.http import create_http_server, stop_http_server
from bot.slack.standin import SlackSender, StandInSlackAPI
from slack_support import BOT_TOKEN, BRIDGE_ARTICLE, MEMO_ARTICLE, SIGNING_SECRET, AskOnce, SocketModeStandIn


@pytest.fixture(scope="session")
def pipeline(real_pipeline, slack_articles):
    """The real pipeline with the test articles, each question answered once per session (see AskOnce)."""
    return AskOnce(real_pipeline)


@pytest.fixture(scope="session")
def slack_articles(ingest_article):
    """The articles in slack_support, in the session's pipeline."""
    for doc_id, title, text in (BRIDGE_ARTICLE, MEMO_ARTICLE):
        ingest_article(doc_id, text, title)


@pytest.fixture
def slack_api():
    with StandInSlackAPI() as api:
        yield api


@pytest.fixture
def byline(pipeline, tmp_path):
    context = SlackContext(pipeline, tmp_path, workers=4)
    yield context
    context.close()


@pytest.fixture
def slack_client(slack_api):
    return web_client(BOT_TOKEN, {"SLACK_API_URL": slack_api.base_url})


@pytest.fixture
def slack_app(slack_client, byline, pipeline):
    return build_app({}, pipeline, slack_client, byline=byline, environ={"SLACK_SIGNING_SECRET": SIGNING_SECRET})


@dataclass
class HttpBot:
    slack: SlackSender  # posts signed requests to the bot
    api: StandInSlackAPI  # what the bot called
    byline: SlackContext
    url: str


@pytest.fixture
def http_bot(slack_app, slack_api, byline):
    """The app served by waitress on a free localhost port, in a thread."""
    server = create_http_server(slack_app, SIGNING_SECRET, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while server.task_dispatcher.active_count and time.monotonic() < deadline:
        time.sleep(0.01)  # its worker threads idle: under load, a request sent sooner logs "Task queue depth"
    url = f"http://127.0.0.1:{server.effective_port}/slack/events"
    yield HttpBot(SlackSender(url, SIGNING_SECRET), slack_api, byline, url)
    stop_http_server(server, thread)


@pytest.fixture
def socket_mode_server():
    with SocketModeStandIn() as server:
        yield server

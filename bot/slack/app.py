"""Builds the Bolt app and runs it: Socket Mode when SLACK_APP_TOKEN is set, else HTTP served by waitress,
until SIGTERM or Ctrl-C; then it takes no new events and lets the answers under way finish.

Environment: SLACK_BOT_TOKEN (xoxb-…, required), SLACK_SIGNING_SECRET (required in HTTP mode),
SLACK_APP_TOKEN (xapp-…, selects Socket Mode), SLACK_API_URL (Web API base URL; default Slack's).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Mapping
from contextlib import contextmanager

from slack_bolt import Ack, App, BoltRequest, BoltResponse
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.slack.answering import asks_the_bot, journal_key
from bot.slack.context import SlackContext
from bot.slack.http import EVENTS_PATH, create_http_server, stop_http_server
from bot.slack.listeners import register_listeners
from retrieval.errors import BylineError

REPLAYED = "byline_replayed"  # in a request's context: a question from the journal, answered after a restart


def web_client(token: str, environ: Mapping[str, str] = os.environ) -> WebClient:
    """A Web API client that waits out 429s (Retry-After) and retries, on top of connection retries."""
    base_url = environ.get("SLACK_API_URL") or WebClient.BASE_URL
    client = WebClient(token=token, base_url=base_url.rstrip("/") + "/")
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    return client


def build_app(config: dict, pipeline, client: WebClient | None = None, *, byline: SlackContext | None = None,
              environ: Mapping[str, str] = os.environ) -> App:
    """The Bolt app with Byline's listeners. Verifies the bot token with auth.test (BoltError if refused).

    Pass `byline` to keep a handle on the answering context (its pool, feedback log); `close()` it when done.
    """
    if client is None:
        if not environ.get("SLACK_BOT_TOKEN"):
            raise BylineError("SLACK_BOT_TOKEN is not set: export the app's bot token (xoxb-…); see docs/slack.md")
        client = web_client(environ["SLACK_BOT_TOKEN"], environ)
    byline = byline or SlackContext.from_config(config, pipeline)
    # process_before_response=False: Bolt answers Slack as soon as a listener acks (events: at once).
    app = App(name="byline", client=client, signing_secret=environ.get("SLACK_SIGNING_SECRET", ""),
              process_before_response=False, listener_executor=byline.listener_pool)

    @app.middleware
    def skip_repeated_events(body: dict, next_, logger: logging.Logger):
        # Slack redelivers an event (X-Slack-Retry-Num, or a Socket Mode retry_attempt) when our ack was
        # late or lost; the event_id stays the same, so it is answered once.
        event_id = body.get("event_id")
        if event_id and not byline.seen_events.first_time(event_id):
            logger.info("skipping repeated event %s", event_id)
            return BoltResponse(status=200, body="")
        return next_()

    @app.middleware
    def journal_questions(body: dict, context, next_, logger: logging.Logger):
        # Before the ack: once Slack has its ack it never sends the event again, so a question is on disk
        # first, and a process killed before answering it answers it at its next start.
        event = body.get("event") if body.get("type") == "event_callback" else None
        if not isinstance(event, dict) or not asks_the_bot(event) or context.get(REPLAYED):
            return next_()
        key = journal_key(event.get("channel"), event.get("ts"))
        try:
            first_time = byline.journal.record(key, body)
        except Exception as exc:  # answer it all the same; only a kill before the reply could lose it
            logger.warning("could not record the question %s in the journal: %s", key, exc)
            first_time = True
        if not first_time:
            logger.info("skipping question %s: already taken (a redelivery after a restart)", key)
            return BoltResponse(status=200, body="")
        return next_()

    register_listeners(app, byline)
    # Last, after every listener: an event, command or button no listener took is acknowledged and dropped.
    app.event(re.compile(".*"))(_ignore)
    app.command(re.compile(".*"))(_acknowledge)
    app.action(re.compile(".*"))(_acknowledge)
    return app


def _ignore() -> None:
    pass


def _acknowledge(ack: Ack) -> None:
    ack()


def answer_pending_questions(app: App, byline: SlackContext) -> int:
    """Dispatches again every question the journal holds as taken but not answered; returns how many."""
    pending = byline.journal.pending()
    for _, body in pending:
        app.dispatch(BoltRequest(body=body, mode="socket_mode", context={REPLAYED: True}))
    return len(pending)


def start_socket_mode(app: App, app_token: str) -> SocketModeHandler:
    """Connects to Slack over Socket Mode and returns at once; `close()` the handler to disconnect."""
    handler = SocketModeHandler(app, app_token)
    try:
        handler.connect()
    except BaseException:
        handler.close()  # its threads start with it
        raise
    return handler


def run_slack(config: dict, pipeline, port: int | None = None, host: str = "0.0.0.0",
              environ: Mapping[str, str] = os.environ) -> bool:
    """Runs the bot until SIGTERM or Ctrl-C: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on `port`.
    Then it takes no new events and lets the answers under way finish, up to slack.shutdown_timeout_s;
    returns False if some did not (they stay in the journal, answered at the next start)."""
    app_token = environ.get("SLACK_APP_TOKEN")
    if not environ.get("SLACK_BOT_TOKEN"):
        raise BylineError("SLACK_BOT_TOKEN is not set: export the app's bot token (xoxb-…); see docs/slack.md")
    if not app_token and not environ.get("SLACK_SIGNING_SECRET"):
        raise BylineError("SLACK_SIGNING_SECRET is not set (needed to verify Slack's HTTP requests), or set "
                          "SLACK_APP_TOKEN (xapp-…) to use Socket Mode; see docs/slack.md")
    slack = config.get("slack") or {}
    byline = SlackContext.from_config(config, pipeline)
    stop = StopRequest()
    with stop.on_signals():
        try:
            try:
                app = build_app(config, pipeline, byline=byline, environ=environ)
            except BoltError as exc:
                raise BylineError(f"Slack refused SLACK_BOT_TOKEN: {exc}") from exc
            if replayed := answer_pending_questions(app, byline):
                print(f"Answering {replayed} question(s) taken but not answered before the last stop", file=sys.stderr)
            if app_token:
                _serve_socket_mode(app, app_token, stop)
            else:
                _serve_http(app, environ["SLACK_SIGNING_SECRET"], host,
                            int(port if port is not None else slack.get("port", 3000)),
                            int(slack.get("max_request_bytes") or 1 << 20), stop)
        finally:
            finished = _finish(byline, float(slack.get("shutdown_timeout_s", 25)))
    return finished


def _finish(byline: SlackContext, timeout: float) -> bool:
    if under_way := byline.pool.unfinished:
        print(f"Finishing {under_way} answer(s) under way (up to {timeout:g} s)", file=sys.stderr)
    if finished := byline.close(timeout=timeout):
        return True
    print(f"Stopped with {byline.pool.unfinished} answer(s) unfinished after {timeout:g} s; they will be answered "
          "at the next start", file=sys.stderr)
    return False


class StopRequest:
    """Set by SIGTERM or SIGINT (Ctrl-C) while `on_signals()` is active; a second signal acts at once."""

    def __init__(self):
        self.requested = False  # a plain flag: a signal handler must not take a lock the main thread may hold

    @contextmanager
    def on_signals(self):
        if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
            yield self
            return
        signals = (signal.SIGTERM, signal.SIGINT)
        previous = {number: signal.getsignal(number) for number in signals}

        def request_stop(number, frame):
            self.requested = True
            for other in signals:
                signal.signal(other, previous[other])

        for number in signals:
            signal.signal(number, request_stop)
        try:
            yield self
        finally:
            for number in signals:
                signal.signal(number, previous[number])

    def wait(self, poll_s: float = 0.2) -> None:
        while not self.requested:
            time.sleep(poll_s)


def _serve_socket_mode(app: App, app_token: str, stop: StopRequest) -> None:
    try:
        handler = start_socket_mode(app, app_token)
    except SlackApiError as exc:
        raise BylineError(f"Slack refused SLACK_APP_TOKEN: {exc.response.get('error')}") from exc
    print("Byline is connected to Slack over Socket Mode (Ctrl-C or SIGTERM to stop)", file=sys.stderr)
    try:
        stop.wait()
    finally:
        handler.close()


def _serve_http(app: App, signing_secret: str, host: str, port: int, max_request_bytes: int,
                stop: StopRequest) -> None:
    try:
        server = create_http_server(app, signing_secret, host=host, port=port, max_request_bytes=max_request_bytes)
    except OSError as exc:
        raise BylineError(f"cannot listen on port {port}: {exc.strerror}") from exc
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    print(f"Byline is listening on http://{host}:{server.effective_port}{EVENTS_PATH} (Ctrl-C or SIGTERM to stop)",
          file=sys.stderr, flush=True)
    try:
        stop.wait()
    finally:
        stop_http_server(server, thread)

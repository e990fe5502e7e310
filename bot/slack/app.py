"""Builds the Bolt app and runs it: Socket Mode when SLACK_APP_TOKEN is set, else HTTP served by waitress.

Environment: SLACK_BOT_TOKEN (xoxb-…, required), SLACK_SIGNING_SECRET (required in HTTP mode),
SLACK_APP_TOKEN (xapp-…, selects Socket Mode), SLACK_API_URL (Web API base URL; default Slack's).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping

import waitress
from slack_bolt import App, BoltResponse
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.slack.context import SlackContext
from bot.slack.listeners import register_listeners
from retrieval.errors import BylineError

EVENTS_PATH = "/slack/events"


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
              process_before_response=False)

    @app.middleware
    def skip_repeated_events(body: dict, next_, logger: logging.Logger):
        # Slack redelivers an event (X-Slack-Retry-Num, or a Socket Mode retry_attempt) when our ack was
        # late or lost; the event_id stays the same, so it is answered once.
        event_id = body.get("event_id")
        if event_id and not byline.seen_events.first_time(event_id):
            logger.info("skipping repeated event %s", event_id)
            return BoltResponse(status=200, body="")
        return next_()

    register_listeners(app, byline)
    return app


def create_wsgi_app(app: App) -> SlackRequestHandler:
    """The WSGI app: POST /slack/events and nothing else (404)."""
    return SlackRequestHandler(app, path=EVENTS_PATH)


def create_http_server(app: App, host: str = "0.0.0.0", port: int = 3000, **waitress_options):
    """A waitress server for the app (not started: call `.run()`); port 0 picks a free one (`.effective_port`)."""
    return waitress.create_server(create_wsgi_app(app), host=host, port=port, ident="byline", **waitress_options)


def start_socket_mode(app: App, app_token: str) -> SocketModeHandler:
    """Connects to Slack over Socket Mode and returns at once; `close()` the handler to disconnect."""
    handler = SocketModeHandler(app, app_token)
    try:
        handler.connect()
    except BaseException:
        handler.close()  # its threads start with it
        raise
    return handler


def run_slack(config: dict, pipeline, port: int | None = None, environ: Mapping[str, str] = os.environ) -> None:
    """Runs the bot until interrupted: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on `port`."""
    app_token = environ.get("SLACK_APP_TOKEN")
    if not environ.get("SLACK_BOT_TOKEN"):
        raise BylineError("SLACK_BOT_TOKEN is not set: export the app's bot token (xoxb-…); see docs/slack.md")
    if not app_token and not environ.get("SLACK_SIGNING_SECRET"):
        raise BylineError("SLACK_SIGNING_SECRET is not set (needed to verify Slack's HTTP requests), or set "
                          "SLACK_APP_TOKEN (xapp-…) to use Socket Mode; see docs/slack.md")
    byline = SlackContext.from_config(config, pipeline)
    try:
        try:
            app = build_app(config, pipeline, byline=byline, environ=environ)
        except BoltError as exc:
            raise BylineError(f"Slack refused SLACK_BOT_TOKEN: {exc}") from exc
        if app_token:
            _serve_socket_mode(app, app_token)
        else:
            _serve_http(app, int(port or (config.get("slack") or {}).get("port") or 3000))
    finally:
        byline.close()  # lets answers in progress finish


def _serve_socket_mode(app: App, app_token: str) -> None:
    try:
        handler = start_socket_mode(app, app_token)
    except SlackApiError as exc:
        raise BylineError(f"Slack refused SLACK_APP_TOKEN: {exc.response.get('error')}") from exc
    print("Byline is connected to Slack over Socket Mode (Ctrl-C to stop)", file=sys.stderr)
    try:
        threading.Event().wait()
    finally:
        handler.close()


def _serve_http(app: App, port: int) -> None:
    try:
        server = create_http_server(app, port=port)
    except OSError as exc:
        raise BylineError(f"cannot listen on port {port}: {exc.strerror}") from exc
    print(f"Byline is listening on http://0.0.0.0:{server.effective_port}{EVENTS_PATH} (Ctrl-C to stop)",
          file=sys.stderr)
    server.run()

"""Byline's HTTP endpoint for Slack: Bolt's WSGI adapter behind a check that refuses what it cannot serve.

Bolt parses a request's body before it checks the signature, and a body it cannot read (broken JSON, a
wrong-typed field its context extraction trips on) ends in HTTP 500 and a traceback. Here every request is
checked in order — UTF-8, signature (401), readable (400), the shape Byline serves (400, bot/slack/payloads.py)
— and a refusal is one log line. Only then does Bolt dispatch it.
"""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import parse_qsl

import waitress
from slack_bolt import App, BoltContext, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.request.internals import build_context, build_normalized_headers, extract_content_type, parse_body
from slack_sdk.signature import SignatureVerifier
from waitress import wasyncore
from waitress.channel import HTTPChannel

from bot.slack.payloads import one_line, payload_problem, request_kind

EVENTS_PATH = "/slack/events"
logger = logging.getLogger(__name__)


class CheckedRequestHandler(SlackRequestHandler):
    """The WSGI app: POST /slack/events, checked, then Bolt; anything else 404."""

    def __init__(self, app: App, signing_secret: str, path: str = EVENTS_PATH):
        super().__init__(app, path=path)
        self.verifier = SignatureVerifier(signing_secret or "-")  # an empty secret verifies nothing

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        headers = request.get_headers()
        try:
            body = _read_body(request.environ).decode("utf-8")
        except UnicodeDecodeError:
            return _refuse(400, "the body is not UTF-8")
        if not self._signed(body, headers):
            return _refuse(401, "invalid or stale signature")
        try:
            payload = _parse(body, headers)
        except (ValueError, RecursionError) as exc:  # JSON errors are ValueErrors
            return _refuse(400, f"unreadable body ({type(exc).__name__}: {one_line(str(exc), 80)})")
        if problem := payload_problem(payload):
            return _refuse(400, problem)
        if request_kind(payload) == "app_rate_limited":
            logger.warning("Slack is holding back events: this app went over the Events API rate limit")
            return BoltResponse(status=200, body="")
        try:
            bolt_request = BoltRequest(body=body, query=request.query_string, headers=headers)
        except Exception as exc:  # BoltRequest only parses and reads ids: whatever it raises, the body is at fault
            return _refuse(400, f"a body Bolt cannot read ({type(exc).__name__}: {one_line(str(exc), 80)})")
        if bolt_request.body != payload:  # see _parse
            bolt_request.body = payload
            bolt_request.context = build_context(BoltContext({}), payload)
        return self.app.dispatch(bolt_request)

    def _signed(self, body: str, headers: dict) -> bool:
        try:
            return self.verifier.is_valid_request(body, headers)
        except ValueError:  # a timestamp that is not a number
            return False


def _read_body(environ: dict) -> bytes:
    stream = environ.get("wsgi.input")
    return stream.read(int(environ.get("CONTENT_LENGTH") or 0)) if stream else b""


def _parse(body: str, headers: dict):
    """The body as Bolt reads it, except that Bolt reads any form body containing the word "payload" as an
    interactivity payload, so a slash command asking about a "payload" would arrive empty."""
    parsed = parse_body(body, extract_content_type(build_normalized_headers(headers)))
    if parsed == {} and body and not body.startswith("{"):
        fields = dict(parse_qsl(body, keep_blank_values=True))
        if "payload" not in fields:
            return fields
    return parsed


def _refuse(status: int, reason: str) -> BoltResponse:
    logger.warning("refused a Slack request (HTTP %d): %s", status, reason)
    return BoltResponse(status=status, body=reason)


def create_http_server(app: App, signing_secret: str, host: str = "0.0.0.0", port: int = 3000,
                       max_request_bytes: int = 1 << 20, **waitress_options):
    """A waitress server for the app (not started: call `.run()`); port 0 picks a free one (`.effective_port`).
    A body over `max_request_bytes` gets 413 from waitress before anything reads it."""
    return waitress.create_server(CheckedRequestHandler(app, signing_secret), host=host, port=port, ident="byline",
                                  max_request_body_size=max_request_bytes, **waitress_options)


def stop_http_server(server, thread: threading.Thread, grace_s: float = 5.0) -> None:
    """Stops taking connections, lets the requests already received get their responses (up to `grace_s`),
    then closes every connection and waits for `thread`, the one running `server.run()`."""
    _on_loop(server, lambda: wasyncore.dispatcher.close(server))  # the listening socket only
    deadline = time.monotonic() + grace_s
    while _responding(server) and time.monotonic() < deadline:
        time.sleep(0.02)
    _on_loop(server, lambda: wasyncore.close_all(server._map))
    thread.join(timeout=grace_s)
    server.task_dispatcher.shutdown(timeout=grace_s)


def _on_loop(server, work) -> None:
    """Runs `work` on the server's loop thread, through its wake-up pipe; here, if that pipe is already
    closed (seen once in a test run: EBADF on the write), so that stopping never fails."""
    try:
        server.trigger.pull_trigger(work)
    except OSError:
        work()


def _responding(server) -> bool:
    dispatcher = server.task_dispatcher
    if dispatcher.active_count or dispatcher.queue:
        return True
    return any(isinstance(c, HTTPChannel) and (c.requests or c.total_outbufs_len) for c in list(server._map.values()))

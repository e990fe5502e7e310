"""A local stand-in for Slack, for tests and `byline bench slack`; nothing here contacts Slack.

- `StandInSlackAPI`: the Web API (and response_url endpoints) on 127.0.0.1, recording every call,
  able to answer a call with a 429 or an error, or to hold calls of a method until released; it also
  serves uploaded files (`add_file`) at their `url_private_download`, to a request with a bot token
  only, as Slack does (others get a sign-in page).
- `SlackSender`: posts correctly signed requests of Slack's real payload shapes to the bot's HTTP endpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

TEAM_ID = "T0BYLINE"
APP_ID = "A0BYLINE"
BOT_USER_ID = "U0BYLINEBOT"
BOT_ID = "B0BYLINEBOT"


@dataclass
class Call:
    method: str  # a Web API method ("chat.postMessage") or "response_url"
    params: dict
    status: int  # the HTTP status the stand-in answered
    error: str | None = None  # the `{"ok": false}` error it answered, if any
    token: str | None = None  # from the Authorization header
    path: str = ""  # the URL path called (a response_url's ends in its name)
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of calls must not overflow the listen backlog (1 s SYN retries)


class StandInSlackAPI:
    """`base_url` goes to WebClient(base_url=...); `response_url(name)` makes a response_url to record posts to."""

    def __init__(self, socket_url: str | None = None):
        self.socket_url = socket_url  # what apps.connections.open hands out
        self._calls: list[Call] = []
        self._failures: dict[str, list[tuple[str, int]]] = {}  # method -> planned (error, HTTP status)
        self._holds: dict[str, threading.Event] = {}  # method -> set when its held calls may go on
        self._held: dict[str, int] = {}  # method -> calls waiting on their hold now
        self._changed = threading.Condition()
        self._ts = itertools.count(1)
        self._files: dict[str, tuple[dict, bytes]] = {}  # file id -> (Slack's file object, content)
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="standin-slack-api",
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return self.url + "/api/"

    def response_url(self, name: str | None = None) -> str:
        return f"{self.url}/response/{name or uuid.uuid4().hex}"

    def __enter__(self) -> StandInSlackAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, method: str, *, error: str | None = None, status: int | None = None, times: int = 1) -> None:
        """The next `times` calls of `method` fail: with `{"ok": false, "error": error}` (HTTP `status`, default 200)
        or, without an error, with 429 ratelimited and Retry-After: 1."""
        planned = ("ratelimited", 429) if error is None else (error, status or 200)
        with self._changed:
            self._failures.setdefault(method, []).extend([planned] * times)

    def add_file(self, name: str, content: bytes, mimetype: str = "text/plain") -> dict:
        """An uploaded file: its Slack file object, as an event's `files` entry carries it."""
        file_id = f"F{len(self._files) + 1:08d}"
        download = f"{self.url}/files-pri/{TEAM_ID}-{file_id}/download/{name}"
        file = {"id": file_id, "name": name, "title": name, "mimetype": mimetype,
                "filetype": name.rsplit(".", 1)[-1], "size": len(content), "mode": "hosted",
                "url_private": download.replace("/download/", "/"), "url_private_download": download}
        self._files[file_id] = (file, content)
        return file

    def hold(self, method: str) -> None:
        """Calls of `method` from now on wait, unanswered and unrecorded, until `release(method)`."""
        with self._changed:
            self._holds[method] = threading.Event()

    def release(self, method: str) -> None:
        with self._changed:
            if gate := self._holds.pop(method, None):
                gate.set()

    def wait_held(self, method: str, count: int = 1, timeout: float = 30.0) -> None:
        """Returns once at least `count` calls of `method` are waiting on a hold; AssertionError after `timeout`."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._held.get(method, 0) >= count, timeout):
                raise AssertionError(f"{self._held.get(method, 0)} {method} calls held after {timeout}s, "
                                     f"expected {count}")

    def _wait_if_held(self, method: str) -> None:
        with self._changed:
            gate = self._holds.get(method)
            if gate is None:
                return
            self._held[method] = self._held.get(method, 0) + 1
            self._changed.notify_all()
        gate.wait()
        with self._changed:
            self._held[method] -= 1

    def calls(self, method: str | None = None, *, ok_only: bool = True) -> list[Call]:
        with self._changed:
            return [c for c in self._calls if (method is None or c.method == method) and (c.ok or not ok_only)]

    def wait_for(self, method: str, count: int = 1, timeout: float = 30.0) -> list[Call]:
        """The successful calls of `method` once there are at least `count`; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := [c for c in self._calls if c.method == method and c.ok]) < count:
                if (remaining := deadline - time.monotonic()) <= 0:
                    raise AssertionError(f"{len(found)} successful {method} calls after {timeout}s, expected {count}")
                self._changed.wait(remaining)
            return found

    def _record(self, method: str, params: dict, token: str | None, path: str) -> tuple[int, dict, dict]:
        with self._changed:
            planned = self._failures.get(method)
            error, status = planned.pop(0) if planned else (None, 200)
            self._calls.append(Call(method, params, status, error, token, path))
            self._changed.notify_all()
        if error:
            return status, {"ok": False, "error": error}, {"Retry-After": "1"} if status == 429 else {}
        return 200, self._answer(method, params), {}

    def _answer(self, method: str, params: dict) -> dict:
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        if method == "auth.test":
            return {"ok": True, "url": "https://byline-test.slack.com/", "team": "Byline test", "user": "byline",
                    "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.socket_url} if self.socket_url else {"ok": False, "error": "no_socket"}
        if method == "chat.postMessage":
            return {"ok": True, "channel": params.get("channel"), "ts": ts,
                    "message": {"type": "message", "bot_id": BOT_ID, "user": BOT_USER_ID, "ts": ts,
                                "text": params.get("text"), "thread_ts": params.get("thread_ts")}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "files.info":
            found = self._files.get(params.get("file", ""))
            return {"ok": True, "file": found[0]} if found else {"ok": False, "error": "file_not_found"}
        return {"ok": True}

    def _download(self, path: str, token: str | None) -> tuple[int, bytes, str]:
        """A files-pri download: the file to a bot token; Slack's sign-in page (200, HTML) to anyone else."""
        file_id = path.split("/")[2].split("-", 1)[-1] if path.count("/") >= 3 else ""
        found = self._files.get(file_id)
        with self._changed:
            self._calls.append(Call("files.download", {"path": path}, 200 if found else 404, None, token))
            self._changed.notify_all()
        if not found:
            return 404, b"Not found", "text/plain"
        if not (token or "").startswith("xoxb-"):
            return 200, b"<!DOCTYPE html><html><body>Sign in to Slack</body></html>", "text/html; charset=utf-8"
        return 200, found[1], found[0]["mimetype"]

    def _handler_class(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    params = json.loads(raw or "{}")
                else:
                    params = dict(parse_qsl(raw))
                if self.path.startswith("/api/"):
                    method = self.path[len("/api/"):].split("?")[0]
                elif self.path.startswith("/response/"):
                    method = "response_url"
                else:
                    self.send_error(404)
                    return
                token = self.headers.get("Authorization", "").removeprefix("Bearer ") or params.get("token")
                standin._wait_if_held(method)
                status, body, headers = standin._record(method, params, token, self.path)
                payload = ("ok" if method == "response_url" and status == 200 else json.dumps(body)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                try:
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller is gone (a test killed the bot while this call was held)

            def do_GET(self):
                if not self.path.startswith("/files-pri/"):
                    self.send_error(404)
                    return
                token = self.headers.get("Authorization", "").removeprefix("Bearer ") or None
                status, payload, content_type = standin._download(self.path, token)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        return Handler


# --- Slack's request shapes ---------------------------------------------------------------------------


def new_ts() -> str:
    return f"{time.time():.6f}"


def event_callback(event: dict, event_id: str | None = None) -> dict:
    return {"token": "legacy-token", "team_id": TEAM_ID, "api_app_id": APP_ID, "event": event,
            "type": "event_callback", "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(),
            "event_time": int(time.time()), "is_ext_shared_channel": False,
            "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True,
                                "is_enterprise_install": False}]}


def mention_event(question: str, *, channel: str = "C0NEWS", user: str = "U0ASKER", ts: str | None = None,
                  thread_ts: str | None = None) -> dict:
    ts = ts or new_ts()
    event = {"type": "app_mention", "user": user, "text": f"<@{BOT_USER_ID}> {question}", "ts": ts,
             "channel": channel, "event_ts": ts, "team": TEAM_ID, "client_msg_id": str(uuid.uuid4())}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def dm_event(text: str, *, channel: str = "D0ASKER", user: str = "U0ASKER", ts: str | None = None,
             **extra) -> dict:
    ts = ts or new_ts()
    return {"type": "message", "channel_type": "im", "user": user, "text": text, "ts": ts, "channel": channel,
            "event_ts": ts, "team": TEAM_ID, "client_msg_id": str(uuid.uuid4()), **extra}


def slash_command(text: str, *, response_url: str, channel: str = "C0NEWS", user: str = "U0ASKER") -> dict:
    return {"token": "legacy-token", "team_id": TEAM_ID, "team_domain": "byline-test", "channel_id": channel,
            "channel_name": "news", "user_id": user, "user_name": "asker", "command": "/byline", "text": text,
            "api_app_id": APP_ID, "is_enterprise_install": "false", "response_url": response_url,
            "trigger_id": "1.2.3"}


def block_actions(action: dict, *, response_url: str, channel: str = "C0NEWS", user: str = "U0ASKER",
                  ephemeral: bool = True) -> dict:
    """A button click; `action` is the clicked element as rendered (action_id, value, text)."""
    return {"type": "block_actions", "user": {"id": user, "username": "asker", "name": "asker", "team_id": TEAM_ID},
            "api_app_id": APP_ID, "token": "legacy-token", "trigger_id": "1.2.3",
            "container": {"type": "message", "message_ts": new_ts(), "channel_id": channel, "is_ephemeral": ephemeral},
            "team": {"id": TEAM_ID, "domain": "byline-test"}, "enterprise": None, "is_enterprise_install": False,
            "channel": {"id": channel, "name": "news"}, "state": {"values": {}}, "response_url": response_url,
            "actions": [{**action, "block_id": "byline_actions", "action_ts": new_ts()}]}


class SlackSender:
    """Posts signed requests to the bot's endpoint, as Slack does; returns (status, body text)."""

    def __init__(self, url: str, signing_secret: str):
        self.url = url
        self.signing_secret = signing_secret

    def post(self, body: str | bytes, content_type: str | None, *, timestamp: int | str | None = None,
             signature: str | None = None, headers: dict | None = None) -> tuple[int, str]:
        """`body` as it is sent (a str is sent as UTF-8), signed over its bytes unless `signature` is given;
        `content_type` None sends no Content-Type."""
        raw = body.encode("utf-8") if isinstance(body, str) else body
        timestamp = str(int(time.time()) if timestamp is None else timestamp)
        headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature or self.sign(timestamp, raw),
                   **({"Content-Type": content_type} if content_type is not None else {}), **(headers or {})}
        url = urlsplit(self.url)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        try:  # http.client, unlike urllib, adds no Content-Type of its own
            connection.putrequest("POST", url.path, skip_accept_encoding=True)
            for name, value in {**headers, "Content-Length": str(len(raw))}.items():
                connection.putheader(name, value)
            connection.endheaders()
            try:
                connection.send(raw)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered (413) and hung up before taking the whole body: read what it said
            response = connection.getresponse()
            return response.status, response.read().decode("utf-8", "replace")
        finally:
            connection.close()

    def sign(self, timestamp: str, raw: bytes) -> str:
        """Slack's v0 signature, over the body's bytes (which need not be UTF-8)."""
        message = b"v0:" + timestamp.encode() + b":" + raw
        return "v0=" + hmac.new(self.signing_secret.encode(), message, hashlib.sha256).hexdigest()

    def event(self, event: dict, *, event_id: str | None = None, retry_num: int | None = None, **kwargs):
        return self.event_body(event_callback(event, event_id), retry_num=retry_num, **kwargs)

    def event_body(self, body: dict, *, retry_num: int | None = None, **kwargs):
        headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"} if retry_num else {}
        return self.post(json.dumps(body), "application/json", headers=headers, **kwargs)

    def command(self, form: dict, **kwargs):
        return self.post(urlencode(form), "application/x-www-form-urlencoded", **kwargs)

    def action(self, payload: dict, **kwargs):
        return self.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded", **kwargs)

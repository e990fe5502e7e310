"""Test helpers for the Slack tests (not fixtures): the article asked about, a stand-in Socket Mode server,
and what a user would read in a message."""

from __future__ import annotations

import functools
import json
import threading

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-test-token"

# The articles the tests ask about. The memo's sentence carries Slack control sequences that must never
# ping (the sentence splitter cuts after "<!", so the cited sentence ends in "… <@U123> and <!").
BRIDGE_ARTICLE = (
    "slack-test-riverside-bridge",
    "Riverside council approves bridge budget",
    "The Riverside council met on Monday evening to vote on the new Riverside bridge. "
    "Councillors approved a budget of 12 million euros for the Riverside bridge. "
    "Local shop owners welcomed the decision.",
)
MEMO_ARTICLE = (
    "slack-test-greyport-memo",
    "Greyport lighthouse to be repainted",
    "The Greyport lighthouse will be repainted bright red, a harbour memo to <@U123> and <!channel> said. "
    "The work is paid for by the Greyport harbour trust.",
)
BRIDGE_QUESTION = "What budget did the Riverside council approve for the bridge?"
MEMO_QUESTION = "What colour will the Greyport lighthouse be repainted?"


class AskOnce:
    """A pipeline that asks the wrapped (real) one at most once per distinct question and reuses the result.

    These tests are about the Slack side; re-answering the same few questions dozens of times would only
    add minutes on 2 cores.
    """

    def __init__(self, pipeline):
        self.ask = functools.lru_cache(maxsize=None)(pipeline.ask)


class SocketModeStandIn:
    """Slack's Socket Mode side: a WebSocket server that sends envelopes and collects the bot's acks."""

    def __init__(self):
        self.acks: list[dict] = []
        self._connected = threading.Event()
        self._acked = threading.Condition()
        self._connection = None
        self._server = serve(self._session, "127.0.0.1", 0)
        self._thread = threading.Thread(target=self._server.serve_forever, name="socket-mode-standin", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link/?ticket=test"

    def _session(self, connection):
        self._connection = connection
        connection.send(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0"}}))
        self._connected.set()
        try:
            for message in connection:
                with self._acked:
                    self.acks.append(json.loads(message))
                    self._acked.notify_all()
        except ConnectionClosed:  # the SDK's client may hang up without a close frame
            pass

    def send(self, envelope: dict) -> None:
        assert self._connected.wait(10), "the bot never connected"
        self._connection.send(json.dumps(envelope))

    def wait_for_ack(self, envelope_id: str, timeout: float = 10) -> dict:
        with self._acked:
            assert self._acked.wait_for(lambda: any(a.get("envelope_id") == envelope_id for a in self.acks), timeout)
            return next(a for a in self.acks if a.get("envelope_id") == envelope_id)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()



def visible_texts(message: dict) -> list[str]:
    """Every string Slack would render from a message: `text` and the blocks' text objects (not button values)."""
    found = [message.get("text") or ""]

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text"):
                found.append(node["text"])
            for key, value in node.items():
                if key != "value":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(message.get("blocks") or [])
    return found

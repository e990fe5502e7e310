"""Test helpers for the Slack tests (not fixtures): the articles asked about, a stand-in pipeline,
a stand-in Socket Mode server, and what a user would read in a message."""

from __future__ import annotations

import json
import re
import threading

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve

from retrieval.answer import Answer, AnswerResult, Citation
from retrieval.errors import BylineError

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-test-token"

# Articles the tests ask about. The memo sentence carries Slack control sequences that must never ping.
BRIDGE_ARTICLE = (
    "slack-test-riverside-bridge",
    "Riverside council approves bridge budget",
    "The Riverside council met on Monday evening to vote on the new Riverside bridge. "
    "Councillors approved a budget of 12 million euros for the Riverside bridge. "
    "The council memo, headed <!channel> and <!here> and addressed to <@U123>, said construction of the "
    "Riverside bridge starts in May. Local shop owners welcomed the decision.",
)
BRIDGE_QUESTION = "What budget did the Riverside council approve for the bridge?"
MEMO_QUESTION = "When does construction of the Riverside bridge start?"


class StandInPipeline:
    """Answers with the article sentence sharing the most words with the question (thread-safe, read-only
    after ingestion); a stand-in for BylinePipeline until the real one is available."""

    _WORD = re.compile(r"\w+")
    _STOP = {"the", "a", "an", "of", "for", "to", "in", "on", "did", "does", "what", "when", "who", "is", "was",
             "and", "how", "much", "many"}

    def __init__(self):
        self.articles: dict[str, tuple[str, str]] = {}

    def ingest_text(self, doc_id: str, text: str, title: str) -> None:
        self.articles[doc_id] = (title, text)

    def _words(self, text: str) -> set[str]:
        return {w[:5] for w in self._WORD.findall(text.lower()) if w not in self._STOP}

    def ask(self, question: str) -> AnswerResult:
        if not question.strip():
            raise BylineError("Please ask a question.")
        wanted = self._words(question)
        scored = []
        for doc_id, (title, text) in self.articles.items():
            sentences = re.findall(r"[^.]+\.\s*", text)
            for i, sentence in enumerate(sentences):
                scored.append((len(wanted & self._words(sentence)), doc_id, title, sentences, i))
        scored.sort(key=lambda s: -s[0])
        citations = []
        for overlap, doc_id, title, sentences, i in scored[:2]:
            before, sentence = "".join(sentences[max(0, i - 1):i]), sentences[i].strip()
            snippet = before + sentence
            citations.append(Citation(doc_id, title, "Stand-in Times", "2024-05-02", None, snippet,
                                      len(before), len(snippet), 0, 0))
        if not scored or scored[0][0] < 2:
            for c in citations:
                c.answer_start = c.answer_end = 0
            return AnswerResult(question, True, [], 1.0, citations)
        return AnswerResult(question, False, [Answer(citations[0].span_text, 0.8, citations[:1])], 1.0)


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

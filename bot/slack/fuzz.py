"""Hypothesis strategies for `byline bench slack --fuzz`: requests Slack could sign, well-formed or not, each
knowing where exactly one reply is due (most are due none).

The mix: broken JSON and bodies that are not UTF-8; odd content types; mentions with one of `event`, `user`,
`text`, `channel`, `ts`, `thread_ts`, `blocks` missing, null, of the wrong type, 1 MB long or nested past
the limit; unknown event types and bots' messages; slash commands and button clicks with broken fields or
a broken `payload`; odd timestamps; and well-formed questions whose text carries RTL marks, zero-width
joiners, NUL and other odd Unicode (lone surrogates go in through JSON escapes, or as bytes that are not
UTF-8). A question the bot can read is due a reply; anything it cannot read, or should ignore, is due none.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from hypothesis import strategies as st

from bot.slack.payloads import MAX_DEPTH, MAX_TEXT, SLACK_ID, SLACK_TS
from bot.slack.standin import block_actions, dm_event, event_callback, mention_event, slash_command

Reply = tuple  # ("thread", channel, thread_ts) or ("url", response_url name)


@dataclass
class FuzzCase:
    what: str  # "kind: detail", for the report
    body: bytes
    content_type: str | None = "application/json"  # None: no Content-Type header at all
    due: tuple[Reply, ...] = ()  # where exactly one reply is due
    timestamp: str | None = None  # the signed X-Slack-Request-Timestamp; None: now


WORDS = ["Who", "blocked", "the", "Pentagon's", "designation", "of", "Xiaomi", "?", "payload", "court", "what",
         "<@U0OTHER>", "<!channel>", "<#C1|news>", "<https://x.example|x>", "&lt;", "&amp;", "' OR 1=1 --", "{{7*7}}"]
ODD = ["\u200f", "\u200e", "\u202e", "\u2066", "\u200d", "\u200b", "\ufeff", "\x00", "a\x00b", "\u0301", "\u2028",
       "\r\n", "\t", "\U0001F469\u200d\U0001F469\u200d\U0001F467", "\U0010ffff", "\ufdfa", "\U0001D518", "\x7f",
       "\u0645\u0631\u062d\u0628\u0627", "\u05e9\u05dc\u05d5\u05dd"]
LONE_SURROGATE = "\ud800"
HUGE_SIZES = [MAX_TEXT + 1, 300_000, 1_000_000]
CONTENT_TYPES = [None, "", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                 "application/xml", "application/json; charset=utf-16", "APPLICATION/JSON", "application/octet-stream"]
BOT_BUTTONS = ["feedback_up", "feedback_down", "share_answer"]
OTHER_TYPES = ["view_submission", "shortcut", "message_action", "block_suggestion", "interactive_message", "",
               "block_actions "]

texts = st.lists(st.one_of(st.sampled_from(WORDS), st.sampled_from(ODD), st.text(max_size=12)),
                 max_size=12).map(" ".join)
odd_strings = st.lists(st.one_of(st.sampled_from(ODD), st.text(min_size=1, max_size=8)), min_size=1,
                       max_size=4).map("".join)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4),
                           max_leaves=12)
huge_strings = st.builds(lambda piece, size: piece * -(-size // len(piece)),  # at least `size` characters
                         st.sampled_from(["x", "\u00e9", "\u200d", "\U0001F44D", "<@U1> "]),
                         st.sampled_from(HUGE_SIZES))
not_strings = st.one_of(st.integers(), st.floats(), st.booleans(), st.lists(json_values, max_size=3),
                        st.dictionaries(st.text(max_size=5), json_values, max_size=3))
rich_text_blocks = st.lists(st.fixed_dictionaries({
    "type": st.sampled_from(["rich_text", "section", "divider"]), "block_id": st.text(max_size=8),
    "elements": st.lists(json_values, max_size=3)}), max_size=3)


class FuzzCases:
    """`strategy()` draws FuzzCases; every case gets channels, timestamps and response_urls of its own, so
    a reply can be traced to the request it answers. `response_url(name)` is the stand-in Web API's."""

    def __init__(self, response_url: Callable[[str], str]):
        self.response_url = response_url
        self._numbers = itertools.count(1)

    def strategy(self) -> st.SearchStrategy[FuzzCase]:
        return st.one_of(self.broken_json(), self.content_types(), self.mutated_mention(), self.mutated_mention(),
                         self.question(), self.ignored(), self.command(), self.click(), self.odd_timestamp())

    # -- well-formed ---------------------------------------------------------------------------------
    def question(self):
        """A person's mention or DM, its text full of odd Unicode: one reply due in its thread."""
        @st.composite
        def draw_case(draw):
            event = self._mention(draw) if draw(st.booleans()) else self._dm(draw)
            return FuzzCase("question: " + ("mention" if event["type"] == "app_mention" else "DM"),
                            _json(event_callback(event), draw), due=(_thread(event),))
        return draw_case()

    def ignored(self):
        """Bots' messages, edits, channel chatter, unknown event types, URL checks: 200 and no reply."""
        @st.composite
        def draw_case(draw):
            how = draw(st.sampled_from(["bot mention", "bot DM", "edited DM", "channel message", "unknown event",
                                        "url_verification", "ssl_check"]))
            if how == "url_verification":
                challenge = {"type": how, "token": "x", "challenge": draw(st.text(max_size=40))}
                return FuzzCase(f"ignored: {how}", _json(challenge, draw))
            if how == "ssl_check":
                return FuzzCase(f"ignored: {how}", urlencode({"ssl_check": "1", "token": "x"}).encode(),
                                "application/x-www-form-urlencoded")
            if how == "unknown event":
                kind = draw(st.sampled_from(["reaction_added", "team_join", "app_home_opened", "file_shared"])
                            | st.text(min_size=1, max_size=30).filter(lambda t: t not in ("app_mention", "message")))
                event = {**draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4)), "type": kind}
            elif how == "bot mention":
                event = {**self._mention(draw), "bot_id": "B0OTHER"}
            elif how == "bot DM":
                event = {**self._dm(draw), "subtype": "bot_message", "bot_id": "B0OTHER"}
            elif how == "edited DM":
                event = {**self._dm(draw), "subtype": draw(st.sampled_from(["message_changed", "message_deleted",
                                                                            "channel_join"]))}
            else:
                event = {**self._dm(draw), "channel_type": "channel"}
            return FuzzCase(f"ignored: {how}", _json(event_callback(event), draw))
        return draw_case()

    # -- malformed -----------------------------------------------------------------------------------
    def broken_json(self):
        @st.composite
        def draw_case(draw):
            good = json.dumps(event_callback(self._mention(draw))).encode()
            how = draw(st.sampled_from(["truncated", "trailing garbage", "random text", "random bytes", "not UTF-8",
                                        "not an object", "empty"]))
            if how == "truncated":
                body = good[:_cut(draw, len(good))]
            elif how == "trailing garbage":
                body = good + draw(st.sampled_from([b"}", b"]", b",", b"x", b"{}"]))
            elif how == "random text":
                body = draw(st.text()).encode("utf-8")
            elif how == "random bytes":
                body = draw(st.binary(max_size=2000))
            elif how == "not UTF-8":
                at = _cut(draw, len(good) + 1)
                body = good[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"])) + good[at:]
            elif how == "not an object":
                body = json.dumps(draw(st.one_of(st.lists(json_values, max_size=3), st.integers(), st.text(),
                                                 st.none()))).encode()
            else:
                body = b""
            return FuzzCase(f"invalid JSON: {how}", body,
                            draw(st.sampled_from(["application/json", "application/json; charset=utf-8"])))
        return draw_case()

    def content_types(self):
        """A mention under an odd Content-Type. Bolt reads a body that starts with "{" as JSON whatever its
        type, so that one is a question; a form body, or JSON after whitespace under a type that is not
        exactly application/json, is unreadable."""
        @st.composite
        def draw_case(draw):
            event = self._mention(draw)
            content_type = draw(st.sampled_from(CONTENT_TYPES))
            shape = draw(st.sampled_from(["JSON", "JSON after whitespace", "form"]))
            if shape == "form":
                body, due = urlencode({k: str(v) for k, v in event.items()}).encode(), False
            elif shape == "JSON":
                body, due = json.dumps(event_callback(event)).encode(), True
            else:
                body = b" \n" + json.dumps(event_callback(event)).encode()
                due = (content_type or "").split(";")[0] == "application/json"
            return FuzzCase(f"content type: {shape} as {content_type!r}", body, content_type,
                            (_thread(event),) if due else ())
        return draw_case()

    def mutated_mention(self):
        """A mention with one field missing, null, of the wrong type, huge, nested too deep, an odd string or
        a lone surrogate. Only a missing optional field (thread_ts, blocks), or an odd string that is still
        valid there (any text; a user or channel id of capitals and digits), leaves a question to answer."""
        @st.composite
        def draw_case(draw):
            event = self._mention(draw)
            body = event_callback(event)
            field = draw(st.sampled_from(["event", "user", "text", "channel", "ts", "thread_ts", "blocks"]))
            how = draw(st.sampled_from(["missing", "null", "wrong type", "huge", "deep", "odd string",
                                        "lone surrogate"]))
            target = body if field == "event" else event
            due = False
            deep = None
            if how == "missing":
                target.pop(field, None)
                due = field in ("thread_ts", "blocks")
            elif how == "null":
                target[field] = None
            elif how == "wrong type":
                target[field] = draw(st.one_of(st.integers(), st.floats(), st.booleans(), st.text(),
                                               st.dictionaries(st.text(max_size=5), json_values, max_size=3))
                                     if field == "blocks" else
                                     st.one_of(st.integers(), st.text(), st.lists(json_values, max_size=3))
                                     if field == "event" else not_strings)
            elif how == "huge":
                target[field] = draw(huge_strings)
            elif how == "deep":
                target[field] = "\0deep\0"
                deep = draw(st.integers(MAX_DEPTH + 1, 20_000))
            elif how == "odd string":
                target[field] = draw(odd_strings)
                pattern = {"text": "", "user": SLACK_ID, "channel": SLACK_ID, "ts": SLACK_TS, "thread_ts": SLACK_TS}
                due = field in pattern and re.search(pattern[field], target[field]) is not None
            else:
                target[field] = "Q" + LONE_SURROGATE
            raw = _json(body, draw)
            if deep is not None:  # nested too deep for json.dumps to build: spliced in as text
                raw = raw.replace(b'"\\u0000deep\\u0000"', b"[" * deep + b"]" * deep)
            return FuzzCase(f"mention field: {field} {how}", raw, due=(_thread(event),) if due else ())
        return draw_case()

    def command(self):
        """/byline: well-formed (a reply due at its response_url), missing a field, with a response_url
        that is not a URL, over-long text, a command Byline does not have, or sent as JSON."""
        @st.composite
        def draw_case(draw):
            name = f"command-{next(self._numbers):07d}"
            form = slash_command(draw(texts), response_url=self.response_url(name), channel=self._channel(draw))
            how = draw(st.sampled_from(["question", "question", "missing field", "bad response_url", "huge text",
                                        "other command", "as JSON"]))
            due = how in ("question", "as JSON")
            if how == "missing field":
                form.pop(draw(st.sampled_from(["command", "channel_id", "user_id", "response_url"])))
            elif how == "bad response_url":
                form["response_url"] = draw(st.sampled_from(["", "nope", "javascript:alert(1)", "ftp://x/y",
                                                             "http://", "https://a b"]))
            elif how == "huge text":
                form["text"] = draw(huge_strings)
            elif how == "other command":
                form["command"] = draw(st.sampled_from(["/other", "byline", "", "/BYLINE"]))
            if how == "as JSON":
                return FuzzCase(f"command: {how}", json.dumps(form).encode(), due=(("url", name),))
            return FuzzCase(f"command: {how}", urlencode(form).encode(), "application/x-www-form-urlencoded",
                            (("url", name),) if due else ())
        return draw_case()

    def click(self):
        """A button click: Byline's buttons with a good or broken value (a reply due either way: thanks or a
        short apology), other buttons, and interactivity payloads that are broken or of kinds Byline has not."""
        @st.composite
        def draw_case(draw):
            name = f"click-{next(self._numbers):07d}"
            button = draw(st.sampled_from(BOT_BUTTONS + ["someone_elses_button"]))
            value = json.dumps({"ref": "forgotten", "q": draw(texts), "a": None, "d": []})
            how = draw(st.sampled_from(["click", "broken value", "value of another shape", "broken payload JSON",
                                        "payload not an object", "user a string", "no actions", "action a string",
                                        "no channel", "other kind"]))
            if how == "broken value":
                value = draw(st.sampled_from(["", "{", "null", "[1]", "x" * 100])) + draw(st.text(max_size=5))
            elif how == "value of another shape":
                value = json.dumps(draw(st.dictionaries(st.sampled_from(["ref", "q", "a", "d"]), not_strings,
                                                        min_size=1)))
            payload = block_actions({"type": "button", "action_id": button, "value": value,
                                     "text": {"type": "plain_text", "text": "x"}},
                                    response_url=self.response_url(name), channel=self._channel(draw))
            ours = button in BOT_BUTTONS
            due = (how in ("broken value", "value of another shape") and ours) or \
                (how == "click" and ours and button != "share_answer")  # a share posts in the channel too
            if how == "click" and button == "share_answer":
                payload["actions"][0]["action_id"] = "feedback_up"
                due = True
            elif how == "user a string":
                payload["user"] = "U0ASKER"
            elif how == "no actions":
                payload["actions"] = draw(st.sampled_from([[], None, {}, "x"]))
            elif how == "action a string":
                payload["actions"] = ["feedback_up"]
            elif how == "no channel":
                del payload["channel"]
            elif how == "other kind":
                payload["type"] = draw(st.sampled_from(OTHER_TYPES))
            text = json.dumps(payload)
            if how == "broken payload JSON":
                text = text[:_cut(draw, len(text))]
            elif how == "payload not an object":
                text = json.dumps(draw(st.one_of(st.lists(json_values, max_size=3), st.integers(), st.text())))
            return FuzzCase(f"click: {how}", urlencode({"payload": text}).encode(),
                            "application/x-www-form-urlencoded", (("url", name),) if due else ())
        return draw_case()

    def odd_timestamp(self):
        """Correctly signed, but over a timestamp that is stale, in the future or not a number: 401."""
        @st.composite
        def draw_case(draw):
            timestamp = draw(st.sampled_from(["0", "-1", "1e9", "abc", "", " 1", "9" * 5000])
                             | st.integers(-10**12, 10**9).map(str) | st.integers(4 * 10**9, 10**12).map(str))
            return FuzzCase("signed timestamp: stale or not a number", _json(event_callback(self._mention(draw)), draw),
                            timestamp=timestamp)
        return draw_case()

    # -- parts ---------------------------------------------------------------------------------------
    def _channel(self, draw, prefix: str = "C") -> str:
        return f"{prefix}F{next(self._numbers):07d}"

    def _ts(self) -> str:
        return f"{1_700_000_000 + next(self._numbers)}.000100"

    def _mention(self, draw) -> dict:
        event = mention_event(draw(texts), channel=self._channel(draw), ts=self._ts(),
                              thread_ts=draw(st.sampled_from([None, self._ts()])))
        if draw(st.booleans()):
            event["blocks"] = draw(rich_text_blocks)
        return event

    def _dm(self, draw) -> dict:
        return dm_event(draw(texts), channel=self._channel(draw, "D"), ts=self._ts())


def _cut(draw, length: int) -> int:
    """A position in [0, length), drawn as a fraction: Hypothesis must make the same draws when it replays a
    case, and a case's length varies with its numbered ids and the clock."""
    return int(draw(st.floats(0, 1, exclude_max=True)) * length)


def _thread(event: dict) -> Reply:
    return ("thread", event["channel"], event.get("thread_ts") or event["ts"])


def _json(value, draw) -> bytes:
    """As JSON, ASCII-escaped or not (a lone surrogate then goes out as bytes that are not UTF-8)."""
    return json.dumps(value, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")

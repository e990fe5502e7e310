"""What a Slack request must look like before Bolt and the listeners see it (JSON Schema), and why it does not.

Only the kinds of request Byline serves are admitted, and only the fields it reads are constrained: a
malformed request is refused with one line naming the first field that is wrong, instead of failing deep
inside a listener.
"""

from __future__ import annotations

import re

from jsonschema import Draft202012Validator

MAX_DEPTH = 64  # Slack's own payloads nest about 10 deep (rich-text blocks)
MAX_TEXT = 40_000  # Slack truncates a message's text at 40,000 characters

# (?![\s\S]) ends a pattern instead of $, which would let a final newline through
SLACK_ID = r"^[A-Z0-9]{1,64}(?![\s\S])"  # U…, C…, D…, T…: also safe to log and to use as a key
SLACK_TS = r"^[0-9]{1,20}\.[0-9]{1,20}(?![\s\S])"
_ID = {"type": "string", "pattern": SLACK_ID}
_TS = {"type": "string", "pattern": SLACK_TS}
_TEXT = {"type": "string", "maxLength": MAX_TEXT}
_URL = {"type": "string", "pattern": r"^https?://\S+$", "maxLength": 2048}
_ID_OR_OBJECT = {"type": ["string", "object", "null"], "properties": {"id": _ID}}

_FILE = {"type": "object", "properties": {  # what adding an uploaded file reads (listeners/ingest)
    "id": {"type": "string"}, "name": {"type": "string"}, "title": {"type": "string"},
    "size": {"type": "integer", "minimum": 0}, "url_private": {"type": "string"},
    "url_private_download": {"type": "string"}}}
_MESSAGE_EVENT = {  # app_mention and message events: what ask_in_thread and adding articles read
    "required": ["channel", "ts"],
    "properties": {"user": _ID, "text": _TEXT, "channel": _ID, "ts": _TS, "thread_ts": _TS, "event_ts": _TS,
                   "blocks": {"type": "array"}, "bot_id": {"type": ["string", "null"]},
                   "subtype": {"type": "string"}, "channel_type": {"type": "string"},
                   "files": {"type": "array", "maxItems": 100, "items": _FILE}},
}

_SCHEMAS = {
    "url_verification": {"required": ["challenge"], "properties": {"challenge": {"type": "string",
                                                                                  "maxLength": 1000}}},
    "app_rate_limited": {},
    "ssl_check": {},
    "event_callback": {
        "required": ["event", "event_id"],
        "properties": {
            "event_id": {"type": "string", "minLength": 1, "maxLength": 255},
            "team_id": _ID, "api_app_id": _ID, "team": _ID_OR_OBJECT, "enterprise": _ID_OR_OBJECT,
            "authorizations": {"type": "array", "items": {"type": "object"}},
            "event": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string", "maxLength": 255}, "team": _ID_OR_OBJECT,
                               "user_team": {"type": ["string", "null"]}},
                "allOf": [
                    {"if": {"properties": {"type": {"enum": ["app_mention", "message"]}}}, "then": _MESSAGE_EVENT},
                    {"if": {"properties": {"type": {"const": "app_mention"}}}, "then": {"required": ["text"]}},
                ],
            },
        },
    },
    "command": {  # form fields are strings by construction; these are the ones the listener reads
        "required": ["command", "channel_id", "user_id", "response_url"],
        "properties": {"command": {"type": "string", "maxLength": 255}, "text": _TEXT, "channel_id": _ID,
                       "user_id": _ID, "response_url": _URL},
    },
    "block_actions": {  # a button click on one of Byline's messages
        "required": ["user", "channel", "actions", "response_url"],
        "properties": {
            "user": {"type": "object", "required": ["id"], "properties": {"id": _ID}},
            "channel": {"type": "object", "required": ["id"], "properties": {"id": _ID}},
            "team": {"type": ["object", "null"], "properties": {"id": _ID}},
            "enterprise": _ID_OR_OBJECT,
            "actions": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["action_id", "value"],
                "properties": {"action_id": {"type": "string", "maxLength": 255},
                               "value": {"type": "string", "maxLength": 2000}}}},
            "response_url": _URL,
        },
    },
}
_VALIDATORS = {kind: Draft202012Validator({"type": "object", **schema}) for kind, schema in _SCHEMAS.items()}

# What Byline puts in its buttons' `value` (bot/slack/blocks.py): the answer's reference and a short copy.
_BUTTON_VALUE = Draft202012Validator({
    "type": "object",
    "required": ["q"],
    "properties": {"ref": {"type": ["string", "null"]}, "q": {"type": "string", "maxLength": MAX_TEXT},
                   "a": {"type": ["string", "null"]}, "d": {"type": "array", "items": {"type": "string"}}},
})

_SURROGATE = re.compile("[\ud800-\udfff]")


def request_kind(payload: dict) -> str | None:
    if "command" in payload:
        return "command"
    if "ssl_check" in payload:
        return "ssl_check"
    kind = payload.get("type")
    return kind if isinstance(kind, str) else None


def payload_problem(payload) -> str | None:
    """Why Byline will not take this parsed request body, in a few words; None when it will."""
    if not isinstance(payload, dict):
        return f"the body is {_json_type(payload)}, not an object"
    if problem := _unreadable(payload):
        return problem
    kind = request_kind(payload)
    if kind not in _VALIDATORS:
        return f"not a kind of request Byline serves (type {one_line(kind)})"
    return _first_error(_VALIDATORS[kind], payload)


def button_value_problem(value) -> str | None:
    """Why a button's `value` (already parsed from JSON) is not one Byline made; None when it is."""
    return _first_error(_BUTTON_VALUE, value)


def _unreadable(payload: dict) -> str | None:
    """Nesting past MAX_DEPTH, or a lone UTF-16 surrogate (valid in JSON escapes, not in Unicode text)."""
    stack = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and _SURROGATE.search(value):
            return "a string holds a lone UTF-16 surrogate"
    return None


def _first_error(validator: Draft202012Validator, value) -> str | None:
    error = min(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)), default=None)
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path) or "body"
    if error.validator == "required":
        return f"{where}: {one_line(error.message)}"  # "'event' is a required property"
    if error.validator == "type":
        return f"{where}: is {_json_type(error.instance)}, not {' or '.join(_listed(error.validator_value))}"
    return f"{where}: fails {error.validator} {one_line(error.validator_value)}"


def _json_type(value) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _listed(value) -> list[str]:
    return value if isinstance(value, list) else [value]


def one_line(value, limit: int = 160) -> str:
    """`value` as one printable line for a log: control and invisible characters escaped, cut at `limit`."""
    text = ascii(value) if not isinstance(value, str) else ascii(value)[1:-1]
    return text if len(text) <= limit else text[:limit] + "…"

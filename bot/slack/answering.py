"""How a question becomes a Slack reply. Listeners ack first; the slow part runs on the context's pool.

Every failure a user could wait on ends in a short message to them, never silence and never a traceback.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from logging import Logger

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.blocks import escape, render_answer
from bot.slack.context import SlackContext
from bot.slack.payloads import button_value_problem
from bot.slack.threads import SlackThread
from retrieval.errors import BylineError

HELP = "Ask me a question about the news articles I've read: mention me with it, or use `/byline QUESTION`."
NOT_HERE = "I don't answer questions in this channel. You can ask me in a direct message."
RATE_LIMITED = "You're asking faster than I can keep up. Please wait a minute and try again."
APOLOGY = "Sorry, something went wrong while answering. Please try again in a moment."
BUSY = "I'm answering a lot of questions right now. Please try again in a minute."
CANNOT_POST = "I can't post in this channel. Invite me with `/invite` and try again."
THANKS = "Thanks for the feedback!"
FEEDBACK_FAILED = "Sorry, I couldn't record your feedback. Please try again later."
WORKING_REACTION = "eyes"

_LABELLED = re.compile(r"<([^<>|]*)\|([^<>]*)>")  # <https://x|label>, <#C1|general>, <@U1|ann>
_BARE = re.compile(r"<([^<>]*)>")  # <https://x>, <@U1>, <!here>


def plain_question(text: str, bot_user_id: str | None = None) -> str:
    """A message's text as a plain question: the bot's mention dropped, Slack markup and escapes undone."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text)
    text = _BARE.sub(r"\1", _LABELLED.sub(r"\2", text))
    return " ".join(text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").split())


def from_a_person(event: dict) -> bool:
    """A person's new message: not a bot's (ours included), an edit, a deletion or a join."""
    return event.get("subtype") in (None, "file_share", "thread_broadcast") and not event.get("bot_id") \
        and bool(event.get("user"))


def asks_the_bot(event: dict) -> bool:
    """A person's mention of the bot, or their message in a DM with it: what the journal keeps until its reply
    (an answer through ask_in_thread, or an article added) marks it done."""
    kind, channel_type = event.get("type"), event.get("channel_type")
    return (kind == "app_mention" or (kind == "message" and channel_type == "im")) and from_a_person(event)


def journal_key(channel: str, ts: str) -> str:
    """A question's key in the journal: the message that asks it."""
    return f"{channel}/{ts}"


def refusal(byline: SlackContext, channel: str, user: str, question: str) -> str | None:
    """Why this question won't be answered, as a message for the asker; None when it will be."""
    if not byline.allows_channel(channel):
        return NOT_HERE
    if not question:
        return HELP
    if not byline.rate_limiter.allow(user):
        return RATE_LIMITED
    return None


def answer_message(byline: SlackContext, question: str, thread: SlackThread | None = None,
                   **render_options) -> dict:
    """The reply to `question` as message kwargs; a BylineError's message (user-safe) becomes the reply.
    In a `thread`, the question is read with the thread's earlier turns and becomes one of them."""
    try:
        turns = thread.turns() if thread else ()
        result = byline.pipeline.ask(question, context=turns) if turns else byline.pipeline.ask(question)
    except BylineError as exc:
        return {"text": escape(str(exc))}
    if thread:
        thread.record(result)
    return render_answer(result, ref=byline.results.add(result), max_citations=byline.max_citations,
                         **render_options)


def ask_in_thread(byline: SlackContext, client: WebClient, logger: Logger, *, channel: str, user: str,
                  text: str, ts: str, thread_ts: str, bot_user_id: str | None) -> None:
    """A mention or DM: :eyes: on the message now, the answer in its thread when the pool gets to it; past the
    pool's limit, a short "busy" note instead. Either way the question is then done in the journal."""
    question = plain_question(text, bot_user_id)
    if reason := refusal(byline, channel, user, question):
        _call(logger, client.chat_postEphemeral, channel=channel, user=user, thread_ts=thread_ts, text=reason)
        journal_done(byline, logger, channel, ts)
        return
    _call(logger, client.reactions_add, channel=channel, timestamp=ts, name=WORKING_REACTION)
    if not byline.pool.offer(_answer_in_thread, byline, client, logger, channel, question, ts, thread_ts):
        logger.warning("busy: %d answers waiting or under way; told the asker in %s to try again",
                       byline.pool.limit, channel)
        _call(logger, client.chat_postEphemeral, channel=channel, user=user, thread_ts=thread_ts, text=BUSY)
        _call(logger, client.reactions_remove, channel=channel, timestamp=ts, name=WORKING_REACTION)
        journal_done(byline, logger, channel, ts)


@contextmanager
def replying_in_thread(byline, client, logger, channel: str, ts: str, thread_ts: str, doing: str):
    """Around the slow work for message `ts`: an apology in its thread if the work fails, and in any case the
    working reaction removed and the message marked done in the journal."""
    try:
        yield
    except Exception:
        logger.exception("%s message %s in %s failed", doing, ts, channel)
        _call(logger, client.chat_postMessage, channel=channel, thread_ts=thread_ts, text=APOLOGY)
    finally:
        _call(logger, client.reactions_remove, channel=channel, timestamp=ts, name=WORKING_REACTION)
        journal_done(byline, logger, channel, ts)


def _answer_in_thread(byline, client, logger, channel, question, ts, thread_ts) -> None:
    with replying_in_thread(byline, client, logger, channel, ts, thread_ts, "answering"):
        thread = SlackThread(byline.threads, logger, channel=channel, ts=ts, thread_ts=thread_ts)
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, unfurl_links=False, unfurl_media=False,
                                **answer_message(byline, question, thread))


def journal_done(byline: SlackContext, logger: Logger, channel: str, ts: str) -> None:
    """The message in `channel` at `ts` has had its reply: the journal need not answer it after a restart.
    Every path that takes a person's mention or DM (see asks_the_bot) ends here."""
    key = journal_key(channel, ts)
    try:
        byline.journal.done(key)
    except Exception as exc:  # the reply is out; at worst the message is handled again after a restart
        logger.warning("could not mark %s done in the question journal: %s", key, exc)


def answer_privately(byline: SlackContext, respond, logger: Logger, question: str) -> None:
    """/byline: the answer only the asker sees, with a "Share in channel" button."""
    try:
        _checked(respond(response_type="ephemeral", **answer_message(byline, question, shareable=True)))
    except Exception:
        logger.exception("answering /byline %r failed", question)
        _call(logger, respond, response_type="ephemeral", text=APOLOGY)


def share_answer(byline: SlackContext, client: WebClient, respond, logger: Logger, *, channel: str, user: str,
                 value: str) -> None:
    """Posts an ephemeral answer to the channel, naming who asked, and removes the ephemeral copy."""
    if (data := _button_data(logger, value)) is None:
        notify_privately(logger, respond, APOLOGY)
        return
    try:
        ref = data.get("ref")
        if (result := byline.results.get(ref)) is None:  # forgotten (e.g. a restart): ask again
            result = byline.pipeline.ask(data["q"])
            ref = byline.results.add(result)
        client.chat_postMessage(channel=channel, unfurl_links=False, unfurl_media=False,
                                **render_answer(result, ref=ref, max_citations=byline.max_citations, asked_by=user))
        _call(logger, respond, delete_original=True)
    except SlackApiError as exc:
        logger.warning("sharing in %s failed: %s", channel, exc.response.get("error"))
        cannot = exc.response.get("error") in ("not_in_channel", "channel_not_found", "is_archived")
        notify_privately(logger, respond, CANNOT_POST if cannot else APOLOGY)
    except BylineError as exc:
        notify_privately(logger, respond, escape(str(exc)))
    except Exception:
        logger.exception("sharing in %s failed", channel)
        notify_privately(logger, respond, APOLOGY)


def record_feedback(byline: SlackContext, respond, logger: Logger, *, vote: str, user: str, channel: str | None,
                    value: str) -> None:
    if (data := _button_data(logger, value)) is None:
        notify_privately(logger, respond, FEEDBACK_FAILED)
        return
    try:
        result = byline.results.get(data.get("ref"))
        if result is not None:  # the full question and answer, where the button's copy may be clipped
            best = None if result.no_answer else result.best
            question, answer, citations = result.question, best and best.text, best.articles if best else []
        else:
            question, answer, citations = data["q"], data.get("a"), data.get("d", [])
        byline.feedback.record(vote=vote, user=user, question=question, answer=answer, citations=citations,
                               channel=channel)
    except Exception:
        logger.exception("recording feedback failed")
        notify_privately(logger, respond, FEEDBACK_FAILED)
        return
    notify_privately(logger, respond, THANKS)


def _button_data(logger: Logger, value: str) -> dict | None:
    """What Byline put in a button's value; None, with one log line, if the value is not that."""
    try:
        data = json.loads(value)
    except ValueError:
        problem = "not JSON"
    else:
        problem = button_value_problem(data)
    if problem:
        logger.warning("ignoring a button click: its value is not one Byline made (%s)", problem)
        return None
    return data


def notify_privately(logger: Logger, respond, text: str) -> None:
    """A note only the person who typed or clicked sees (through response_url); a failure is logged."""
    _call(logger, respond, response_type="ephemeral", replace_original=False, text=text)


def _checked(response):
    """A response_url post that Slack refused raises, like a Web API error would."""
    if getattr(response, "status_code", 200) != 200:
        raise RuntimeError(f"response_url answered {response.status_code}: {response.body}")
    return response


def _call(logger: Logger, method, **kwargs) -> None:
    """A Slack call whose failure is logged and otherwise ignored (reactions, apologies, notices)."""
    name = getattr(method, "__name__", type(method).__name__)
    try:
        _checked(method(**kwargs))
    except SlackApiError as exc:
        logger.warning("%s failed: %s", name, exc.response.get("error"))
    except Exception:
        logger.exception("%s failed", name)

from logging import Logger

from slack_bolt import BoltContext
from slack_sdk import WebClient

from bot.slack.answering import ask_in_thread
from bot.slack.context import SlackContext


def direct_message_callback(event: dict, context: BoltContext, client: WebClient, logger: Logger,
                            byline: SlackContext) -> None:
    """A question in a DM with the bot: answered in the DM, threaded under the question."""
    # Only people's new messages: no bot messages (ours included), edits, deletions or joins.
    if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype") or not event.get("user"):
        return
    ask_in_thread(byline, client, logger, channel=event["channel"], user=event["user"], text=event.get("text", ""),
                  ts=event["ts"], thread_ts=event.get("thread_ts") or event["ts"], bot_user_id=context.bot_user_id)

from logging import Logger

from slack_bolt import BoltContext
from slack_sdk import WebClient

from bot.slack.answering import ask_in_thread, from_a_person
from bot.slack.context import SlackContext


def direct_message_callback(event: dict, context: BoltContext, client: WebClient, logger: Logger,
                            byline: SlackContext) -> None:
    """A question in a DM with the bot: answered in the DM, threaded under the question."""
    if event.get("channel_type") != "im" or not from_a_person(event):
        return
    ask_in_thread(byline, client, logger, channel=event["channel"], user=event["user"], text=event.get("text", ""),
                  ts=event["ts"], thread_ts=event.get("thread_ts") or event["ts"], bot_user_id=context.bot_user_id)

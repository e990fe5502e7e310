from logging import Logger

from slack_bolt import Ack, Respond
from slack_sdk import WebClient

from bot.slack.answering import BUSY, notify_privately, share_answer
from bot.slack.context import SlackContext


def share_callback(ack: Ack, body: dict, action: dict, client: WebClient, respond: Respond, logger: Logger,
                   byline: SlackContext) -> None:
    """"Share in channel" on an ephemeral /byline answer."""
    ack()
    if not byline.pool.offer(share_answer, byline, client, respond, logger, channel=body["channel"]["id"],
                             user=body["user"]["id"], value=action["value"]):
        notify_privately(logger, respond, BUSY)

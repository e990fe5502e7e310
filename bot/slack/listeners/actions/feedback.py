from logging import Logger

from slack_bolt import Ack, Respond

from bot.slack.answering import record_feedback
from bot.slack.blocks import FEEDBACK_ACTIONS
from bot.slack.context import SlackContext


def feedback_callback(ack: Ack, body: dict, action: dict, respond: Respond, logger: Logger,
                      byline: SlackContext) -> None:
    """👍/👎 on an answer: one line in the feedback log."""
    ack()
    record_feedback(byline, respond, logger, vote=FEEDBACK_ACTIONS[action["action_id"]], user=body["user"]["id"],
                    channel=(body.get("channel") or {}).get("id"), value=action["value"])

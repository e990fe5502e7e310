from logging import Logger

from slack_bolt import Ack, Respond

from bot.slack.answering import BUSY, answer_privately, plain_question, refusal
from bot.slack.context import SlackContext


def byline_command_callback(ack: Ack, command: dict, respond: Respond, logger: Logger, byline: SlackContext) -> None:
    """/byline QUESTION: an answer only the asker sees (via response_url), with a "Share in channel" button."""
    question = plain_question(command.get("text", ""))
    if reason := refusal(byline, command["channel_id"], command["user_id"], question):
        ack(text=reason)  # an ack's text is shown to the asker only
        return
    if byline.pool.offer(answer_privately, byline, respond, logger, question):
        ack()
    else:
        ack(text=BUSY)

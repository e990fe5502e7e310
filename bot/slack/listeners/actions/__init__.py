import re

from slack_bolt import App

from bot.slack.blocks import FEEDBACK_ACTIONS, SHARE_ACTION
from bot.slack.listeners.actions.feedback import feedback_callback
from bot.slack.listeners.actions.share import share_callback


def register(app: App) -> None:
    app.action(SHARE_ACTION)(share_callback)
    app.action(re.compile("^(" + "|".join(FEEDBACK_ACTIONS) + ")$"))(feedback_callback)

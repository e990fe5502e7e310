from slack_bolt import App

from bot.slack.listeners.events.app_mention import app_mention_callback
from bot.slack.listeners.events.direct_message import direct_message_callback


def register(app: App) -> None:
    app.event("app_mention")(app_mention_callback)
    app.event("message")(direct_message_callback)

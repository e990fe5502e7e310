from slack_bolt import App

from bot.slack.listeners.commands.byline_command import byline_command_callback


def register(app: App) -> None:
    app.command("/byline")(byline_command_callback)

"""Slack listeners, grouped by surface; each group's `register(app)` wires its functions into the app.

Listener functions are plain functions taking bolt's injected arguments plus `byline`, the
SlackContext that `register_listeners` puts in every request's context, so tests can call them directly.
"""

from slack_bolt import App

from bot.slack.context import SlackContext
from bot.slack.listeners import actions, commands, events, ingest


def register_listeners(app: App, byline: SlackContext) -> None:
    @app.middleware
    def provide_byline(context, next_):
        context["byline"] = byline
        next_()

    ingest.register(app)  # before events: an "add" mention is not a question
    events.register(app)
    commands.register(app)
    actions.register(app)

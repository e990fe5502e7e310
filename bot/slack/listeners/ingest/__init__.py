from slack_bolt import App

from bot.slack.listeners.ingest.add_article import add_article_callback, is_add_request


def register(app: App) -> None:
    """Registered before the question listeners: an "add" mention or DM goes here, not to answering."""
    app.event("app_mention", matchers=[is_add_request])(add_article_callback)
    app.event("message", matchers=[is_add_request])(add_article_callback)

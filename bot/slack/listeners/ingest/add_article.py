"""Adding articles from Slack: "@Byline add <link>", or a .txt/.md/.html file in a message that mentions
the bot (or in a DM to it). Only users on `slack.ingest_allowlist` may add; everyone else gets a polite no.

The link or file goes through the same loaders and checks as `byline ingest`; the reply in the thread
names what was added (title, publisher, date, chunks) or gives the one-line reason it was refused.
"""

from __future__ import annotations

import re
from logging import Logger
from urllib.parse import urlsplit

from slack_bolt import BoltContext
from slack_sdk import WebClient

from bot.slack.answering import WORKING_REACTION, _call, from_a_person, journal_done, replying_in_thread
from bot.slack.blocks import escape
from bot.slack.context import SlackContext
from retrieval.errors import BylineError
from retrieval.ingest.loaders import check_size, load_document
from retrieval.ingest.sources import load_sources
from retrieval.ingest.web import Fetcher

NOT_ALLOWED = ("Sorry, I can only add articles for the people my admins have listed. "
               "You can still ask me about the articles I have.")
USAGE = "To add an article, mention me with `add` and a link (`@Byline add https://…`), or attach a .txt, .md or .html file."
MAX_LISTED = 10
UPLOAD_EXTENSIONS = (".txt", ".md", ".markdown", ".html", ".htm")
# "add <https://x>", "add <https://x|x>", or a bare "add file:///x" that Slack did not turn into a link
_ADD = re.compile(r"^\s*add\s+<?([A-Za-z][A-Za-z0-9+.-]*:[^\s|>]+)(?:\|[^>]*)?>?\s*$", re.IGNORECASE)
_ADD_ALONE = re.compile(r"^\s*add\s*$", re.IGNORECASE)


def _text_without_mention(event: dict, bot_user_id: str | None) -> str:
    text = event.get("text") or ""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text)
    return text.strip()


def is_add_request(body: dict, context: BoltContext) -> bool:
    """A mention (or a DM) that asks to add a link, or that carries files."""
    event = body.get("event") or {}
    if event.get("type") == "message" and event.get("channel_type") != "im":
        return False
    text = _text_without_mention(event, context.bot_user_id)
    return bool(event.get("files")) or bool(_ADD.match(text)) or bool(_ADD_ALONE.match(text))


def add_article_callback(event: dict, context: BoltContext, client: WebClient, logger: Logger,
                         byline: SlackContext) -> None:
    if not from_a_person(event):
        return
    channel, user, ts = event["channel"], event["user"], event["ts"]
    thread_ts = event.get("thread_ts") or ts
    if user not in byline.ingest_allowlist:
        _call(logger, client.chat_postEphemeral, channel=channel, user=user, thread_ts=thread_ts, text=NOT_ALLOWED)
        journal_done(byline, logger, channel, ts)
        return
    match = _ADD.match(_text_without_mention(event, context.bot_user_id))
    if not event.get("files") and not match:
        _call(logger, client.chat_postMessage, channel=channel, thread_ts=thread_ts, text=USAGE)
        journal_done(byline, logger, channel, ts)
        return
    _call(logger, client.reactions_add, channel=channel, timestamp=ts, name=WORKING_REACTION)
    byline.pool.submit(_add_in_thread, byline, client, logger, channel, ts, thread_ts,
                       match.group(1) if match else None, event.get("files") or [])


def _add_in_thread(byline: SlackContext, client: WebClient, logger: Logger, channel: str, ts: str,
                   thread_ts: str, link: str | None, files: list[dict]) -> None:
    with replying_in_thread(byline, client, logger, channel, ts, thread_ts, "adding from"):
        try:
            text = added_message(*_ingest(byline, client, link, files))
        except BylineError as exc:
            text = f"I couldn't add that: {escape(str(exc))}"
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, unfurl_links=False,
                                unfurl_media=False)


def _ingest(byline: SlackContext, client: WebClient, link: str | None, files: list[dict]):
    """(articles, report): the link's or the files' articles, in the index in one change."""
    config = byline.pipeline.config
    max_bytes = config["chunking"]["max_file_bytes"]
    fetcher = Fetcher.from_config(config)
    refused: list[str] = []
    if files:
        articles = [a for file in files for a in _file_articles(client, fetcher, file, max_bytes)]
    else:
        loaded = load_sources([link], max_bytes, fetcher)
        articles, refused = loaded.articles, loaded.refused
    if not articles:
        raise BylineError(refused[0] if refused else f"{link}: nothing to add")
    report = byline.pipeline.ingest_articles(articles)
    report.refused = refused
    return articles, report


def _file_articles(client: WebClient, fetcher: Fetcher, file: dict, max_bytes: int) -> list:
    """An uploaded file's articles: checked by name and size, downloaded with the bot token, loaded."""
    if not file.get("url_private_download") and file.get("id"):
        file = client.files_info(file=file["id"])["file"]  # the event may carry only the id
    name = file.get("name") or file.get("title") or file.get("id") or "upload"
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix not in UPLOAD_EXTENSIONS:
        raise BylineError(f"{name}: I can add .txt, .md and .html files, not '{suffix or name}'")
    if file.get("size") is not None:
        check_size(int(file["size"]), max_bytes, name)
    url = file.get("url_private_download") or file.get("url_private")
    if not url:
        raise BylineError(f"{name}: Slack gave no download link for the file")
    api_host = urlsplit(client.base_url).hostname
    host = urlsplit(url).hostname or ""
    if host != api_host and host != "slack.com" and not host.endswith(".slack.com"):
        raise BylineError(f"{name}: the file's download link is not on Slack")
    fetched = fetcher.get(url, authorization=f"Bearer {client.token}")
    if fetched.content_type == "text/html" and suffix not in (".html", ".htm"):
        raise BylineError(f"{name}: Slack sent a sign-in page instead of the file (does the app have the "
                          "files:read scope?)")
    return load_document(fetched.content, name, name, max_bytes)


def added_message(articles: list, report) -> str:
    """One line per article: what happened to it, its title, publisher, date and chunk count."""
    lines = []
    for article in articles[:MAX_LISTED]:
        if article.doc_id in report.added:
            verb = "Added"
        elif article.doc_id in report.updated:
            verb = "Replaced"
        else:
            verb = "Already had"
        chunks = report.chunk_counts.get(article.doc_id)
        details = " · ".join(filter(None, [article.publisher, article.published,
                                           f"{chunks} chunk{'s' if chunks != 1 else ''}" if chunks is not None else None]))
        title = f"<{article.url}|{escape(article.title)}>" if article.url else f"*{escape(article.title)}*"
        lines.append(f"{verb} {title}" + (f" — {escape(details)}" if details else ""))
    if len(articles) > MAX_LISTED:
        lines.append(f"…and {len(articles) - MAX_LISTED} more.")
    lines += [f"Refused: {escape(line)}" for line in report.refused[:MAX_LISTED]]
    return "\n".join(lines)

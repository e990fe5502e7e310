"""Feeds, links and `byline watch`, against a web site served on 127.0.0.1 by the test (never the internet)."""

import fcntl
import json
import os
import pty
import re
import select
import socket
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from local_site import article_page
from retrieval.config import REPO_ROOT
from retrieval.errors import BylineError
from retrieval.index.local import IndexLocation
from retrieval.ingest.sources import load_sources
from retrieval.ingest.watch import FeedWatcher, parse_duration
from retrieval.ingest.web import Fetcher, url_doc_id

BYLINE = [sys.executable, "-m", "bot.cli"]
MAX_BYTES = 10_000_000

FERRY_TEXT = ("The ferry to Lindholm island resumed on Monday after storm damage to the pier was repaired.",
              "Captain Mara Olsen said the first crossing carried 140 passengers.")
KEEPER_TEXT = ("The harbour board appointed Jonas Brekke as the new keeper of the Skarv lighthouse.",
               "Brekke served twelve years as a pilot on the northern coast before taking the post.",
               "He moves into the keeper's cottage in April, the board said in a statement on Wednesday.")


def rss_feed(site, ferry_text=FERRY_TEXT, extra_items: str = "") -> str:
    paragraphs = "".join(f"<p>{p}</p>" for p in ferry_text)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Harbour Gazette</title><link>{site.url("/")}</link><description>Harbour news</description>
<item><title>Ferry service to Lindholm resumes</title><link>{site.url("/ferry")}</link><guid>harbour-ferry-1</guid>
<pubDate>Tue, 05 Mar 2024 08:00:00 GMT</pubDate><content:encoded><![CDATA[{paragraphs}]]></content:encoded></item>
<item><title>New lighthouse keeper appointed</title><link>{site.url("/keeper")}</link><guid>harbour-keeper-2</guid>
<pubDate>Wed, 06 Mar 2024 09:00:00 GMT</pubDate><description>Who keeps the light now?</description></item>
{extra_items}</channel></rss>"""


ATOM_FEED = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Valley Courier</title><id>urn:valley</id>
<updated>2024-04-02T10:00:00Z</updated>
<entry><title>Orchard harvest breaks record</title><id>urn:valley:orchard</id>
<link href="https://valley.example/orchard"/><published>2024-04-01T10:00:00Z</published><updated>2024-04-01T10:00:00Z</updated>
<content type="html">&lt;p&gt;The Valley orchards harvested 4,200 tonnes of apples this season, a record.&lt;/p&gt;
&lt;p&gt;Grower Ilse Varga credited the mild spring.&lt;/p&gt;</content></entry>
</feed>"""


def serve_harbour(site, etag: str = '"v1"', **feed_options) -> str:
    site.serve("/keeper", article_page("New lighthouse keeper appointed", list(KEEPER_TEXT)))
    return site.serve("/feed.rss", rss_feed(site, **feed_options), "application/rss+xml", etag=etag,
                      last_modified="Wed, 06 Mar 2024 09:00:00 GMT")


def snapshot(pipeline):
    location = IndexLocation(Path(pipeline.config["data_dir"]))
    return os.readlink(location.link), sorted(location.load().chunks)


def test_an_rss_feed_url_adds_each_item_with_its_title_date_link_and_text(scratch_pipeline, local_site):
    feed_url = serve_harbour(local_site)
    report = scratch_pipeline.ingest([feed_url])
    ferry, keeper = url_doc_id(local_site.url("/ferry")), url_doc_id(local_site.url("/keeper"))
    assert sorted(report.added) == sorted([ferry, keeper]) and not report.refused
    assert scratch_pipeline.store.metadata(ferry) == {
        "doc_id": ferry, "title": "Ferry service to Lindholm resumes", "publisher": "Harbour Gazette",
        "published": "2024-03-05", "url": local_site.url("/ferry")}
    assert scratch_pipeline.store.article_text(ferry) == "\n\n".join(FERRY_TEXT)  # from the item's content
    assert not local_site.requests_to("/ferry")  # ...so its link was not fetched
    keeper_text = scratch_pipeline.store.article_text(keeper)  # no content: fetched and extracted
    assert all(p in keeper_text for p in KEEPER_TEXT) and "Subscribe" not in keeper_text and "Home" not in keeper_text
    assert scratch_pipeline.store.metadata(keeper)["published"] == "2024-03-06"
    fetch, = local_site.requests_to("/keeper")
    assert fetch.headers["User-Agent"].startswith("Byline")
    answer = scratch_pipeline.ask("Who was appointed keeper of the Skarv lighthouse?")
    assert answer.best and "Jonas Brekke" in answer.best.text and keeper in answer.best.articles


def test_an_atom_feed_file_adds_its_entries(scratch_pipeline, tmp_path):
    feed = tmp_path / "valley.atom"
    feed.write_text(ATOM_FEED, encoding="utf-8")
    report = scratch_pipeline.ingest([feed])
    orchard = url_doc_id("https://valley.example/orchard")
    assert report.added == [orchard]
    assert scratch_pipeline.store.metadata(orchard)["title"] == "Orchard harvest breaks record"
    assert scratch_pipeline.store.metadata(orchard)["publisher"] == "Valley Courier"
    assert scratch_pipeline.store.metadata(orchard)["published"] == "2024-04-01"
    assert "Grower Ilse Varga credited the mild spring." in scratch_pipeline.store.article_text(orchard)


def test_a_page_url_is_extracted_like_an_html_file_and_keeps_its_url(scratch_pipeline, local_site):
    local_site.serve("/2024/bridge", article_page("Vellmar bridge reopens", [
        "The old stone bridge in Vellmar reopened on Friday after two years of repairs.",
        "Mayor Anna Roth cut the ribbon in front of a small crowd of residents and engineers."],
        published="2024-05-03", site_name="Vellmar Post"))
    link = local_site.redirect("/b/42", "/2024/bridge")  # a short link: the redirect is followed
    report = scratch_pipeline.ingest([link])
    doc_id = url_doc_id(link)
    assert report.added == [doc_id]
    assert scratch_pipeline.store.metadata(doc_id) == {"doc_id": doc_id, "title": "Vellmar bridge reopens",
                                                       "publisher": "Vellmar Post", "published": "2024-05-03",
                                                       "url": link}
    assert "Mayor Anna Roth cut the ribbon" in scratch_pipeline.store.article_text(doc_id)


def test_watch_polls_only_new_or_changed_items_and_an_unchanged_feed_costs_one_304(scratch_pipeline, local_site):
    feed_url = serve_harbour(local_site, etag='"watch-1"')
    state = Path(scratch_pipeline.config["data_dir"]) / "feeds.json"
    watcher = FeedWatcher(scratch_pipeline, Fetcher(), state, MAX_BYTES)
    first = watcher.poll(feed_url)
    assert first.new_items == 2 and not first.not_modified
    assert json.loads(state.read_text())[feed_url]["etag"] == '"watch-1"'

    before, state_before = snapshot(scratch_pipeline), (state.read_bytes(), state.stat().st_mtime_ns)
    hits_before = len(local_site.hits)
    second = watcher.poll(feed_url)
    assert second.not_modified and second.report.chunks_embedded == 0
    request, = local_site.hits[hits_before:]  # one request, conditional, answered 304
    assert request.path == "/feed.rss" and request.headers["If-None-Match"] == '"watch-1"'
    assert request.headers["If-Modified-Since"] == "Wed, 06 Mar 2024 09:00:00 GMT"
    assert snapshot(scratch_pipeline) == before
    assert (state.read_bytes(), state.stat().st_mtime_ns) == state_before

    # the ferry item is changed in place (same guid, new text): it alone is replaced
    changed = (FERRY_TEXT[0], "Captain Mara Olsen said the first crossing carried 212 passengers.")
    serve_harbour(local_site, etag='"watch-2"', ferry_text=changed)
    keeper_fetches = len(local_site.requests_to("/keeper"))
    third = watcher.poll(feed_url)
    ferry = url_doc_id(local_site.url("/ferry"))
    assert third.new_items == 1 and third.report.updated == [ferry] and not third.report.added
    assert "212 passengers" in scratch_pipeline.store.article_text(ferry)
    assert len(local_site.requests_to("/keeper")) == keeper_fetches  # the unchanged item is not fetched again


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bad_source(site, case: str) -> tuple[str, str]:
    """(the source, what its one-line refusal says)"""
    big = b"<html><body><p>" + b"word " * 2_100_000 + b"</p></body></html>"  # 10.5 MB
    if case == "oversized page":
        return site.serve("/big", big), "10.5 MB is over the 10 MB limit"
    if case == "oversized page, no length given":
        return site.serve("/big-stream", big, declare_length=False), "more than the 10 MB limit"
    if case == "file: URL":
        return "file:///etc/passwd", "only http and https links are fetched, not file: URLs"
    if case == "redirect to a file: URL":
        return site.redirect("/sneaky", "file:///etc/passwd", 302), "redirected to a file: URL"
    if case == "timeout":
        return site.serve("/slow", "<p>late</p>", delay_s=3), "no answer within 1 s"
    if case == "unreachable host":
        return f"http://127.0.0.1:{closed_port()}/story", "cannot connect (Connection refused)"
    if case == "404":
        return site.url("/missing"), "the server answered 404 Not Found"
    if case == "500":
        return site.serve("/broken", "oops", status=500), "the server answered 500"
    if case == "feed that does not parse":
        return site.serve("/bad.rss", "this is { not a feed", "application/rss+xml"), "not an RSS or Atom feed"
    if case == "page with no text":
        return site.serve("/empty", "<html><body><nav>Home</nav></body></html>"), "no article text"
    raise ValueError(case)


BAD_SOURCES = ["oversized page", "oversized page, no length given", "file: URL", "redirect to a file: URL", "timeout",
               "unreachable host", "404", "500", "feed that does not parse", "page with no text"]


@pytest.mark.parametrize("case", BAD_SOURCES)
def test_a_bad_source_is_refused_with_one_line_naming_it(local_site, case):
    source, reason = bad_source(local_site, case)
    with pytest.raises(BylineError) as refused:
        load_sources([source], MAX_BYTES, Fetcher(timeout_s=1))
    message = str(refused.value)
    assert message.startswith(source) and reason in message and "\n" not in message


def test_a_bad_link_refuses_the_whole_ingest_and_leaves_the_index_as_it_was(scratch_pipeline, local_site):
    good = local_site.serve("/good", article_page("Good story", ["A good story that must not be half-ingested."]))
    before = snapshot(scratch_pipeline)
    with pytest.raises(BylineError, match="404"):
        scratch_pipeline.ingest([good, local_site.url("/gone")])
    assert snapshot(scratch_pipeline) == before and url_doc_id(good) not in scratch_pipeline.doc_ids()


def test_a_feed_item_with_no_link_and_no_content_is_refused_on_its_own(local_site):
    empty_item = '<item><title>Nothing here</title><guid isPermaLink="false">harbour-empty-3</guid></item>'
    feed_url = serve_harbour(local_site, extra_items=empty_item)
    loaded = load_sources([feed_url], MAX_BYTES, Fetcher())
    assert len(loaded.articles) == 2
    assert loaded.refused == [f"{feed_url}: item 3 ('Nothing here'): the item has no link and no content"]


def test_parse_duration():
    assert [parse_duration(t) for t in ("90", "30s", "15m", "1h")] == [90, 30, 900, 3600]
    with pytest.raises(BylineError, match="not a duration"):
        parse_duration("soon")


# -- the command line --------------------------------------------------------------------------------------


def run_in_terminal(args: list[str], timeout: float = 240) -> tuple[int, str]:
    """Runs byline under a pseudo-terminal 120 columns wide, as a person would; (exit status, all it printed)."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen([*BYLINE, *args], stdin=terminal, stdout=terminal, stderr=terminal, cwd=REPO_ROOT,
                               close_fds=True)
    os.close(terminal)
    output = bytearray()
    while True:
        ready, _, _ = select.select([controller], [], [], timeout)
        if not ready:
            process.kill()
            raise AssertionError(f"byline {' '.join(args)} printed nothing for {timeout}s")
        try:
            piece = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not piece:
            break
        output += piece
    os.close(controller)
    return process.wait(timeout=30), output.decode("utf-8", "replace")


def test_cli_ingest_of_a_feed_shows_a_bar_refuses_a_bad_item_and_ends_with_a_summary(local_site, tmp_path):
    feed_url = serve_harbour(local_site, extra_items='<item><title>Nothing here</title><guid isPermaLink="false">x-3</guid></item>')
    status, output = run_in_terminal(["--data-dir", str(tmp_path / "data"), "ingest", feed_url])
    assert status == 2, output
    assert re.search(r"ingest: +\d+%\|.*\d+/2 articles \[.*chunks/s", output), output  # the bar, on a terminal
    lines = output.replace("\r", "\n").splitlines()
    assert f"byline: refused: {feed_url}: item 3 ('Nothing here'): the item has no link and no content" in lines
    summary = [line for line in lines if line.startswith("added ")]
    assert summary and summary[-1].startswith("added 2, replaced 0, unchanged 0, refused 1 articles in ")


def test_cli_quiet_draws_no_bar(local_site, tmp_path):
    page = local_site.serve("/quiet", article_page("Quiet story", ["The quiet harbour had no visitors on Sunday."]))
    status, output = run_in_terminal(["--data-dir", str(tmp_path / "data"), "--quiet", "ingest", page])
    assert status == 0, output
    assert "chunks/s" not in output and "articles [" not in output
    assert output.strip().splitlines()[-1].startswith("added 1, replaced 0, unchanged 0, refused 0 articles in ")


def run_cli(*args, data_dir):
    return subprocess.run([*BYLINE, "--data-dir", str(data_dir), *args], capture_output=True, text=True,
                          timeout=240, cwd=REPO_ROOT)


@pytest.mark.parametrize("case", ["404", "file: URL", "timeout", "feed that does not parse"])
def test_cli_bad_source_exits_non_zero_with_one_line(local_site, tmp_path, case):
    source, reason = bad_source(local_site, case)
    done = run_cli("--set", "fetch.timeout_s=1", "ingest", source, data_dir=tmp_path / "data")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and source in done.stderr and reason in done.stderr
    assert not (tmp_path / "data" / "index").exists()  # refused before anything was built


def test_cli_watch_once_then_a_second_poll_that_sees_304(local_site, tmp_path):
    feed_url = serve_harbour(local_site, etag='"cli-1"')
    first = run_cli("watch", feed_url, "--once", data_dir=tmp_path / "data")
    assert first.returncode == 0, first.stderr
    assert f"{feed_url}: 2 new or changed items; added 2, replaced 0, unchanged 0, refused 0 articles" in first.stdout
    assert "chunks/s" not in first.stderr  # not a terminal: no bar
    hits = len(local_site.hits)
    second = run_cli("watch", feed_url, "--once", data_dir=tmp_path / "data")
    assert second.returncode == 0 and second.stdout.strip().endswith(f"{feed_url}: not modified")
    request, = local_site.hits[hits:]
    assert request.headers["If-None-Match"] == '"cli-1"'

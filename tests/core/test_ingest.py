"""Ingest: idempotent, replaces changed articles, removes, refuses bad input without loss."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrieval.config import REPO_ROOT
from retrieval.errors import BylineError
from retrieval.index.local import IndexLocation
from retrieval.pipeline import BylinePipeline

BYLINE = [sys.executable, "-m", "bot.cli"]


@pytest.fixture(scope="module")
def own_pipeline(test_config, tmp_path_factory):
    """A pipeline with its own data directory, so these tests can change the index freely."""
    config = {**test_config, "data_dir": str(tmp_path_factory.mktemp("ingest-data"))}
    return BylinePipeline(config)


def index_snapshot(pipeline):
    location = IndexLocation(Path(pipeline.config["data_dir"]))
    return os.readlink(location.link), sorted(location.load().chunks)


def chunk_items(pipeline):
    return {d.id: d for d in pipeline.store.all_chunks()}.items()


def test_reingesting_unchanged_articles_changes_nothing(own_pipeline):
    before = index_snapshot(own_pipeline)
    report = own_pipeline.ingest([REPO_ROOT / "corpus"])
    assert len(report.unchanged) == 5 and not report.changed and report.chunks_embedded == 0
    assert index_snapshot(own_pipeline) == before


def test_changed_article_replaces_its_chunks_and_remove_deletes_it(own_pipeline, tmp_path):
    article = tmp_path / "harbour.md"
    article.write_text("---\ntitle: Harbour news\npublisher: Test Gazette\npublished: 2024-03-01\n---\n"
                       "The harbour master Ellen Quist opened the new pier on Monday.\n\n"
                       "About 300 people watched the ceremony.", encoding="utf-8")
    assert own_pipeline.ingest([article]).added == ["harbour"]
    first_chunks = {c for c, d in chunk_items(own_pipeline) if d.meta["doc_id"] == "harbour"}
    article.write_text(article.read_text().replace("Monday", "Tuesday"), encoding="utf-8")
    report = own_pipeline.ingest([article])
    assert report.updated == ["harbour"]
    second = {c: d for c, d in chunk_items(own_pipeline) if d.meta["doc_id"] == "harbour"}
    assert first_chunks.isdisjoint(second) and all("Tuesday" in d.content for d in second.values())
    assert own_pipeline.store.metadata("harbour")["publisher"] == "Test Gazette"
    own_pipeline.remove("harbour")
    assert "harbour" not in own_pipeline.doc_ids()
    assert "harbour" not in IndexLocation(Path(own_pipeline.config["data_dir"])).load().doc_ids()
    with pytest.raises(BylineError, match="no article with id 'harbour'"):
        own_pipeline.remove("harbour")


def test_jsonl_and_html_articles_carry_their_metadata(own_pipeline, tmp_path):
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps({"id": "wire-1", "title": "Wire story", "url": "https://example.org/wire-1",
                                "date": "2024-02-02", "text": "The council approved the budget of 4 million euros."})
                    + "\n", encoding="utf-8")
    page = tmp_path / "page.html"
    page.write_text("<html><head><title>Bridge reopens</title></head><body><nav>Home | News</nav>"
                    "<article><h1>Bridge reopens</h1><p>The old stone bridge in Vellmar reopened on Friday after "
                    "two years of repairs that cost the town 2.5 million euros.</p><p>Mayor Anna Roth cut the "
                    "ribbon in front of a small crowd of residents and engineers.</p></article>"
                    "<footer>Subscribe to our newsletter</footer></body></html>", encoding="utf-8")
    report = own_pipeline.ingest([feed, page])
    assert sorted(report.added) == ["page", "wire-1"]
    assert own_pipeline.store.metadata("wire-1") == {"doc_id": "wire-1", "title": "Wire story", "publisher": None,
                                                     "published": "2024-02-02", "url": "https://example.org/wire-1"}
    html_text = own_pipeline.store.article_text("page")
    assert "Mayor Anna Roth" in html_text and "Subscribe" not in html_text and "Home | News" not in html_text
    own_pipeline.remove("wire-1")
    own_pipeline.remove("page")


BAD_FILES = {
    "empty.txt": (b"", "empty"),
    "blank.txt": (b"   \n\n  ", "no text"),
    "binary.txt": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    "latin1.txt": ("Caf\u00e9 owners met on Monday.".encode("latin-1"), "not UTF-8"),
    "bad.jsonl": (b'{"text": "A fine first line about the harbour."}\n{"text": "broken\n', "bad.jsonl:2: malformed JSON"),
    "notes.docx": (b"PK\x03\x04 some zip", "unsupported file type '.docx'"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_are_refused_and_the_index_is_unchanged(own_pipeline, tmp_path, name):
    content, message = BAD_FILES[name]
    good = tmp_path / "good.txt"
    good.write_text("A good article that must not be half-ingested alongside a bad one.", encoding="utf-8")
    bad = tmp_path / name
    bad.write_bytes(content)
    before = index_snapshot(own_pipeline)
    with pytest.raises(BylineError, match=message):
        own_pipeline.ingest([good, bad])
    assert index_snapshot(own_pipeline) == before
    assert "good" not in own_pipeline.doc_ids()


def test_a_50_mb_file_is_refused(own_pipeline, tmp_path):
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)
        handle.seek(0)
        handle.write(b"Real words at the start. " * 100)
    before = index_snapshot(own_pipeline)
    with pytest.raises(BylineError, match="52.4 MB is over the 10 MB limit"):
        own_pipeline.ingest([huge])
    assert index_snapshot(own_pipeline) == before


@pytest.mark.parametrize("question, message", [("", "the question is empty"), ("   \n ", "the question is empty"),
                                               ("why " * 2500, "10000 characters long")])
def test_bad_questions_get_a_clear_error(real_pipeline, question, message):
    with pytest.raises(BylineError, match=message):
        real_pipeline.ask(question)


def run_cli(*args, data_dir, stdin=None, timeout=180):
    return subprocess.run([*BYLINE, "--data-dir", str(data_dir), *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout, cwd=REPO_ROOT)


def test_cli_bad_input_exits_non_zero_with_one_line(own_pipeline, tmp_path):
    data_dir = Path(own_pipeline.config["data_dir"])
    bad = tmp_path / "x.pdf"
    bad.write_bytes(b"%PDF-1.4")
    done = run_cli("ingest", str(bad), data_dir=data_dir)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "unsupported file type '.pdf'" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_json_from_stdin_answers_each_line_in_order(own_pipeline):
    questions = "When did the US issue the CCMC designation on Xiaomi?\n\nWhere are Xiaomi's shares traded?\n"
    done = run_cli("ask", "--json", "-", data_dir=Path(own_pipeline.config["data_dir"]), stdin=questions)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [line["question"] for line in lines] == ["When did the US issue the CCMC designation on Xiaomi?",
                                                     "Where are Xiaomi's shares traded?"]
    for line in lines:
        assert set(line) == {"question", "no_answer", "answers", "latency_ms"}
        for answer in line["answers"]:
            for citation in answer["citations"]:
                assert citation["snippet"][citation["answer_start"]:citation["answer_end"]] == answer["text"]


def holds_ingest_lock(pid: int, data_dir: Path) -> bool:
    """Whether process `pid` holds the data directory's ingest lock, read from /proc/locks so the
    test never takes the lock itself and turns the ingest away."""
    lock_file = data_dir / ".ingest.lock"
    if not lock_file.exists():
        return False
    inode = str(lock_file.stat().st_ino)
    held = [line.split() for line in Path("/proc/locks").read_text().splitlines()]
    return any(len(f) > 5 and f[1] == "FLOCK" and f[4] == str(pid) and f[5].split(":")[-1] == inode for f in held)


def test_kill_9_during_ingest_leaves_the_previous_index_loadable(own_pipeline, tmp_path):
    data_dir = Path(own_pipeline.config["data_dir"])
    before = index_snapshot(own_pipeline)
    feed = tmp_path / "many.jsonl"
    with feed.open("w", encoding="utf-8") as handle:
        for i in range(400):  # every sentence distinct, so no cache shortens the embedding
            text = " ".join(f"Report {i} item {j} says committee {j * 7 + i} met on day {j}." for j in range(40))
            handle.write(json.dumps({"id": f"bulk-{i}", "title": f"Bulk {i}", "text": text}) + "\n")
    process = subprocess.Popen([*BYLINE, "--data-dir", str(data_dir), "ingest", str(feed)], cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None and not holds_ingest_lock(process.pid, data_dir):
        time.sleep(0.05)
    time.sleep(1.0)  # into the sentence splitting and embedding of 400 articles, well before the commit
    assert process.poll() is None, "the ingest ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert index_snapshot(own_pipeline) == before
    assert IndexLocation(data_dir).load().doc_ids() == own_pipeline.doc_ids()


def test_a_syndicated_copy_takes_no_extra_retrieval_slot_but_is_cited(own_pipeline, tmp_path):
    original = own_pipeline.store.article_text("004_3fec00c11dc744f5")
    copy = tmp_path / "wire-copy.md"
    copy.write_text(f"---\ntitle: Xiaomi off US blacklist (wire copy)\npublisher: Wire Reprints\n---\n{original}",
                    encoding="utf-8")
    own_pipeline.ingest([copy])
    try:
        marked = [d for d in own_pipeline.store.all_chunks() if d.meta["doc_id"] == "wire-copy"]
        assert marked and all(d.meta["duplicate_of"] for d in marked)
        question = "Who is the chair of Xiaomi?"
        ranked = own_pipeline.retrieve(question)
        assert not {"wire-copy", "004_3fec00c11dc744f5"} <= set(ranked)
        result = own_pipeline.ask(question)
        assert result.answers[0].text == "Lei Jun"
        assert {"wire-copy", "004_3fec00c11dc744f5"} <= set(result.answers[0].articles)
    finally:
        own_pipeline.remove("wire-copy")


def test_a_crash_while_writing_the_new_index_keeps_the_old_one(own_pipeline, tmp_path, monkeypatch):
    from retrieval.index import local

    article = tmp_path / "crash.txt"
    article.write_text("The lighthouse keeper retired after forty years of service.", encoding="utf-8")
    before = index_snapshot(own_pipeline)

    def half_written(self, directory):
        directory.mkdir(parents=True)
        (directory / "articles.json").write_text("{\"format\": 1, \"articl")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(local.LocalStore, "save", half_written)
    with pytest.raises(BylineError, match="No space left on device.*the previous index is unchanged"):
        own_pipeline.ingest([article])
    assert index_snapshot(own_pipeline) == before
    assert "crash" not in own_pipeline.doc_ids()


def test_an_index_from_an_older_byline_is_rebuilt_from_the_articles_it_holds(test_config, tmp_path):
    import shutil

    from retrieval.index.local import INDEX_FORMAT

    data_dir = tmp_path / "old-data"
    first = BylinePipeline({**test_config, "data_dir": str(data_dir)})
    folder = IndexLocation(data_dir).link.resolve()
    manifest = json.loads((folder / "articles.json").read_text(encoding="utf-8"))
    manifest["format"] = INDEX_FORMAT - 1
    (folder / "articles.json").write_text(json.dumps(manifest), encoding="utf-8")
    shutil.rmtree(folder / "bm25")  # the older layout had no bm25s folder
    del first

    rebuilt = BylinePipeline({**test_config, "data_dir": str(data_dir)})
    assert rebuilt.doc_ids() == set(manifest["articles"])
    assert IndexLocation(data_dir).link.resolve() != folder
    assert IndexLocation(data_dir).load().doc_ids() == set(manifest["articles"])
    assert not rebuilt.ask("Which judge handled Xiaomi's case against the Defense Department?").no_answer


def test_a_second_writer_fails_at_once_or_waits_its_turn(tmp_path):
    import threading

    location = IndexLocation(tmp_path)
    entered = threading.Event()

    def wait_for_the_lock():
        with location.writer_lock(wait=True):
            entered.set()

    with location.writer_lock():
        with pytest.raises(BylineError, match="another ingest is running"):
            with location.writer_lock():
                pass
        waiter = threading.Thread(target=wait_for_the_lock)
        waiter.start()
        assert not entered.wait(0.5), "the waiting writer got in while the lock was held"
    assert entered.wait(5), "the waiting writer never got the lock"
    waiter.join()


@pytest.mark.parametrize("text, expected", [
    ("Its rivals include Huawei Technologies Co. Ltd.\n\nXiaomi sued.",
     ["Its rivals include Huawei Technologies Co. Ltd.", "Xiaomi sued."]),
    ("Acme Corp. and Beta Co. Ltd. agreed. Talks ended.", ["Acme Corp. and Beta Co. Ltd. agreed.", "Talks ended."]),
    ("They met Mr. Smith. He left. iPhone sales rose.", ["They met Mr. Smith.", "He left.", "iPhone sales rose."]),
])
def test_sentences_do_not_end_inside_a_company_name(text, expected):
    from retrieval.ingest.chunking import split_sentences

    assert [text[s.start:s.end] for s in split_sentences("a", text)] == expected

"""Byline on PostgreSQL + pgvector (a real server, tests/postgres/conftest.py): schema, ask, ingest, replace,
remove, idempotence, bad input, kill -9 inside the write transaction, the date filter, bad URLs, a lost server."""

import json
import signal
import subprocess
import time

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from pg_support import BYLINE, postgres_config, run_byline, snapshot

from retrieval.config import REPO_ROOT
from retrieval.errors import BylineError
from retrieval.index import pg
from retrieval.index.pg import Database
from retrieval.index.postgres import PostgresStore
from retrieval.pipeline import open_store

HARBOUR = ("---\ntitle: Harbour news\npublisher: Test Gazette\npublished: 2024-03-01\n---\n"
           "The harbour master Ellen Quist opened the new pier on Monday.\n\nAbout 300 people watched the ceremony.")


def test_schema_is_created_on_an_empty_database_and_upgraded_on_first_use(new_database, monkeypatch):
    url = new_database()
    monkeypatch.setattr(pg, "MIGRATIONS", pg.MIGRATIONS[:1])  # an older Byline creates version 1
    monkeypatch.setattr(pg, "SCHEMA_VERSION", 1)
    assert Database(url).created
    monkeypatch.undo()
    database = Database(url)  # this Byline upgrades it
    assert not database.created
    tables = {r[0] for r in database.connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"byline_schema", "byline_chunks", "byline_articles", "byline_sentences", "byline_slack_events",
            "byline_feedback", "byline_questions", "byline_thread_turns"} <= tables
    indexes = {r[0] for r in database.connection.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'byline_chunks'")}
    assert {"byline_chunks_hnsw", "byline_chunks_keyword", "byline_chunks_doc_id"} <= indexes
    assert database.connection.execute("SELECT version FROM byline_schema").fetchone()[0] == pg.SCHEMA_VERSION
    assert PostgresStore(url).needs_bootstrap()  # nothing written yet: the pipeline will ingest the corpus


def test_the_copied_corpus_answers_as_on_the_local_store(pg_pipeline, real_pipeline):
    assert pg_pipeline.doc_ids() == real_pipeline.doc_ids()
    assert {d.id for d in pg_pipeline.store.all_chunks()} == {d.id for d in real_pipeline.store.all_chunks()}
    result = pg_pipeline.ask("Who is the chair of Xiaomi?")
    assert result.answers[0].text == "Lei Jun"
    citation = result.answers[0].citations[0]
    assert citation.snippet[citation.answer_start:citation.answer_end] == "Lei Jun"
    assert pg_pipeline.ask("What was Xiaomi revenue in 2020?").no_answer


def test_ingest_replace_remove_and_reingest_on_postgres(pg_pipeline, tmp_path):
    url = pg_pipeline.config["store"]["url"]
    article = tmp_path / "harbour.md"
    article.write_text(HARBOUR, encoding="utf-8")
    assert pg_pipeline.ingest([article]).added == ["harbour"]
    answer = pg_pipeline.ask("Who opened the new pier?")
    assert answer.answers and "Ellen Quist" in answer.answers[0].text
    first = {row[0] for row in snapshot(url)["chunks"] if row[0].startswith("harbour:")}
    before = snapshot(url)
    report = pg_pipeline.ingest([article])  # re-ingesting the same article changes nothing
    assert report.unchanged == ["harbour"] and not report.changed and snapshot(url) == before

    article.write_text(HARBOUR.replace("Monday", "Tuesday"), encoding="utf-8")
    assert pg_pipeline.ingest([article]).updated == ["harbour"]
    second = [row for row in snapshot(url)["chunks"] if row[0].startswith("harbour:")]
    assert first.isdisjoint(r[0] for r in second) and all("Tuesday" in r[1] for r in second if "pier" in r[1])
    assert pg_pipeline.store.metadata("harbour")["publisher"] == "Test Gazette"

    pg_pipeline.remove("harbour")
    assert "harbour" not in pg_pipeline.doc_ids()
    assert not [row for row in snapshot(url)["sentences"] if row[0] == "harbour"]
    with pytest.raises(BylineError, match="no article with id 'harbour'"):
        pg_pipeline.remove("harbour")


def test_bad_input_leaves_the_database_unchanged(pg_pipeline, tmp_path):
    url = pg_pipeline.config["store"]["url"]
    good = tmp_path / "good.txt"
    good.write_text("A good article that must not be half-ingested alongside a bad one.", encoding="utf-8")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "A fine first line."}\n{"text": "broken\n', encoding="utf-8")
    before = snapshot(url)
    with pytest.raises(BylineError, match="bad.jsonl:2: malformed JSON"):
        pg_pipeline.ingest([good, bad])
    assert snapshot(url) == before


def test_a_syndicated_copy_is_marked_against_its_nearest_neighbours(pg_pipeline, tmp_path):
    feed = tmp_path / "wire.jsonl"
    feed.write_text(json.dumps({"id": "wire-copy", "title": "Xiaomi off US blacklist (wire copy)",
                                "text": pg_pipeline.store.article_text("004_3fec00c11dc744f5")}), encoding="utf-8")
    pg_pipeline.ingest([feed])
    try:
        marked = [d for d in pg_pipeline.store.all_chunks() if d.meta["doc_id"] == "wire-copy"]
        assert marked and all(d.meta["duplicate_of"].startswith("004_3fec00c11dc744f5:") for d in marked)
        result = pg_pipeline.ask("Who is the chair of Xiaomi?")
        assert {"wire-copy", "004_3fec00c11dc744f5"} <= set(result.answers[0].articles)
    finally:
        pg_pipeline.remove("wire-copy")


@pytest.mark.parametrize("backend", ["local", "postgres"])
def test_search_can_leave_out_articles_published_after_a_date(backend, pg_pipeline, real_pipeline, ingest_article):
    pipeline = pg_pipeline if backend == "postgres" else real_pipeline
    if "dated-harbour" not in pipeline.doc_ids():
        if backend == "local":
            ingest_article("dated-harbour", HARBOUR.split("---\n")[2], "Harbour news", published="2024-03-01")
        else:
            path = REPO_ROOT / "build" / "dated-harbour.md"
            path.parent.mkdir(exist_ok=True)
            path.write_text(HARBOUR, encoding="utf-8")
            pipeline.ingest([path])
    store = pipeline.store
    query = pipeline.text_embedder.run(text="harbour master new pier")["embedding"]
    for before, expected in ((None, True), ("2024-03-01", True), ("2021-12-31", False)):
        dense = store.dense_search(query, 10, published_on_or_before=before)
        lexical = store.lexical_search("harbour master pier", 10, published_on_or_before=before)
        assert any(d.meta["doc_id"] == "dated-harbour" for d in dense) == expected, (before, dense)
        assert any(d.meta["doc_id"] == "dated-harbour" for d in lexical) == expected, (before, lexical)
        assert dense and all((d.meta["published"] or "9") <= (before or "9") for d in dense + lexical)
    pipeline.remove("dated-harbour")


def test_kill_9_inside_the_write_transaction_leaves_every_article_wholly_old(real_pipeline, test_config, new_database,
                                                                             tmp_path):
    """The ingest is killed after writing every row, while its commit waits on a lock this test holds."""
    url = new_database()
    config = postgres_config(test_config, url, tmp_path / "data")
    done = run_byline("store", "copy", "--to", "postgres", "--url", url, config=test_config)
    assert done.returncode == 0, done.stderr
    before = snapshot(url)
    feed = tmp_path / "batch.jsonl"
    caixin = next(a for a in before["articles"] if a[0] == "002_a0ddfdd3e2791628")
    with feed.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "002_a0ddfdd3e2791628", "title": "Rewritten", "text": "A rewritten story."}) + "\n")
        for i in range(20):
            handle.write(json.dumps({"id": f"bulk-{i}", "title": f"Bulk {i}",
                                     "text": f"Report number {i} says the committee met on day {i}."}) + "\n")
    holder = psycopg.connect(url)
    holder.execute("SELECT * FROM byline_schema FOR UPDATE")  # the ingest's last statement will wait on this row
    watcher = psycopg.connect(url, autocommit=True)
    process = subprocess.Popen([*BYLINE, "--data-dir", config["data_dir"], "--set", "store.backend=postgres",
                                "--set", f"store.url={url}", "ingest", str(feed)], cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        waiting = None
        while time.time() < deadline and process.poll() is None and not waiting:
            time.sleep(0.2)
            waiting = watcher.execute("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                     "AND query LIKE 'UPDATE byline_schema%%'").fetchone()
        assert waiting, f"the ingest never reached its commit: {process.stderr.read() if process.poll() else ''}"
        inside = watcher.execute("SELECT count(*) FROM byline_articles").fetchone()[0]
        assert inside == len(before["articles"])  # its rows are invisible until it commits
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        holder.rollback()
        holder.close()
        process.kill()
    for _ in range(100):  # the server ends the orphaned transaction
        if not watcher.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", waiting).fetchone():
            break
        time.sleep(0.1)
    watcher.close()
    after = snapshot(url)
    assert after == before
    assert caixin in after["articles"]


def test_a_wrong_url_or_a_stopped_server_is_one_line_naming_host_and_port(test_config, tmp_path):
    config = postgres_config(test_config, "postgresql://byline@127.0.0.1:9/byline", tmp_path)
    done = run_byline("list", config=config)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "cannot connect to PostgreSQL at 127.0.0.1:9" in done.stderr
    with pytest.raises(BylineError, match="not a PostgreSQL URL"):
        open_store(postgres_config(test_config, "not a url", tmp_path))


def test_a_database_without_pgvector_says_how_to_enable_it(postgres_server, new_database):
    url = new_database()
    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(postgres_server, autocommit=True) as connection:
        connection.execute("CREATE ROLE byline_plain LOGIN")
        connection.execute(f"ALTER DATABASE {name} OWNER TO byline_plain")
    try:
        with pytest.raises(BylineError, match=r"lacks the pgvector extension.*CREATE EXTENSION vector"):
            PostgresStore(url.replace("postgresql://postgres:@", "postgresql://byline_plain:@"))
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as connection:
            connection.execute(f"ALTER DATABASE {name} OWNER TO postgres")
            connection.execute("DROP ROLE byline_plain")


def test_a_server_lost_mid_question_is_a_short_error_then_it_reconnects(pg_pipeline, postgres_server):
    name = conninfo_to_dict(pg_pipeline.config["store"]["url"])["dbname"]
    question = "Which judge handled Xiaomi's case against the Defense Department?"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        try:
            with pytest.raises(BylineError, match="connection to PostgreSQL at .*try again in a moment"):
                pg_pipeline.ask(question)
        finally:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    assert not pg_pipeline.ask(question).no_answer  # the same pipeline, connected again


def test_environment_settings_choose_the_store(corpus_database, tmp_path, monkeypatch):
    from retrieval.config import load_config

    config = load_config(overrides={"data_dir": str(tmp_path)}, environ={"BYLINE_STORE__BACKEND": "postgres"})
    monkeypatch.setenv("DATABASE_URL", corpus_database)  # honoured when store.url is unset
    store = open_store(config)
    assert store.backend == "postgres" and "004_3fec00c11dc744f5" in store.doc_ids()
    store.close()


def test_thread_records_on_postgres_are_shared_by_every_replica(new_database):
    from retrieval.conversation import Turn
    from retrieval.threads import PostgresThreadRecords

    def turn(question, answer, doc_ids):
        return Turn(question=question, read_as=question, answer=answer, doc_ids=doc_ids)

    url = new_database()
    one, other = Database(url), Database(url)  # two replicas, each with its own connection
    records = PostgresThreadRecords(one, max_turns=2)
    assert records.get("slack:C1:1.0") == []
    for i in range(3):
        records.append("slack:C1:1.0", turn(f"question {i}?", f"answer {i}", (f"d{i}",)))
    records.append("slack:C1:2.0", turn("other?", None, ()))
    seen_elsewhere = PostgresThreadRecords(other, max_turns=2)
    assert [t.question for t in seen_elsewhere.get("slack:C1:1.0")] == ["question 1?", "question 2?"]
    assert seen_elsewhere.get("slack:C1:1.0")[-1] == turn("question 2?", "answer 2", ("d2",))
    assert seen_elsewhere.get("slack:C1:2.0") == [turn("other?", None, ())]
    assert other.connection.execute("SELECT count(*) FROM byline_thread_turns").fetchone()[0] == 3

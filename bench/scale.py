"""`byline bench scale`: both backends over the same ~N chunks built from ../shared/qa-data/train contexts.

    byline bench scale --chunks N [--backend postgres|local|both] [--build-only | --measure-only]

1. prepare: every training context is split, embedded and chunked ONCE (the encoder is the slow
   part: about an hour of CPU for 50k chunks), in batches of 1,000 articles cached under
   `<scale dir>/prepared/`; an interrupted run resumes from the last finished batch.
2. load: the same prepared batches are written into each backend (local: `<scale dir>/local`;
   postgres: the server at --url, else a pgserver in `<scale dir>/postgres`), one write per
   batch, resumable too. Prints each backend's store-write rate.
3. measure (each backend in its own process, so RSS is its own): p50/p95 over the gold questions,
   ingest rate (prepare + write) of a 50-article sample, the cost of adding one article to the full
   store, RSS (and the Postgres server's). The sample and the one article are removed afterwards.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

from bench.run import TRAIN_DIR, gold_questions, rss_mb
from eval.metrics import percentile

BATCH = 1000
SAMPLE = 50


def scale_articles() -> list[dict]:
    """Every distinct context of the SQuAD-format training files that the cleaner keeps, as articles."""
    from retrieval.ingest.cleaning import clean_article_text

    articles, seen = [], set()
    for path in sorted(TRAIN_DIR.glob("*/*.json")):
        for article in json.loads(path.read_text())["data"]:
            for paragraph in article["paragraphs"]:
                text = paragraph["context"].strip()
                if text and text not in seen and clean_article_text(text).strip():
                    seen.add(text)
                    articles.append({"id": f"{path.parent.name}-{path.stem}-{len(articles)}",
                                     "title": f"{path.stem} {len(articles)}", "text": text})
    return articles


def scale_config(config: dict, chunks: int, articles: list[dict]) -> dict:
    """Chunks sized so that the contexts (~1.2M words) make at least `chunks` of them."""
    total_words = sum(len(a["text"].split()) for a in articles)
    return {**config, "chunking": {**config["chunking"], "max_words": max(1, total_words // chunks)}}


def _load_articles(records: list[dict], folder: Path, name: str):
    from retrieval.ingest.loaders import load_paths

    feed = folder / f"{name}.jsonl"
    feed.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return load_paths([feed], 10**9)


def prepare(config: dict, articles: list[dict], folder: Path, limit: int | None = None,
            batch: int = BATCH) -> list[Path]:
    """The prepared batches (the first `limit` only, if given), embedding only those not cached yet;
    their encoder rate in stats.json."""
    from retrieval.pipeline import build_preparer
    from retrieval.progress import IngestProgress

    cache = folder / "prepared"
    cache.mkdir(parents=True, exist_ok=True)
    stats_path = cache / "stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    preparer = None
    batches = []
    for number, offset in enumerate(range(0, len(articles), batch)):
        if limit is not None and number >= limit:
            break
        path = cache / f"batch-{number:04d}.pkl"
        batches.append(path)
        if path.exists():
            continue
        preparer = preparer or build_preparer(config)
        started = time.perf_counter()
        progress = IngestProgress(f"scale: batch {number + 1}/{-(-len(articles) // batch)}")
        try:
            prepared = preparer.run(articles=_load_articles(articles[offset:offset + batch], cache, "batch"),
                                    stored_fingerprints={}, progress=progress)["prepared"]
        finally:
            progress.close()
        seconds = time.perf_counter() - started
        partial = path.with_suffix(".partial")
        partial.write_bytes(pickle.dumps(prepared, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(partial, path)
        stats[path.name] = {"chunks": sum(len(p.chunks) for p in prepared), "seconds": round(seconds, 2)}
        stats_path.write_text(json.dumps(stats, indent=1))
        print(f"scale: prepared batch {number} ({stats[path.name]['chunks']} chunks, {seconds:.0f} s)",
              file=sys.stderr, flush=True)
    return batches


def backend_config(config: dict, backend: str, folder: Path, url: str | None) -> dict:
    if backend == "local":
        return {**config, "data_dir": str(folder / "local"), "store": {**config["store"], "backend": "local"}}
    if not url:
        from retrieval.index.devserver import start_server

        url = start_server(folder / "postgres")
    return {**config, "data_dir": str(folder / "postgres-data"),
            "store": {**config["store"], "backend": "postgres", "url": url}}


def load(config: dict, backend: str, batches: list[Path]) -> dict:
    """Write every prepared batch the backend lacks, one write (transaction) per batch."""
    from retrieval.pipeline import open_store

    store = open_store(config)
    present = store.doc_ids()
    threshold = config["retrieval"]["duplicate_threshold"]
    written, seconds = 0, 0.0
    with store.writer_lock(wait=True):
        for path in batches:
            prepared = [p for p in pickle.loads(path.read_bytes()) if p.doc_id not in present]
            if not prepared:
                continue
            store = store.for_writing()
            started = time.perf_counter()
            store.write(prepared, [], threshold)
            seconds += time.perf_counter() - started
            written += sum(len(p.chunks) for p in prepared)
            print(f"scale: {backend} holds {store.count_chunks()} chunks", file=sys.stderr, flush=True)
    result = {"chunks": store.count_chunks(), "written_now_chunks": written}
    if written:
        result["store_write_chunks_per_s"] = round(written / seconds, 1)
    store.close()
    return result


def measure(config: dict, sample: list[dict], extra: dict, rounds: int, folder: Path,
            questions: int | None = None) -> dict:
    """Run in a process of its own: latency, ingest and one-article cost, RSS."""
    from retrieval.pipeline import BylinePipeline

    pipeline = BylinePipeline(config)
    chunks = pipeline.store.count_chunks()
    pipeline.ask("Who blocked the Pentagon's designation of Xiaomi?")  # warm
    timings = []
    for _ in range(rounds):
        for question in gold_questions()[:questions]:
            started = time.perf_counter()
            pipeline.ask(question)
            timings.append((time.perf_counter() - started) * 1000)
    work = folder / f"measure-{pipeline.store.backend}"
    work.mkdir(exist_ok=True)
    feed = work / "sample.jsonl"
    feed.write_text("".join(json.dumps(r) + "\n" for r in sample), encoding="utf-8")
    one = work / "one.jsonl"
    one.write_text(json.dumps(extra) + "\n", encoding="utf-8")
    threshold = config["retrieval"]["duplicate_threshold"]
    try:
        ingest = pipeline.ingest([feed])
        single = pipeline.ingest([one])
    finally:
        with pipeline.store.writer_lock(wait=True):
            pipeline.store.for_writing().write([], [r["id"] for r in sample] + [extra["id"]], threshold)
    result = {"backend": pipeline.store.backend, "chunks": chunks, "questions": len(timings),
              "p50_ms": round(percentile(timings, 50), 1), "p95_ms": round(percentile(timings, 95), 1),
              "ingest_sample_articles": len(ingest.added), "ingest_chunks_per_s":
                  round(ingest.chunks_embedded / ingest.seconds, 1),
              "add_one_article_s": round(single.seconds, 2), "add_one_article_chunks": single.chunks_embedded,
              "rss_mb": round(rss_mb(), 1)}
    server = getattr(pipeline.store, "server_rss_mb", None)
    if server:
        result["server_rss_mb"] = round(server(), 1)
    return result


def held_out(articles: list[dict], sample: int) -> tuple[list[dict], list[dict], dict]:
    """The scale set, the ingest sample and the one extra article (the last contexts, not in the set)."""
    return articles[:-sample - 1], articles[-sample - 1:-1], articles[-1]


def bench_scale(config: dict, chunks: int, rounds: int, folder: Path, backends: list[str], build: bool,
                measure_now: bool, url: str | None, batches: int | None = None,
                questions: int | None = None, batch_size: int = BATCH, sample: int = SAMPLE) -> list[dict]:
    folder.mkdir(parents=True, exist_ok=True)
    articles = scale_articles()
    config = scale_config(config, chunks, articles)
    articles, sample, extra = held_out(articles, sample)
    results = []
    if build:
        paths = prepare(config, articles, folder, batches, batch_size)
        stats = json.loads((folder / "prepared" / "stats.json").read_text())
        used = [stats[p.name] for p in paths]
        prepared_chunks = sum(s["chunks"] for s in used)
        encoder = {"stage": "prepare", "chunks": prepared_chunks, "chunk_max_words": config["chunking"]["max_words"],
                   "prepare_chunks_per_s": round(prepared_chunks / sum(s["seconds"] for s in used), 1)}
        results.append(encoder)
        print(json.dumps(encoder), flush=True)
        for backend in backends:
            loaded = {"stage": "load", "backend": backend,
                      **load(backend_config(config, backend, folder, url), backend, paths)}
            results.append(loaded)
            print(json.dumps(loaded), flush=True)
    if measure_now:
        for backend in backends:
            done = subprocess.run(
                [sys.executable, "-m", "bench.scale", json.dumps(backend_config(config, backend, folder, url)),
                 json.dumps(sample), json.dumps(extra), str(rounds), str(folder), str(questions or 0)],
                capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"measuring {backend} failed: {done.stderr.strip().splitlines()[-1:]}")
            measured = {"stage": "measure", **json.loads(done.stdout.strip().splitlines()[-1])}
            results.append(measured)
            print(json.dumps(measured), flush=True)
    if "postgres" in backends and not url:
        from retrieval.index.devserver import stop_server

        stop_server(folder / "postgres")
    return results


if __name__ == "__main__":  # the measuring process
    import logging

    logging.basicConfig(level=logging.WARNING)
    for name in ("haystack", "haystack_integrations", "sentence_transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    config_json, sample_json, extra_json, rounds_arg, folder_arg, questions_arg = sys.argv[1:7]
    print(json.dumps(measure(json.loads(config_json), json.loads(sample_json), json.loads(extra_json),
                             int(rounds_arg), Path(folder_arg), int(questions_arg) or None)))

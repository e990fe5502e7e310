"""`byline bench`: print Byline's speed and memory figures (targets in the README).

    byline bench latency [--rounds N]     load + first answer, then p50/p95 over the gold questions, RSS
    byline bench ingest                   chunks/s, ingesting the bundled corpus and a train-context sample
    byline bench reader                   one question over 10 passages of ~200 words, median ms
    byline bench scale [--chunks N] [--backend postgres|local|both] [--build-only|--measure-only] [--url URL]
                                          both backends over the same ~N chunks built from ../shared/qa-data/train
                                          contexts, embedded once (kept in <data_dir>/bench-scale-N; an interrupted
                                          build resumes): store-write and ingest rates, p50/p95, RSS, adding one
                                          article to the full store (bench/scale.py)
    byline bench slack [--mentions N --concurrency N]   ack and mention-to-reply against a local Slack stand-in
    byline bench all
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from eval.metrics import percentile
from retrieval.config import REPO_ROOT

TRAIN_DIR = REPO_ROOT.parent / "shared" / "qa-data" / "train"


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def gold_questions() -> list[str]:
    path = REPO_ROOT / "eval" / "gold.jsonl"
    return [json.loads(line)["question"] for line in path.read_text().splitlines() if line.strip()]


def fresh_pipeline(config: dict, data_dir: str):
    from retrieval.pipeline import BylinePipeline

    return BylinePipeline({**config, "data_dir": data_dir})


def bench_latency(config: dict, rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as data_dir:
        fresh_pipeline(config, data_dir)  # builds the index once, so the timing below is load + answer
        started = time.perf_counter()
        pipeline = fresh_pipeline(config, data_dir)
        pipeline.ask("Who blocked the Pentagon's designation of Xiaomi?")
        first = time.perf_counter() - started
        questions = gold_questions()
        timings = []
        for _ in range(rounds):
            for question in questions:
                t = time.perf_counter()
                pipeline.ask(question)
                timings.append((time.perf_counter() - t) * 1000)
        return {"load_and_first_answer_s": round(first, 2), "questions": len(timings),
                "p50_ms": round(percentile(timings, 50), 1), "p95_ms": round(percentile(timings, 95), 1),
                "rss_mb": round(rss_mb(), 1)}


def train_context_articles(limit: int, seed: int = 7) -> list[dict]:
    """Distinct paragraphs from the SQuAD-shaped training files, as articles."""
    contexts = []
    for path in sorted(TRAIN_DIR.glob("*/*.json")):
        for article in json.loads(path.read_text())["data"]:
            for paragraph in article["paragraphs"]:
                contexts.append((path.stem, paragraph["context"]))
    random.Random(seed).shuffle(contexts)
    seen, articles = set(), []
    for source, text in contexts:
        if text in seen or len(text.split()) < 40:
            continue
        seen.add(text)
        articles.append({"id": f"{source}-{len(articles)}", "title": f"{source} {len(articles)}", "text": text})
        if len(articles) >= limit:
            break
    return articles


def bench_ingest(config: dict, sample: int) -> dict:
    with tempfile.TemporaryDirectory() as data_dir:
        pipeline = fresh_pipeline(config, data_dir)  # ingests the bundled corpus on first use
        corpus = pipeline.ingest([Path(config["corpus_dir"])])  # unchanged: the idempotent path
        feed = Path(data_dir) / "sample.jsonl"
        feed.write_text("\n".join(json.dumps(a) for a in train_context_articles(sample)))
        report = pipeline.ingest([feed])
        return {"unchanged_reingest_s": round(corpus.seconds, 2), "articles": len(report.added),
                "chunks": report.chunks_embedded, "seconds": round(report.seconds, 1),
                "chunks_per_s": round(report.chunks_embedded / report.seconds, 1)}


def bench_reader(config: dict, rounds: int = 10) -> dict:
    from haystack import Document

    from retrieval.reader.extractive import load_configured_reader

    reader = load_configured_reader(config["reader"])
    passages = [a["text"] for a in train_context_articles(400) if 170 <= len(a["text"].split()) <= 230][:10]
    documents = [Document(content=" ".join(p.split()[:200])) for p in passages]
    reader.run(query="What is this about?", documents=documents)
    timings = []
    for _ in range(rounds):
        t = time.perf_counter()
        reader.run(query="Who was responsible for the decision?", documents=documents)
        timings.append((time.perf_counter() - t) * 1000)
    return {"passages": len(documents), "words_each": 200, "median_ms": round(statistics.median(timings), 1)}


def main(argv: list[str], config_factory) -> int:
    if argv[:1] == ["slack"]:
        from bot.slack.bench import main as slack_bench

        return slack_bench(argv[1:], config=config_factory())
    parser = argparse.ArgumentParser(prog="byline bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["latency", "ingest", "reader", "scale", "slack", "all"])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--sample", type=int, help="train contexts ingested by 'ingest' (300) or 'scale' (50)")
    parser.add_argument("--chunks", type=int, default=50000)
    parser.add_argument("--backend", choices=["postgres", "local", "both"], default="both",
                        help="'scale': the backends to build and measure (postgres: both, compared in one run)")
    parser.add_argument("--build-only", action="store_true", help="'scale': prepare and load, do not measure")
    parser.add_argument("--measure-only", action="store_true",
                        help="'scale': measure the stores as far as they are built")
    parser.add_argument("--url", help="'scale': a PostgreSQL URL (default: a pgserver in the scale folder)")
    parser.add_argument("--batches", type=int, help="'scale': build only the first N batches of articles")
    parser.add_argument("--batch-size", type=int, default=1000, help="'scale': articles per prepared batch")
    parser.add_argument("--questions", type=int, help="'scale': time only the first N gold questions")
    parser.add_argument("--scale-dir", type=Path, default=None,
                        help="where 'scale' keeps its index (default <data_dir>/bench-scale-<chunks>)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    config = config_factory()
    benches = {"latency": lambda: bench_latency(config, args.rounds),
               "ingest": lambda: bench_ingest(config, args.sample or 300),
               "reader": lambda: bench_reader(config)}
    if args.what == "scale":
        from bench.scale import bench_scale

        bench_scale(config, args.chunks, args.rounds,
                    args.scale_dir or Path(config["data_dir"]) / f"bench-scale-{args.chunks}",
                    ["local", "postgres"] if args.backend in ("both", "postgres") else ["local"],
                    build=not args.measure_only, measure_now=not args.build_only, url=args.url, batches=args.batches,
                    questions=args.questions, batch_size=args.batch_size, sample=args.sample or 50)
        return 0
    chosen = ["latency", "ingest", "reader"] if args.what == "all" else [args.what]
    for name in chosen:
        print(json.dumps({"bench": name, **benches[name]()}), flush=True)
    return 0

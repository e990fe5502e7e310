"""`byline bench`: print Byline's speed and memory figures (targets in the README).

    byline bench latency [--rounds N]     load + first answer, then p50/p95 over the gold questions, RSS
    byline bench ingest [--sample N]      chunks/s ingesting N train contexts, beside the bare encoder's
                                          tokens/s on the same sentences (same run) and their ratio
    byline bench reader                   one question over 10 passages of ~200 words: median ms of the reader
                                          step beside the bare model forward over the same padded batches
    byline bench scale [--chunks N] [--backend postgres|local|both] [--build-only|--measure-only] [--url URL]
                                          both backends over the same ~N chunks built from ../shared/qa-data/train
                                          contexts, embedded once (kept in <data_dir>/bench-scale-N; an interrupted
                                          build resumes): store-write and ingest rates, p50/p95, RSS, adding one
                                          article to the full store (bench/scale.py)
    byline bench slack [--mentions N] [--fuzz N] [--in-flight K]   the real `byline slack` against a local Slack
                                          stand-in: burst load, fuzzed signed requests, SIGTERM with answers in flight
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
from retrieval.progress import IngestProgress, bars_enabled, progress_bar

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


def bare_encoder_tokens_per_s(encoder, ids: list[list[int]], batch_size: int | None = 64) -> float:
    """MiniLM alone: pre-tokenised sentences in length-sorted batches (of `batch_size` rows, or with
    None the encoder's own batches), one plain model call each (no pooling, no copies out); real
    (unpadded) tokens per second."""
    import numpy as np
    import torch

    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    if batch_size is None:
        groups = [list(rows) for rows in encoder.batches(np.array([len(row) for row in ids]))]
    else:
        groups = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    batches = []
    for group in groups:
        rows = [ids[i] for i in group]
        width = max(map(len, rows))
        input_ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            input_ids[i, :len(row)], mask[i, :len(row)] = row, 1
        batches.append((torch.from_numpy(input_ids), torch.from_numpy(mask)))
    started = time.perf_counter()
    with torch.inference_mode():
        for input_ids, mask in batches:
            encoder.model(input_ids=input_ids, attention_mask=mask)
    return sum(map(len, ids)) / (time.perf_counter() - started)


def bench_ingest(config: dict, sample: int) -> dict:
    """Ingest throughput beside the bare encoder's, on the same sentences in the same process.

    The bare figures are measured before and after the ingest (the better of the two is kept), so
    that a change in the machine's load during the run shows as a gap between the two: in batches of
    64 sentences, and in the encoder's own batches; the ratio is taken against the faster of them.
    """
    from retrieval.ingest.chunking import split_sentences
    from retrieval.ingest.loaders import load_paths

    with tempfile.TemporaryDirectory() as data_dir:
        pipeline = fresh_pipeline(config, data_dir)  # ingests the bundled corpus on first use
        corpus = pipeline.ingest([Path(config["corpus_dir"])])  # unchanged: the idempotent path
        feed = Path(data_dir) / "sample.jsonl"
        feed.write_text("\n".join(json.dumps(a) for a in train_context_articles(sample)))
        sentences = [a.text[s.start:s.end] for a in load_paths([feed], config["chunking"]["max_file_bytes"])
                     for s in split_sentences(a.doc_id, a.text)]
        ids = pipeline.encoder.tokenize(sentences)
        tokens = sum(map(len, ids))
        bare_before = [bare_encoder_tokens_per_s(pipeline.encoder, ids, size) for size in (64, None)]
        encode_seconds = []
        embed = pipeline.preparer.embed

        def timed_embed(texts, progress=None):
            started = time.perf_counter()
            vectors = embed(texts, progress)
            encode_seconds.append(time.perf_counter() - started)
            return vectors

        pipeline.preparer.embed = timed_embed
        report = pipeline.ingest([feed])
        bare_after = [bare_encoder_tokens_per_s(pipeline.encoder, ids, size) for size in (64, None)]
        bare_64, bare_own = max(bare_before[0], bare_after[0]), max(bare_before[1], bare_after[1])
        bare = max(bare_64, bare_own)
        ingest_tokens_per_s = tokens / report.seconds
        return {"unchanged_reingest_s": round(corpus.seconds, 2), "articles": len(report.added),
                "sentences": len(sentences), "tokens": tokens, "chunks": report.chunks_embedded,
                "seconds": round(report.seconds, 2), "encode_s": round(sum(encode_seconds), 2),
                "encoder_share": round(sum(encode_seconds) / report.seconds, 3),
                "chunks_per_s": round(report.chunks_embedded / report.seconds, 1),
                "ingest_tokens_per_s": round(ingest_tokens_per_s),
                "bare_encoder_tokens_per_s": round(bare),
                "bare_batches_of_64": round(bare_64), "bare_encoder_batches": round(bare_own),
                "bare_before_after": [[round(x) for x in bare_before], [round(x) for x in bare_after]],
                "ingest_over_bare": round(ingest_tokens_per_s / bare, 3),
                "precision": config["embedder"]["precision"]}


def bench_reader(config: dict, rounds: int = 10) -> dict:
    """The reader step on one question over 10 passages of 200 words, beside the bare model forward
    over exactly the padded batches it builds (tokenising, span search and answer objects are the rest)."""
    import torch
    from haystack import Document

    from retrieval.reader.extractive import load_configured_reader
    from retrieval.reader.spans import window_batches

    reader = load_configured_reader(config["reader"])
    passages = [a["text"] for a in train_context_articles(400) if 170 <= len(a["text"].split()) <= 230][:10]
    documents = [Document(content=" ".join(p.split()[:200])) for p in passages]
    question = "Who was responsible for the decision?"
    reader.run(query="What is this about?", documents=documents)
    _, batches = window_batches(reader.model, reader.tokenizer, [question] * len(documents),
                                [d.content for d in documents], max_length=reader.max_seq_length, stride=reader.stride)
    reader_ms, bare_ms = [], []
    for _ in range(rounds):  # alternated, so that a change in the machine's load hits both alike
        t = time.perf_counter()
        reader.run(query=question, documents=documents)
        reader_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        with torch.inference_mode():
            for batch in batches:
                reader.model(**batch.inputs)
        bare_ms.append((time.perf_counter() - t) * 1000)
    tokens = sum(int(b.inputs["attention_mask"].sum()) for b in batches)
    reader_median, bare_median = statistics.median(reader_ms), statistics.median(bare_ms)
    return {"passages": len(documents), "words_each": 200, "tokens": tokens,
            "windows": sum(len(b.windows) for b in batches), "median_ms": round(reader_median, 1),
            "bare_forward_median_ms": round(bare_median, 1),
            "bare_tokens_per_s": round(tokens / bare_median * 1000),
            "reader_over_bare": round(reader_median / bare_median, 3)}


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

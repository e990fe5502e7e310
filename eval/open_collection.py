"""`byline eval --open FILE`: end-to-end answers over a whole collection nobody here wrote.

Every article of a SQuAD-format file becomes one Byline article (its paragraphs joined by blank
lines) in a scratch data directory, built once and cached by the file's SHA-256 under
`build/open-eval/`. A deterministic spread sample of its questions is then asked through the full
pipeline; no question is told its paragraph. Besides EM/F1 it reports where each answerable
question was lost (the loss budget), beside the reader-only F1 on the same questions:

- not retrieved: no retrieved chunk of the question's own article holds a gold answer;
- not in the reader's input: retrieved, but no focus window holds a gold answer;
- reader picked another span: in the input, but the best span (before the threshold) is wrong;
- refused under the threshold: the best span was right, but scored under the no-answer threshold.

A question's loss is its reader-only F1 minus its end-to-end F1; the budget sums them by stage,
in F1 points over all answerable questions, so that the stages add up to the gap.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from eval.metrics import contains_answer, mean, percentile, score_prediction
from eval.squad_benchmark import SquadFormatError, best_span, spread_sample
from retrieval.config import REPO_ROOT
from retrieval.progress import progress_bar

CACHE_ROOT = REPO_ROOT / "build" / "open-eval"
STAGES = ("not_retrieved", "not_in_reader_input", "reader_picked_another_span", "refused_under_threshold")


@dataclass(frozen=True)
class OpenQuestion:
    id: str
    question: str
    doc_id: str
    context: str  # its own paragraph, for the reader-only figure
    answers: tuple[str, ...]
    impossible: bool


def load_collection(path: Path) -> tuple[list[dict], list[OpenQuestion], bool]:
    """(articles as JSON-lines records, questions in file order, is v2.0); one line on bad records."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        if not isinstance(data, list):
            raise TypeError("'data' is not a list")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SquadFormatError(f"{path} is not a SQuAD-format JSON file ({type(exc).__name__}: {exc})") from None
    articles, questions, v2 = [], [], False
    for a_index, article in enumerate(data):
        where = f"{path}: data[{a_index}]"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise SquadFormatError(f"{where}: not an article with a 'paragraphs' list")
        title = str(article.get("title") or f"article {a_index}")
        slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-")[:40] or "article"
        doc_id = f"{a_index:04d}_{slug}"
        contexts = []
        for p_index, paragraph in enumerate(article["paragraphs"]):
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                raise SquadFormatError(f"{where}.paragraphs[{p_index}]: missing 'context' string")
            context = paragraph["context"]
            contexts.append(" ".join(context.split()))
            for qa in paragraph.get("qas", []):
                if not isinstance(qa, dict) or not isinstance(qa.get("question"), str) or "id" not in qa:
                    raise SquadFormatError(f"{where}.paragraphs[{p_index}]: a qas record lacks 'id' or 'question'")
                try:
                    answers = tuple(a["text"] for a in qa.get("answers") or [])
                except (KeyError, TypeError):
                    raise SquadFormatError(f"{where}.paragraphs[{p_index}]: record {qa['id']}: malformed answers") from None
                v2 |= "is_impossible" in qa
                questions.append(OpenQuestion(str(qa["id"]), qa["question"], doc_id, context, answers,
                                              bool(qa.get("is_impossible", False))))
        articles.append({"id": doc_id, "title": title.replace("_", " "), "text": "\n\n".join(contexts),
                         "url": None, "date": None})
    if not questions:
        raise SquadFormatError(f"{path} has no questions")
    return articles, questions, v2


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def scratch_collection(path: Path, articles: list[dict], cache_root: Path = CACHE_ROOT) -> Path:
    """The folder holding the collection as one JSON-lines file; its index is built beside it."""
    folder = cache_root / file_digest(path)[:16]
    corpus = folder / "articles"
    if not (corpus / "articles.jsonl").exists():
        temporary = folder / "articles.tmp"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        (temporary / "articles.jsonl").write_text(
            "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in articles), encoding="utf-8")
        os.replace(temporary, corpus)
    return folder


def open_config(config: dict, folder: Path) -> dict:
    """The same configuration, on the scratch collection (a local index built once, atomically:
    the local store publishes a complete index folder or nothing)."""
    return {**config, "data_dir": str(folder / "data"), "corpus_dir": str(folder / "articles")}


def reader_tokens(tokenizer, question: str, passages) -> int:
    return sum(len(tokenizer(question, p.content, truncation=True, max_length=384)["input_ids"]) for p in passages)


def _holds_answer(documents, doc_id: str, answers) -> bool:
    return any(d.meta.get("doc_id") == doc_id and contains_answer(d.content, answers) for d in documents)


def ask_all(pipeline, questions: list[OpenQuestion], v2: bool, progress=None) -> list[dict]:
    threshold = pipeline.config["reader"]["no_answer_threshold"]
    tokenizer = pipeline.reader.tokenizer
    rows = []
    for done, q in enumerate(questions, 1):
        started = time.perf_counter()
        trace = pipeline.trace(q.question)
        latency = (time.perf_counter() - started) * 1000
        result = trace["result"]
        prediction = result.best.text if result.best else None
        answers = [] if q.impossible else list(q.answers)
        em, f1 = score_prediction(prediction, answers)
        own_text, own_score = best_span(pipeline.reader, q.question, q.context)
        own_prediction = None if (v2 and own_score < threshold) else own_text
        row = {"id": q.id, "question": q.question, "impossible": q.impossible, "prediction": prediction,
               "em": em, "f1": f1, "reader_only_f1": score_prediction(own_prediction, answers)[1],
               "best_score": trace["best_score"], "latency_ms": latency,
               "reader_tokens": reader_tokens(tokenizer, q.question, trace["passages"]),
               "gold_cited": bool(result.best and q.doc_id in result.best.articles)}
        if not q.impossible:
            best_before_threshold = trace["best_span"]
            if not _holds_answer(trace["retrieved"], q.doc_id, answers):
                stage = "not_retrieved"
            elif not any(contains_answer(p.content, answers) for p in trace["passages"]):
                stage = "not_in_reader_input"
            elif prediction is None and score_prediction(best_before_threshold, answers)[1] > 0:
                stage = "refused_under_threshold"
            else:
                stage = "reader_picked_another_span"
            row["stage"] = stage if f1 < 1.0 else None
        rows.append(row)
        if progress:
            progress(done, len(questions))
    return rows


def summarize(rows: list[dict], v2: bool) -> dict:
    answerable = [r for r in rows if not r["impossible"]]
    summary = {"total": len(rows), "exact": 100 * mean(r["em"] for r in rows), "f1": 100 * mean(r["f1"] for r in rows),
               "reader_only_f1": 100 * mean(r["reader_only_f1"] for r in rows)}
    if v2:
        for prefix, impossible in (("HasAns_", False), ("NoAns_", True)):
            part = [r for r in rows if r["impossible"] == impossible]
            if part:
                summary |= {f"{prefix}exact": 100 * mean(r["em"] for r in part),
                            f"{prefix}f1": 100 * mean(r["f1"] for r in part), f"{prefix}total": len(part)}
    summary["gold_article_cited"] = mean(r["gold_cited"] for r in answerable)
    latencies = [r["latency_ms"] for r in rows]
    summary |= {"latency_p50_ms": percentile(latencies, 50), "latency_p95_ms": percentile(latencies, 95),
                "reader_tokens_per_question": mean(r["reader_tokens"] for r in rows)}
    loss = {}
    for stage in STAGES:
        members = [r for r in answerable if r.get("stage") == stage]
        loss[stage] = {"count": len(members),
                       "f1_points": 100 * sum(r["reader_only_f1"] - r["f1"] for r in members) / max(len(answerable), 1)}
    answered_right = [r for r in answerable if r.get("stage") is None]
    loss["gained_or_kept"] = {"count": len(answered_right),
                              "f1_points": 100 * sum(r["reader_only_f1"] - r["f1"] for r in answered_right)
                              / max(len(answerable), 1)}
    summary["answerable"] = len(answerable)
    summary["answerable_f1"] = 100 * mean(r["f1"] for r in answerable)
    summary["answerable_reader_only_f1"] = 100 * mean(r["reader_only_f1"] for r in answerable)
    summary["loss"] = loss
    return summary


def print_summary(summary: dict, out=sys.stdout) -> None:
    keys = ["file", "version", "articles", "total", "exact", "f1", "reader_only_f1", "HasAns_f1", "NoAns_exact",
            "gold_article_cited", "latency_p50_ms", "latency_p95_ms", "reader_tokens_per_question"]
    for key in keys:
        if key in summary:
            value = summary[key]
            print(f"{key:<28} {value:.3f}" if isinstance(value, float) else f"{key:<28} {value}", file=out)
    print(f"\nloss budget over {summary['answerable']} answerable questions (end-to-end F1 "
          f"{summary['answerable_f1']:.1f}, reader-only F1 on the same questions {summary['answerable_reader_only_f1']:.1f}):",
          file=out)
    for stage, figures in summary["loss"].items():
        print(f"  {stage.replace('_', ' '):<30} {figures['count']:>5}  {figures['f1_points']:6.1f} F1 points", file=out)
    if "stock" in summary:
        stock = summary["stock"]
        print(f"\nstock Haystack pipeline, same reader ({stock['pipeline']}): F1 {stock['f1']:.1f}, "
              f"p50 {stock['latency_p50_ms']:.0f} ms; Byline/stock F1 ratio {summary['f1'] / stock['f1']:.2f}, "
              f"p50 speed-up {stock['latency_p50_ms'] / summary['latency_p50_ms']:.1f}x", file=out)


def run_stock_peer(articles: list[dict], questions: list[OpenQuestion], v2: bool, reader, threshold: float) -> dict:
    """The stock Haystack pipeline on the same collection and reader: 200-word splits, in-memory
    BM25 top-10, `TransformersExtractiveReader`'s own span scores (its best span, as Haystack ranks
    them), the same no-answer threshold on v2.0 files."""
    from haystack import Document, Pipeline
    from haystack.components.preprocessors import DocumentSplitter
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

    from retrieval.reader.extractive import pass_segment_ids

    store = InMemoryDocumentStore()
    splitter = DocumentSplitter(split_by="word", split_length=200, split_overlap=0)
    documents = splitter.run([Document(content=a["text"], meta={"doc_id": a["id"]}) for a in articles])["documents"]
    store.write_documents(documents)
    stock_reader = TransformersExtractiveReader(model=reader.model_name_or_path, top_k=1, no_answer=False,
                                                max_seq_length=384, stride=128,
                                                model_kwargs={"dtype": "float32"})
    stock_reader.warm_up()
    pass_segment_ids(stock_reader)  # the same model, given the segment ids it was trained with
    pipeline = Pipeline()
    pipeline.add_component("retriever", InMemoryBM25Retriever(document_store=store, top_k=10))
    pipeline.add_component("reader", stock_reader)
    pipeline.connect("retriever.documents", "reader.documents")
    f1s, latencies = [], []
    for q in questions:
        started = time.perf_counter()
        answers = pipeline.run({"retriever": {"query": q.question}, "reader": {"query": q.question}})["reader"]["answers"]
        latencies.append((time.perf_counter() - started) * 1000)
        best = next((a for a in answers if a.data), None)
        prediction = best.data if best and not (v2 and best.score < threshold) else None
        f1s.append(score_prediction(prediction, [] if q.impossible else list(q.answers))[1])
    return {"pipeline": "200-word splits, in-memory BM25 top-10, TransformersExtractiveReader",
            "f1": 100 * mean(f1s), "latency_p50_ms": percentile(latencies, 50),
            "latency_p95_ms": percentile(latencies, 95)}


def run_open(path: Path, config: dict, limit: int | None, with_stock: bool = False,
             cache_root: Path = CACHE_ROOT) -> tuple[dict, list[dict]]:
    from retrieval.pipeline import BylinePipeline

    articles, questions, v2 = load_collection(path)
    questions = spread_sample(questions, limit)
    folder = scratch_collection(path, articles, cache_root)
    print(f"eval --open: {len(articles)} articles, {len(questions)} questions; collection in {folder}",
          file=sys.stderr, flush=True)
    pipeline = BylinePipeline(open_config(config, folder))

    with progress_bar(len(questions), "eval --open", "question") as bar:
        rows = ask_all(pipeline, questions, v2, lambda done, total: bar.update(1))
    summary = {"file": str(path), "version": "2.0" if v2 else "1.1", "articles": len(articles), **summarize(rows, v2)}
    if with_stock:
        summary["stock"] = run_stock_peer(articles, questions, v2, pipeline.reader,
                                          pipeline.config["reader"]["no_answer_threshold"])
    return summary, rows

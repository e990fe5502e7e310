"""The local backend: articles, sentence table and chunk stores (FAISS + BM25) in one folder.

On disk, `<data_dir>/index` is a symbolic link to one complete index folder. A write builds
a whole new folder and then swaps the link with one atomic rename, so a crash or `kill -9`
at any moment leaves the previous index loadable. One process writes at a time (a lock file).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from haystack import Document
from haystack.document_stores.errors import DocumentStoreError
from haystack.document_stores.types import DuplicatePolicy
from haystack_integrations.components.retrievers.faiss import FAISSEmbeddingRetriever
from haystack_integrations.document_stores.faiss import FAISSDocumentStore

from retrieval.errors import BylineError
from retrieval.index.base import (ARTICLE_FIELDS, EMBEDDING_DIM, PreparedArticle, mark_syndicated_copies,
                                  published_filter)
from retrieval.index.lexical import LexicalIndex
from retrieval.ingest.chunking import Sentence
from retrieval.ingest.loaders import Article

INDEX_FORMAT = 3  # 2: BM25 by bm25s in bm25/; 3: sentences no longer end at "Co." in "Co. Ltd." (rebuilt from the articles)

logger = logging.getLogger(__name__)


class StaleIndexFormat(BylineError):
    """An index written by another version of Byline; it still holds every article it indexed."""

    def __init__(self, directory: Path, manifest: dict) -> None:
        super().__init__(f"{directory}: index format {manifest.get('format')} is not {INDEX_FORMAT}")
        self.articles = [Article(doc_id=doc_id, text=record["text"], title=record["title"],
                                 publisher=record.get("publisher"), published=record.get("published"),
                                 url=record.get("url"))
                         for doc_id, record in manifest.get("articles", {}).items()]


class LocalStore:
    """Everything retrieval needs, in memory; loaded from and published to `location`."""

    backend = "local"

    def __init__(self, location: "IndexLocation") -> None:
        self.location = location
        self.articles: dict[str, dict] = {}  # doc_id -> metadata, text, fingerprint
        self._sentences: dict[str, list[Sentence]] = {}
        self._sentence_vectors: dict[str, np.ndarray] = {}
        self.chunks: dict[str, Document] = {}  # chunk id -> Document with embedding
        self.faiss_store = FAISSDocumentStore(embedding_dim=EMBEDDING_DIM)
        self.lexical = LexicalIndex([])
        self.stale_articles: list[Article] | None = None  # an older format's articles, to index again

    # -- reading ---------------------------------------------------------------------------
    @classmethod
    def open(cls, location: "IndexLocation") -> "LocalStore":
        """The published index; an empty store if there is none yet, or if it is in an older format."""
        if not location.exists():
            return cls(location)
        try:
            return cls.load(location)
        except StaleIndexFormat as stale:
            logger.warning("%s; re-indexing the %d articles it holds", stale, len(stale.articles))
            store = cls(location)
            store.stale_articles = stale.articles
            return store

    @classmethod
    def load(cls, location: "IndexLocation") -> "LocalStore":
        directory = location.link.resolve()
        store = cls(location)
        try:
            manifest = json.loads((directory / "articles.json").read_text(encoding="utf-8"))
            if manifest.get("format") != INDEX_FORMAT:
                raise StaleIndexFormat(directory, manifest)
            embeddings = np.load(directory / "sentence_embeddings.npy")
            faiss_store = FAISSDocumentStore(index_path=str(directory / "chunks"), embedding_dim=EMBEDDING_DIM)
            lexical = LexicalIndex.load(directory / "bm25")
        except (OSError, ValueError, KeyError, DocumentStoreError) as exc:
            raise BylineError(f"{directory}: the index is unreadable ({exc}); delete it and ingest again") from exc
        row = 0
        for doc_id, record in manifest["articles"].items():
            spans = record.pop("sentences")
            store.articles[doc_id] = record
            store._sentences[doc_id] = [Sentence(doc_id, i, s, e) for i, (s, e) in enumerate(spans)]
            store._sentence_vectors[doc_id] = embeddings[row:row + len(spans)].astype(np.float32)
            row += len(spans)
        store.faiss_store = faiss_store
        store.chunks = dict(faiss_store.documents)
        for chunk in store.chunks.values():  # indexes written before chunks carried the date
            chunk.meta.setdefault("published", store.articles[chunk.meta["doc_id"]].get("published"))
        store.lexical = lexical
        return store

    def dense_search(self, query_embedding: list[float], top_k: int,
                     published_on_or_before: str | None = None) -> list[Document]:
        retriever = FAISSEmbeddingRetriever(document_store=self.faiss_store, top_k=top_k)
        found = retriever.run(query_embedding=query_embedding, filters=published_filter(published_on_or_before))
        return [_scored_copy(self.chunks[d.id], d.score) for d in found["documents"]]

    def lexical_search(self, query: str, top_k: int, published_on_or_before: str | None = None) -> list[Document]:
        allowed = None
        if published_on_or_before:
            allowed = lambda chunk_id: (self.chunks[chunk_id].meta.get("published") or "9999") <= published_on_or_before  # noqa: E731
        return [_scored_copy(self.chunks[chunk_id], score)
                for chunk_id, score in self.lexical.search(query, top_k, allowed)]

    def doc_ids(self) -> set[str]:
        return set(self.articles)

    def fingerprints(self) -> dict[str, str]:
        return {doc_id: record["fingerprint"] for doc_id, record in self.articles.items()}

    def article_text(self, doc_id: str) -> str:
        return self.articles[doc_id]["text"]

    def metadata(self, doc_id: str) -> dict:
        record = self.articles[doc_id]
        return {k: record.get(k) for k in ARTICLE_FIELDS}

    def sentences(self, doc_id: str) -> list[Sentence]:
        return self._sentences[doc_id]

    def sentence_vectors(self, doc_id: str) -> np.ndarray:
        return self._sentence_vectors[doc_id]

    def chunk(self, chunk_id: str) -> Document:
        return _scored_copy(self.chunks[chunk_id], None)

    def all_chunks(self) -> list[Document]:
        return list(self.chunks.values())

    def count_chunks(self) -> int:
        return len(self.chunks)

    def needs_bootstrap(self) -> bool:
        return self.stale_articles is not None or not self.location.exists()

    def close(self) -> None:
        pass

    # -- writing ---------------------------------------------------------------------------
    def writer_lock(self, wait: bool = False):
        return self.location.writer_lock(wait)

    def for_writing(self) -> "LocalStore":
        """A fresh copy of the published index (another process may have written since this one loaded)."""
        return LocalStore.open(self.location)

    def write(self, prepared: list[PreparedArticle], remove: list[str], duplicate_threshold: float) -> None:
        """Apply the change in memory, then publish it as a new folder (one atomic rename)."""
        gone = {p.doc_id for p in prepared} | set(remove)
        dropped = {cid for cid, d in self.chunks.items() if d.meta["doc_id"] in gone}
        for doc_id in gone:
            self.articles.pop(doc_id, None)
            self._sentences.pop(doc_id, None)
            self._sentence_vectors.pop(doc_id, None)
        for chunk_id in dropped:
            del self.chunks[chunk_id]
        orphans = [d for d in self.chunks.values() if d.meta.get("duplicate_of") in dropped]
        new_chunks = [chunk for p in prepared for chunk in p.chunks]
        mark_syndicated_copies(new_chunks + orphans, self._neighbours_outside(new_chunks + orphans),
                               duplicate_threshold)
        for p in prepared:
            self.articles[p.doc_id] = {**p.article.metadata(), "text": p.article.text, "fingerprint": p.fingerprint}
            self._sentences[p.doc_id] = p.sentences
            self._sentence_vectors[p.doc_id] = p.sentence_vectors
            self.chunks.update((chunk.id, chunk) for chunk in p.chunks)
        self._rebuild_stores()
        self.location.publish(self)

    def _neighbours_outside(self, batch: list[Document]):
        """Nearest stored chunks (cosine, best first) of each vector, among those not in `batch`."""
        import faiss

        in_batch = {d.id for d in batch}
        others = [d for d in self.chunks.values() if d.id not in in_batch]

        def neighbours(matrix: np.ndarray, k: int) -> list[list[tuple[float, Document]]]:
            if not others:
                return [[] for _ in range(len(matrix))]
            flat = faiss.IndexFlatIP(EMBEDDING_DIM)
            flat.add(np.asarray([d.embedding for d in others], dtype=np.float32))
            similarities, positions = flat.search(matrix, min(k, len(others)))
            return [[(float(s), others[j]) for s, j in zip(row_s, row_p) if j >= 0]
                    for row_s, row_p in zip(similarities, positions)]

        return neighbours

    def _rebuild_stores(self) -> None:
        self.faiss_store = FAISSDocumentStore(embedding_dim=EMBEDDING_DIM)
        documents = list(self.chunks.values())
        if documents:
            self.faiss_store.write_documents(documents, policy=DuplicatePolicy.OVERWRITE)
        self.lexical = LexicalIndex.build([d.id for d in documents], [d.content for d in documents])

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True)
        articles = {}
        rows = []
        for doc_id, record in self.articles.items():
            articles[doc_id] = {**record, "sentences": [[s.start, s.end] for s in self._sentences[doc_id]]}
            rows.append(self._sentence_vectors[doc_id])
        matrix = np.concatenate(rows) if rows else np.zeros((0, EMBEDDING_DIM))
        np.save(directory / "sentence_embeddings.npy", matrix.astype(np.float16))
        self.faiss_store.save(directory / "chunks")
        self.lexical.save(directory / "bm25")
        (directory / "articles.json").write_text(
            json.dumps({"format": INDEX_FORMAT, "articles": articles}, ensure_ascii=False), encoding="utf-8")


def _scored_copy(chunk: Document, score: float | None) -> Document:
    """A copy later steps may annotate (their notes must not leak into the index)."""
    return Document(id=chunk.id, content=chunk.content, meta=dict(chunk.meta), score=score)


class IndexLocation:
    """`<data_dir>/index` -> one complete index folder, swapped atomically."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.link = self.data_dir / "index"

    def exists(self) -> bool:
        return (self.link / "articles.json").exists()

    def load(self) -> LocalStore:
        return LocalStore.load(self)

    @contextmanager
    def writer_lock(self, wait: bool = False):
        """One writer per data directory: a second one fails at once, or with `wait` queues."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / ".ingest.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise BylineError("another ingest is running on this data directory; try again when it ends") from exc
            yield

    def publish(self, index: LocalStore) -> Path:
        """Write `index` to a fresh folder, then point the link at it in one rename."""
        name = f"index-{uuid.uuid4().hex[:12]}"
        staging = self.data_dir / f"{name}.partial"
        try:
            index.save(staging)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise BylineError(f"could not write the index in {self.data_dir} ({exc.strerror or exc}); "
                              "the previous index is unchanged") from exc
        final = self.data_dir / name
        os.rename(staging, final)
        temporary_link = self.data_dir / f"{name}.link"
        os.symlink(name, temporary_link)
        os.replace(temporary_link, self.link)
        self._sync_dir()
        for stale in self.data_dir.glob("index-*"):
            if stale != final:
                shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() and not stale.is_symlink() else stale.unlink()
        return final

    def _sync_dir(self) -> None:
        descriptor = os.open(self.data_dir, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

"""Byline's persistent index: articles, sentence table, chunk document stores (FAISS + BM25).

On disk, `<data_dir>/index` is a symbolic link to one complete index folder. An ingest
writes a whole new folder and then swaps the link with one atomic rename, so a crash or
`kill -9` at any moment leaves the previous index loadable.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from haystack import Document
from haystack.document_stores.errors import DocumentStoreError
from haystack.document_stores.types import DuplicatePolicy
from haystack_integrations.document_stores.faiss import FAISSDocumentStore

from retrieval.errors import BylineError
from retrieval.index.lexical import LexicalIndex
from retrieval.ingest.chunking import Sentence, chunk_article, split_sentences
from retrieval.ingest.loaders import Article

INDEX_FORMAT = 2  # 2: BM25 by bm25s in bm25/
EMBEDDING_DIM = 384


class StaleIndexFormat(BylineError):
    """An index written by another version of Byline; it still holds every article it indexed."""

    def __init__(self, directory: Path, manifest: dict) -> None:
        super().__init__(f"{directory}: index format {manifest.get('format')} is not {INDEX_FORMAT}")
        self.articles = [Article(doc_id=doc_id, text=record["text"], title=record["title"],
                                 publisher=record.get("publisher"), published=record.get("published"),
                                 url=record.get("url"))
                         for doc_id, record in manifest.get("articles", {}).items()]


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    chunks_embedded: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def article_fingerprint(article: Article) -> str:
    payload = json.dumps([article.text, article.metadata()], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class ArticleIndex:
    """Everything retrieval needs, in memory; `load` and `save` move it to and from disk."""

    def __init__(self) -> None:
        self.articles: dict[str, dict] = {}  # doc_id -> metadata, text, fingerprint
        self.sentences: dict[str, list[Sentence]] = {}
        self.sentence_embeddings: dict[str, np.ndarray] = {}
        self.chunks: dict[str, Document] = {}  # chunk id -> Document with embedding
        self.faiss_store = FAISSDocumentStore(embedding_dim=EMBEDDING_DIM)
        self.lexical = LexicalIndex([])

    # -- reading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: Path) -> "ArticleIndex":
        index = cls()
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
            index.articles[doc_id] = record
            index.sentences[doc_id] = [Sentence(doc_id, i, s, e) for i, (s, e) in enumerate(spans)]
            index.sentence_embeddings[doc_id] = embeddings[row:row + len(spans)].astype(np.float32)
            row += len(spans)
        index.faiss_store = faiss_store
        index.chunks = dict(faiss_store.documents)
        for chunk in index.chunks.values():  # indexes written before chunks carried their article's date
            chunk.meta.setdefault("published", index.articles[chunk.meta["doc_id"]].get("published"))
        index.lexical = lexical
        return index

    def doc_ids(self) -> set[str]:
        return set(self.articles)

    def article_text(self, doc_id: str) -> str:
        return self.articles[doc_id]["text"]

    def metadata(self, doc_id: str) -> dict:
        record = self.articles[doc_id]
        return {k: record.get(k) for k in ("doc_id", "title", "publisher", "published", "url")}

    # -- writing ---------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True)
        articles = {}
        rows = []
        for doc_id, record in self.articles.items():
            articles[doc_id] = {**record, "sentences": [[s.start, s.end] for s in self.sentences[doc_id]]}
            rows.append(self.sentence_embeddings[doc_id])
        matrix = np.concatenate(rows) if rows else np.zeros((0, EMBEDDING_DIM))
        np.save(directory / "sentence_embeddings.npy", matrix.astype(np.float16))
        self.faiss_store.save(directory / "chunks")
        self.lexical.save(directory / "bm25")
        (directory / "articles.json").write_text(
            json.dumps({"format": INDEX_FORMAT, "articles": articles}, ensure_ascii=False), encoding="utf-8")

    def apply(self, articles: list[Article], embed, chunking: dict, duplicate_threshold: float,
              replace_all: bool = False) -> IngestReport:
        """Add or replace `articles`; `embed(texts) -> np.ndarray` (normalised rows)."""
        report = IngestReport()
        changed: list[tuple[Article, str, list[Sentence], list]] = []
        for article in articles:
            fingerprint = article_fingerprint(article)
            existing = self.articles.get(article.doc_id)
            if existing and existing["fingerprint"] == fingerprint:
                report.unchanged.append(article.doc_id)
                continue
            (report.updated if existing else report.added).append(article.doc_id)
            if existing:
                self._drop(article.doc_id)
            sentences = split_sentences(article.doc_id, article.text)
            chunks = chunk_article(article.doc_id, article.text, sentences, chunking["max_words"],
                                   chunking["overlap_sentences"])
            changed.append((article, fingerprint, sentences, chunks))
        # One encoder call for the whole batch: the encoder sorts it by length, so less padding,
        # and small articles no longer pay a call each.
        all_vectors = embed([a.text[s.start:s.end] for a, _, sentences, _ in changed for s in sentences])
        row = 0
        for article, fingerprint, sentences, chunks in changed:
            sentence_vectors = all_vectors[row:row + len(sentences)]
            row += len(sentences)
            chunk_vectors = pooled_chunk_vectors(article.text, sentences, chunks, sentence_vectors)
            report.chunks_embedded += len(chunks)
            self.articles[article.doc_id] = {**article.metadata(), "text": article.text,
                                             "fingerprint": fingerprint}
            self.sentences[article.doc_id] = sentences
            self.sentence_embeddings[article.doc_id] = sentence_vectors
            for chunk, vector in zip(chunks, chunk_vectors):
                self.chunks[chunk.chunk_id] = Document(
                    id=chunk.chunk_id, content=chunk.text, embedding=vector.tolist(),
                    meta={"doc_id": chunk.doc_id, "chunk_index": chunk.index, "article_start": chunk.start,
                          "article_end": chunk.end, "first_sentence": chunk.first_sentence,
                          "last_sentence": chunk.last_sentence, "duplicate_of": None,
                          "published": article.published})
        if replace_all:
            incoming = {a.doc_id for a in articles}
            for doc_id in sorted(set(self.articles) - incoming):
                self._drop(doc_id)
                report.removed.append(doc_id)
        if report.changed:
            self._mark_duplicates(duplicate_threshold)
            self._rebuild_stores()
        return report

    def remove(self, doc_id: str) -> None:
        if doc_id not in self.articles:
            raise BylineError(f"no article with id '{doc_id}' in the index")
        self._drop(doc_id)
        self._rebuild_stores()

    def _drop(self, doc_id: str) -> None:
        self.articles.pop(doc_id, None)
        self.sentences.pop(doc_id, None)
        self.sentence_embeddings.pop(doc_id, None)
        for chunk_id in [cid for cid, doc in self.chunks.items() if doc.meta["doc_id"] == doc_id]:
            del self.chunks[chunk_id]

    def _mark_duplicates(self, threshold: float) -> None:
        """Mark chunks that repeat (near-verbatim) a chunk of another article: syndicated copies.

        The copy points at the chunk of the article that sorts first, so the choice is stable.
        """
        import faiss

        documents = sorted(self.chunks.values(), key=lambda d: (d.meta["doc_id"], d.meta["chunk_index"]))
        if len(documents) < 2:
            return
        matrix = np.asarray([d.embedding for d in documents], dtype=np.float32)
        flat = faiss.IndexFlatIP(matrix.shape[1])
        flat.add(matrix)
        similarities, neighbours = flat.search(matrix, min(6, len(documents)))
        for i, document in enumerate(documents):
            document.meta["duplicate_of"] = None
            for similarity, j in zip(similarities[i], neighbours[i]):
                other = documents[j]
                if (j < i and similarity >= threshold and other.meta["doc_id"] != document.meta["doc_id"]):
                    document.meta["duplicate_of"] = other.meta.get("duplicate_of") or other.id
                    break

    def _rebuild_stores(self) -> None:
        self.faiss_store = FAISSDocumentStore(embedding_dim=EMBEDDING_DIM)
        documents = list(self.chunks.values())
        if documents:
            self.faiss_store.write_documents(documents, policy=DuplicatePolicy.OVERWRITE)
        self.lexical = LexicalIndex.build([d.id for d in documents], [d.content for d in documents])


def pooled_chunk_vectors(text: str, sentences: list[Sentence], chunks: list, sentence_vectors: np.ndarray
                         ) -> np.ndarray:
    """Each chunk's vector is the length-weighted mean of its sentences' vectors, normalised.

    MiniLM itself mean-pools token vectors, so this approximates embedding the chunk while
    running the model over each sentence once instead of twice (ingest is bound by the encoder).
    """
    if not chunks:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    weights = np.array([max(1, len(text[s.start:s.end].split())) for s in sentences], dtype=np.float32)
    rows = []
    for chunk in chunks:
        span = slice(chunk.first_sentence, chunk.last_sentence + 1)
        rows.append(weights[span] @ sentence_vectors[span])
    matrix = np.asarray(rows, dtype=np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


class IndexLocation:
    """`<data_dir>/index` -> one complete index folder, swapped atomically."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.link = self.data_dir / "index"

    def exists(self) -> bool:
        return (self.link / "articles.json").exists()

    def load(self) -> ArticleIndex:
        return ArticleIndex.load(self.link.resolve())

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

    def publish(self, index: ArticleIndex) -> Path:
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

"""What every article store offers the pipeline, and the parts both backends share.

A store only stores and searches: articles arrive already prepared (sentences, vectors,
chunks; see retrieval.ingest.prepare), and `write` replaces them atomically. Two backends:
`local` (files: FAISS + bm25s + sentence table, retrieval.index.local) and `postgres`
(pgvector, retrieval.index.postgres). `retrieval.pipeline` chooses one from config.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
from haystack import Document

from retrieval.ingest.chunking import Sentence
from retrieval.ingest.loaders import Article

EMBEDDING_DIM = 384
ARTICLE_FIELDS = ("doc_id", "title", "publisher", "published", "url")


@dataclass
class PreparedArticle:
    """An article ready to store: its sentences with their vectors, and its chunks (Documents with
    pooled vectors; `meta` holds doc_id, chunk_index, article_start/end, first/last_sentence,
    published and duplicate_of)."""

    article: Article
    fingerprint: str
    sentences: list[Sentence]
    sentence_vectors: np.ndarray
    chunks: list[Document]

    @property
    def doc_id(self) -> str:
        return self.article.doc_id


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # one line each: feed items refused on their own
    chunks_embedded: int = 0
    chunk_counts: dict[str, int] = field(default_factory=dict)  # added or replaced article -> its chunks
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def article_fingerprint(article: Article) -> str:
    payload = json.dumps([article.text, article.metadata()], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def published_filter(published_on_or_before: str | None) -> dict | None:
    """The Haystack filter for chunks of articles published on or before a date (ISO); undated
    articles are left out."""
    if not published_on_or_before:
        return None
    return {"field": "meta.published", "operator": "<=", "value": published_on_or_before}


class ArticleStore(Protocol):
    """The calls the pipeline makes on a store. Chunks come back as Documents the caller may annotate."""

    backend: str
    stale_articles: list[Article] | None  # articles to index again (a local index in an older format)

    # -- searching (optional date filter: ISO `published_on_or_before`) -----------------------
    def dense_search(self, query_embedding: list[float], top_k: int,
                     published_on_or_before: str | None = None) -> list[Document]: ...

    def lexical_search(self, query: str, top_k: int,
                       published_on_or_before: str | None = None) -> list[Document]: ...

    # -- reading ----------------------------------------------------------------------------
    def doc_ids(self) -> set[str]: ...

    def fingerprints(self) -> dict[str, str]: ...

    def article_text(self, doc_id: str) -> str: ...

    def metadata(self, doc_id: str) -> dict: ...

    def sentences(self, doc_id: str) -> list[Sentence]: ...

    def sentence_vectors(self, doc_id: str) -> np.ndarray: ...

    def chunk(self, chunk_id: str) -> Document: ...

    def all_chunks(self) -> list[Document]: ...

    def count_chunks(self) -> int: ...

    # -- writing ----------------------------------------------------------------------------
    def needs_bootstrap(self) -> bool:
        """Nothing was ever written here (or it must be rebuilt): the pipeline ingests the bundled corpus."""

    def writer_lock(self, wait: bool = False) -> AbstractContextManager: ...

    def for_writing(self) -> "ArticleStore":
        """The store to write to: itself, or (local) a fresh copy of what is on disk."""

    def write(self, prepared: list[PreparedArticle], remove: list[str], duplicate_threshold: float) -> None:
        """Replace the `prepared` articles and delete `remove`, all at once or not at all."""

    def close(self) -> None: ...


Neighbours = Callable[[np.ndarray, int], list[list[tuple[float, Document]]]]


def mark_syndicated_copies(batch: list[Document], stored_neighbours: Neighbours, threshold: float) -> None:
    """Set `duplicate_of` on the chunks of `batch` (new chunks, and stored ones whose original went away):
    a chunk repeating, near-verbatim (cosine >= `threshold`), a chunk of another article that was stored
    before it, or that sorts before it in this batch, points at that chunk's group.

    Only the batch's own nearest neighbours are searched (`stored_neighbours(vectors, k)` among stored
    chunks outside the batch), so adding one article costs the same at any store size.
    """
    import faiss

    if not batch:
        return
    batch.sort(key=lambda d: (d.meta["doc_id"], d.meta["chunk_index"]))
    matrix = np.asarray([d.embedding for d in batch], dtype=np.float32)
    stored = stored_neighbours(matrix, 6)
    flat = faiss.IndexFlatIP(matrix.shape[1])
    flat.add(matrix)
    similarities, positions = flat.search(matrix, min(6, len(batch)))
    for i, chunk in enumerate(batch):
        earlier = [(float(s), batch[j]) for s, j in zip(similarities[i], positions[i]) if 0 <= j < i]
        candidates = [(s, other) for s, other in stored[i] + earlier
                      if s >= threshold and other.meta["doc_id"] != chunk.meta["doc_id"]]
        best = max(candidates, key=lambda c: c[0], default=None)
        chunk.meta["duplicate_of"] = (best[1].meta.get("duplicate_of") or best[1].id) if best else None

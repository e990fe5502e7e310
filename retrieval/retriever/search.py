"""The two first-stage retrievers, over whichever store the pipeline was built with.

Each store answers through its own Haystack integration: FAISS and bm25s (local),
pgvector's HNSW index and Postgres full-text search (postgres); see retrieval.index.
"""

from __future__ import annotations

from typing import Optional

from haystack import Document, component

from retrieval.index.base import ArticleStore


@component
class DenseChunkRetriever:
    """The `top_k` chunks nearest the query embedding (cosine)."""

    def __init__(self, store: ArticleStore, top_k: int) -> None:
        self.store = store
        self.top_k = top_k

    @component.output_types(documents=list[Document])
    def run(self, query_embedding: list[float], published_on_or_before: Optional[str] = None) -> dict:
        return {"documents": self.store.dense_search(query_embedding, self.top_k, published_on_or_before)}


@component
class LexicalChunkRetriever:
    """The `top_k` chunks that best match the query's words (BM25 locally, ts_rank_cd on Postgres)."""

    def __init__(self, store: ArticleStore, top_k: int) -> None:
        self.store = store
        self.top_k = top_k

    @component.output_types(documents=list[Document])
    def run(self, query: str, published_on_or_before: Optional[str] = None) -> dict:
        return {"documents": self.store.lexical_search(query, self.top_k, published_on_or_before)}

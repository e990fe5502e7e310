"""The postgres backend: chunks in pgvector-haystack's PgvectorDocumentStore, articles and the sentence
table beside them, shared by every process on the database.

Searching goes through the integration: `PgvectorEmbeddingRetriever` (HNSW, cosine) for the dense side
and, for the lexical side, either `PgvectorKeywordRetriever` (store.lexical: all_terms; it asks for
every word of the question) or the same full-text index ranked by ts_rank_cd over any of the words
(any_terms, the default; see README). Writing uses psycopg directly: the integration commits each
call on its own (autocommit), and an article's chunks, sentences and vectors must be replaced in one
transaction with the articles beside them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import psycopg
from haystack import Document
from psycopg.types.json import Jsonb

from retrieval.errors import BylineError
from retrieval.index.base import ARTICLE_FIELDS, PreparedArticle, mark_syndicated_copies, published_filter
from retrieval.index.pg import CHUNK_TABLE, WRITE_LOCK, Database, chunk_document_store
from retrieval.ingest.chunking import Sentence

ANY_TERMS_QUERY = f"""
SELECT id, content, meta, ts_rank_cd(to_tsvector('english', content), query) AS score
FROM {CHUNK_TABLE}, (SELECT replace(plainto_tsquery('english', %(query)s)::text, '&', '|')::tsquery AS query) AS q
WHERE to_tsvector('english', content) @@ query
  AND (%(before)s::text IS NULL OR meta->>'published' <= %(before)s::text)
ORDER BY score DESC, id LIMIT %(top_k)s
"""
NEIGHBOURS_QUERY = f"""
SELECT id, content, meta, 1 - (embedding <=> %(vector)s) AS similarity FROM {CHUNK_TABLE}
WHERE NOT (id = ANY(%(outside)s)) ORDER BY embedding <=> %(vector)s LIMIT %(k)s
"""
INSERT_CHUNK = f"""
INSERT INTO {CHUNK_TABLE} (id, embedding, content, meta) VALUES (%s, %s, %s, %s)
"""


@dataclass
class _ArticleRecord:
    text: str
    metadata: dict
    sentences: list[Sentence]
    vectors: np.ndarray


class PostgresStore:
    """The `ArticleStore` on PostgreSQL + pgvector. Reads of an article are cached until any process writes."""

    backend = "postgres"
    stale_articles = None

    def __init__(self, url: str, lexical: str = "any_terms", hnsw_ef_search: int = 100,
                 cache_articles: int = 2048) -> None:
        from haystack_integrations.components.retrievers.pgvector import (PgvectorEmbeddingRetriever,
                                                                          PgvectorKeywordRetriever)

        if lexical not in ("any_terms", "all_terms"):
            raise ValueError(f"store.lexical must be any_terms or all_terms, not {lexical!r}")
        self.database = Database(url)
        self.document_store = chunk_document_store(url, hnsw_ef_search)
        self.dense = PgvectorEmbeddingRetriever(document_store=self.document_store)
        self.keyword = PgvectorKeywordRetriever(document_store=self.document_store)
        self.lexical = lexical
        self._cache: OrderedDict[str, _ArticleRecord] = OrderedDict()
        self._cache_size = cache_articles
        self._cache_lock = threading.Lock()
        self._revision = self._current_revision()

    # -- searching ---------------------------------------------------------------------------
    def dense_search(self, query_embedding: list[float], top_k: int,
                     published_on_or_before: str | None = None) -> list[Document]:
        self._forget_if_changed()  # once per question: another process may have written
        found = self._through_integration(lambda: self.dense.run(
            query_embedding=list(query_embedding), top_k=top_k, filters=published_filter(published_on_or_before)))
        return [_without_embedding(d) for d in found["documents"]]

    def lexical_search(self, query: str, top_k: int, published_on_or_before: str | None = None) -> list[Document]:
        if not query.strip():
            return []
        if self.lexical == "all_terms":
            found = self._through_integration(lambda: self.keyword.run(
                query=query, top_k=top_k, filters=published_filter(published_on_or_before)))
            return [_without_embedding(d) for d in found["documents"]]
        rows = self.database.call(lambda c: c.execute(
            ANY_TERMS_QUERY, {"query": query, "before": published_on_or_before, "top_k": top_k}).fetchall())
        return [Document(id=i, content=content, meta=meta, score=float(score)) for i, content, meta, score in rows]

    def _through_integration(self, search):
        """The integration's search; a connection it finds dead is opened again once, else a short error."""
        from haystack.document_stores.errors import DocumentStoreError

        try:
            return search()
        except DocumentStoreError as failed:
            if not isinstance(failed.__cause__, psycopg.OperationalError):
                raise
            self.document_store.close()
        try:
            return search()
        except DocumentStoreError as failed:
            if not isinstance(failed.__cause__, psycopg.OperationalError):
                raise
            raise BylineError(f"lost the connection to PostgreSQL at {self.database.where}; "
                              "try again in a moment") from None

    # -- reading -----------------------------------------------------------------------------
    def doc_ids(self) -> set[str]:
        return set(self.fingerprints())

    def fingerprints(self) -> dict[str, str]:
        rows = self.database.call(lambda c: c.execute("SELECT doc_id, fingerprint FROM byline_articles").fetchall())
        return dict(rows)

    def article_text(self, doc_id: str) -> str:
        return self._article(doc_id).text

    def metadata(self, doc_id: str) -> dict:
        return dict(self._article(doc_id).metadata)

    def sentences(self, doc_id: str) -> list[Sentence]:
        return self._article(doc_id).sentences

    def sentence_vectors(self, doc_id: str) -> np.ndarray:
        return self._article(doc_id).vectors

    def chunk(self, chunk_id: str) -> Document:
        row = self.database.call(lambda c: c.execute(
            f"SELECT id, content, meta FROM {CHUNK_TABLE} WHERE id = %s", (chunk_id,)).fetchone())
        if row is None:
            raise KeyError(chunk_id)
        return Document(id=row[0], content=row[1], meta=row[2])

    def all_chunks(self) -> list[Document]:
        return self.document_store.filter_documents()

    def count_chunks(self) -> int:
        return self.database.call(lambda c: c.execute(f"SELECT count(*) FROM {CHUNK_TABLE}").fetchone()[0])

    def _article(self, doc_id: str) -> _ArticleRecord:
        with self._cache_lock:
            if doc_id in self._cache:
                self._cache.move_to_end(doc_id)
                return self._cache[doc_id]
        record = self.database.call(lambda c: self._read_article(c, doc_id))
        with self._cache_lock:
            self._cache[doc_id] = record
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return record

    @staticmethod
    def _read_article(connection: psycopg.Connection, doc_id: str) -> _ArticleRecord:
        row = connection.execute("SELECT doc_id, title, publisher, published, url, text FROM byline_articles "
                                 "WHERE doc_id = %s", (doc_id,)).fetchone()
        if row is None:
            raise KeyError(doc_id)
        sentences = connection.execute("SELECT position, start_char, end_char, embedding FROM byline_sentences "
                                       "WHERE doc_id = %s ORDER BY position", (doc_id,)).fetchall()
        vectors = np.asarray([s[3].to_numpy() for s in sentences], dtype=np.float32).reshape(len(sentences), -1)
        return _ArticleRecord(text=row[5], metadata=dict(zip(ARTICLE_FIELDS, row[:5])),
                              sentences=[Sentence(doc_id, p, s, e) for p, s, e, _ in sentences], vectors=vectors)

    def _current_revision(self) -> int:
        return self.database.call(lambda c: c.execute("SELECT revision FROM byline_schema").fetchone()[0])

    def _forget_if_changed(self) -> None:
        revision = self._current_revision()
        if revision != self._revision:
            with self._cache_lock:
                self._cache.clear()
            self._revision = revision

    # -- writing -----------------------------------------------------------------------------
    def needs_bootstrap(self) -> bool:
        return not self.database.call(lambda c: c.execute("SELECT bootstrapped FROM byline_schema").fetchone()[0])

    def writer_lock(self, wait: bool = False):
        return self.database.advisory_lock(WRITE_LOCK, wait, "another ingest is running on this database; "
                                                             "try again when it ends")

    def for_writing(self) -> "PostgresStore":
        return self

    def write(self, prepared: list[PreparedArticle], remove: list[str], duplicate_threshold: float) -> None:
        """One transaction: delete the articles' old rows, mark copies among the new chunks' nearest
        neighbours, insert the new rows, bump the revision other processes watch."""
        self.database.call(lambda c: self._write(c, prepared, remove, duplicate_threshold))
        with self._cache_lock:
            self._cache.clear()
        self._revision = self._current_revision()

    def _write(self, connection: psycopg.Connection, prepared: list[PreparedArticle], remove: list[str],
               duplicate_threshold: float) -> None:
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK + 1,))
            gone = [p.doc_id for p in prepared] + list(remove)
            dropped = [r[0] for r in connection.execute(
                f"DELETE FROM {CHUNK_TABLE} WHERE meta->>'doc_id' = ANY(%s) RETURNING id", (gone,))]
            connection.execute("DELETE FROM byline_articles WHERE doc_id = ANY(%s)", (gone,))
            orphans = [Document(id=i, content=content, meta=meta, embedding=vector.to_list())
                       for i, content, meta, vector in connection.execute(
                           f"SELECT id, content, meta, embedding FROM {CHUNK_TABLE} "
                           f"WHERE meta->>'duplicate_of' = ANY(%s)", (dropped,))]
            new_chunks = [chunk for p in prepared for chunk in p.chunks]
            batch = new_chunks + orphans
            # the new chunks are not stored yet: only the orphans, still in the table, are left out of
            # the search (passing every id of a bulk batch made each of its queries scan that list)
            mark_syndicated_copies(batch, self._neighbours_outside(connection, [d.id for d in orphans]),
                                   duplicate_threshold)
            with connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO byline_articles (doc_id, title, publisher, published, url, text, fingerprint) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [(*[p.article.metadata()[k] for k in ARTICLE_FIELDS], p.article.text, p.fingerprint)
                     for p in prepared])
                cursor.executemany(
                    "INSERT INTO byline_sentences (doc_id, position, start_char, end_char, embedding) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    [(p.doc_id, s.index, s.start, s.end, np.asarray(vector, dtype=np.float32))
                     for p in prepared for s, vector in zip(p.sentences, p.sentence_vectors)])
                cursor.executemany(INSERT_CHUNK, [(d.id, np.asarray(d.embedding, dtype=np.float32),
                                                   d.content.replace("\x00", ""), Jsonb(d.meta))
                                                  for d in new_chunks])
                cursor.executemany(f"UPDATE {CHUNK_TABLE} SET meta = meta || jsonb_build_object("
                                   f"'duplicate_of', %s::text) WHERE id = %s",
                                   [(d.meta["duplicate_of"], d.id) for d in orphans])
            connection.execute("UPDATE byline_schema SET revision = revision + 1, bootstrapped = true")

    @staticmethod
    def _neighbours_outside(connection: psycopg.Connection, batch_ids: list[str]):
        def neighbours(matrix: np.ndarray, k: int) -> list[list[tuple[float, Document]]]:
            found = []
            for vector in matrix:
                rows = connection.execute(NEIGHBOURS_QUERY, {"vector": vector, "outside": batch_ids, "k": k})
                found.append([(float(similarity), Document(id=i, content=content, meta=meta))
                              for i, content, meta, similarity in rows])
            return found

        return neighbours

    def server_rss_mb(self) -> float | None:
        """The server's memory (proportional set size of its processes on this machine: shared buffers
        counted once), for `byline bench scale`."""
        import psutil

        pid = self.database.call(lambda c: c.execute("SELECT pg_backend_pid()").fetchone()[0])
        try:
            postmaster = psutil.Process(pid).parent()
            processes = [postmaster, *postmaster.children()]
            return sum(p.memory_full_info().pss for p in processes) / 2**20
        except psutil.Error:
            return None

    def close(self) -> None:
        self.document_store.close()
        self.database.close()


def _without_embedding(document: Document) -> Document:
    return Document(id=document.id, content=document.content, meta=dict(document.meta), score=document.score)

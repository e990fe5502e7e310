"""Preparing articles for a store: sentences, their MiniLM vectors, chunks with pooled vectors.

Done once, before any store: both backends store the same prepared articles.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from haystack import Document, component

from retrieval.index.base import EMBEDDING_DIM, PreparedArticle, article_fingerprint
from retrieval.ingest.chunking import Sentence, chunk_article, split_sentences
from retrieval.ingest.loaders import Article
from retrieval.progress import IngestProgress


@component
class ArticlePreparer:
    """Split, chunk and embed the articles whose fingerprint differs from the stored one.

    `embed(texts, progress) -> np.ndarray` returns normalised rows; it calls `progress(tokens done,
    tokens in all)` as it goes, and `run`'s optional `progress` (an IngestProgress) shows the bar.
    """

    def __init__(self, embed: Callable[..., np.ndarray], max_words: int, overlap_sentences: int) -> None:
        self.embed = embed
        self.max_words = max_words
        self.overlap_sentences = overlap_sentences

    @component.output_types(prepared=list[PreparedArticle], unchanged=list[str])
    def run(self, articles: list[Article], stored_fingerprints: dict[str, str],
            progress: IngestProgress | None = None) -> dict:
        unchanged: list[str] = []
        pending = []
        progress = progress or IngestProgress(enabled=False)
        progress.splitting(len(articles))
        for article in articles:
            progress.split_one()
            fingerprint = article_fingerprint(article)
            if stored_fingerprints.get(article.doc_id) == fingerprint:
                unchanged.append(article.doc_id)
                continue
            sentences = split_sentences(article.doc_id, article.text)
            chunks = chunk_article(article.doc_id, article.text, sentences, self.max_words, self.overlap_sentences)
            pending.append((article, fingerprint, sentences, chunks))
        # One encoder call for the whole batch: the encoder sorts it by length, so less padding,
        # and small articles no longer pay a call each.
        progress.encoding(len(pending), sum(len(chunks) for *_, chunks in pending))
        all_vectors = self.embed([a.text[s.start:s.end] for a, _, sentences, _ in pending for s in sentences],
                                 progress.encoded)
        prepared, row = [], 0
        for article, fingerprint, sentences, chunks in pending:
            sentence_vectors = np.asarray(all_vectors[row:row + len(sentences)], dtype=np.float32)
            row += len(sentences)
            chunk_vectors = pooled_chunk_vectors(article.text, sentences, chunks, sentence_vectors)
            documents = [Document(id=chunk.chunk_id, content=chunk.text, embedding=vector.tolist(),
                                  meta={"doc_id": chunk.doc_id, "chunk_index": chunk.index,
                                        "article_start": chunk.start, "article_end": chunk.end,
                                        "first_sentence": chunk.first_sentence,
                                        "last_sentence": chunk.last_sentence,
                                        "published": article.published, "duplicate_of": None})
                         for chunk, vector in zip(chunks, chunk_vectors)]
            prepared.append(PreparedArticle(article, fingerprint, sentences, sentence_vectors, documents))
        return {"prepared": prepared, "unchanged": unchanged}


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

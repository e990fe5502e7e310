"""The bundled corpus: ingested with metadata, cleaned of page chrome, chunked with offsets."""

import re

import pytest

from retrieval.ingest.cleaning import clean_article
from retrieval.config import REPO_ROOT

SEED_IDS = {"000_d5290124f999c393", "001_c47d310b39072f43", "002_a0ddfdd3e2791628",
            "003_8a558b31ddefb493", "004_3fec00c11dc744f5"}
CHROME = ["Skip to main content", "Share this story", "Share this article", "Photo by Sam Byford",
          "Photo: VCG", "Image: ©", "Read more", "In Depth: Chinese Firms Take", "Download our app",
          "Must-Read newsletter", "subscriber", "Open WeChat", "Manage subscription", "Binance",
          "Contact reporter", "half-human, half-gamer", "freelance business and technology journalist",
          "May 26, 2021 08:14 PM"]


def test_every_seed_article_is_indexed_with_metadata(real_pipeline):
    assert SEED_IDS <= real_pipeline.doc_ids()
    caixin = real_pipeline.store.metadata("002_a0ddfdd3e2791628")
    assert caixin == {"doc_id": "002_a0ddfdd3e2791628", "publisher": "Caixin Global", "published": "2021-05-26",
                      "title": "U.S. Judge Issues Final Order Removing Xiaomi From China Military Banned List",
                      "url": None}
    verge = real_pipeline.store.metadata("001_c47d310b39072f43")
    assert verge["title"] == "US admits Xiaomi isn’t a ‘Communist Chinese military company’ after all"
    assert verge["publisher"] == "The Verge"
    for doc_id in SEED_IDS:
        meta = real_pipeline.store.metadata(doc_id)
        assert meta["title"] and meta["published"] == "2021-05-26", doc_id


def test_page_chrome_is_absent_from_chunks_and_sentences(real_pipeline):
    store = real_pipeline.store
    texts = [doc.content for doc in store.all_chunks()]
    texts += [store.article_text(d) for d in store.doc_ids()]
    for text in texts:
        for chrome in CHROME:
            assert chrome not in text, f"page chrome {chrome!r} survived cleaning"
    # the story itself is all there: first and last story sentences of the Caixin page
    caixin = store.article_text("002_a0ddfdd3e2791628")
    assert caixin.startswith("Smartphone-maker Xiaomi Corp. is off the hook")
    assert caixin.endswith("Yang Ge contributed to this report.")


def test_chunks_keep_offsets_into_the_cleaned_article(real_pipeline):
    store = real_pipeline.store
    for chunk in store.all_chunks():
        article = store.article_text(chunk.meta["doc_id"])
        assert article[chunk.meta["article_start"]:chunk.meta["article_end"]] == chunk.content
    by_article = {}
    for chunk in store.all_chunks():
        by_article.setdefault(chunk.meta["doc_id"], []).append(chunk)
    longest = max(by_article.values(), key=len)
    longest.sort(key=lambda c: c.meta["chunk_index"])
    assert len(longest) > 1
    for previous, following in zip(longest, longest[1:]):
        assert following.meta["first_sentence"] <= previous.meta["last_sentence"], "chunks overlap by a sentence"
    for doc_id in store.doc_ids():
        text = store.article_text(doc_id)
        for sentence in store.sentences(doc_id):
            piece = text[sentence.start:sentence.end]
            assert piece == piece.strip() and "\n" not in piece


def test_cleaner_pulls_headline_and_date_from_the_page():
    raw = (REPO_ROOT / "corpus" / "004_3fec00c11dc744f5.txt").read_text(encoding="utf-8").split("---\n", 2)[2]
    cleaned = clean_article(raw)
    assert cleaned.title == "Xiaomi formally removed from US blacklist"
    assert cleaned.published == "2021-05-26"
    assert not re.search(r"^26 May 2021$", cleaned.text, re.MULTILINE)


def test_chunk_vectors_pooled_from_sentences_stand_for_their_chunk(real_pipeline):
    """Chunk vectors are pooled from sentence vectors; each must still be nearest to its own text."""
    import numpy as np

    chunks = sorted(real_pipeline.store.all_chunks(), key=lambda d: d.id)
    pooled = np.asarray([c.embedding for c in chunks], dtype=np.float32)
    assert np.allclose(np.linalg.norm(pooled, axis=1), 1.0, atol=1e-4)
    direct = real_pipeline._embed([c.content for c in chunks])
    similarity = pooled @ direct.T
    assert np.diag(similarity).min() > 0.6
    # a syndicated copy is as near as its original, so count the rest: each pooled vector is
    # nearest to its own chunk's direct embedding, or to a near-identical one
    own_or_copy = [similarity[i].argmax() == i or similarity[i].max() - similarity[i, i] < 0.02
                   for i in range(len(chunks))]
    assert all(own_or_copy)


def test_reader_passages_carry_where_their_sentences_start(real_pipeline):
    """The reader keeps its spans inside one sentence by the ingest's sentence offsets, not its own guess."""
    store = real_pipeline.store
    passages = real_pipeline.trace("Which judge ruled in favor of Xiaomi?")["passages"]
    assert passages
    for passage in passages:
        base, end = passage.meta["article_start"], passage.meta["article_end"]
        inside = [s.start - base for s in store.sentences(passage.meta["doc_id"]) if base < s.start < end]
        assert passage.meta["sentence_starts"] == inside
    assert any(passage.meta["sentence_starts"] for passage in passages)

"""BM25 over chunks (bm25s): ranking, persistence, and queries it cannot match."""

from retrieval.index.lexical import LexicalIndex

TEXTS = {
    "a": "Judge Rudolph Contreras blocked the Pentagon designation of Xiaomi.",
    "b": "Xiaomi shares rose in Hong Kong after the ruling.",
    "c": "Huawei remains on the Commerce Department entity list.",
}


def build() -> LexicalIndex:
    return LexicalIndex.build(list(TEXTS), list(TEXTS.values()))


def test_ranks_the_chunk_that_shares_the_rare_words_first():
    hits = build().search("Who blocked the Pentagon designation?", top_k=3)
    assert hits[0][0] == "a"
    assert [score for _, score in hits] == sorted((score for _, score in hits), reverse=True)
    assert all(score > 0 for _, score in hits)


def test_unknown_words_and_empty_queries_match_nothing():
    index = build()
    assert index.search("zebra quantum", top_k=3) == []
    assert index.search("", top_k=3) == []
    assert LexicalIndex.build([], []).search("Xiaomi", top_k=3) == []


def test_top_k_larger_than_the_index_returns_only_matches():
    assert {chunk_id for chunk_id, _ in build().search("Xiaomi", top_k=10)} == {"a", "b"}


def test_saved_index_loads_and_ranks_the_same(tmp_path):
    index = build()
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    query = "Xiaomi shares in Hong Kong"
    assert loaded.search(query, top_k=3) == index.search(query, top_k=3)

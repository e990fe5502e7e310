"""CollapseSyndicatedCopies: one slot per syndicated story, and a cap on chunks per article."""

from haystack import Document

from retrieval.retriever.components import CollapseSyndicatedCopies


def chunk(chunk_id: str, doc_id: str, duplicate_of: str | None = None) -> Document:
    return Document(id=chunk_id, content=chunk_id, meta={"doc_id": doc_id, "duplicate_of": duplicate_of})


def ranked() -> list[Document]:
    """Fused chunks, best first (fresh each time: the component notes copies in their meta)."""
    return [chunk("a1", "A"), chunk("b1", "B", duplicate_of="a1"), chunk("a2", "A"), chunk("a3", "A"),
            chunk("c1", "C"), chunk("a4", "A"), chunk("d1", "D")]


def test_copies_keep_one_slot_and_are_noted():
    kept = CollapseSyndicatedCopies(top_k=3).run(documents=ranked())["documents"]
    assert [d.id for d in kept] == ["a1", "a2", "a3"]
    assert kept[0].meta["copies"] == ["B"]


def test_one_article_cannot_fill_every_slot():
    kept = CollapseSyndicatedCopies(top_k=4, max_per_article=2).run(documents=ranked())["documents"]
    assert [d.id for d in kept] == ["a1", "a2", "c1", "d1"]

"""The shipped gold set is well-formed and every answer is a verbatim span of its sources' cleaned text."""

import json
from collections import Counter
from pathlib import Path

import pytest

from eval.gold import REQUIRED_TAGS, GoldError, GoldItem, check_against_articles, load_gold, parse_gold
from retrieval.config import REPO_ROOT, load_config
from retrieval.ingest.loaders import load_paths

GOLD = REPO_ROOT / "eval" / "gold.jsonl"


@pytest.fixture(scope="module")
def corpus_texts() -> dict[str, str]:
    config = load_config()
    articles = load_paths([Path(config["corpus_dir"])], config["chunking"]["max_file_bytes"])
    return {article.doc_id: article.text for article in articles}


@pytest.fixture(scope="module")
def gold() -> list[GoldItem]:
    return load_gold(GOLD)


def test_every_answer_occurs_verbatim_in_each_sources_cleaned_text(gold, corpus_texts):
    check_against_articles(gold, corpus_texts)
    for item in gold:
        for doc_id in item.sources:
            assert all(answer in corpus_texts[doc_id] for answer in item.answers), item.id


def test_gold_set_size_and_coverage(gold):
    assert len(gold) >= 80
    unanswerable = [item for item in gold if not item.answerable]
    assert len(unanswerable) / len(gold) >= 0.15
    tags = Counter(tag for item in gold for tag in item.tags)
    assert set(REQUIRED_TAGS) <= set(tags), set(REQUIRED_TAGS) - set(tags)
    assert len({item.question.strip().lower() for item in gold}) == len(gold), "duplicate questions"


def test_tags_agree_with_answers_and_sources(gold):
    for item in gold:
        assert ("unanswerable" in item.tags) == (not item.answerable), item.id
        if "chrome" in item.tags:
            assert not item.answerable, item.id  # page chrome is never an answer
        if "multi" in item.tags:
            assert len(item.sources) >= 2, item.id
        if "single" in item.tags:
            assert len(item.sources) == 1, item.id
        if item.answerable:
            assert ("single" in item.tags) != ("multi" in item.tags), item.id


def test_chrome_questions_have_no_match_in_the_cleaned_text(corpus_texts):
    """What those questions ask about is gone from every article once the page chrome is stripped."""
    chrome = ["Binance", "CX Daily", "Must-Read", "Sam Byford", "Share this", "mehaniq41", "BleeBot",
              "Jonathan Keane", "Photo: VCG", "QR code", "08:14", "In Depth", "breaking news alerts"]
    for text in corpus_texts.values():
        assert not [c for c in chrome if c in text]


def _lines(*records) -> list[str]:
    return [json.dumps(r) if isinstance(r, dict) else r for r in records]


GOOD = {"id": "a", "question": "Who?", "answers": ["Huawei"], "sources": ["doc"], "tags": ["single"]}


@pytest.mark.parametrize("bad_line, message", [
    ('{"id": "b", "question": ', "line 2: not valid JSON"),
    ('["not", "an", "object"]', "line 2: expected a JSON object"),
    (json.dumps({**GOOD, "id": ""}), "line 2: 'id' must be a non-empty string"),
    (json.dumps({**GOOD, "answers": "Huawei"}), "line 2: 'answers' must be a list"),
    (json.dumps({**GOOD, "id": "b", "sources": []}), "line 2: item 'b' must have sources iff it has answers"),
    (json.dumps({**GOOD, "id": "b", "answers": []}), "line 2: item 'b' must have sources iff it has answers"),
    (json.dumps(GOOD), "line 2: duplicate id 'a'"),
])
def test_parse_errors_name_the_line(bad_line, message):
    with pytest.raises(GoldError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_gold(_lines(GOOD, bad_line))


def test_blank_lines_are_skipped_but_counted():
    with pytest.raises(GoldError, match="line 3: not valid JSON"):
        parse_gold(_lines(GOOD, "", "{oops"))


def test_corpus_checks_name_the_item_and_doc_id():
    items = parse_gold(_lines(GOOD))
    check_against_articles(items, {"doc": "Rival Huawei is listed."})
    with pytest.raises(GoldError, match="'a': answer 'Huawei' does not occur in the cleaned text of doc"):
        check_against_articles(items, {"doc": "Rival HUAWEI is listed."})  # verbatim means case too
    with pytest.raises(GoldError, match="'a': unknown doc id 'doc'"):
        check_against_articles(items, {"other": "Huawei"})

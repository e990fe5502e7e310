"""Answers that changed as the story moved: the newest article's answer leads and older differing answers
are named as earlier; `--as-of` reads only articles published by then. Rules on hand-made answers, then
the real pipeline over three made-up dated reports on Lumen Bank (eval/dated-articles)."""

import pytest

from bot.cli import main
from bot.render_text import render_text
from bot.slack.blocks import render_answer
from retrieval.answer import Answer, AnswerResult, Citation, sources_phrase
from retrieval.config import REPO_ROOT
from retrieval.timeline import newest_first, within_date

DATED_ARTICLES = sorted((REPO_ROOT / "eval" / "dated-articles").glob("*.md"))
CHIEF = "Who is the chief executive of Lumen Bank?"


def cited(doc_id, published, publisher="The Courier"):
    return Citation(doc_id=doc_id, title=f"Story {doc_id}", publisher=publisher, published=published, url=None,
                    snippet="It was X.", answer_start=6, answer_end=7, article_start=6, article_end=7)


def answers(*specs):
    return [Answer(text, score, [cited(*c) for c in citations]) for text, score, citations in specs]


def block_texts(message: dict) -> list[str]:
    return [block["text"]["text"] if block["type"] == "section" else block["elements"][0]["text"]
            for block in message["blocks"] if block["type"] in ("section", "context")]


def everything_on_story(answer):
    return True


def test_the_newest_articles_answer_leads_and_older_differing_ones_are_earlier():
    result = AnswerResult("Who leads it?", False, answers(
        ("Maria Olsen", 0.8, [("jan", "2021-01-12", "Northern Ledger")]),
        ("Peter Varga", 0.7, [("jun", "2021-06-03")]),
        ("Olsen", 0.65, [("jan", "2021-01-12")]),
        ("Anna", 0.6, [("jun2", "2021-06-03")])))
    ordered = newest_first(result, everything_on_story)
    assert [a.text for a in ordered.answers] == ["Peter Varga", "Anna"]
    assert [a.text for a in ordered.earlier] == ["Maria Olsen"]  # "Olsen" is the same answer again


@pytest.mark.parametrize("specs", [
    [("May", 0.8, [("a", "2021-05-01")]), ("June", 0.7, [("b", "2021-05-01")])],  # same date: as it was
    [("Peter Varga", 0.8, [("a", "2021-05-01")]), ("Varga", 0.7, [("b", "2021-06-01")])],  # the same answer
    [("Solo", 0.8, [("a", "2021-05-01")])],
])
def test_answers_that_agree_or_share_a_date_keep_the_readers_order(specs):
    result = AnswerResult("q?", False, answers(*specs))
    assert newest_first(result, everything_on_story) == result


def test_answers_from_another_story_are_not_taken_for_an_update():
    result = AnswerResult("What harm did Marcus Webb foresee?", False, answers(
        ("lasting harm", 0.8, [("nordwind", "2021-04-20")]), ("irreparable harm", 0.7, [("xiaomi", "2021-05-26")])))
    assert newest_first(result, lambda answer: answer.citations[0].doc_id == "nordwind") == result


def test_a_date_limit_keeps_only_citations_of_articles_published_by_then():
    result = AnswerResult("q?", False, answers(
        ("Peter Varga", 0.8, [("jun", "2021-06-03")]),
        ("Maria Olsen", 0.7, [("jan", "2021-01-12"), ("undated", None), ("jun", "2021-06-03")])))
    limited = within_date(result, "2021-03-01")
    assert [(a.text, a.articles) for a in limited.answers] == [("Maria Olsen", ["jan"])]
    assert limited.published_on_or_before == "2021-03-01" and not limited.no_answer
    assert within_date(result, "2020-12-31").no_answer


def test_sources_say_how_many_articles_over_what_dates():
    def phrase(*citations):
        return sources_phrase(answers(("x", 0.9, citations))[0])
    assert phrase(("a", "2021-05-26")) == "1 article"
    assert phrase(("a", "2021-05-26"), ("b", "2021-05-26")) == "2 articles, both dated 2021-05-26"
    assert phrase(("a", "2021-01-12"), ("b", "2021-06-05"), ("c", "2021-06-03")) == \
        "3 articles, 2021-01-12 to 2021-06-05"
    assert phrase(("a", "2021-05-26"), ("b", None)) == "2 articles, 1 dated 2021-05-26"


# -- over the real pipeline ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lumen(articles_added):
    with articles_added(DATED_ARTICLES) as pipeline:
        yield pipeline


def test_the_reply_leads_with_the_newer_report_and_names_the_older(lumen):
    result = lumen.ask(CHIEF)
    assert result.best.text == "Peter Varga"
    assert sources_phrase(result.best) == "2 articles, 2021-06-03 to 2021-06-05"
    assert [(a.text, a.articles) for a in result.earlier] == [("Maria Olsen", ["lumen-bank-2021-01-12"])]
    assert all(c.published >= "2021-06-03" for c in result.best.citations)  # never merged with the older one
    text = render_text(result)
    assert text.startswith("Peter Varga")
    assert "  Sources: 2 articles, 2021-06-03 to 2021-06-05\n  Earlier (2021-01-12, Northern Ledger): Maria Olsen" \
        in text
    slack = block_texts(render_answer(result, ref="r"))
    assert slack[0] == "*Peter Varga*" and "Sources: 2 articles, 2021-06-03 to 2021-06-05" in slack
    assert any(t.startswith("*Earlier (2021-01-12, Northern Ledger):* Maria Olsen") for t in slack)
    assert [a["text"] for a in result.to_dict()["earlier"]] == ["Maria Olsen"]


def test_where_the_reports_agree_the_reply_says_how_many_over_what_dates(lumen):
    result = lumen.ask("Where is Lumen Bank based?")
    assert result.best.text == "Tallinn" and not result.earlier
    assert sources_phrase(result.best) == "3 articles, 2021-01-12 to 2021-06-05"


def test_as_of_before_the_newer_report_gets_the_older_answer(lumen, test_config, capsys):
    result = lumen.ask(CHIEF, as_of="2021-03-01")
    assert result.best.text == "Maria Olsen" and not result.earlier
    assert all(c.published <= "2021-03-01" for a in result.answers for c in a.citations)
    assert main(["--data-dir", test_config["data_dir"], "ask", "--as-of", "2021-03-01", CHIEF]) == 0
    out = capsys.readouterr().out
    assert out.startswith("(from articles published on or before 2021-03-01)\nMaria Olsen")
    assert "Peter Varga" not in out


@pytest.mark.parametrize("bad", ["2021-13-01", "1 March 2021", "2021-02-30", ""])
def test_a_malformed_as_of_is_one_line_with_the_expected_format(bad, capsys):
    assert main(["ask", "--as-of", bad, CHIEF]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"byline: error: --as-of takes a date as YYYY-MM-DD (e.g. 2021-05-26), not '{bad}'\n"

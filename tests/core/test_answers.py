"""Questions about the bundled corpus, answered by the real pipeline with the shipped reader."""

import itertools

import pytest

import known_wrong
from retrieval.retriever.components import normalize_answer

# question -> acceptable answers (any one, after SQuAD normalisation, must be inside the answer)
QUESTIONS = {
    "How was the blacklisting of Xiaomi characterised in court?": ["arbitrary and capricious"],
    "On what date did the US issue the CCMC designation?": ["January 14th"],
    "Where are Xiaomi's shares listed?": ["Hong Kong"],
    "Who is Huawei's founder and CEO?": ["Ren Zhengfei"],
    "Until when did the Biden administration postpone the ban on new US investments?": ["June 11"],
    "What would the CCMC designation have prohibited Americans from doing?": ["investing"],
    "Which president's order is behind the restrictions on CCMC-listed companies?": ["Trump"],
    "Who owns WeChat?": ["Tencent"],
    "What did Xiaomi deny having after it was blacklisted?": ["ties with the Chinese military"],
    "Where is the appeals court that voiced doubts about the WeChat restrictions?": ["San Francisco"],
}


KNOWN_WRONG = {  # question -> why (known_wrong.params)
    "Who owns WeChat?": "campaign 16's blend leads with 'WeChat and ByteDance Ltd' (0.622), a span that holds the "
                        "question's own subject, and offers 'Tencent' (0.579) as also possible (campaign 14's "
                        "blend: 0.612 and 0.577; campaign 10's reader: 0.633 and 0.591)",
}


@pytest.fixture(scope="module")
def results(real_pipeline):
    return {question: real_pipeline.ask(question) for question in QUESTIONS}


@pytest.mark.parametrize("question", known_wrong.params(QUESTIONS, KNOWN_WRONG))
def test_question_is_answered_with_a_citation_that_holds_the_answer(real_pipeline, results, question):
    result = results[question]
    assert not result.no_answer, f"no answer for {question!r}"
    answer = result.answers[0]
    assert any(normalize_answer(ok) in normalize_answer(answer.text) for ok in QUESTIONS[question]), answer.text
    assert answer.citations
    for citation in answer.citations:
        assert citation.snippet[citation.answer_start:citation.answer_end] == answer.text
        article = real_pipeline.store.article_text(citation.doc_id)
        assert article[citation.article_start:citation.article_end] == answer.text
        assert citation.title and citation.published == "2021-05-26"


def test_an_answer_stated_in_several_articles_cites_them_all(results):
    answer = results["How was the blacklisting of Xiaomi characterised in court?"].answers[0]
    assert {"001_c47d310b39072f43", "003_8a558b31ddefb493", "004_3fec00c11dc744f5"} <= set(answer.articles)


@pytest.mark.parametrize("question", ["What was Xiaomi's revenue in 2020?",
                                      "Which football club won the 2021 Champions League final?"])
def test_unanswerable_question_gets_no_answer(real_pipeline, question):
    result = real_pipeline.ask(question)
    assert result.no_answer and result.answers == []
    assert result.to_dict()["answers"] == []
    assert len(result.closest) == 2 and all(c.snippet for c in result.closest)


def test_json_shape(results):
    payload = results["Where are Xiaomi's shares listed?"].to_dict()
    assert set(payload) == {"question", "no_answer", "answers", "latency_ms"}
    citation = payload["answers"][0]["citations"][0]
    assert set(citation) == {"doc_id", "title", "publisher", "published", "url", "snippet", "answer_start",
                             "answer_end", "article_start", "article_end"}


@pytest.mark.parametrize("question, kind, fitting, not_fitting", [
    ("When was Xiaomi removed from the list?", "date", ["May", "mid-January", "on 14 January 2021"], ["Later", "formally"]),
    ("In what year was the company founded?", "date", ["2010"], ["Lei Jun"]),
    ("How many employees does Xiaomi have?", "number", ["32,000", "thousands", "about two dozen", "fifteen",
                                                        "a third", "nearly twice as many"], ["employees", "worldwide"]),
    ("Who blocked the designation?", "person", ["Rudolph Contreras", "the DoD", "The Pentagon"],
     ["judge", "The judge", "Its founder"]),
    ("Why did the Pentagon blacklist Xiaomi?", None, ["its trading", "ties"], []),
])
def test_answer_kind_of_a_question_and_the_spans_that_fit_it(question, kind, fitting, not_fitting):
    from retrieval.retriever.answer_types import answer_kind, fits

    assert answer_kind(question) == kind
    assert all(fits(kind, span) for span in fitting)
    assert not any(fits(kind, span) for span in not_fitting)


@pytest.mark.parametrize("question, read, completed", [
    ("Which stock exchange struggled to interpret the CCMC list?", "New York", "New York Stock Exchange"),
    ("The Hudson River Park Trust owns which heliport?", "West 30th Street", "West 30th Street Heliport"),
    ("What discipline focuses on disorders?", "Psychiatry", "Psychiatry"),  # "Psychiatry focuses on": a verb
    ("Which administration blacklisted Xiaomi?", "Trump", "Trump"),  # "the Trump administration": lower case
    ("Who runs the exchange?", "New York", "New York"),  # no kind named
    ("Which judge ruled in favor of Xiaomi?", "District", "District"),  # the name goes on past "Judge"
])
def test_a_name_answer_is_completed_only_by_the_capitalised_kind_the_question_names(question, read, completed):
    from retrieval.retriever.answer_types import completed_name

    text = {"New York": "Earlier the New York Stock Exchange said it would delist them.",
            "West 30th Street": "The trust owns the West 30th Street Heliport on the river.",
            "Psychiatry": "Psychiatry focuses on affective disorders.",
            "Trump": "In the final days of the Trump administration Xiaomi was listed.",
            "District": "It culminated in District Judge Rudolph Contreras’ order."}[read]
    start = text.index(read)
    assert text[start:completed_name(question, text, start, start + len(read))] == completed


def test_also_possible_answers_are_of_the_kind_the_question_asks_for(real_pipeline):
    """"When was Xiaomi removed from the list?" once offered "Also possible: Later" and "formally"."""
    from retrieval.retriever.answer_types import fits

    result = real_pipeline.ask("When was Xiaomi removed from the list?")
    assert not result.no_answer and fits("date", result.answers[0].text)
    assert all(fits("date", answer.text) for answer in result.answers[1:]), [a.text for a in result.answers]


def test_also_possible_answers_are_not_pieces_of_the_lead_answers_name(real_pipeline):
    """"Which judge ruled in favor of Xiaomi?" once offered "Rudolph Contreras", "Also possible: Judge" and
    "District", all three from "District Judge Rudolph Contreras"."""
    import re

    result = real_pipeline.ask("Which judge ruled in favor of Xiaomi?")
    assert not result.no_answer
    lead = result.answers[0]
    for citation in lead.citations:
        before = citation.snippet[:citation.answer_start]
        after = citation.snippet[citation.answer_end:]
        for other in result.answers[1:]:
            joined_before = re.search(re.escape(other.text) + r"\s*(?:[A-Z][a-z][\w.'’-]*\s+){0,3}$", before)
            joined_after = re.match(r"\s*(?:[A-Z][a-z][\w.'’-]*\s+){0,3}" + re.escape(other.text), after)
            assert not (joined_before or joined_after), (lead.text, other.text, citation.snippet)


def test_no_two_answers_shown_are_one_inside_the_other(real_pipeline):
    """"Which judge ruled in favor of Xiaomi?" once offered "Also possible: Judge Rudolph Contreras" and
    then "Rudolph Contreras" as a third answer."""
    result = real_pipeline.ask("Which judge ruled in favor of Xiaomi?")
    keys = [normalize_answer(answer.text) for answer in result.answers]
    assert len(keys) >= 2, keys
    for first, second in itertools.combinations(keys, 2):
        assert first not in second and second not in first, keys


def test_no_answer_restates_the_question(real_pipeline):
    """The reader once led "Which judge ruled in favor of Xiaomi?" with the article's sentence "The judge who
    ruled in favor of Xiaomi called the allegations …", which names no judge (reader.restatement_share)."""
    from retrieval.retriever.components import terms

    question = "Which judge ruled in favor of Xiaomi?"
    asked = set(terms(question))
    share = real_pipeline.config["reader"]["restatement_share"]
    assert 0 < share <= 1
    result = real_pipeline.ask(question)
    assert not result.no_answer
    for answer in result.answers:
        assert len(asked & set(terms(answer.text))) < share * len(asked), answer.text


def test_a_name_answer_runs_on_through_the_kind_the_question_names(real_pipeline):
    """The reader reads "New York" in "the New York Stock Exchange" for "Which stock exchange …?"
    (reader.complete_names)."""
    assert real_pipeline.config["reader"]["complete_names"]
    result = real_pipeline.ask("Which stock exchange struggled to interpret the CCMC list?")
    assert not result.no_answer
    assert result.answers[0].text == "New York Stock Exchange"
    for citation in result.answers[0].citations:
        assert citation.snippet[citation.answer_start:citation.answer_end] == "New York Stock Exchange"


def test_answers_and_citations_do_not_depend_on_the_hash_seed(real_pipeline):
    """An article that holds the answer twice is cited at its strongest mention. Which mention it was
    once followed set order, so citation precision moved between runs of the same build (0.561/0.569)."""
    import json
    import os
    import subprocess
    import sys

    from retrieval.config import REPO_ROOT

    questions = ["Which stock exchange struggled to interpret the CCMC list?",
                 "Which US department had designated Xiaomi a Chinese military company?",
                 "Which company owns TikTok?", "What kinds of companies does the CCMC list include?"]

    def answered(seed: str) -> list[dict]:
        done = subprocess.run([sys.executable, "-m", "bot.cli", "--data-dir", real_pipeline.config["data_dir"],
                               "ask", "--json", "-"], input="\n".join(questions) + "\n", capture_output=True,
                              text=True, timeout=300, cwd=REPO_ROOT, env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stderr[-2000:]
        payloads = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        assert len(payloads) == len(questions)
        return [{"question": p["question"], "answers": p["answers"]} for p in payloads]

    first = answered("1")
    assert any(len(a["citations"]) > 1 for p in first for a in p["answers"])
    assert answered("2") == first


def _paragraph_window(store, doc_id: str, start: int, reach: int, neighbours: int) -> tuple[int, int, list[int]]:
    """The sentences around article[start:]: its own, up to `reach` more either side inside its paragraph,
    at least `neighbours` either side; as (passage start, passage end, sentence starts in the passage)."""
    text, sentences = store.article_text(doc_id), store.sentences(doc_id)
    own = max(i for i, s in enumerate(sentences) if s.start <= start)
    paragraph_start = text.rfind("\n", 0, start) + 1
    paragraph_end = text.find("\n", start) if "\n" in text[start:] else len(text)
    inside = [i for i, s in enumerate(sentences)
              if abs(i - own) <= reach and s.start >= paragraph_start and s.end <= paragraph_end]
    low = min(inside + [own, max(0, own - neighbours)])
    high = max(inside + [own, min(len(sentences) - 1, own + neighbours)])
    base = sentences[low].start
    return base, sentences[high].end, [s.start - base for s in sentences[low + 1:high + 1]]


@pytest.mark.parametrize("question", ["Where are Xiaomi's shares listed?",
                                      "On what date did the US issue the CCMC designation?",
                                      "Who is Huawei's founder and CEO?",
                                      "What did Xiaomi deny having after it was blacklisted?"])
def test_the_lead_answer_is_also_scored_by_reading_its_own_paragraph(real_pipeline, question):
    """reader.reread_sentences: the lead answer's paragraph is read again, alone; the lead's score (what the
    no-answer threshold applies to) is the better of its first reading's and that reading's best span's,
    and its words stay."""
    from retrieval.retriever.components import terms

    reader_config = real_pipeline.config["reader"]
    assert reader_config["reread_sentences"] > 0
    assemble = real_pipeline._query_pipeline.get_component("assemble")
    assemble.reread_sentences = 0
    try:
        first = real_pipeline.ask(question)
    finally:
        assemble.reread_sentences = reader_config["reread_sentences"]
    result = real_pipeline.ask(question)
    assert not first.no_answer and not result.no_answer
    lead = result.answers[0]
    assert lead.text == first.answers[0].text
    citation = lead.citations[0]  # the lead's strongest mention, whose paragraph was read
    store = real_pipeline.store
    start, end, starts = _paragraph_window(store, citation.doc_id, citation.article_start,
                                           reader_config["reread_sentences"],
                                           real_pipeline.config["retrieval"]["focus_neighbours"])
    passage = store.article_text(citation.doc_id)[start:end]
    asked = set(terms(question))
    phrases = [s for s in real_pipeline.reader.passage_spans(question, passage, starts)
               if "\n" not in passage[s.start:s.end].strip()
               and len(passage[s.start:s.end].split()) <= reader_config["max_answer_words"]
               and len(asked & set(terms(passage[s.start:s.end]))) < reader_config["restatement_share"] * len(asked)]
    assert phrases
    paragraph_reading = real_pipeline.reader.span_score(phrases[0].value)
    assert lead.score == pytest.approx(max(first.answers[0].score, paragraph_reading), abs=1e-6), \
        (lead.score, first.answers[0].score, paragraph_reading)


def test_also_possible_answers_never_score_above_the_lead(real_pipeline):
    """The lead's score may be raised by reading its paragraph again, never lowered: no alternative is
    shown above it (a second reading that chose its own span once led "What is TikTok's parent company?"
    with 0.607 over "Also possible" answers at 0.630)."""
    from eval.gold import load_gold

    shown = 0
    for item in load_gold(real_pipeline.config["eval"]["gold"])[::3]:
        result = real_pipeline.ask(item.question)
        for answer in result.answers[1:]:
            shown += 1
            assert answer.score <= result.answers[0].score, (item.question, [(a.text, a.score) for a in result.answers])
    assert shown, "no question of the sample was offered an alternative: the check checked nothing"

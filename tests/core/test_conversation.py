"""Follow-up questions: the rules that read them (no models), the thread records, and follow-ups over the
real pipeline with a made-up distractor article, so that each follow-up is right only with its thread."""

import sqlite3

import pytest

import known_wrong
from bot.cli import main
from eval.followups import DISTRACTORS, answered_correctly
from retrieval.conversation import Turn, read_in_context
from retrieval.threads import SqliteThreadRecords, ThreadRecordError


def turn(question, answer, doc_ids=("a1",)):
    return Turn(question=question, read_as=question, answer=answer, doc_ids=doc_ids)


JUDGE = turn("Who is the judge who blocked the Pentagon's designation of Xiaomi?", "Rudolph Contreras", ("z", "c"))
CHAIR = turn("Who is the chair of Xiaomi?", "Lei Jun")
EXCHANGE = turn("Which stock exchange struggled with the CCMC list?", "New York Stock Exchange")
COURT = turn("Which court issued a final order vacating Xiaomi's designation?", "federal court in Washington")
ADDED = turn("When was Xiaomi added to the CCMC list?", "mid-January")


@pytest.mark.parametrize("previous, question, read_as", [
    (JUDGE, "What harm did he say it would cause?", "What harm did Rudolph Contreras say it would cause?"),
    (CHAIR, "What did she say about his company?", "What did Lei Jun say about Lei Jun’s company?"),
    (CHAIR, "Where are the company's shares traded?", "Where are Xiaomi’s shares traded?"),
    (EXCHANGE, "How many telcos did it say it would delist?",
     "How many telcos did New York Stock Exchange say New York Stock Exchange would delist?"),
    (CHAIR, "When did it sue?", "When did it sue?"),  # "it" after a person: left for retrieval to resolve
    (COURT, "When was that?", "When was that: federal court in Washington issued a final order vacating Xiaomi's "
                              "designation?"),
    (ADDED, "and Huawei?", "When was Huawei added to the CCMC list?"),
    (ADDED, "What about Huawei", "When was Huawei added to the CCMC list?"),
])
def test_a_follow_up_is_read_with_the_previous_turn(previous, question, read_as):
    reading = read_in_context(question, [CHAIR, previous])
    assert reading.follow_up and reading.question == read_as
    assert reading.boost == previous.doc_ids  # the articles the previous answer cited


def test_a_thread_of_several_turns_resolves_each_reference_from_the_latest_turn_that_names_it():
    harm = Turn("What harm did he say it would cause?", "What harm did Rudolph Contreras say it would cause?",
                "irreparable", ("z",))
    assert read_in_context("Where are the company's shares traded?", [JUDGE, harm]).question == \
        "Where are Xiaomi’s shares traded?"  # not the judge's, though the last question names only him
    assert read_in_context("What else did he say?", [JUDGE, harm]).question == "What else did Rudolph Contreras say?"


def test_retrieval_searches_with_the_previous_question_and_answer_too():
    reading = read_in_context("What harm did he say it would cause?", [JUDGE])
    assert reading.retrieval_query.startswith(reading.question)
    for term in ("judge", "blocked", "designation", "xiaomi"):
        assert term in reading.retrieval_query
    # "and X?" is about something else than the previous answer: its words are not carried
    assert "mid-january" not in read_in_context("and Huawei?", [ADDED]).retrieval_query


@pytest.mark.parametrize("question, read_as, why", [
    ("new question: what did he say?", "what did he say?", "asked as a new question"),
    ("New topic - who owns WeChat?", "who owns WeChat?", "asked as a new question"),
    ("Who owns TikTok?", "Who owns TikTok?", "a new subject"),
])
def test_a_new_question_or_a_new_subject_starts_fresh(question, read_as, why):
    reading = read_in_context(question, [JUDGE, CHAIR])
    assert (reading.question, reading.retrieval_query, reading.boost, reading.follow_up, reading.why) == \
        (read_as, read_as, (), False, why)


def test_a_question_on_the_same_subject_is_asked_as_is_with_the_thread_articles_favoured():
    reading = read_in_context("When was Xiaomi removed from the CCMC list?", [ADDED])
    assert (reading.question, reading.retrieval_query) == ("When was Xiaomi removed from the CCMC list?",) * 2
    assert reading.follow_up and reading.boost == ADDED.doc_ids


def test_no_earlier_turn_reads_the_question_as_asked():
    reading = read_in_context("What harm did he say it would cause?", [])
    assert not reading.follow_up and reading.question == reading.retrieval_query == \
        "What harm did he say it would cause?"


def test_thread_records_keep_the_last_turns_of_each_thread(tmp_path):
    records = SqliteThreadRecords(tmp_path / "threads.sqlite3", max_turns=2)
    assert records.get("slack:C1:1.0") == []
    for i in range(3):
        records.append("slack:C1:1.0", turn(f"question {i}?", f"answer {i}", (f"d{i}",)))
    records.append("slack:C1:2.0", turn("other?", None, ()))
    again = SqliteThreadRecords(tmp_path / "threads.sqlite3", max_turns=2)  # another process, same store
    assert [t.question for t in again.get("slack:C1:1.0")] == ["question 1?", "question 2?"]
    assert again.get("slack:C1:1.0")[-1] == turn("question 2?", "answer 2", ("d2",))
    assert again.get("slack:C1:2.0") == [turn("other?", None, ())]
    count = sqlite3.connect(tmp_path / "threads.sqlite3").execute("SELECT COUNT(*) FROM turns").fetchone()
    assert count == (3,)  # older turns are deleted, not just hidden


def test_an_unreadable_thread_record_is_one_clear_error(tmp_path):
    (tmp_path / "threads.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(ThreadRecordError, match="cannot read the record of thread slack:C1:1.0"):
        SqliteThreadRecords(tmp_path / "threads.sqlite3").get("slack:C1:1.0")


# -- over the real pipeline --------------------------------------------------------------------------------
# (first question, its answer, follow-up, the follow-up's answers): every follow-up is asked with its thread
# and alone; the made-up Nordwind story holds facts of the same kinds as the Xiaomi articles.
PAIRS = [
    ("Who founded Nordwind Shipping?", ["Erik Lindqvist"], "Where are the company's shares traded?", ["Oslo"]),
    ("Where are Xiaomi's shares traded?", ["Hong Kong"], "When is the company due to report its quarterly earnings?",
     ["later today"]),
    ("Who is Huawei's founder and CEO?", ["Ren Zhengfei"], "What did he send to staff?", ["internal memo"]),
    ("Which court issued a final order vacating Xiaomi's designation?", ["federal court in Washington"],
     "When was that?", ["Tuesday", "25 May", "yesterday"]),
    ("Who imposed the ban on Nordwind's vessels?", ["Anna Berg"], "When was that?", ["3 January"]),
    ("On what date did the US issue the CCMC designation?", ["January 14th"], "When did Xiaomi sue over it?",
     ["the following month"]),
]


KNOWN_WRONG_FIRST = {  # first question -> why the shipped reader answers it wrong (strict xfail)
    "Who founded Nordwind Shipping?": "refused: 'Erik Lindqvist' scores 0.571 in both readings of the lead answer "
                                      "(its focus window and its paragraph), under the threshold 0.5753 chosen on "
                                      "`_v2s` for the lead's better-of-two score; it was just over 0.569 before",
}


@pytest.fixture(scope="module")
def with_distractor(articles_added):
    with articles_added(sorted(DISTRACTORS.glob("*.md"))) as pipeline:
        yield pipeline


def best(result):
    return None if result.no_answer else result.best.text


@pytest.mark.parametrize("first, first_answers, follow_up, answers",
                         known_wrong.params(PAIRS, KNOWN_WRONG_FIRST, key=lambda pair: pair[0],
                                            ids=lambda pair: pair[2]))
def test_a_follow_up_is_right_only_with_its_thread(with_distractor, first, first_answers, follow_up, answers):
    pipeline = with_distractor
    first_result = pipeline.ask(first)
    assert answered_correctly(best(first_result), first_answers), best(first_result)
    result = pipeline.ask(follow_up, context=(Turn.from_result(first_result),))
    assert answered_correctly(best(result), answers), (best(result), result.read_as)
    alone = pipeline.ask(follow_up)
    # alone it is wrong, or right in words only, from the other story ("a memo": Nordwind's founder's, not Huawei's)
    assert not answered_correctly(best(alone), answers) or set(alone.best.articles).isdisjoint(result.best.articles), \
        (best(alone), alone.best.articles)
    assert alone.read_as is None


@pytest.mark.parametrize("word", ["quit", "Exit", " q "])
def test_the_terminal_chat_ends_on_a_quit_word_without_asking_it(real_pipeline, test_config, monkeypatch, capsys, word):
    lines = iter([word, "Who is the chair of Xiaomi?"])
    monkeypatch.setattr("builtins.input", lambda prompt="": print(prompt, end="") or next(lines))
    assert main(["--data-dir", test_config["data_dir"], "chat"]) == 0
    assert capsys.readouterr().out.count("you> ") == 1 and next(lines) == "Who is the chair of Xiaomi?"


def test_the_terminal_chat_reads_follow_ups_within_one_chat(with_distractor, test_config, monkeypatch, capsys):
    lines = iter(["Who imposed the ban on Nordwind's vessels?", "When was that?",
                  "new question: when was that?", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": print(prompt, end="") or next(lines))
    assert main(["--data-dir", test_config["data_dir"], "chat"]) == 0
    first, follow_up, fresh, _ = capsys.readouterr().out.split("you> ")[1:]
    assert first.startswith("Anna Berg")
    assert follow_up.startswith("(read with the conversation as: When was that: Anna Berg imposed the ban on "
                                "Nordwind's vessels?)\n3 January")
    assert not fresh.startswith(("(read with", "3 January"))

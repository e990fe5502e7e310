"""The reader's training data: malformed files are refused by name, and the unanswerable
examples it makes really are unanswerable from their paragraph."""

import json
import random
import re
from pathlib import Path

import pytest

from retrieval.config import REPO_ROOT
from retrieval.reader import train
from retrieval.reader.training_data import (QAExample, TrainingDataError, answer_removed_negatives, load_squad_file,
                                            load_subjqa_csv, perturbed_question_negatives, same_document_negatives)

CONTEXT = ("The Armenian Apostolic Church was founded in 301, when Gregory the Illuminator converted "
           "King Tiridates III. Its first Catholicos was Gregory, and its seat is Etchmiadzin.")


def squad_file(tmp_path, qas, context=CONTEXT):
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}))
    return path


def test_answer_that_is_not_in_the_context_names_the_file_and_record(tmp_path):
    path = squad_file(tmp_path, [{"id": "q-7", "question": "When?",
                                  "answers": [{"text": "in 999", "answer_start": 40}]}])
    with pytest.raises(TrainingDataError, match=r"set\.json.*record q-7.*'in 999'"):
        load_squad_file(path, "set")


def test_unanswerable_record_must_say_so(tmp_path):
    path = squad_file(tmp_path, [{"id": "q-8", "question": "Who?", "answers": []}])
    with pytest.raises(TrainingDataError, match="record q-8: no answers and not marked is_impossible"):
        load_squad_file(path, "set")


def test_file_that_is_not_json_is_refused_by_name(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(TrainingDataError, match="broken.json: not a SQuAD-format JSON file"):
        load_squad_file(path, "broken")


def test_subjqa_row_with_malformed_indices_names_its_line(tmp_path):
    path = tmp_path / "books-train.csv"
    path.write_text("question,review,human_ans_spans,human_ans_indices,item_id\n"
                    "Is it good?,It is good. ANSWERNOTFOUND,It is good,\"(0, 10)\",a\n"
                    "Is it long?,It is long. ANSWERNOTFOUND,It is long,oops,b\n")
    with pytest.raises(TrainingDataError, match=r"books-train.csv: line 3: malformed human_ans_indices"):
        load_subjqa_csv(path, "subjqa")


def test_training_refuses_the_benchmark_folder(tmp_path, capsys):
    campaign = tmp_path / "config" / "campaign.yaml"
    campaign.parent.mkdir()
    campaign.write_text(f"name: x\ninit_from: models/byline-reader\ntrain_dir: {tmp_path / 'qa-data' / 'benchmark'}\n"
                        "mix: []\nfeatures: {}\nschedule: {}\n")
    assert train.main(["--campaign", str(campaign), "--runs-dir", str(tmp_path / "runs"), "--dry-run"]) == 2
    assert "benchmark" in capsys.readouterr().err


def examples():
    def answer(text):
        return [(text, CONTEXT.index(text))]

    return [QAExample("q1", "When was the Armenian Apostolic Church founded?", CONTEXT, answer("301"), "doc"),
            QAExample("q2", "Who was the first Catholicos?", CONTEXT, answer("Gregory"), "doc"),
            QAExample("q3", "What is the seat of the Church?", CONTEXT, answer("Etchmiadzin"), "doc"),
            QAExample("q4", "Which king did Gregory convert?", CONTEXT, answer("King Tiridates III"), "doc"),
            QAExample("q6", "Who converted a king in 301?", CONTEXT, answer("Gregory the Illuminator"), "doc"),
            QAExample("q5", "Where did the Council of Dvin meet?",
                      "The Council of Dvin met at Dvin, near Artashat, in 506.", [("Dvin", 27)], "doc")]


def test_edited_questions_are_unanswerable_from_their_own_paragraph():
    originals = {e.qid: e for e in examples()}
    for seed in range(20):
        for negative in perturbed_question_negatives(examples(), 1.0, random.Random(seed)):
            original = originals[negative.qid.removesuffix("-edited")]
            assert negative.context == original.context and not negative.answerable
            assert negative.question != original.question
            added = set(re.findall(r"[\w']+", negative.question)) - set(re.findall(r"[\w']+", original.question))
            context_words = set(re.findall(r"[\w']+", negative.context.lower()))
            # what the edit brought in is a word the paragraph lacks ("not", an antonym, another name or number)
            assert added and not {w.lower() for w in added} <= context_words, (original.question, negative.question)


def test_edits_cover_names_numbers_antonyms_and_negation():
    questions = {n.question for seed in range(20)
                 for n in perturbed_question_negatives(examples(), 1.0, random.Random(seed))}
    assert any("first" not in q and "last" in q for q in questions)  # antonym
    assert any(q.startswith("Who was not") or q.startswith("What is not") for q in questions)  # negation
    assert any("Dvin" in q or "Artashat" in q for q in questions if "Council" not in q)  # name from the same document
    assert any(re.search(r"\b(?!301\b)\d{3}\b", q) for q in questions)  # another number


def test_negation_is_not_used_when_the_paragraph_itself_negates():
    negated = QAExample("n", "Who was the founder?", "He was not the founder; Gregory was.", [("Gregory", 24)], "d")
    for seed in range(10):
        for negative in perturbed_question_negatives([negated], 1.0, random.Random(seed)):
            assert " not " not in negative.question


def test_same_document_negatives_lack_every_answer():
    other = QAExample("o", "What river?", "The Araxes river flows south of Yerevan.", [("Araxes", 4)], "doc")
    negatives = same_document_negatives(examples() + [other], 1.0, random.Random(0))
    assert negatives
    for negative in negatives:
        assert not negative.answerable
        source = next(e for e in examples() + [other] if e.qid == negative.qid.removesuffix("-neg"))
        assert all(text.lower() not in negative.context.lower() for text, _ in source.answers)


def test_answer_removed_negatives_keep_the_paragraph_but_not_the_answer_sentence():
    founding = "King Tiridates III made it the state religion in 301."
    context = f"The church grew in the third century. {founding} Its seat is Etchmiadzin, near Yerevan."
    asked = QAExample("q", "When did it become the state religion?", context, [("301", context.index("301"))], "d")
    repeated = QAExample("r", "What is its seat?", context + " Pilgrims visit Etchmiadzin.",
                         [("Etchmiadzin", context.index("Etchmiadzin"))], "d")
    short = QAExample("s", "Where is it?", "It is in Yerevan. It is old.", [("Yerevan", 9)], "d")
    negatives = answer_removed_negatives([asked, repeated, short], 1.0, random.Random(0))
    # the answer's own sentence goes, its neighbours stay; an answer stated twice, or a paragraph with
    # one sentence left, makes no negative
    assert [(n.qid, n.answerable) for n in negatives] == [("q-removed", False)]
    assert negatives[0].context == "The church grew in the third century. Its seat is Etchmiadzin, near Yerevan."
    assert negatives[0].question == asked.question
    assert answer_removed_negatives([asked], 0.0, random.Random(0)) == []


def test_negatives_chosen_by_question_overlap_are_the_on_topic_paragraphs():
    asked = QAExample("q", "Who founded the Armenian Apostolic Church in 301?", CONTEXT,
                      [("Gregory the Illuminator", CONTEXT.index("Gregory the Illuminator"))], "doc")
    off_topic = QAExample("o", "What river?", "The Araxes river flows south of Yerevan.", [("Araxes", 4)], "doc")
    seat = "The church's seat since 301 is Etchmiadzin, home of the Armenian Apostolic Church's Catholicos."
    on_topic = QAExample("t", "What is its seat?", seat, [("Etchmiadzin", seat.index("Etchmiadzin"))], "doc")
    for seed in range(5):
        negatives = same_document_negatives([asked, off_topic, on_topic], 1.0, random.Random(seed), "question_overlap")
        assert next(n for n in negatives if n.qid == "q-neg").context == on_topic.context


def test_campaign_with_an_unknown_negatives_choice_is_refused_in_one_line(tmp_path):
    campaign = tmp_path / "config" / "c.yaml"
    campaign.parent.mkdir()
    campaign.write_text("name: c\ninit_from: m\ntrain_dir: t\nfeatures: {}\nschedule: {}\n"
                        "mix:\n  - {path: a.json, same_document_negatives: 0.5, negatives_by: closest}\n")
    with pytest.raises(train.CampaignError, match="negatives_by 'closest'"):
        train.load_campaign(campaign)


@pytest.mark.parametrize("setting, value", [("negatives_by", "question_overlap"), ("answer_removed_negatives", 0.5)])
def test_runs_planned_before_a_mix_setting_existed_still_resume(tmp_path, setting, value):
    from retrieval.reader.training_data import MixEntry

    def identity(**entry):
        campaign = {"train_dir": str(tmp_path), "features": {}, "schedule": {"seed": 1},
                    "mix": [MixEntry("a.json", same_document_negatives=0.5, **entry)]}
        return train.data_identity(campaign)["mix"][0]

    assert setting not in identity()
    assert identity(**{setting: value})[setting] == value


@pytest.mark.parametrize("campaign_file", sorted((REPO_ROOT / "config").glob("reader-campaign*.yaml")),
                         ids=lambda p: p.name)
def test_every_campaign_in_config_loads_and_reads_only_training_files(campaign_file):
    campaign = train.load_campaign(campaign_file)
    train_dir = Path(campaign["train_dir"])
    for entry in campaign["mix"]:
        named = Path(entry.path).expanduser()
        if named.is_absolute():
            # a set made from the training data outside the work tree, by the command the campaign names
            assert "benchmark" not in named.parts and not named.is_relative_to(REPO_ROOT)
            assert "retrieval.reader.retrieved_windows --campaign" in campaign_file.read_text()
            continue
        files = sorted(train_dir.glob(entry.path))
        assert files, f"{entry.path} matches no training file"
        assert all(f.resolve().is_relative_to(train_dir) and "benchmark" not in f.resolve().parts for f in files)

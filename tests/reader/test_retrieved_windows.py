"""Training examples from Byline's own retrieval (`retrieval.reader.retrieved_windows`): the focus
windows of each training question, answerable where they hold its answer, and never a held-out document."""

import json

from retrieval.reader import retrieved_windows
from retrieval.reader.train import data_identity
from retrieval.reader.training_data import MixEntry, load_mix

PARAGRAPH = "Saltash lies on the west bank of the river. The town has a ferry to Plymouth. Its mayor is Tom Reed."


def test_an_answer_counts_only_as_whole_words_where_its_own_paragraph_has_it():
    passage = "In 1990 the ferry was sold.\n" + PARAGRAPH
    found = retrieved_windows.answer_at_source(passage, ("Plymouth",), PARAGRAPH)
    assert found == ("Plymouth", passage.index("Plymouth"))
    assert retrieved_windows.answer_at_source("In 1990 the ferry was sold.", ("1",), "1 ferry") is None
    # the answer's words, but not in the sentence its question was written on
    assert retrieved_windows.answer_at_source("A ferry to Plymouth left at noon.", ("Plymouth",), PARAGRAPH) is None
    assert retrieved_windows.holds_answer_text("A ferry to Plymouth left at noon.", ("Plymouth",))
    assert not retrieved_windows.holds_answer_text("In 1990 the ferry was sold.", ("1",))


DOCUMENTS = [
    ("Held out", "The lighthouse at Rame Head was lit in 1882. Its keeper was Jane Moyle.",
     [("Who kept the lighthouse?", "Jane Moyle")]),
    ("Saltash", PARAGRAPH + "\n\nThe Tamar bridge reopened on Friday after two years of repairs. "
     "It was built in 1961 by the county council.",
     [("Who is the mayor of Saltash?", "Tom Reed"), ("When was the Tamar bridge built?", "1961"),
      ("Where does the ferry go?", "Plymouth")]),
    ("Looe", "Looe has a fish market on its quay. Its harbour master is Sam Penrose, appointed in 2015. "
     "The market opens at dawn on weekdays.",
     [("Who is the harbour master of Looe?", "Sam Penrose"), ("When does the fish market open?", "at dawn")]),
]


def _tiny_campaign(tmp_path):
    """A training folder with `tiny/set.json` (its every third document held out) and a campaign on it."""
    train_dir = tmp_path / "train"
    (train_dir / "tiny").mkdir(parents=True)
    data = {"data": [{"title": title, "paragraphs": [
        {"context": context, "qas": [{"id": f"q{d}-{i}", "question": q,
                                      "answers": [{"text": a, "answer_start": context.index(a)}]}
                                     for i, (q, a) in enumerate(qas) if a in context]}
        for context in [text.split("\n\n")[0], *text.split("\n\n")[1:]]]}
        for d, (title, text, qas) in enumerate(DOCUMENTS)]}
    (train_dir / "tiny" / "set.json").write_text(json.dumps(data))
    campaign = tmp_path / "campaign.yaml"
    campaign.write_text(json.dumps({  # YAML is a superset of JSON
        "name": "tiny", "init_from": "models/byline-reader", "train_dir": str(train_dir),
        "held_out": {"set": "tiny/set.json", "every_nth_document": 3, "eval_questions": 1},
        "mix": [{"path": "tiny/set.json"}], "features": {"max_length": 128, "doc_stride": 64},
        "schedule": {"epochs": 1, "batch_size": 4, "learning_rate": 1e-5, "seed": 1}}))
    return train_dir, campaign


def test_windows_of_the_training_documents_become_a_mix_entry_outside_the_training_folder(tmp_path):
    train_dir, campaign = _tiny_campaign(tmp_path)
    out = tmp_path / "windows" / "tiny.json"

    assert retrieved_windows.main(["--campaign", str(campaign), "--out", str(out)]) == 0

    windows = json.loads(out.read_text())
    qas = [(p["context"], qa) for article in windows["data"] for p in article["paragraphs"] for qa in p["qas"]]
    answers = {q: a for _, _, pairs in DOCUMENTS for q, a in pairs}
    assert not any(q == "Who kept the lighthouse?" or "lighthouse" in context for context, q in
                   ((c, qa["question"]) for c, qa in qas))  # the held-out document is not in the collection
    answerable = [(c, qa) for c, qa in qas if not qa.get("is_impossible")]
    assert {qa["question"] for _, qa in answerable} >= {"Who is the mayor of Saltash?",
                                                        "Who is the harbour master of Looe?"}
    for context, qa in answerable:
        [answer] = qa["answers"]
        assert context[answer["answer_start"]:].startswith(answer["text"]) and answer["text"] == answers[qa["question"]]
    assert any(qa.get("is_impossible") for _, qa in qas)
    for context, qa in qas:
        if qa.get("is_impossible"):
            assert answers[qa["question"]] not in context

    entry = MixEntry(str(out))  # an absolute path, outside the training folder
    examples, stats = load_mix(train_dir, [entry], seed=1)
    assert len(examples) == len(qas) and stats[str(out)]["used"] == len(qas)
    plan = {"train_dir": str(train_dir), "mix": [entry], "features": {}, "schedule": {"seed": 1}}
    assert list(data_identity(plan)["files"]) == [str(out)]


def test_another_training_set_keeps_every_document_and_a_missing_one_is_refused_in_one_line(tmp_path, capsys):
    train_dir, campaign = _tiny_campaign(tmp_path)
    (train_dir / "tiny" / "other.json").write_text((train_dir / "tiny" / "set.json").read_text())
    out = tmp_path / "windows" / "other.json"

    assert retrieved_windows.main(["--campaign", str(campaign), "--set", "tiny/other.json", "--out", str(out)]) == 0
    windows = json.loads(out.read_text())
    questions = {qa["question"] for article in windows["data"] for p in article["paragraphs"] for qa in p["qas"]
                 if not qa.get("is_impossible")}
    assert "Who kept the lighthouse?" in questions  # held out only from the campaign's held-out set

    capsys.readouterr()
    assert retrieved_windows.main(["--campaign", str(campaign), "--set", "tiny/gone.json", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "tiny/gone.json" in error and error.count("\n") == 1
    assert json.loads(out.read_text()) == windows  # the earlier file is kept


def test_a_missing_file_outside_the_training_folder_is_named_in_one_line(tmp_path):
    import pytest

    from retrieval.reader.training_data import TrainingDataError, load_set

    with pytest.raises(TrainingDataError, match=f"^{tmp_path / 'gone.json'}: no such training file$"):
        load_set(tmp_path / "train", MixEntry(str(tmp_path / "gone.json")))

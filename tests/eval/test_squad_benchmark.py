"""The reader-only SQuAD benchmark, on SQuAD-shaped files written here, with the shipped reader."""

import json
from pathlib import Path

import pytest

from eval.squad_benchmark import SquadFormatError, load_squad, run_squad, spread_sample
from retrieval.config import load_config

PARAGRAPHS = [
    {"context": "Xiaomi was founded in 2010 by Lei Jun. The company is based in Beijing, China.",
     "qas": [{"id": "p1q1", "question": "Who founded Xiaomi?", "is_impossible": False,
              "answers": [{"text": "Lei Jun", "answer_start": 30}]},
             {"id": "p1q2", "question": "In which year was Xiaomi founded?", "is_impossible": False,
              "answers": [{"text": "2010", "answer_start": 22}, {"text": "in 2010", "answer_start": 19}]},
             {"id": "p1q3", "question": "How many employees does Xiaomi have?", "is_impossible": True,
              "answers": [], "plausible_answers": [{"text": "2010", "answer_start": 22}]}]},
    {"context": "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889.",
     "qas": [{"id": "p2q1", "question": "In which city is the Eiffel Tower?", "is_impossible": False,
              "answers": [{"text": "Paris", "answer_start": 52}]},
             {"id": "p2q2", "question": "When was the Eiffel Tower completed?", "is_impossible": False,
              "answers": [{"text": "1889", "answer_start": 79}]}]},
]


def write_squad(path: Path, v2: bool) -> Path:
    paragraphs = json.loads(json.dumps(PARAGRAPHS))
    if not v2:
        for paragraph in paragraphs:
            paragraph["qas"] = [qa for qa in paragraph["qas"] if not qa.pop("is_impossible")]
    path.write_text(json.dumps({"version": "v2.0" if v2 else "1.1",
                                "data": [{"title": "t", "paragraphs": paragraphs}]}))
    return path


@pytest.fixture(scope="module")
def shipped_reader():
    from retrieval.reader.extractive import load_reader

    reader_config = load_config()["reader"]
    model = Path(reader_config["model"])
    assert (model / "config.json").is_file(), (
        f"the shipped reader is missing at {model}: the SQuAD benchmark test needs models/byline-reader")
    return load_reader(str(model), max_seq_length=reader_config["max_seq_length"], stride=reader_config["stride"])


def test_load_squad_detects_the_version(tmp_path):
    questions, v2 = load_squad(write_squad(tmp_path / "v2.json", v2=True))
    assert v2 and [q.id for q in questions] == ["p1q1", "p1q2", "p1q3", "p2q1", "p2q2"]
    assert questions[2].impossible and questions[2].answers == ()
    questions, v2 = load_squad(write_squad(tmp_path / "v1.json", v2=False))
    assert not v2 and len(questions) == 4 and questions[1].answers == ("2010", "in 2010")


@pytest.mark.parametrize("content", ["{not json", '{"data": [{"paragraphs": [{"qas": []}]}]}', '{"data": []}'])
def test_load_squad_refuses_malformed_files(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SquadFormatError, match="bad.json"):
        load_squad(path)


def test_spread_sample_is_deterministic_and_covers_the_whole_file():
    questions = list(range(100))
    assert spread_sample(questions, 4) == [0, 25, 50, 75]
    assert spread_sample(questions, 3) == [0, 33, 66]
    assert spread_sample(questions, None) == questions and spread_sample(questions, 500) == questions


def test_v2_benchmark_with_the_shipped_reader(tmp_path, shipped_reader):
    questions, v2 = load_squad(write_squad(tmp_path / "tiny-v2.json", v2=True))
    always_answer = run_squad(shipped_reader, questions, v2, no_answer_threshold=0.0)
    assert always_answer["total"] == 5 and always_answer["HasAns_total"] == 4 and always_answer["NoAns_total"] == 1
    assert always_answer["NoAns_exact"] == 0.0  # a threshold of 0 never abstains
    assert always_answer["HasAns_f1"] >= 50, always_answer  # easy one-sentence questions
    assert always_answer["exact"] == pytest.approx((always_answer["HasAns_exact"] * 4 + 0) / 5)
    never_answer = run_squad(shipped_reader, questions, v2, no_answer_threshold=2.0)
    assert never_answer["NoAns_exact"] == 100.0 and never_answer["HasAns_exact"] == 0.0
    assert never_answer["exact"] == pytest.approx(20.0)


def test_v1_benchmark_always_answers(tmp_path, shipped_reader):
    questions, v2 = load_squad(write_squad(tmp_path / "tiny-v1.json", v2=False))
    summary = run_squad(shipped_reader, questions, v2, no_answer_threshold=2.0)  # ignored for v1.1
    assert summary["total"] == 4 and "HasAns_exact" not in summary
    assert 0 < summary["exact"] <= summary["f1"] <= 100

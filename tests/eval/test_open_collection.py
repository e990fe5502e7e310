"""`byline eval --open`: a SQuAD file's articles become one collection, questions go through the
whole pipeline, and the loss budget accounts for every F1 point between reader-only and end to end."""

import json
import subprocess
import sys

import pytest

from eval.open_collection import STAGES, load_collection, run_open
from eval.squad_benchmark import SquadFormatError
from retrieval.config import REPO_ROOT

ARTICLES = {
    "Vellmar bridge": [
        "The Vellmar stone bridge reopened on Friday, 3 May, after two years of repairs. The work cost the "
        "town 2.5 million euros.",
        "The repairs were led by the engineer Maria Olsen. Mayor Anna Roth cut the ribbon in front of about "
        "400 residents.",
    ],
    "Harbour festival": [
        "The harbour festival of Saltash takes place every August. It was first held in 1974.",
        "This year the festival's main stage was built by a company from Plymouth. About 12,000 visitors came.",
    ],
}
QUESTIONS = [  # (article, paragraph, question, answer)
    ("Vellmar bridge", 1, "Who led the repairs of the bridge?", "Maria Olsen"),
    ("Vellmar bridge", 0, "How much did the bridge repairs cost?", "2.5 million euros"),
    ("Harbour festival", 0, "When was the harbour festival first held?", "1974"),
    ("Harbour festival", 1, "How many visitors came to the festival?", "12,000"),
    ("Vellmar bridge", 1, "Who cut the ribbon?", "Anna Roth"),
]


def squad_file(path, v2=False):
    data = []
    for title, paragraphs in ARTICLES.items():
        entries = []
        for index, context in enumerate(paragraphs):
            qas = [{"id": f"q{n}", "question": q, "answers": [{"text": a, "answer_start": context.index(a)}]}
                   for n, (t, p, q, a) in enumerate(QUESTIONS) if t == title and p == index]
            if v2:
                for qa in qas:
                    qa["is_impossible"] = False
                if index == 0:
                    qas.append({"id": f"x{title[:3]}", "question": "Who invented the telephone?", "answers": [],
                                "is_impossible": True})
            entries.append({"context": context, "qas": qas})
        data.append({"title": title, "paragraphs": entries})
    path.write_text(json.dumps({"version": "2.0" if v2 else "1.1", "data": data}))
    return path


@pytest.fixture(scope="module")
def open_run(test_config, tmp_path_factory):
    folder = tmp_path_factory.mktemp("open")
    return run_open(squad_file(folder / "tiny.json"), test_config, None, cache_root=folder / "cache"), folder


def test_every_question_is_asked_and_scored(open_run):
    (summary, rows), _ = open_run
    assert summary["total"] == len(rows) == len(QUESTIONS) and summary["articles"] == 2
    assert summary["version"] == "1.1"
    by_question = {r["question"]: r for r in rows}
    assert by_question["Who led the repairs of the bridge?"]["prediction"] in {"Maria Olsen", "engineer Maria Olsen"}
    assert by_question["Who led the repairs of the bridge?"]["gold_cited"]
    assert summary["f1"] == pytest.approx(100 * sum(r["f1"] for r in rows) / len(rows))
    assert summary["latency_p50_ms"] > 0 and summary["reader_tokens_per_question"] > 0


def test_loss_budget_accounts_for_the_gap_to_reader_only(open_run):
    (summary, rows), _ = open_run
    loss = summary["loss"]
    assert set(loss) == set(STAGES) | {"gained_or_kept"}
    assert sum(stage["count"] for stage in loss.values()) == summary["answerable"]
    assert sum(stage["f1_points"] for stage in loss.values()) == pytest.approx(
        summary["answerable_reader_only_f1"] - summary["answerable_f1"])
    for row in rows:
        assert (row["stage"] is None) == (row["f1"] == 1.0)


def test_the_collection_is_built_once_and_reused(open_run, test_config):
    (_, _), folder = open_run
    index_link = next((folder / "cache").glob("*/data/index"))
    built = index_link.resolve()
    run_open(folder / "tiny.json", test_config, 2, cache_root=folder / "cache")
    assert index_link.resolve() == built


def test_v2_files_report_has_and_no_answer_splits(test_config, tmp_path):
    summary, rows = run_open(squad_file(tmp_path / "tiny2.json", v2=True), test_config, None,
                             cache_root=tmp_path / "cache")
    assert summary["version"] == "2.0" and summary["NoAns_total"] == 2 and summary["HasAns_total"] == len(QUESTIONS)
    telephone = [r for r in rows if r["impossible"]]
    assert all(r["f1"] == (1.0 if r["prediction"] is None else 0.0) for r in telephone)


def test_a_file_that_is_not_squad_shaped_names_the_first_bad_record(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"data": [{"title": "ok", "paragraphs": [{"context": "x", "qas": []}]},
                                        {"title": "broken", "paragraphs": [{"text": "no context"}]}]}))
    with pytest.raises(SquadFormatError, match=r"bad.json: data\[1\].paragraphs\[0\]: missing 'context'"):
        load_collection(bad)
    result = subprocess.run([sys.executable, "-m", "bot.cli", "eval", "--open", str(bad)], capture_output=True,
                            text=True, cwd=REPO_ROOT)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "data[1]" in result.stderr and "Traceback" not in result.stderr


def test_a_threshold_swept_over_a_run_without_one_gives_the_run_at_that_threshold(test_config, tmp_path):
    from retrieval.reader.candidates import collection_rows, plateau_threshold

    path = squad_file(tmp_path / "tiny2.json", v2=True)
    threshold = test_config["reader"]["no_answer_threshold"]
    at_threshold, rows = run_open(path, test_config, None, cache_root=tmp_path / "cache")
    no_threshold = {**test_config, "reader": {**test_config["reader"], "no_answer_threshold": 0.0}}
    _, unthresholded = run_open(path, no_threshold, None, cache_root=tmp_path / "cache")
    assert all(r["prediction"] is not None for r in unthresholded)
    refused = [r for r in rows if r["prediction"] is None]
    assert refused, "the off-topic question should be refused at the configured threshold"
    assert all(r["best_score"] < threshold for r in refused)
    chosen, best, f1_at = plateau_threshold(collection_rows(unthresholded))
    assert 100 * f1_at(threshold) == pytest.approx(at_threshold["f1"])
    assert best == pytest.approx(f1_at(chosen)) and best >= f1_at(threshold)

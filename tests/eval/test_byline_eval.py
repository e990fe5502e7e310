"""`byline eval` end to end on the real pipeline (the session fixture `real_pipeline`)."""

import contextlib
import io
import json
import re

import pytest

from eval.gold import load_gold
from eval.run_eval import main
from retrieval.config import REPO_ROOT

GOLD = REPO_ROOT / "eval" / "gold.jsonl"
SUMMARY_KEYS = {"f1", "em", "recall@1", "recall@5", "recall@k", "mrr", "citation_precision", "no_answer_accuracy",
                "no_answer_precision", "no_answer_recall", "latency_p50_ms", "latency_p95_ms"}


def run(argv, pipeline_factory) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv], pipeline_factory)
    return code, out.getvalue(), err.getvalue()


def never_built():
    raise AssertionError("the pipeline should not be built for this input")


@pytest.fixture(scope="module")
def full_eval(real_pipeline, tmp_path_factory):
    report = tmp_path_factory.mktemp("report") / "report.html"
    code, out, err = run(["--json", "--report", report], lambda: real_pipeline)
    return code, out, err, report


def test_full_gold_eval_prints_one_json_object(full_eval):
    code, out, _, _ = full_eval
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    summary, items = result["summary"], result["items"]
    assert SUMMARY_KEYS <= set(summary)
    for key in SUMMARY_KEYS - {"latency_p50_ms", "latency_p95_ms", "no_answer_precision"}:
        assert 0 <= summary[key] <= 1, key
    assert 0 < summary["latency_p50_ms"] <= summary["latency_p95_ms"]
    assert summary["recall@1"] <= summary["recall@5"] <= summary["recall@k"]
    gold = load_gold(GOLD)
    assert [i["id"] for i in items] == [g.id for g in gold]
    for item, expected in zip(items, gold):
        assert {"id", "question", "prediction", "no_answer", "score", "citations", "em", "f1"} <= set(item)
        assert item["no_answer"] == (item["prediction"] is None)
        if not expected.answerable:
            assert item["em"] == item["f1"] == float(item["no_answer"])
    assert summary["em"] == pytest.approx(sum(i["em"] for i in items) / len(items), abs=1e-3)
    assert set(result["tags"]) >= {"single", "multi", "chrome", "unanswerable"}


def test_report_is_self_contained_html(full_eval):
    report = full_eval[3].read_text(encoding="utf-8")
    assert report.startswith("<!doctype html>") and "<style>" in report and "<svg" in report
    assert "<script" not in report and not re.search(r'(src|href)="', report)
    assert "F1 and EM by tag" in report and "Failures (" in report


def write_gold_subset(path, step: int):
    """Every `step`-th shipped gold item (answerable and not), for the modes that re-run the pipeline."""
    lines = GOLD.read_text(encoding="utf-8").splitlines()[::step]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, len(lines)


def test_check_names_the_metrics_below_threshold(real_pipeline, tmp_path, monkeypatch):
    gold, _ = write_gold_subset(tmp_path / "subset.jsonl", step=20)
    monkeypatch.setitem(real_pipeline.config["eval"], "thresholds", {"f1": 1.01, "recall@5": 0.0})
    code, out, err = run(["--gold", gold, "--check"], lambda: real_pipeline)
    assert code == 1
    assert "f1" in err and "below the threshold 1.01" in err and "recall@5" not in err
    assert "failures (EM < 1)" in out and "recall@5" in out  # the text report still prints


def test_tune_reports_a_threshold_without_writing_config(real_pipeline, tmp_path):
    gold, count = write_gold_subset(tmp_path / "subset.jsonl", step=15)
    config_text = (REPO_ROOT / "config" / "byline.yaml").read_text()
    threshold_before = real_pipeline.config["reader"]["no_answer_threshold"]
    code, out, _ = run(["--gold", gold, "--tune", "--json"], lambda: real_pipeline)
    assert code == 0
    tuned = json.loads(out.strip().splitlines()[-1])["tune"]
    assert tuned["threshold"] >= 0 and tuned["tune_items"] + tuned["heldout_items"] == count
    assert 0 <= tuned["heldout"]["f1"] <= 1 and tuned["configured_threshold"] == threshold_before
    assert (REPO_ROOT / "config" / "byline.yaml").read_text() == config_text
    assert real_pipeline.config["reader"]["no_answer_threshold"] == threshold_before


def _expect_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def test_malformed_gold_line_is_reported_before_models_load(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = GOLD.read_text(encoding="utf-8").splitlines()[0]
    path.write_text(f"{good}\n{{\"id\": \"x\", \"question\": \"Who?\"\n", encoding="utf-8")
    _expect_one_line_error(*run(["--gold", path], never_built)[::2], "bad.jsonl line 2", "not valid JSON")


def test_answer_missing_from_its_source_names_the_item(real_pipeline, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "made-up", "question": "Who is Xiaomi's CEO?", "answers": ["Lei Jun"],
                                "sources": ["000_d5290124f999c393"], "tags": ["single"]}) + "\n")
    _expect_one_line_error(*run(["--gold", path], lambda: real_pipeline)[::2],
                           "'made-up'", "'Lei Jun'", "000_d5290124f999c393")


def test_unknown_source_doc_id_is_named(real_pipeline, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "q1", "question": "Who?", "answers": ["Huawei"],
                                "sources": ["999_no_such_article"], "tags": ["single"]}) + "\n")
    _expect_one_line_error(*run(["--gold", path], lambda: real_pipeline)[::2], "unknown doc id '999_no_such_article'")


def test_missing_gold_file_and_bad_flags_are_one_line_errors(tmp_path):
    _expect_one_line_error(*run(["--gold", tmp_path / "nope.jsonl"], never_built)[::2], "nope.jsonl")
    _expect_one_line_error(*run(["--limit", "3"], never_built)[::2], "--limit only applies to --squad")
    _expect_one_line_error(*run(["--frobnicate"], never_built)[::2], "--frobnicate")
    _expect_one_line_error(*run(["--squad", tmp_path / "none.json"], never_built)[::2], "none.json")


def test_squad_mode_runs_the_reader_on_a_limited_sample(real_pipeline, tmp_path):
    from test_squad_benchmark import write_squad

    path = write_squad(tmp_path / "tiny.json", v2=True)
    code, out, _ = run(["--squad", path, "--limit", "2", "--json"], lambda: real_pipeline)
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["total"] == 2 and summary["version"] == "2.0"
    assert 0 <= summary["exact"] <= summary["f1"] <= 100
    assert summary["no_answer_threshold"] == real_pipeline.config["reader"]["no_answer_threshold"]

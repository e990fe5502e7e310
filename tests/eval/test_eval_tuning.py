"""Threshold tuning and the --check gate, on scores given here (the real run is in test_byline_eval)."""

import contextlib
import io
import math

import pytest

from eval.gold import GoldItem
from eval.run_eval import (_run_tune, below_thresholds, candidate_thresholds, no_answer_metrics, split_halves,
                           tune_threshold)


def item(item_id: str, answers=()) -> GoldItem:
    return GoldItem(item_id, f"question {item_id}?", tuple(answers), ("doc",) if answers else (), ("single",))


class ScoredReader:
    """Stands in for pipeline.reader_scores with fixed (text, score) pairs."""

    def __init__(self, scores: dict[str, tuple[str | None, float]], threshold: float = 0.5):
        self.scores = scores
        self.config = {"reader": {"no_answer_threshold": threshold}}

    def reader_scores(self, question: str):
        return self.scores[question]


def test_split_is_deterministic_and_even():
    items = [item(f"q{i:03d}") for i in range(41)]
    first, second = split_halves(items)
    assert (first, second) == split_halves(list(reversed(items)))
    assert len(first) == 20 and len(second) == 21 and not set(first) & set(second)


def test_candidate_thresholds_cover_always_and_never_answering():
    assert candidate_thresholds([0.8, 0.2, 0.8]) == [0.0, 0.5, math.nextafter(0.8, math.inf)]
    assert candidate_thresholds([]) == [0.0]


def test_tuning_separates_right_from_wrong_answers():
    # Right answers score 0.6-0.9, unanswerable questions 0.1-0.3: any threshold between is best.
    items, scores = [], {}
    for i in range(40):
        answerable = i % 2 == 0
        items.append(item(f"q{i}", ["Huawei"] if answerable else ()))
        scores[f"question q{i}?"] = ("Huawei", 0.6 + i / 200) if answerable else ("Inspur", 0.1 + i / 200)
    tuned = tune_threshold(ScoredReader(scores, threshold=0.05), items)
    assert 0.3 < tuned["threshold"] < 0.6
    assert tuned["tune_f1"] == 1.0 and tuned["heldout"]["f1"] == 1.0
    assert tuned["heldout_at_configured"]["no_answer_recall"] == 0.0  # 0.05 never abstains
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert _run_tune(type("Args", (), {"json": False}), ScoredReader(scores), items) == 0
    assert "chosen no_answer_threshold:" in out.getvalue() and "(config not changed)" in out.getvalue()


def test_no_answer_metrics_treat_abstaining_as_positive():
    metrics = no_answer_metrics(predicted=[True, True, False, False], expected=[True, False, True, False])
    assert metrics == {"no_answer_precision": 0.5, "no_answer_recall": 0.5, "no_answer_accuracy": 0.5}
    assert math.isnan(no_answer_metrics([False], [False])["no_answer_precision"])


def test_below_thresholds_names_each_failing_metric():
    summary = {"f1": 0.62, "recall@5": 0.9, "citation_precision": math.nan}
    problems = below_thresholds(summary, {"f1": 0.7, "recall@5": 0.8, "citation_precision": 0.5, "bleu": 0.1})
    assert problems == ["f1 0.620 is below the threshold 0.7", "citation_precision n/a is below the threshold 0.5",
                        "bleu: not a metric of byline eval"]
    assert below_thresholds(summary, {"f1": 0.62}) == []


@pytest.mark.parametrize("argv", [["--squad", "x.json", "--tune"], ["--squad", "x.json", "--gold", "g.jsonl"]])
def test_squad_mode_refuses_gold_options(argv):
    from eval.run_eval import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(argv, lambda: pytest.fail("no pipeline needed")) == 2
    assert "--squad cannot be combined" in err.getvalue()

"""Summary metrics, threshold tuning and the --check gate on outcomes given here (real runs: test_byline_eval)."""

import contextlib
import io
import math

import pytest

from eval.gold import GoldItem
from eval.run_eval import (ItemOutcome, _run_tune, below_thresholds, candidate_thresholds, no_answer_metrics,
                           per_tag, split_halves, summarize, tune_threshold)


def item(item_id: str, answers=(), sources=None, tags=("single",)) -> GoldItem:
    sources = sources if sources is not None else (("doc",) if answers else ())
    return GoldItem(item_id, f"question {item_id}?", tuple(answers), tuple(sources), tuple(tags))


def test_summary_metrics_on_known_outcomes():
    outcomes = [
        # right answer, gold source ranked 1st, one of two citations precise
        ItemOutcome(item("a", ["Lei Jun"], ["d1", "d2"], ["multi"]), "Lei Jun", 0.9,
                    [("d2", "Lei Jun, chair of Xiaomi, said"), ("d3", "Lei Jun said")], ["d1", "d3"], 100.0, best_score=0.9),
        # partly right, gold source ranked 2nd
        ItemOutcome(item("b", ["Rudolph Contreras"], ["d1"]), "Judge Rudolph Contreras", 0.7,
                    [("d1", "Judge Rudolph Contreras said")], ["d3", "d1"], 200.0, best_score=0.7),
        # abstained although answerable, gold source not retrieved
        ItemOutcome(item("c", ["Huawei"], ["d4"]), None, 0.0, [], ["d1", "d2", "d3"], 300.0, best_score=0.4),
        # rightly abstained
        ItemOutcome(item("d", tags=["unanswerable"]), None, 0.0, [], [], 400.0, best_score=0.3),
        # answered an unanswerable question: its citation is imprecise
        ItemOutcome(item("e", tags=["unanswerable", "chrome"]), "Binance", 0.6, [("d1", "Binance")], [], 500.0, best_score=0.6),
    ]
    summary = summarize(outcomes)
    assert summary["em"] == pytest.approx(2 / 5) and summary["f1"] == pytest.approx((1 + 0.8 + 0 + 1 + 0) / 5)
    assert summary["recall@1"] == pytest.approx(1 / 3) and summary["recall@5"] == pytest.approx(2 / 3)
    assert summary["mrr"] == pytest.approx((1 + 1 / 2 + 0) / 3) and summary["k"] == 3
    assert summary["citation_precision"] == pytest.approx(2 / 4)
    assert summary["snippet_holds_answer"] == 1.0  # "a" and "b" (answered, answerable) each show the answer
    assert summary["no_answer_precision"] == 0.5 and summary["no_answer_recall"] == 0.5
    assert summary["no_answer_accuracy"] == pytest.approx(3 / 5)
    # before the threshold, "c" (refused, answerable) still ranks above "d" but below "e": 5 of 6 pairs
    assert summary["no_answer_auc"] == pytest.approx(5 / 6)
    assert summary["latency_p50_ms"] == 300.0 and summary["latency_p95_ms"] == pytest.approx(480.0)
    tags = per_tag(outcomes)
    without_scores = [ItemOutcome(o.item, o.prediction, o.score, o.citations, o.retrieved, o.latency_ms) for o in outcomes]
    assert math.isnan(summarize(without_scores)["no_answer_auc"])
    assert list(tags) == ["chrome", "multi", "single", "unanswerable"]
    assert tags["unanswerable"] == {"n": 2, "em": 0.5, "f1": 0.5} and tags["single"]["f1"] == pytest.approx(0.4)


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

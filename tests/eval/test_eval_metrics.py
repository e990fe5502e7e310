import math

import pytest

from eval.metrics import contains_answer, exact_match, f1, normalize_answer, percentile, score_prediction


@pytest.mark.parametrize("text, expected", [
    ("The Department of Defense", "department of defense"),
    ("  An   apple,\ta pear!  ", "apple pear"),
    ("Theatre another anthem", "theatre another anthem"),  # articles only as whole words
    ("mid-January", "midjanuary"),  # punctuation is deleted, not replaced by a space
    ("“irreparable harm.”", "“irreparable harm”"),  # curly quotes are not ASCII punctuation
    ("U.S. v. Xiaomi (2021)", "us v xiaomi 2021"),
])
def test_normalize_answer_follows_the_official_squad_rules(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_ignores_case_punctuation_and_articles():
    assert exact_match("the New York Stock Exchange.", "New York Stock Exchange") == 1.0
    assert exact_match("New York", "New York Stock Exchange") == 0.0
    assert exact_match(None, "Huawei") == 0.0


def test_f1_is_token_overlap():
    assert f1("Judge Rudolph Contreras", "Rudolph Contreras") == pytest.approx(0.8)  # P 2/3, R 1
    assert f1("Huawei Hikvision", "Inspur") == 0.0
    assert f1("huawei huawei", "Huawei") == pytest.approx(2 * 0.5 * 1 / 1.5)  # repeated tokens count once each
    assert f1("", "Huawei") == 0.0 and f1("", "") == 1.0


def test_score_takes_the_best_gold_answer():
    em, score = score_prediction("District Judge Rudolph Contreras",
                                 ["Rudolph Contreras", "Judge Rudolph Contreras"])
    assert em == 0.0 and score == pytest.approx(2 * 0.75 * 1 / 1.75)
    assert score_prediction("judge Rudolph Contreras", ["Contreras", "Judge Rudolph Contreras"]) == (1.0, 1.0)


def test_unanswerable_gold_scores_one_only_for_no_answer():
    assert score_prediction(None, []) == (1.0, 1.0)
    assert score_prediction("  ", []) == (1.0, 1.0)
    assert score_prediction("Huawei", []) == (0.0, 0.0)
    assert score_prediction(None, ["Huawei"]) == (0.0, 0.0)
    assert score_prediction(None, ["the", "."]) == (1.0, 1.0)  # answers that normalise away are ignored


def test_contains_answer_matches_whole_normalised_tokens():
    snippet = "Other companies include Huawei, Hikvision and the Inspur group."
    assert contains_answer(snippet, ["huawei"])
    assert contains_answer(snippet, ["Hikvision and Inspur"])  # "the" is dropped on both sides
    assert not contains_answer(snippet, ["Hik"])
    assert not contains_answer(snippet, ["ZTE", "the"])


def test_percentile_interpolates_and_handles_no_values():
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([5], 95) == 5
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 95) == pytest.approx(10.5)
    assert math.isnan(percentile([], 50))

"""A span's quotes and brackets come paired: the model's end token often stops one short of a closing quote."""

import pytest

from retrieval.reader.spans import balanced

PASSAGE = ("Xiaomi remains an “independently operated and managed corporation,” Lei Jun said. "
           "The order came yesterday (25 May) after the judge called it “arbitrary and capricious.” "
           'A spokesperson said "we are pleased" in a statement.')


@pytest.mark.parametrize("span, expected", [
    ("an “independently operated and managed corporation", "an “independently operated and managed corporation,”"),
    ("independently operated and managed corporation,”", "independently operated and managed corporation"),
    ("“arbitrary and capricious", "arbitrary and capricious"),
    ("yesterday (25 May", "yesterday (25 May)"),
    ("25 May)", "25 May"),
    ('said "we are pleased', 'said "we are pleased"'),
    ('"we are pleased', "we are pleased"),
    ("“arbitrary and capricious.”", "“arbitrary and capricious.”"),
    ("Lei Jun", "Lei Jun"),
])
def test_unpaired_marks_are_paired_or_dropped(span, expected):
    start = PASSAGE.index(span)
    new_start, new_end = balanced(PASSAGE, start, start + len(span))
    assert PASSAGE[new_start:new_end] == expected


def test_a_lone_mark_is_left_alone():
    start = PASSAGE.index("“arbitrary")
    assert balanced(PASSAGE, start, start + 1) == (start, start + 1)

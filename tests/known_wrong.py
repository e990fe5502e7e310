"""Hand-written questions a shipped reader is known to get wrong, kept as strict expected failures."""

import pytest


def params(questions, known_wrong: dict[str, str]) -> list:
    """One pytest parameter a question; each in `known_wrong` (question -> why) is a strict xfail, so a
    reader that answers it right fails the test until it is taken out of `known_wrong`."""
    return [pytest.param(q, marks=pytest.mark.xfail(reason=known_wrong[q], strict=True)) if q in known_wrong else q
            for q in questions]

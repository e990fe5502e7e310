"""Hand-written questions a shipped reader is known to get wrong, kept as strict expected failures."""

import pytest


def params(items, known_wrong: dict[str, str], key=None, ids=None) -> list:
    """One pytest parameter an item; each whose question (the item, or `key(item)` for a tuple of
    arguments) is in `known_wrong` (question -> why) is a strict xfail, so a reader that answers it right
    fails the test until it is taken out of `known_wrong`."""
    out = []
    for item in items:
        question, values = (key(item), item) if key else (item, (item,))
        marks = [pytest.mark.xfail(reason=known_wrong[question], strict=True)] if question in known_wrong else []
        out.append(pytest.param(*values, marks=marks, id=ids(item) if ids else None))
    return out

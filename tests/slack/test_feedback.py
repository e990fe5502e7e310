import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.feedback import FeedbackLog, export_feedback


def test_concurrent_records_are_whole_lines(tmp_path):
    log = FeedbackLog(tmp_path / "data")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: log.record(vote="up", user=f"U{i}", question="q " * 500, answer="a",
                                           citations=["d1"]), range(200)))
    entries = log.entries()
    assert len(entries) == 200 and {e["user"] for e in entries} == {f"U{i}" for i in range(200)}
    assert log.path == tmp_path / "data" / "feedback.jsonl"


def test_only_a_known_vote_is_recorded(tmp_path):
    with pytest.raises(ValueError):
        FeedbackLog(tmp_path).record(vote="meh", user="U1", question="q", answer="a", citations=[])


def test_export_turns_thumbs_down_into_gold_candidates(tmp_path):
    log = FeedbackLog(tmp_path)
    log.record(vote="down", user="U1", question="Who won?", answer="Ann", citations=["d1", "d2", "d1"])
    log.record(vote="down", user="U2", question="who  won?", answer="Ann", citations=["d1"])  # same candidate
    log.record(vote="up", user="U3", question="When?", answer="May", citations=["d3"])
    log.record(vote="down", user="U4", question="Where?", answer=None, citations=[])  # the bot found nothing

    out = tmp_path / "out" / "candidates.jsonl"
    assert export_feedback(tmp_path, out) == 2
    first, second = [json.loads(line) for line in out.read_text().splitlines()]
    assert first == {"id": first["id"], "question": "Who won?", "answers": ["Ann"], "sources": ["d1", "d2"],
                     "tags": ["feedback"]}
    assert first["id"].startswith("feedback-")
    assert second == {"id": second["id"], "question": "Where?", "answers": [], "sources": [], "tags": ["feedback"]}


def test_export_with_no_feedback_writes_an_empty_file(tmp_path):
    assert export_feedback(tmp_path, tmp_path / "c.jsonl") == 0
    assert (tmp_path / "c.jsonl").read_text() == ""

"""What the Slack bot survives, on the real `byline slack` in a child process (HTTP mode, waitress, the real
pipeline), measured by the code of `byline bench slack`: fuzzed signed requests, a burst of 100 mentions,
SIGTERM with answers in flight; and SIGKILL with questions taken but not yet answered."""

import signal
import sqlite3
import time

import pytest

from bot.slack.answering import journal_key
from bot.slack.bench import BotProcess, replies_by_place, run, wait_for_replies
from bot.slack.journal import JOURNAL_FILE
from bot.slack.standin import StandInSlackAPI, mention_event

FUZZ_REQUESTS = 150  # the README has the 10,000-request figure
KINDS = {"invalid JSON", "content type", "mention field", "question", "ignored", "command", "click", "signed timestamp"}


@pytest.fixture(scope="module")
def figures(test_config, real_pipeline) -> dict:
    """One bench run: load, then fuzz, then stop, against one child process."""
    lines = run(test_config, mentions=100, fuzz=FUZZ_REQUESTS, seed=0, in_flight=5, emit=lambda line: None)
    return {line["bench"]: line for line in lines}


def test_fuzzed_signed_requests_get_no_5xx_no_traceback_and_no_reply_where_none_is_due(figures):
    fuzz = figures["slack-fuzz"]
    assert fuzz["requests"] == FUZZ_REQUESTS
    assert fuzz["http_5xx"] == 0 and fuzz["no_response"] == 0, fuzz["by_status"]
    assert fuzz["tracebacks_logged"] == 0
    assert fuzz["alive"] and fuzz["still_answering"]
    assert fuzz["replies_not_due"] == 0 and fuzz["replies_repeated"] == 0
    assert fuzz["replies_missing"] == 0 and fuzz["replies_due"] > 0  # the readable questions were all answered
    assert {"200", "400", "401"} <= set(fuzz["by_status"]) and KINDS <= set(fuzz["status_by_kind"])


def test_a_burst_of_100_mentions_gets_100_replies_each_exactly_once(figures):
    load = figures["slack"]
    assert load["acks"] == {"200": 100}
    assert (load["replied_once"], load["replied_twice_or_more"], load["unanswered"]) == (100, 0, 0)
    assert load["busy_replies"] == 0  # slack.answer_queue_limit is above the burst
    assert load["reply_ms"]["p95"] is not None and load["peak_rss_mb"]


def test_sigterm_with_5_answers_in_flight_posts_all_5_then_exits_0(figures):
    stop = figures["slack-stop"]
    assert stop["acks"] == {"200": 5} and stop["posted_before_sigterm"] == 0
    assert stop["alive_0_5_s_after_sigterm"]  # it waited for the held answers
    assert stop["posted"] == 5 and stop["exit_code"] == 0 and stop["tracebacks_logged"] == 0


def is_done(bot: BotProcess, event: dict) -> bool:
    with sqlite3.connect(bot.data_dir / JOURNAL_FILE) as db:
        row = db.execute("SELECT done FROM questions WHERE key = ?",
                         (journal_key(event["channel"], event["ts"]),)).fetchone()
    return bool(row and row[0])


def test_questions_taken_but_unanswered_at_sigkill_are_answered_once_after_restart(test_config, tmp_path):
    questions = ["Who is the chair of Xiaomi?", "Who blocked the Pentagon's designation of Xiaomi?",
                 "What did the court decide?", "When was Xiaomi removed from the list?"]
    answered, *taken = [mention_event(q, channel=f"CKILL{i}") for i, q in enumerate(questions)]
    with StandInSlackAPI() as api, BotProcess(test_config, api, tmp_path) as first:
        first.start()
        slack = first.sender()
        assert slack.event(answered)[0] == 200
        api.wait_for("chat.postMessage", timeout=120)
        deadline = time.monotonic() + 10
        while not is_done(first, answered) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert is_done(first, answered)

        api.hold("reactions.add")  # the listeners stop between the ack and the answer
        assert [slack.event(event)[0] for event in taken] == [200] * 3
        api.wait_held("reactions.add", 3)
        first.signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
        api.release("reactions.add")
        places = {("thread", e["channel"], e["ts"]) for e in taken}
        assert not places & set(replies_by_place(api))  # acknowledged, and not answered

        with BotProcess(test_config, api, tmp_path) as second:  # the same data directory, so the same journal
            second.start()
            replies = wait_for_replies(api, places, timeout=180)
            assert all(replies[place] == 1 for place in places)
            assert replies[("thread", answered["channel"], answered["ts"])] == 1  # done before the kill: not again
            assert "Answering 3 question(s) taken but not answered" in second.log()

            assert second.sender().event(taken[0])[0] == 200  # Slack would not redeliver it; if it did, no 2nd answer
            time.sleep(1)
            assert replies_by_place(api)[("thread", taken[0]["channel"], taken[0]["ts"])] == 1
            second.signal(signal.SIGTERM)
            assert second.wait(timeout=60) == 0
            assert second.tracebacks() == 0

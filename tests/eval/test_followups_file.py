"""`byline eval --followups`: its file and its bad input (the benchmark itself is a command, see the README)."""

import contextlib
import io

import pytest

from eval.followups import DEFAULT_FOLLOWUPS, DISTRACTORS, load_followups
from eval.run_eval import main
from retrieval.ingest.loaders import load_paths


def run(argv) -> tuple[int, str, str]:
    def never_built():
        raise AssertionError("the pipeline should not be built for this input")

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv], never_built, config={})
    return code, out.getvalue(), err.getvalue()


def test_the_shipped_follow_ups_and_their_distractor_load():
    items = load_followups(DEFAULT_FOLLOWUPS)
    assert len(items) >= 10 and len({i.id for i in items}) == len(items)
    assert all(len(i.turns) >= 2 for i in items) and any(i.fresh for i in items)
    assert load_paths([DISTRACTORS], 10_000_000)
    assert any(not i.turns[-1][1] for i in items)  # a last turn that no article answers: "no answer" is right


@pytest.mark.parametrize("content, message", [
    ('{"id": "x", "turns": [{"question": "Who?", "answers": ["A"]}]}\n', "needs two or more turns"),
    ('{"id": "x", "turns": [{"question": "Who?"}, {"question": "And?", "answers": ["B"]}]}\n', "KeyError"),
    ('{"id": "x", "turns": [{"question": "Who?", "answers": []}, {"question": "And?", "answers": ["B"]}]}\n',
     "answers to all but the last"),
    ("not json\n", "JSONDecodeError"),
    ("\n", "holds no follow-up items"),
])
def test_a_bad_follow_up_file_is_one_line_before_any_model_loads(tmp_path, content, message):
    path = tmp_path / "followups.jsonl"
    path.write_text(content, encoding="utf-8")
    code, out, err = run(["--followups", path])
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("byline eval: error: ") and message in err


def test_followups_take_no_other_option_than_json():
    code, _, err = run(["--followups", "--tune"])
    assert code == 2 and err == "byline eval: error: --followups can only be combined with --json\n"

import json

from bot.slack.bench import main


def test_slack_bench_prints_ack_and_reply_percentiles(capsys, tmp_path, pipeline):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"question": "What budget did the Riverside council approve?"}) + "\n")
    config = {"data_dir": str(tmp_path), "slack": {"workers": 2}, "eval": {"gold": str(gold)}}
    assert main(["--mentions", "4", "--concurrency", "2"], config=config, pipeline=pipeline) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["bench"] == "slack" and line["mentions"] == 4 and line["workers"] == 2
    assert {"ack_p50_ms", "ack_p95_ms", "reply_p50_ms", "reply_p95_ms"} <= line.keys()

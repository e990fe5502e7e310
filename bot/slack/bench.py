"""`byline bench slack`: ack and mention-to-reply latency of the Slack bot, over real HTTP, against a local
stand-in of Slack's Web API (nothing contacts Slack). Prints one JSON line.

    byline bench slack [--mentions N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bot.slack.app import build_app, create_http_server, web_client
from bot.slack.context import SlackContext
from bot.slack.standin import SlackSender, StandInSlackAPI, mention_event
from eval.metrics import percentile

SIGNING_SECRET = "bench-signing-secret"
FALLBACK_QUESTIONS = ["Who blocked the Pentagon's designation of Xiaomi?", "What did the court decide?"]


def _questions(config: dict) -> list[str]:
    try:
        with open(config["eval"]["gold"], encoding="utf-8") as f:
            return [json.loads(line)["question"] for line in f if line.strip()] or FALLBACK_QUESTIONS
    except (KeyError, OSError, ValueError):
        return FALLBACK_QUESTIONS


def bench_slack(config: dict, pipeline, mentions: int, concurrency: int, paced: bool = False) -> dict:
    """With `paced`, each mention waits for the previous reply: the latency of one mention, not of a burst."""
    questions = _questions(config)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # bursts queue by design here
    with StandInSlackAPI() as api:
        unlimited = {**config, "slack": {**(config.get("slack") or {}), "channel_allowlist": [],
                                         "user_rate_limit_per_minute": 0}}  # every mention must be answered
        byline = SlackContext.from_config(unlimited, pipeline)
        app = build_app(config, pipeline, web_client("xoxb-bench", {"SLACK_API_URL": api.base_url}), byline=byline,
                        environ={"SLACK_SIGNING_SECRET": SIGNING_SECRET})
        server = create_http_server(app, host="127.0.0.1", port=0)
        threading.Thread(target=server.run, daemon=True).start()
        slack = SlackSender(f"http://127.0.0.1:{server.effective_port}/slack/events", SIGNING_SECRET)
        try:
            slack.event(mention_event(questions[0], channel="CWARMUP"))  # loads whatever loads lazily
            api.wait_for("chat.postMessage", 1, timeout=300)

            sent_at: dict[str, float] = {}  # by channel: one mention per channel
            ack_ms: list[float] = []

            def mention(i: int) -> None:
                event = mention_event(questions[i % len(questions)], channel=f"C{i:05d}")
                started = time.monotonic()
                status, _ = slack.event(event)
                ack_ms.append((time.monotonic() - started) * 1000)
                if status != 200:
                    raise RuntimeError(f"the bot answered HTTP {status}")
                sent_at[event["channel"]] = started

            if paced:
                for i in range(mentions):
                    mention(i)
                    api.wait_for("chat.postMessage", i + 2, timeout=120)
            else:
                with ThreadPoolExecutor(concurrency) as senders:
                    list(senders.map(mention, range(mentions)))
            replies = api.wait_for("chat.postMessage", mentions + 1, timeout=60 + 10 * mentions)
            reply_ms = [(r.at - sent_at[r.params["channel"]]) * 1000 for r in replies if r.params["channel"] in sent_at]
        finally:
            server.trigger.pull_trigger(server.close)
            server.task_dispatcher.shutdown()
            byline.close()
    return {"mentions": mentions, "concurrency": 1 if paced else concurrency, "paced": paced,
            "workers": byline.workers,
            "ack_p50_ms": round(percentile(ack_ms, 50), 1), "ack_p95_ms": round(percentile(ack_ms, 95), 1),
            "reply_p50_ms": round(percentile(reply_ms, 50), 1), "reply_p95_ms": round(percentile(reply_ms, 95), 1)}


def main(argv: list[str] | None = None, config: dict | None = None, pipeline=None) -> int:
    parser = argparse.ArgumentParser(prog="byline bench slack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mentions", type=int, default=40, help="mentions sent (default 40)")
    parser.add_argument("--concurrency", type=int, default=10, help="mentions in flight at once (default 10)")
    parser.add_argument("--paced", action="store_true",
                        help="send each mention after the previous reply (single mention-to-reply latency)")
    args = parser.parse_args(argv)
    if config is None:
        from retrieval.config import load_config
        config = load_config()
    if pipeline is None:
        from retrieval.pipeline import build_pipeline
        pipeline = build_pipeline(config)
    print(json.dumps({"bench": "slack", **bench_slack(config, pipeline, args.mentions, args.concurrency, args.paced)}), flush=True)
    return 0

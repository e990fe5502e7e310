"""`byline bench slack`: what the Slack bot survives, in numbers. It runs the real `byline slack` (HTTP mode,
waitress, the real pipeline) as a child process on 127.0.0.1, sends it correctly signed requests, and
watches the replies arrive at a local stand-in of Slack's Web API (nothing contacts Slack). One JSON line
per phase:

    byline bench slack [--mentions N] [--concurrency C] [--paced] [--fuzz N] [--seed S] [--in-flight K]

- load (`--mentions`, default 40; 0 skips): N distinct mentions at once (or C at a time, or with `--paced`
  one after the other's reply): ack and mention-to-reply p50/p95/max, replies per mention (each exactly
  once), "busy" replies (past slack.answer_queue_limit), the bot's peak RSS.
- fuzz (`--fuzz N`, default 0): N requests drawn by Hypothesis (bot/slack/fuzz.py; fixed `--seed`), then
  the count by status code, 5xx responses, tracebacks in the bot's log, whether it is still alive and
  answering, replies where none was due and replies missing where one was.
- stop (always): K mentions (`--in-flight`, default 5) whose replies are held at the stand-in, SIGTERM
  while all K answers are in flight, then the hold lifted: replies posted, exit code, seconds to exit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from bot.slack.answering import BUSY
from bot.slack.standin import SlackSender, StandInSlackAPI, mention_event
from eval.metrics import percentile
from retrieval.config import REPO_ROOT
from retrieval.errors import BylineError

SIGNING_SECRET = "bench-signing-secret"
FALLBACK_QUESTIONS = ["Who blocked the Pentagon's designation of Xiaomi?", "What did the court decide?"]
REPLY_METHODS = ("chat.postMessage", "chat.postEphemeral", "response_url")
TRACEBACK = "Traceback (most recent call last)"


class BotProcess:
    """`byline slack` in a child process, on a copy of the data directory's index, listening on 127.0.0.1
    and calling `api`; everything it logs goes to `log_path`."""

    def __init__(self, config: dict, api: StandInSlackAPI, work_dir: str | Path, slack_settings: dict | None = None):
        self.work_dir = Path(work_dir)
        self.data_dir = self.work_dir / "data"
        self.log_path = self.work_dir / "bot.log"
        self.config_path = self.work_dir / "byline.yaml"
        self.api = api
        self.process: subprocess.Popen | None = None
        self.url = ""
        if not self.data_dir.exists():
            _copy_index(Path(config["data_dir"]), self.data_dir)
        slack = {**(config.get("slack") or {}), "channel_allowlist": [], "user_rate_limit_per_minute": 0,
                 **(slack_settings or {})}
        self.config_path.write_text(yaml.safe_dump({**config, "data_dir": str(self.data_dir), "slack": slack}))

    def start(self, timeout: float = 300) -> str:
        """Starts the bot and returns its events URL once it listens."""
        environ = {name: value for name, value in os.environ.items()
                   if not name.startswith(("BYLINE_", "SLACK_"))}  # the config file written above is the config
        environ.update(SLACK_BOT_TOKEN="xoxb-bench", SLACK_SIGNING_SECRET=SIGNING_SECRET,
                       SLACK_API_URL=self.api.base_url, PYTHONUNBUFFERED="1")
        logged_before = len(self.log())  # a restart appends to the same log
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "--config", str(self.config_path), "slack", "--host", "127.0.0.1",
                 "--port", "0"], cwd=REPO_ROOT, env=environ, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not (found := re.findall(r"listening on (http://\S+/slack/events)", self.log()[logged_before:])):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise BylineError(f"`byline slack` did not start; its log ends:\n{self.log()[-2000:]}")
            time.sleep(0.2)
        self.url = found[-1]
        return self.url

    def sender(self) -> SlackSender:
        return SlackSender(self.url, SIGNING_SECRET)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def tracebacks(self) -> int:
        return self.log().count(TRACEBACK)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def peak_rss_mb(self) -> float | None:
        """The process's high-water resident set size (VmHWM), while it runs."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        found = re.search(r"VmHWM:\s+(\d+) kB", status)
        return round(int(found.group(1)) / 1024, 1) if found else None

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
            self.process.wait(30)

    def __enter__(self) -> BotProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


def _copy_index(source_dir: Path, data_dir: Path) -> None:
    """The published index of `source_dir`, if any, as the child's own (its journal and feedback stay apart)."""
    data_dir.mkdir(parents=True)
    index = source_dir / "index"
    if (index / "articles.json").exists():
        shutil.copytree(index.resolve(), data_dir / "index-copy")
        (data_dir / "index").symlink_to("index-copy")


def _questions(config: dict) -> list[str]:
    try:
        with open(config["eval"]["gold"], encoding="utf-8") as f:
            return [json.loads(line)["question"] for line in f if line.strip()] or FALLBACK_QUESTIONS
    except (KeyError, OSError, ValueError):
        return FALLBACK_QUESTIONS


def replies_by_place(api: StandInSlackAPI, text: str | None = None) -> Counter:
    """Successful replies (only those saying `text`, if given), by ("thread", channel, thread_ts) or
    ("url", response_url name)."""
    places = Counter()
    for call in api.calls():
        if call.method not in REPLY_METHODS or (text is not None and call.params.get("text") != text):
            continue
        if call.method == "response_url":
            places[("url", call.path.rsplit("/", 1)[-1])] += 1
        else:
            places[("thread", call.params.get("channel"), call.params.get("thread_ts"))] += 1
    return places


def wait_for_replies(api: StandInSlackAPI, places: set, timeout: float, settle_s: float = 1.5) -> Counter:
    """Waits until every place in `places` has a reply (or `timeout`), then `settle_s` more for strays."""
    deadline = time.monotonic() + timeout
    while not places <= set(replies_by_place(api)) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(settle_s)
    return replies_by_place(api)


def _ms(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "max": None}
    return {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1),
            "max": round(max(values), 1)}


def warm_up(bot: BotProcess, api: StandInSlackAPI, question: str) -> None:
    """One mention answered first, so the figures below do not include loading what loads lazily."""
    event = mention_event(question, channel="CWARMUP")
    bot.sender().event(event)
    wait_for_replies(api, {("thread", "CWARMUP", event["ts"])}, timeout=300, settle_s=0)


def bench_mentions(bot: BotProcess, api: StandInSlackAPI, questions: list[str], mentions: int,
                   concurrency: int | None = None, paced: bool = False) -> dict:
    """`mentions` distinct mentions, each in a channel of its own: at once, `concurrency` at a time, or paced."""
    slack = bot.sender()
    sent_at: dict[str, float] = {}
    ack_ms: list[float] = []
    statuses = Counter()
    events = [mention_event(questions[i % len(questions)], channel=f"CLOAD{i:05d}") for i in range(mentions)]

    def mention(event: dict) -> None:
        started = time.monotonic()
        sent_at[event["channel"]] = started
        status, _ = slack.event(event)
        ack_ms.append((time.monotonic() - started) * 1000)
        statuses[status] += 1

    if paced:
        for event in events:
            mention(event)
            wait_for_replies(api, {("thread", event["channel"], event["ts"])}, timeout=120, settle_s=0)
    else:
        with ThreadPoolExecutor(concurrency or mentions) as senders:
            list(senders.map(mention, events))
    places = {("thread", e["channel"], e["ts"]) for e in events}
    replies = wait_for_replies(api, places, timeout=60 + 10 * mentions)
    first_reply = {}
    for call in api.calls():
        channel = call.params.get("channel")
        if call.method in REPLY_METHODS and channel in sent_at and channel not in first_reply:
            first_reply[channel] = call.at
    busy = sum(n for place, n in replies_by_place(api, BUSY).items() if place in places)
    counts = Counter(replies[place] for place in places)
    return {"mentions": mentions, "concurrency": 1 if paced else concurrency or mentions, "paced": paced,
            "acks": {str(code): n for code, n in statuses.items()}, "ack_ms": _ms(ack_ms),
            "reply_ms": _ms([(at - sent_at[channel]) * 1000 for channel, at in first_reply.items()]),
            "replied_once": counts[1], "replied_twice_or_more": sum(n for k, n in counts.items() if k > 1),
            "unanswered": counts[0], "busy_replies": busy, "peak_rss_mb": bot.peak_rss_mb()}


def bench_fuzz(bot: BotProcess, api: StandInSlackAPI, count: int, seed: int) -> dict:
    """`count` requests drawn by Hypothesis with a fixed seed, each signed correctly, sent one after another."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis.configuration import set_hypothesis_home_dir

    from bot.slack.fuzz import FuzzCases

    set_hypothesis_home_dir(bot.work_dir / "hypothesis")  # its caches, out of the working directory
    slack = bot.sender()
    statuses, due, in_ack, busy_in_ack = Counter(), Counter(), Counter(), Counter()
    kinds: dict[str, Counter] = {}
    replies_before, tracebacks_before = replies_by_place(api), bot.tracebacks()

    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @hypothesis_seed(seed)
    @given(FuzzCases(api.response_url).strategy())
    def send(case):
        try:
            status, body = slack.post(case.body, case.content_type, timestamp=case.timestamp)
        except OSError:
            status, body = 0, ""  # no response at all: the bot is down or hung up
        statuses[status] += 1
        kinds.setdefault(case.what.split(":")[0], Counter())[str(status)] += 1
        due.update(case.due)
        if status == 200 and body and case.due and case.due[0][0] == "url":  # a reply in a slash command's ack
            in_ack[case.due[0]] += 1
            busy_in_ack[case.due[0]] += body == BUSY

    started = time.monotonic()
    send()
    sent_s = time.monotonic() - started
    replies = wait_for_replies(api, set(due) - set(in_ack), timeout=120 + 2 * len(due)) - replies_before + in_ack
    return {"requests": sum(statuses.values()), "seed": seed, "seconds": round(sent_s, 1),
            "by_status": {str(code): n for code, n in sorted(statuses.items())},
            "http_5xx": sum(n for code, n in statuses.items() if code >= 500),
            "no_response": statuses[0], "tracebacks_logged": bot.tracebacks() - tracebacks_before,
            "alive": bot.alive, "still_answering": bot.alive and _still_answers(bot, api),
            "replies_due": sum(due.values()),
            "busy_replies": sum(n for place, n in (replies_by_place(api, BUSY) + busy_in_ack).items() if place in due),
            "replies_missing": sum(1 for place in due if replies[place] < due[place]),
            "replies_not_due": sum(n for place, n in replies.items() if place not in due),
            "replies_repeated": sum(replies[place] - due[place] for place in due if replies[place] > due[place]),
            "status_by_kind": {kind: dict(sorted(counts.items())) for kind, counts in sorted(kinds.items())}}


def _still_answers(bot: BotProcess, api: StandInSlackAPI) -> bool:
    event = mention_event(FALLBACK_QUESTIONS[0], channel="CAFTERFUZZ")
    bot.sender().event(event)
    place = ("thread", "CAFTERFUZZ", event["ts"])
    return wait_for_replies(api, {place}, timeout=120, settle_s=0)[place] == 1


def bench_stop(bot: BotProcess, api: StandInSlackAPI, questions: list[str], in_flight: int, workers: int) -> dict:
    """SIGTERM while `in_flight` answers are under way: their replies are held at the stand-in until the
    signal has been sent, so none can be posted before it."""
    slack = bot.sender()
    events = [mention_event(questions[i % len(questions)], channel=f"CSTOP{i:03d}") for i in range(in_flight)]
    api.hold("chat.postMessage")
    try:
        with ThreadPoolExecutor(max(1, in_flight)) as senders:
            acks = list(senders.map(lambda e: slack.event(e)[0], events))
        if in_flight:
            api.wait_held("chat.postMessage", min(in_flight, workers), timeout=120)
        posted_before = sum(replies_by_place(api)[("thread", e["channel"], e["ts"])] for e in events)
        signalled = time.monotonic()
        bot.signal(signal.SIGTERM)
        time.sleep(0.5)
        waited_for_answers = bot.alive
    finally:
        api.release("chat.postMessage")
    exit_code = bot.wait(timeout=120)
    stopped_s = time.monotonic() - signalled
    replies = replies_by_place(api)
    return {"in_flight": in_flight, "acks": {str(code): n for code, n in Counter(acks).items()},
            "posted_before_sigterm": posted_before,
            "alive_0_5_s_after_sigterm": waited_for_answers,
            "posted": sum(replies[("thread", e["channel"], e["ts"])] for e in events),
            "exit_code": exit_code, "seconds_to_exit": round(stopped_s, 1),
            "tracebacks_logged": bot.tracebacks()}


def run(config: dict, *, mentions: int, concurrency: int | None = None, paced: bool = False, fuzz: int = 0,
        seed: int = 0, in_flight: int = 5, slack_settings: dict | None = None, emit=print) -> list[dict]:
    """Every phase asked for, against one `byline slack` child process; each phase's figures go to `emit`."""
    questions = _questions(config)
    results = []

    def report(name: str, figures: dict) -> None:
        results.append({"bench": name, **figures})
        emit(json.dumps(results[-1]))

    with StandInSlackAPI() as api, tempfile.TemporaryDirectory(prefix="byline-bench-slack-") as work_dir:
        with BotProcess(config, api, work_dir, slack_settings) as bot:
            bot.start()
            warm_up(bot, api, questions[0])
            if mentions:
                report("slack", bench_mentions(bot, api, questions, mentions, concurrency, paced))
            if fuzz:
                report("slack-fuzz", bench_fuzz(bot, api, fuzz, seed))
            workers = int({**(config.get("slack") or {}), **(slack_settings or {})}.get("workers") or 4)
            report("slack-stop", bench_stop(bot, api, questions, in_flight, workers))
    return results


def main(argv: list[str] | None = None, config: dict | None = None) -> int:
    parser = argparse.ArgumentParser(prog="byline bench slack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mentions", type=int, default=40, help="mentions sent (default 40; 0: none)")
    parser.add_argument("--concurrency", type=int, default=None, help="mentions in flight at once (default: all)")
    parser.add_argument("--paced", action="store_true",
                        help="send each mention after the previous reply (single mention-to-reply latency)")
    parser.add_argument("--fuzz", type=int, default=0, metavar="N", help="fuzzed requests sent (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="the fuzz's Hypothesis seed (default 0)")
    parser.add_argument("--in-flight", type=int, default=5, metavar="K",
                        help="answers in flight when the bot gets SIGTERM (default 5)")
    args = parser.parse_args(argv)
    if config is None:
        from retrieval.config import load_config
        config = load_config()
    run(config, mentions=args.mentions, concurrency=args.concurrency, paced=args.paced, fuzz=args.fuzz,
        seed=args.seed, in_flight=args.in_flight, emit=lambda line: print(line, flush=True))
    return 0

"""`byline`: ask, chat, ingest, watch, remove, list, eval, slack, feedback, db, store, bench."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from retrieval.errors import BylineError  # noqa: E402  (the package sets the offline defaults)
from retrieval.progress import set_quiet  # noqa: E402

logger = logging.getLogger("byline")
QUIT_WORDS = {"", "q", "quit", "exit", ":q"}  # what ends the terminal chat


def _quiet_libraries() -> None:
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    for name in ("haystack", "sentence_transformers", "haystack_integrations"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _config(args: argparse.Namespace) -> dict:
    from retrieval.config import load_config

    overrides = dict(item.split("=", 1) for item in args.set or [] if "=" in item)
    bad = [item for item in args.set or [] if "=" not in item]
    if bad:
        raise BylineError(f"--set takes section.key=value, not '{bad[0]}'")
    if args.data_dir:
        overrides["data_dir"] = str(Path(args.data_dir).resolve())
    if getattr(args, "model", None):
        overrides["reader.model"] = args.model
    return load_config(args.config, overrides)


def _pipeline(args: argparse.Namespace):
    from retrieval.pipeline import build_pipeline

    _quiet_libraries()
    return build_pipeline(_config(args))


# -- commands ------------------------------------------------------------------------------
def _as_of(args: argparse.Namespace) -> str | None:
    """--as-of, checked before the models load."""
    from retrieval.timeline import check_date

    try:
        return check_date(args.as_of) if getattr(args, "as_of", None) is not None else None
    except BylineError:
        raise BylineError(f"--as-of takes a date as YYYY-MM-DD (e.g. 2021-05-26), not '{args.as_of}'") from None


def cmd_ask(args: argparse.Namespace) -> int:
    """One question, or one per line of stdin; each is asked on its own, with no earlier turns."""
    from bot.render_text import render_text

    as_of = _as_of(args)
    pipeline = _pipeline(args)
    if args.question == ["-"]:
        status = 0
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                print(json.dumps(pipeline.ask(line, as_of=as_of).to_dict(), ensure_ascii=False), flush=True)
            except BylineError as exc:
                print(json.dumps({"question": line.rstrip("\n"), "error": str(exc)}), flush=True)
                status = 2
        return status
    result = pipeline.ask(" ".join(args.question), as_of=as_of)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        print(render_text(result, ansi=sys.stdout.isatty()))
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """Questions in the terminal; a follow-up is read with this chat's earlier turns, as in a Slack thread."""
    from bot.render_text import render_text
    from retrieval.conversation import Turn

    as_of = _as_of(args)
    print("Loading Byline…", flush=True)
    pipeline = _pipeline(args)
    max_turns = pipeline.config["conversation"]["max_turns"]
    print(f"Byline is ready: {len(pipeline.doc_ids())} articles. Ask a question; follow-ups are read with the "
          "questions before them (start one with \"new question:\" to start afresh). \"quit\", an empty line or Ctrl-D "
          "quits.")
    turns: list[Turn] = []
    while True:
        try:
            question = input("\nyou> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if question.strip().lower() in QUIT_WORDS:
            return 0
        try:
            result = pipeline.ask(question, context=tuple(turns[-max_turns:]), as_of=as_of)
        except BylineError as exc:
            print(f"byline: {exc}")
            continue
        turns.append(Turn.from_result(result))
        print(render_text(result, ansi=sys.stdout.isatty()))


def cmd_run(args: argparse.Namespace) -> int:
    """Slack when its tokens are set, otherwise the terminal chat."""
    if os.environ.get("SLACK_BOT_TOKEN") and (os.environ.get("SLACK_APP_TOKEN") or os.environ.get("SLACK_SIGNING_SECRET")):
        args.port, args.host = None, "0.0.0.0"
        return cmd_slack(args)
    print("No Slack tokens (SLACK_BOT_TOKEN with SLACK_APP_TOKEN or SLACK_SIGNING_SECRET): starting the terminal chat.")
    return cmd_chat(args)


def ingest_summary(report, seconds: float) -> str:
    """The line that ends an ingest: what happened to each article, and the time taken."""
    counts = [f"added {len(report.added)}", f"replaced {len(report.updated)}", f"unchanged {len(report.unchanged)}",
              f"refused {len(report.refused)}"] + ([f"removed {len(report.removed)}"] if report.removed else [])
    chunks = f"{report.chunks_embedded} chunk{'' if report.chunks_embedded == 1 else 's'}"
    return f"{', '.join(counts)} articles in {seconds:.1f}s ({chunks} embedded)"


def _print_refused(report) -> None:
    for line in report.refused:
        print(f"byline: refused: {line}", file=sys.stderr)


def _ingest_with_bar(desc: str, run):
    from retrieval.progress import IngestProgress

    progress = IngestProgress(desc)
    try:
        return run(progress)
    finally:
        progress.close()


def cmd_ingest(args: argparse.Namespace) -> int:
    from retrieval.ingest.sources import load_sources
    from retrieval.ingest.web import Fetcher

    started = time.perf_counter()
    config = _config(args)
    # Files are read, pages and feeds fetched, and bad sources refused before the models load.
    loaded = load_sources(args.sources, config["chunking"]["max_file_bytes"], Fetcher.from_config(config))
    if loaded.articles or args.replace:
        pipeline = _pipeline(args)
        report = _ingest_with_bar("ingest", lambda progress: pipeline.ingest_articles(
            loaded.articles, replace_all=args.replace, progress=progress))
    else:  # every feed item refused: nothing to index, no models to load
        from retrieval.index.base import IngestReport

        report = IngestReport()
    report.refused = loaded.refused
    _print_refused(report)
    print(ingest_summary(report, time.perf_counter() - started))
    return 2 if report.refused else 0


def cmd_watch(args: argparse.Namespace) -> int:
    from retrieval.ingest.watch import FeedWatcher, parse_duration
    from retrieval.ingest.web import Fetcher, check_scheme, is_url

    every = parse_duration(args.every)
    for feed in args.feeds:
        if is_url(feed):
            check_scheme(feed)
        elif not Path(feed).is_file():
            raise BylineError(f"{feed}: no such feed file (give a feed's http(s) URL or an RSS/Atom file)")
    config = _config(args)
    watcher = FeedWatcher(_pipeline(args), Fetcher.from_config(config), Path(config["data_dir"]) / "feeds.json",
                          config["chunking"]["max_file_bytes"])
    status = 0
    while True:
        for feed in args.feeds:
            started = time.perf_counter()
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            try:
                result = _ingest_with_bar(f"watch {feed}", lambda progress: watcher.poll(feed, progress))
            except BylineError as exc:
                print(f"byline: error: {exc}", file=sys.stderr, flush=True)
                status = 2
                continue
            _print_refused(result.report)
            status = 2 if result.report.refused else status
            if result.not_modified:
                print(f"{stamp} {feed}: not modified", flush=True)
            else:
                print(f"{stamp} {feed}: {result.new_items} new or changed items; "
                      f"{ingest_summary(result.report, time.perf_counter() - started)}", flush=True)
        if args.once:
            return status
        time.sleep(every)


def cmd_remove(args: argparse.Namespace) -> int:
    _pipeline(args).remove(args.doc_id)
    print(f"removed {args.doc_id}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    for doc_id in sorted(pipeline.doc_ids()):
        meta = pipeline.store.metadata(doc_id)
        print(f"{doc_id}  {meta['published'] or '----------'}  {meta['publisher'] or '-'}  {meta['title']}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from eval.run_eval import main as eval_main

    def reader_and_threshold():
        from retrieval.reader.extractive import load_configured_reader

        reader_config = _config(args)["reader"]
        return load_configured_reader(reader_config), reader_config["no_answer_threshold"]

    return eval_main(args.eval_args, lambda: _pipeline(args), reader_and_threshold, config=_config(args))


def cmd_slack(args: argparse.Namespace) -> int:
    from bot.slack.app import run_slack

    config = _config(args)
    port = args.port if args.port is not None else config["slack"]["port"]
    run_slack(config, _pipeline(args), port=port, host=args.host)
    # Stopped: every answer is posted, or left in the journal for the next start. Exit at once, without the
    # interpreter's teardown (seconds of garbage collection over the loaded models) and without waiting for
    # answers still running past slack.shutdown_timeout_s.
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(0)


def cmd_feedback(args: argparse.Namespace) -> int:
    from bot.feedback import export_feedback, feedback_log

    config = _config(args)
    count = export_feedback(Path(config["data_dir"]), Path(args.out), log=feedback_log(config))
    print(f"wrote {count} gold-set candidates to {args.out}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from retrieval.index.devserver import server_url, start_server, stop_server

    folder = Path(args.dir or Path(_config(args)["data_dir"]) / "postgres").resolve()
    if args.db_command == "start":
        url = start_server(folder)
        print(f"PostgreSQL 16 with pgvector is running in {folder}; use it with BYLINE_STORE__BACKEND=postgres "
              f"and BYLINE_STORE__URL=<the URL below> (stop: byline db stop)")
        print(url)
        return 0
    if args.db_command == "stop":
        print(f"stopped the server in {folder}" if stop_server(folder) else f"no server is running in {folder}")
        return 0
    url = server_url(folder)
    print(f"running in {folder}" if url else f"not running ({folder})")
    if url:
        print(url)
    return 0 if url else 3


def cmd_store_copy(args: argparse.Namespace) -> int:
    """Copy every article of the configured store into another backend, without embedding again."""
    from retrieval.pipeline import copy_store

    config = _config(args)
    target = {**config, "store": {**config["store"], "backend": args.to, "url": args.url or config["store"]["url"]}}
    if args.to == config["store"]["backend"] and args.to == "local":
        raise BylineError("the store is local already: pass --to postgres (with --url or store.url)")
    copied, counted = copy_store(config, target)
    print(f"copied {copied} articles to {args.to}; it now holds {counted} articles")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from bench.run import main as bench_main

    return bench_main(args.bench_args, lambda: _config(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="byline", description="Extractive answers, with citations, from news articles.")
    parser.add_argument("--config", help="config file (default: config/byline.yaml)")
    parser.add_argument("--data-dir", help="where the index lives (overrides config data_dir)")
    parser.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override one setting")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True)

    ask = commands.add_parser("ask", help="answer one question ('-' reads one per line from stdin)")
    ask.add_argument("question", nargs="+")
    ask.add_argument("--json", action="store_true", help="print one JSON object per question")
    ask.add_argument("--model", help="reader model: a folder or a Hugging Face id")
    ask.add_argument("--as-of", metavar="YYYY-MM-DD", help="answer from articles published on or before this date")
    ask.set_defaults(handler=cmd_ask)

    chat = commands.add_parser("chat", help="interactive questions in the terminal; follow-ups read in context")
    chat.add_argument("--model", help="reader model: a folder or a Hugging Face id")
    chat.add_argument("--as-of", metavar="YYYY-MM-DD", help="answer from articles published on or before this date")
    chat.set_defaults(handler=cmd_chat)

    run = commands.add_parser("run", help="serve Slack if its tokens are set, else chat in the terminal")
    run.add_argument("--model", help="reader model: a folder or a Hugging Face id")
    run.set_defaults(handler=cmd_run)

    ingest = commands.add_parser("ingest", help="add or update articles: .txt .md .html .jsonl files or folders, "
                                                "RSS/Atom feeds (files or URLs), web pages (URLs)")
    ingest.add_argument("sources", nargs="+", metavar="SOURCE")
    ingest.add_argument("--replace", action="store_true", help="remove indexed articles not among SOURCES")
    ingest.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bar")
    ingest.set_defaults(handler=cmd_ingest)

    watch = commands.add_parser("watch", help="poll RSS/Atom feeds and ingest their new or changed items")
    watch.add_argument("feeds", nargs="+", metavar="FEED", help="a feed's http(s) URL or an RSS/Atom file")
    watch.add_argument("--every", default="15m", help="time between polls: 30s, 15m, 1h (default 15m)")
    watch.add_argument("--once", action="store_true", help="poll each feed once and exit")
    watch.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
    watch.set_defaults(handler=cmd_watch)

    remove = commands.add_parser("remove", help="delete one article from the index")
    remove.add_argument("doc_id")
    remove.set_defaults(handler=cmd_remove)

    commands.add_parser("list", help="list indexed articles").set_defaults(handler=cmd_list)

    # eval and bench parse their own options (the rest of the command line)
    evaluate = commands.add_parser("eval", help="gold-set evaluation, CI gate, SQuAD reader benchmark",
                                   add_help=False)
    evaluate.set_defaults(handler=cmd_eval, passes_options_on=True)

    slack = commands.add_parser("slack", help="run the Slack bot (Socket Mode if SLACK_APP_TOKEN is set)")
    slack.add_argument("--port", type=int, help="HTTP mode port (default: config slack.port; 0 picks a free one)")
    slack.add_argument("--host", default="0.0.0.0", help="HTTP mode address to listen on (default 0.0.0.0)")
    slack.set_defaults(handler=cmd_slack)

    feedback = commands.add_parser("feedback", help="feedback from Slack buttons")
    feedback_commands = feedback.add_subparsers(dest="feedback_command", required=True)
    export = feedback_commands.add_parser("export", help="write 👎 answers as gold-set candidates")
    export.add_argument("--out", default="eval/feedback_candidates.jsonl")
    export.set_defaults(handler=cmd_feedback)

    database = commands.add_parser("db", help="a local PostgreSQL with pgvector for development (pgserver)")
    database.add_argument("db_command", choices=["start", "stop", "status"])
    database.add_argument("--dir", help="its data folder (default: <data_dir>/postgres)")
    database.set_defaults(handler=cmd_db)

    store = commands.add_parser("store", help="the article store")
    store_commands = store.add_subparsers(dest="store_command", required=True)
    copy = store_commands.add_parser("copy", help="copy every article into another backend (vectors included)")
    copy.add_argument("--to", choices=["postgres", "local"], required=True)
    copy.add_argument("--url", help="the target PostgreSQL URL (default: store.url or DATABASE_URL)")
    copy.set_defaults(handler=cmd_store_copy)

    bench = commands.add_parser("bench", help="print speed and memory figures", add_help=False)
    bench.set_defaults(handler=cmd_bench, passes_options_on=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "passes_options_on", False):
        args.quiet = args.quiet or "--quiet" in rest  # `byline eval --open F --quiet` too
        args.eval_args = args.bench_args = [option for option in rest if option != "--quiet"]
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    set_quiet(args.quiet)
    try:
        return args.handler(args)
    except BylineError as exc:
        print(f"byline: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of defence: one line, no traceback, unless --verbose
        if args.verbose:
            raise
        print(f"byline: unexpected error: {exc.__class__.__name__}: {exc} (run with -v for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

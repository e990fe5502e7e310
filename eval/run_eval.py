"""`byline eval`: score the answer pipeline on the gold questions, tune or check it, or run SQuAD.

    byline eval [--gold FILE] [--json] [--report PATH] [--check] [--tune] [--squad FILE [--limit N]]
    byline eval --followups [FILE] [--json]

Gold metrics: EM/F1 (max over gold answers; an unanswerable item scores 1 iff the pipeline
abstains), no-answer precision/recall/accuracy (no-answer is the positive class), retrieval
recall@1/@5/@k and MRR by gold source article (answerable items; a hit is any gold source),
citation precision, latency percentiles, a per-tag breakdown and the failures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eval.followups import DEFAULT_FOLLOWUPS, FollowUpFileError, run_followups
from eval.gold import GoldError, GoldItem, check_against_articles, load_gold
from eval.metrics import contains_answer, mean, percentile, score_prediction
from eval.squad_benchmark import SquadFormatError, load_squad, run_squad, spread_sample

DEFAULT_GOLD = Path(__file__).resolve().parent / "gold.jsonl"


class UsageError(ValueError):
    """Flags that do not go together, or a bad value."""


@dataclass
class ItemOutcome:
    item: GoldItem
    prediction: str | None  # None when the pipeline abstained
    score: float
    citations: list[tuple[str, str]]  # (doc_id, snippet) of the best answer
    retrieved: list[str]  # article ids in fused rank order, deduplicated (answerable items only)
    latency_ms: float
    best_score: float = math.nan  # the best answer's score before the no-answer threshold
    em: float = field(init=False)
    f1: float = field(init=False)

    def __post_init__(self) -> None:
        self.em, self.f1 = score_prediction(self.prediction, self.item.answers)

    @property
    def no_answer(self) -> bool:
        return self.prediction is None

    @property
    def source_rank(self) -> int | None:
        """1-based rank of the first gold source among the retrieved articles."""
        return next((rank for rank, doc_id in enumerate(self.retrieved, 1) if doc_id in self.item.sources), None)

    def precise_citations(self) -> int:
        return sum(doc_id in self.item.sources and contains_answer(snippet, self.item.answers)
                   for doc_id, snippet in self.citations)

    def to_json(self) -> dict:
        return {"id": self.item.id, "question": self.item.question, "prediction": self.prediction,
                "no_answer": self.no_answer, "score": round(self.score, 4), "best_score": round(self.best_score, 4),
                "citations": [doc_id for doc_id, _ in self.citations], "em": self.em, "f1": round(self.f1, 4),
                "expected": list(self.item.answers), "sources": list(self.item.sources),
                "retrieved": self.retrieved, "tags": list(self.item.tags)}


def ask_gold_item(pipeline, item: GoldItem) -> ItemOutcome:
    trace = pipeline.trace(item.question)
    result = trace["result"]
    best = None if result.no_answer else result.best
    return ItemOutcome(item=item, prediction=best.text if best else None, score=best.score if best else 0.0,
                       citations=[(c.doc_id, c.snippet) for c in best.citations] if best else [],
                       # retrieval is scored by gold source, so unanswerable items skip the extra run
                       retrieved=list(dict.fromkeys(pipeline.retrieve(item.question))) if item.answerable else [],
                       latency_ms=result.latency_ms, best_score=trace["best_score"])


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def no_answer_metrics(predicted: Sequence[bool], expected: Sequence[bool]) -> dict:
    """Precision/recall/accuracy of abstaining, with "no answer" as the positive class."""
    true_positives = sum(p and e for p, e in zip(predicted, expected))
    return {"no_answer_precision": _ratio(true_positives, sum(predicted)),
            "no_answer_recall": _ratio(true_positives, sum(expected)),
            "no_answer_accuracy": mean(float(p == e) for p, e in zip(predicted, expected))}


def no_answer_auc(outcomes: Sequence[ItemOutcome]) -> float:
    """How well the score before the threshold ranks answerable questions above unanswerable ones (ROC
    AUC, ties count half): a reader's separation at every threshold at once, so a candidate whose
    no-answer accuracy fails at its tuned threshold can be told from one that no threshold would save."""
    answerable = [o.best_score for o in outcomes if o.item.answerable]
    unanswerable = [o.best_score for o in outcomes if not o.item.answerable]
    if not answerable or not unanswerable or any(math.isnan(s) for s in answerable + unanswerable):
        return math.nan
    above = sum((a > u) + 0.5 * (a == u) for a in answerable for u in unanswerable)
    return above / (len(answerable) * len(unanswerable))


def summarize(outcomes: Sequence[ItemOutcome]) -> dict:
    answerable = [o for o in outcomes if o.item.answerable]
    ranks = [o.source_rank for o in answerable]
    answered = [o for o in outcomes if not o.no_answer]
    latencies = [o.latency_ms for o in outcomes]
    return {
        "items": len(outcomes), "answerable": len(answerable),
        "em": mean(o.em for o in outcomes), "f1": mean(o.f1 for o in outcomes),
        "has_answer_f1": mean(o.f1 for o in answerable),
        "recall@1": mean(float(r is not None and r <= 1) for r in ranks),
        "recall@5": mean(float(r is not None and r <= 5) for r in ranks),
        "recall@k": mean(float(r is not None) for r in ranks),
        "k": max((len(o.retrieved) for o in outcomes), default=0),
        "mrr": mean(1 / r if r else 0.0 for r in ranks),
        "citation_precision": _ratio(sum(o.precise_citations() for o in answered),
                                     sum(len(o.citations) for o in answered)),
        # what the asker sees: of the answerable questions answered, how many show the answer in a cited snippet
        "snippet_holds_answer": _ratio(sum(o.precise_citations() > 0 for o in answered if o.item.answerable),
                                       sum(o.item.answerable for o in answered)),
        **no_answer_metrics([o.no_answer for o in outcomes], [not o.item.answerable for o in outcomes]),
        "no_answer_auc": no_answer_auc(outcomes),
        "latency_p50_ms": percentile(latencies, 50), "latency_p95_ms": percentile(latencies, 95),
    }


def per_tag(outcomes: Sequence[ItemOutcome]) -> dict[str, dict]:
    by_tag: dict[str, list[ItemOutcome]] = {}
    for o in outcomes:
        for tag in o.item.tags:
            by_tag.setdefault(tag, []).append(o)
    return {tag: {"n": len(tagged), "em": mean(o.em for o in tagged), "f1": mean(o.f1 for o in tagged)}
            for tag, tagged in sorted(by_tag.items())}


def failures(outcomes: Sequence[ItemOutcome]) -> list[ItemOutcome]:
    return [o for o in outcomes if o.em < 1]


def _finite(value):
    """NaN (a metric with nothing to measure) becomes JSON null."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _fmt(value) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def print_text_report(summary: dict, tags: dict[str, dict], failed: list[ItemOutcome], out=None) -> None:
    out = out or sys.stdout
    print("metric                value", file=out)
    for name, value in summary.items():
        print(f"{name:<21} {_fmt(value)}", file=out)
    print("\ntag            n     EM     F1", file=out)
    for tag, row in tags.items():
        print(f"{tag:<12} {row['n']:>3}  {row['em']:.3f}  {row['f1']:.3f}", file=out)
    print(f"\n{len(failed)} failures (EM < 1):", file=out)
    for o in failed:
        expected = " | ".join(o.item.answers) or "(no answer)"
        print(f"- {o.item.id} [{', '.join(o.item.tags)}] {o.item.question}\n"
              f"    expected: {expected}  from {', '.join(o.item.sources) or '-'}\n"
              f"    got:      {o.prediction or '(no answer)'}  (score {o.score:.2f}, F1 {o.f1:.2f}, "
              f"cited {', '.join(d for d, _ in o.citations) or '-'}, retrieved {', '.join(o.retrieved) or '-'})",
              file=out)


def below_thresholds(summary: dict, thresholds: dict) -> list[str]:
    """One line per configured metric under its minimum (a metric that could not be measured fails too)."""
    problems = []
    for name, minimum in thresholds.items():
        if name not in summary:
            problems.append(f"{name}: not a metric of byline eval")
            continue
        value = summary[name]
        if value is None or math.isnan(value) or value < minimum:
            problems.append(f"{name} {_fmt(value)} is below the threshold {minimum}")
    return problems


# -- threshold tuning ----------------------------------------------------------------------------
def split_halves(items: Sequence[GoldItem]) -> tuple[list[GoldItem], list[GoldItem]]:
    """A deterministic split by SHA-256 of the id: the tuning half A and the held-out half B."""
    ordered = sorted(items, key=lambda item: hashlib.sha256(item.id.encode()).hexdigest())
    return ordered[: len(ordered) // 2], ordered[len(ordered) // 2:]


def _thresholded_metrics(scored: Sequence[tuple[GoldItem, str | None, float]], threshold: float) -> dict:
    predictions = [None if score < threshold else text for _, text, score in scored]
    em_f1 = [score_prediction(p, item.answers) for (item, _, _), p in zip(scored, predictions)]
    return {"em": mean(em for em, _ in em_f1), "f1": mean(f1 for _, f1 in em_f1),
            **no_answer_metrics([p is None for p in predictions], [not item.answerable for item, _, _ in scored])}


def candidate_thresholds(scores: Sequence[float]) -> list[float]:
    """0 (always answer), midpoints between neighbouring distinct scores, and just above the highest."""
    distinct = sorted(set(scores))
    if not distinct:
        return [0.0]
    return [0.0, *((a + b) / 2 for a, b in zip(distinct, distinct[1:])), math.nextafter(distinct[-1], math.inf)]


def tune_threshold(pipeline, items: Sequence[GoldItem]) -> dict:
    tune_half, held_out = split_halves(items)

    def scored(half):
        return [(item, *pipeline.reader_scores(item.question)) for item in half]

    tune_scored, held_scored = scored(tune_half), scored(held_out)
    candidates = candidate_thresholds([score for _, text, score in tune_scored if text])
    f1_by_threshold = [(_thresholded_metrics(tune_scored, t)["f1"], t) for t in candidates]
    best_f1 = max(f1 for f1, _ in f1_by_threshold)
    plateau = [t for f1, t in f1_by_threshold if f1 == best_f1]
    chosen = plateau[len(plateau) // 2]  # the middle of the best plateau, not its edge
    configured = pipeline.config["reader"]["no_answer_threshold"]
    return {"threshold": chosen, "configured_threshold": configured,
            "tune_items": len(tune_half), "heldout_items": len(held_out), "tune_f1": best_f1,
            "heldout": _thresholded_metrics(held_scored, chosen),
            "heldout_at_configured": _thresholded_metrics(held_scored, configured)}


# -- the command ---------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, like every other bad input
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="byline eval", description="Evaluate Byline on the gold questions or on SQuAD.")
    parser.add_argument("--gold", type=Path, help="gold questions (JSONL); default: config eval.gold")
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    parser.add_argument("--report", type=Path, metavar="PATH", help="write a self-contained HTML report")
    parser.add_argument("--check", action="store_true", help="exit 1 when a metric is below config eval.thresholds")
    parser.add_argument("--tune", action="store_true",
                        help="choose the no-answer threshold on half the gold set, report the other half")
    parser.add_argument("--squad", type=Path, metavar="FILE", help="reader-only benchmark on a SQuAD JSON file")
    parser.add_argument("--open", type=Path, metavar="FILE",
                        help="end-to-end over a SQuAD file's articles ingested as one collection, with a loss budget")
    parser.add_argument("--stock", action="store_true",
                        help="with --open: also run the stock Haystack pipeline on the same collection and reader")
    parser.add_argument("--limit", type=int, metavar="N", help="with --squad/--open: N questions spread over the file")
    parser.add_argument("--followups", type=Path, metavar="FILE", nargs="?", const=DEFAULT_FOLLOWUPS,
                        help="follow-up questions asked in a conversation (default: eval/followups.jsonl)")
    return parser


def _article_texts(pipeline) -> dict[str, str]:
    return {doc_id: pipeline.store.article_text(doc_id) for doc_id in pipeline.doc_ids()}


def _run_squad(args, reader_factory) -> int:
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be a positive number")
    questions, v2 = load_squad(args.squad)
    questions = spread_sample(questions, args.limit)
    reader, no_answer_threshold = reader_factory()
    summary = run_squad(reader, questions, v2, no_answer_threshold)
    summary = {"file": str(args.squad), "version": "2.0" if v2 else "1.1", **summary}
    if args.json:
        print(json.dumps(_finite(summary)))
    else:
        for name, value in summary.items():
            print(f"{name:<20} {_fmt(value)}")
    return 0


def _run_open(args, config: dict) -> int:
    from eval.open_collection import print_summary, run_open

    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be a positive number")
    summary, _ = run_open(args.open, config, args.limit, with_stock=args.stock)
    if args.json:
        print_summary(summary, out=sys.stderr)
        print(json.dumps(_finite(summary)))
    else:
        print_summary(summary)
    return 0


def _run_tune(args, pipeline, items) -> int:
    tuned = tune_threshold(pipeline, items)
    if args.json:
        print(json.dumps({"tune": _finite(tuned)}))
    else:
        print(f"chosen no_answer_threshold: {tuned['threshold']:.4f} "
              f"(F1 {tuned['tune_f1']:.3f} on the {tuned['tune_items']} tuning items; "
              f"configured: {tuned['configured_threshold']})")
        for label, key in (("held-out, chosen", "heldout"), ("held-out, configured", "heldout_at_configured")):
            print(f"{label:<21} " + "  ".join(f"{k} {_fmt(v)}" for k, v in tuned[key].items()))
        print("(config not changed)")
    return 0


def main(argv: list[str], pipeline_factory: Callable[[], object],
         reader_factory: Callable[[], tuple[object, float]] | None = None, config: dict | None = None) -> int:
    """`reader_factory` gives --squad its (reader, no-answer threshold) without building an index;
    by default they come from the pipeline."""
    if reader_factory is None:
        def reader_factory():
            pipeline = pipeline_factory()
            return pipeline.reader, pipeline.config["reader"]["no_answer_threshold"]

    try:
        args = _parser().parse_args(argv[1:] if argv[:1] == ["--"] else argv)  # `byline eval -- --json`
        if args.followups:
            if args.tune or args.check or args.report or args.gold or args.squad or args.open or args.limit is not None:
                raise UsageError("--followups can only be combined with --json")
            if config is None:
                raise UsageError("--followups needs the configuration")
            return run_followups(args.followups, config, as_json=args.json)
        if args.squad:
            if args.tune or args.check or args.report or args.gold:
                raise UsageError("--squad cannot be combined with --gold, --tune, --check or --report")
            return _run_squad(args, reader_factory)
        if args.open:
            if args.tune or args.check or args.report or args.gold:
                raise UsageError("--open cannot be combined with --gold, --tune, --check or --report")
            if config is None:
                raise UsageError("--open needs the configuration")
            return _run_open(args, config)
        if args.stock:
            raise UsageError("--stock only applies to --open")
        if args.limit is not None:
            raise UsageError("--limit only applies to --squad and --open")
        if args.tune and (args.check or args.report):
            raise UsageError("--tune cannot be combined with --check or --report")
        items = load_gold(args.gold) if args.gold else None  # an explicit file is checked before models load
        pipeline = pipeline_factory()
        items = items or load_gold(pipeline.config.get("eval", {}).get("gold") or DEFAULT_GOLD)
        check_against_articles(items, _article_texts(pipeline))
        if args.tune:
            return _run_tune(args, pipeline, items)

        outcomes = []
        for done, item in enumerate(items, 1):
            outcomes.append(ask_gold_item(pipeline, item))
            if done % 25 == 0:
                print(f"eval: {done}/{len(items)} questions", file=sys.stderr, flush=True)
        summary, tags, failed = summarize(outcomes), per_tag(outcomes), failures(outcomes)
        if args.report:
            from eval.report import render_report

            args.report.write_text(render_report(summary, tags, failed, pipeline.config), encoding="utf-8")
        if args.json:
            print(json.dumps({"summary": _finite(summary), "tags": _finite(tags),
                              "items": [_finite(o.to_json()) for o in outcomes]}, ensure_ascii=False))
        else:
            print_text_report(summary, tags, failed)
            if args.report:
                print(f"\nreport written to {args.report}")
        if args.check:
            problems = below_thresholds(summary, pipeline.config.get("eval", {}).get("thresholds", {}))
            for problem in problems:
                print(f"byline eval --check: {problem}", file=sys.stderr)
            return 1 if problems else 0
        return 0
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    except (UsageError, GoldError, SquadFormatError, FollowUpFileError) as exc:
        print(f"byline eval: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"byline eval: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2

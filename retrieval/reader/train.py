"""Fine-tune Byline's extractive reader on ../shared/qa-data/train.

    python -m retrieval.reader.train --train-dir ../shared/qa-data/train --output-dir .train/run1

Starts from the packaged all-MiniLM-L6-v2 encoder (checked by SHA-256), adds a span head,
and trains with the standard SQuAD feature preparation (offset mapping, doc stride).
Unanswerable examples point at the [CLS] token. A checkpoint is written every
--save-steps; re-running the same command resumes from the newest one.
Never point --train-dir at qa-data/benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

from retrieval.reader.training_data import QAExample, TrainingDataError, load_mix


def prepare_features(examples: list[QAExample], tokenizer, max_length: int, doc_stride: int,
                     negative_windows_per_example: int, rng: random.Random) -> list[dict]:
    """Standard SQuAD train-feature preparation.

    Long contexts overflow into several windows; windows without the answer are labelled
    [CLS]. Only `negative_windows_per_example` of those are kept per example, because a
    COVID-QA paper yields dozens and they would swamp the budget.
    """
    features = []
    batch_size = 256
    max_question_tokens = 64
    for offset in range(0, len(examples), batch_size):
        batch = examples[offset:offset + batch_size]
        questions = [e.question.lstrip() for e in batch]
        question_offsets = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        questions = [q if len(o) <= max_question_tokens else q[:o[max_question_tokens - 1][1]]
                     for q, o in zip(questions, question_offsets)]
        encoded = tokenizer(questions, [e.context for e in batch],
                            truncation="only_second", max_length=max_length, stride=doc_stride,
                            return_overflowing_tokens=True, return_offsets_mapping=True)
        windows_by_example: dict[int, list[dict]] = {}
        for i, offsets in enumerate(encoded["offset_mapping"]):
            example_index = encoded["overflow_to_sample_mapping"][i]
            example = batch[example_index]
            sequence_ids = encoded.sequence_ids(i)
            context_start = sequence_ids.index(1)
            context_end = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
            start_position = end_position = 0
            if example.answerable:
                text, char_start = example.answers[0]
                char_end = char_start + len(text)
                if offsets[context_start][0] <= char_start and offsets[context_end][1] >= char_end:
                    token_start = context_start
                    while token_start <= context_end and offsets[token_start][0] <= char_start:
                        token_start += 1
                    token_end = context_end
                    while token_end >= context_start and offsets[token_end][1] >= char_end:
                        token_end -= 1
                    start_position, end_position = token_start - 1, token_end + 1
            windows_by_example.setdefault(example_index, []).append({
                "input_ids": encoded["input_ids"][i],
                "attention_mask": encoded["attention_mask"][i],
                "token_type_ids": encoded["token_type_ids"][i],
                "start_positions": start_position,
                "end_positions": end_position,
            })
        for windows in windows_by_example.values():
            positives = [w for w in windows if w["start_positions"] > 0]
            negatives = [w for w in windows if w["start_positions"] == 0]
            rng.shuffle(negatives)
            keep = negative_windows_per_example if positives else max(1, negative_windows_per_example)
            features.extend(positives + negatives[:keep])
    return features


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-dir", type=Path, default=Path("../shared/qa-data/train"))
    parser.add_argument("--output-dir", type=Path, default=Path(".train/reader"))
    parser.add_argument("--init-from", type=Path, default=None,
                        help="start from this QA model directory instead of the packaged MiniLM")
    parser.add_argument("--max-length", type=int, default=256, choices=[256, 384])
    parser.add_argument("--doc-stride", type=int, default=128)
    parser.add_argument("--negative-windows", type=int, default=1)
    parser.add_argument("--edited-negatives", type=float, default=0.0, metavar="RATE",
                        help="add SQuAD 2.0-style unanswerables: this share of answerable questions, "
                             "edited (entity, number or antonym swap, negation) against their own paragraph")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps (overrides --epochs)")
    parser.add_argument("--warmup-ratio", type=float, default=0.05)
    parser.add_argument("--save-steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--dry-run", action="store_true", help="load and featurize the data, then stop")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if "benchmark" in args.train_dir.resolve().parts:
        print("error: --train-dir points into qa-data/benchmark, which is for evaluation only", file=sys.stderr)
        return 2

    import torch
    from transformers import (AutoModelForQuestionAnswering, AutoTokenizer, DataCollatorWithPadding,
                              Trainer, TrainingArguments, set_seed)

    from retrieval.reader.base_model import verified_base_model_path

    set_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    try:
        examples, stats = load_mix(args.train_dir, seed=args.seed, edited_negative_rate=args.edited_negatives)
    except TrainingDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    init_path = args.init_from or verified_base_model_path()
    tokenizer = AutoTokenizer.from_pretrained(str(init_path))
    features = prepare_features(examples, tokenizer, args.max_length, args.doc_stride,
                                args.negative_windows, rng)
    rng.shuffle(features)
    summary = {"examples": len(examples), "features": len(features),
               "unanswerable_features": sum(f["start_positions"] == 0 for f in features),
               "sets": stats, "args": {k: str(v) for k, v in vars(args).items()}}
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "data_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("examples", "features", "unanswerable_features")}))
    if args.dry_run:
        return 0

    model = AutoModelForQuestionAnswering.from_pretrained(str(init_path))
    training_args = TrainingArguments(
        output_dir=str(args.output_dir),
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        weight_decay=0.01,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        warmup_steps=args.warmup_ratio,
        lr_scheduler_type="linear",
        logging_steps=10,
        save_steps=args.save_steps,
        save_total_limit=2,
        seed=args.seed,
        data_seed=args.seed,
        use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available(),
        train_sampling_strategy="group_by_length",
        dataloader_num_workers=0,
        report_to=[],
        disable_tqdm=False,
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=features,
                      data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer)
    has_checkpoint = any(args.output_dir.glob("checkpoint-*"))
    trainer.train(resume_from_checkpoint=True if has_checkpoint else None)
    final_dir = args.output_dir / "final"
    trainer.save_model(str(final_dir))
    tokenizer.save_pretrained(str(final_dir))
    print(f"saved {final_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

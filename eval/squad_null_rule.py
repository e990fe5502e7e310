"""Score a QA model on a SQuAD 2.0 file by the standard null-score rule, for comparison.

    python -m eval.squad_null_rule MODEL_DIR ../shared/qa-data/benchmark/squad-dev-v2.0.json --limit 1000

`byline eval --squad` decides "no answer" the way Byline does: the reader's best span score
against the configured threshold. This script decides it the way SQuAD 2.0 papers do, with no
threshold to tune: no answer when the model's [CLS] start+end logits beat its best span's
(spans of at most 30 tokens, every 384-token window, stride 128). It is a measuring tool for the
model card, not part of the pipeline; it prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from eval.metrics import mean, score_prediction  # noqa: E402
from eval.squad_benchmark import load_squad, spread_sample  # noqa: E402

MAX_ANSWER_TOKENS = 30


def null_rule_prediction(model, tokenizer, question: str, context: str) -> str | None:
    import torch

    encoded = tokenizer(question, context, truncation="only_second", max_length=384, stride=128,
                        return_overflowing_tokens=True, return_offsets_mapping=True, padding=True,
                        return_tensors="pt")
    offsets = encoded.pop("offset_mapping")
    encoded.pop("overflow_to_sample_mapping")
    with torch.no_grad():
        output = model(**encoded)
    best_score, best_text, null_score = float("-inf"), "", float("inf")
    for window in range(output.start_logits.shape[0]):
        starts, ends = output.start_logits[window], output.end_logits[window]
        null_score = min(null_score, float(starts[0] + ends[0]))
        context_tokens = [i for i, s in enumerate(encoded.sequence_ids(window)) if s == 1]
        n = len(context_tokens)
        spans = starts[context_tokens][:, None] + ends[context_tokens][None, :]
        allowed = torch.triu(torch.ones(n, n, dtype=torch.bool)) & ~torch.triu(torch.ones(n, n, dtype=torch.bool),
                                                                               diagonal=MAX_ANSWER_TOKENS)
        spans = spans.masked_fill(~allowed, float("-inf"))
        i, j = divmod(int(spans.argmax()), n)
        if float(spans[i, j]) > best_score:
            best_score = float(spans[i, j])
            best_text = context[int(offsets[window][context_tokens[i]][0]):int(offsets[window][context_tokens[j]][1])]
    return None if null_score > best_score else best_text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("squad_file", type=Path)
    parser.add_argument("--limit", type=int)
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(args.model))
    model = AutoModelForQuestionAnswering.from_pretrained(str(args.model), dtype=torch.float32).eval()
    questions, _ = load_squad(args.squad_file)
    rows = []
    for q in spread_sample(questions, args.limit):
        prediction = null_rule_prediction(model, tokenizer, q.question, q.context)
        rows.append((q.impossible, *score_prediction(prediction, [] if q.impossible else q.answers)))
    summary = {"file": str(args.squad_file), "model": str(args.model), "rule": "null score > best span score",
               "total": len(rows), "exact": 100 * mean(r[1] for r in rows), "f1": 100 * mean(r[2] for r in rows)}
    for prefix, impossible in (("HasAns_", False), ("NoAns_", True)):
        subset = [r for r in rows if r[0] == impossible]
        if subset:
            summary |= {f"{prefix}f1": 100 * mean(r[2] for r in subset), f"{prefix}total": len(subset)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

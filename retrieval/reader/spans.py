"""Span search for an extractive QA model, batched: many (question, passage) pairs per forward pass.

Every pair is tokenised once (long passages overflow into windows of `max_length` tokens with
`stride` overlap), windows are sorted by length and run through the model in padded batches, and
each window's spans are scored at once as a (start, end) matrix limited to `max_answer_tokens` and
to one segment of the passage (a line, or a sentence where the caller gives sentence starts):

    value = start logit + end logit - ([CLS] start + end logit of the window)

the SQuAD 2.0 null-score rule as a margin (above 0 when the model prefers the span to "no answer").
The serving reader (`retrieval.reader.extractive`), the SQuAD and open-collection benchmarks and the
training run's held-out scoring all read spans through here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


_PAIRS = (("“", "”"), ('"', '"'), ("(", ")"), ("[", "]"))


def balanced(passage: str, start: int, end: int) -> tuple[int, int]:
    """The span with its quotes and brackets paired. The model's end token often stops one short of a
    closing quote, and a reader shown 'an “independently operated corporation' sees a broken quotation:
    an unpaired mark at the span's edge is dropped ('“arbitrary' -> 'arbitrary'); one inside it takes in
    its partner where that sits right beside the span ('an “independent corporation' -> '… corporation”')."""
    for opener, closer in _PAIRS:
        text = passage[start:end]
        if opener == closer:
            unpaired_open = unpaired_close = text.count(opener) % 2 == 1
        else:
            unpaired_open = text.count(opener) > text.count(closer)
            unpaired_close = text.count(closer) > text.count(opener)
        if unpaired_open and text.startswith(opener) and end - start > 1:
            start += 1
        elif unpaired_close and text.endswith(closer) and end - start > 1:
            end -= 1
            while end - start > 1 and passage[end - 1] in ",;: ":
                end -= 1
        elif unpaired_open and (tail := re.match(r"[,.;:!?]?" + re.escape(closer), passage[end:end + 2])):
            end += tail.end()
        elif unpaired_close and start > 0 and passage[start - 1] == opener:
            start -= 1
    while start < end and passage[start].isspace():
        start += 1
    return start, end


@dataclass(frozen=True)
class Span:
    pair: int  # index of the (question, passage) pair
    start: int  # character offsets in the passage
    end: int
    value: float  # span logit minus the window's [CLS] logit
    null: float = 0.0  # the window's [CLS] start + end logit
    window: int = 0  # which window of its pair (long passages overflow into several)


@dataclass
class WindowBatch:
    windows: list[int]  # window indices into the encoding, in this batch's rows
    inputs: dict  # the model's keyword arguments: padded input ids, attention mask (and segment ids)
    context: object  # bool tensor (rows, width): which tokens belong to the passage
    segments: object  # int tensor (rows, width): the passage segment (line or sentence) each token starts in


def window_batches(model, tokenizer, questions: list[str], passages: list[str], *, max_length: int = 384,
                   stride: int = 128, batch_tokens: int = 8192, sentence_starts: list[list[int]] | None = None):
    """Tokenise every pair once and cut its windows, sorted by length, into padded batches.

    `sentence_starts` (per passage, character offsets, optional) splits a passage's lines further,
    into sentences.

    Returns the tokenizer's encoding (offsets, window → pair) and the batches, each holding as many
    windows as fit `batch_tokens` at its longest. `byline bench reader` times the bare forward over
    exactly these batches.
    """
    import torch

    encoded = tokenizer(questions, passages, truncation="only_second", max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
    windows = len(encoded["input_ids"])
    uses_segments = "token_type_ids" in encoded and getattr(model.config, "type_vocab_size", 1) >= 2
    order = sorted(range(windows), key=lambda w: len(encoded["input_ids"][w]))
    pad = tokenizer.pad_token_id or 0
    batches = []
    begin = 0
    while begin < windows:
        end = begin + 1
        while end < windows and len(encoded["input_ids"][order[end]]) * (end - begin + 1) <= batch_tokens:
            end += 1
        batch = order[begin:end]
        begin = end
        width = len(encoded["input_ids"][batch[-1]])
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        segments = torch.zeros((len(batch), width), dtype=torch.long)
        context = torch.zeros((len(batch), width), dtype=torch.bool)
        for row, w in enumerate(batch):
            ids = encoded["input_ids"][w]
            input_ids[row, :len(ids)] = torch.tensor(ids)
            attention[row, :len(ids)] = 1
            context[row, :len(ids)] = torch.tensor([s == 1 for s in encoded.sequence_ids(w)])
            if uses_segments:
                segments[row, :len(ids)] = torch.tensor(encoded["token_type_ids"][w])
        inputs = {"input_ids": input_ids, "attention_mask": attention}
        if uses_segments:
            inputs["token_type_ids"] = segments
        batches.append(WindowBatch(batch, inputs, context,
                                   _segment_numbers(encoded, batch, passages, width, sentence_starts)))
    return encoded, batches


def _segment_numbers(encoded, windows: list[int], passages: list[str], width: int,
                     sentence_starts: list[list[int]] | None):
    """(rows, width): the passage segment each token starts in, so that no span crosses a segment.

    A segment ends at every line break: the focus step hands the reader a few sentences that may come
    from neighbouring paragraphs; a span from the end of one to the start of the next is never an
    answer, and it used to crowd the phrase inside it out of the reader's top spans before the answer
    step threw it away. Where the caller gives the passage's sentence starts (the ingest's sentence
    splitter, which knows "U.S." and "Co. Ltd."), a segment also ends at each sentence: a span such as
    "two years of repairs. The work cost the town 2.5 million euros" is never an answer either.
    """
    import numpy as np
    import torch

    segments = np.full((len(windows), width), -1, dtype=np.int64)
    for row, w in enumerate(windows):
        pair = encoded["overflow_to_sample_mapping"][w]
        passage = passages[pair]
        starts_here = {m.end() for m in re.finditer("\n", passage)}
        if sentence_starts is not None:
            starts_here.update(sentence_starts[pair] or ())
        boundaries = np.array(sorted(starts_here), dtype=np.int64)
        token_starts = np.array([start for start, _ in encoded["offset_mapping"][w]], dtype=np.int64)
        segments[row, :len(token_starts)] = np.searchsorted(boundaries, token_starts, side="right")
    return torch.from_numpy(segments)


def find_spans(model, tokenizer, questions: list[str], passages: list[str], *, max_length: int = 384,
               stride: int = 128, max_answer_tokens: int = 48, per_window: int = 20,
               batch_tokens: int = 8192, sentence_starts: list[list[int]] | None = None) -> list[list[Span]]:
    """The best `per_window` spans of every window, grouped per pair (unsorted, may overlap).

    With `sentence_starts` (each passage's sentence start offsets) no span runs across a sentence."""
    import torch

    if not questions:
        return []
    encoded, batches = window_batches(model, tokenizer, questions, passages, max_length=max_length,
                                      stride=stride, batch_tokens=batch_tokens, sentence_starts=sentence_starts)
    pair_of = encoded["overflow_to_sample_mapping"]
    results: list[list[Span]] = [[] for _ in questions]
    with torch.inference_mode():
        for batch in batches:
            output = model(**batch.inputs)
            width = batch.context.shape[1]
            start, end_logits = output.start_logits.float(), output.end_logits.float()
            null = start[:, 0] + end_logits[:, 0]
            scores = start[:, :, None] + end_logits[:, None, :] - null[:, None, None]
            band = torch.ones((width, width), dtype=torch.bool).triu()
            band &= ~torch.ones((width, width), dtype=torch.bool).triu(diagonal=max_answer_tokens)
            allowed = band[None] & batch.context[:, :, None] & batch.context[:, None, :]
            allowed &= batch.segments[:, :, None] == batch.segments[:, None, :]
            scores = scores.masked_fill(~allowed, float("-inf")).flatten(1)
            top = torch.topk(scores, min(per_window, scores.shape[1]), dim=1)
            nulls = null.tolist()
            for row, w in enumerate(batch.windows):
                offsets = encoded["offset_mapping"][w]
                pair = pair_of[w]
                for value, flat in zip(top.values[row].tolist(), top.indices[row].tolist()):
                    if value == float("-inf"):
                        break
                    first, last = divmod(flat, width)
                    start_char, end_char = balanced(passages[pair], offsets[first][0], offsets[last][1])
                    results[pair].append(Span(pair, start_char, end_char, value, nulls[row], w))
    return results


def best_spans(model, tokenizer, questions: list[str], passages: list[str], **options) -> list[Span | None]:
    """Each pair's single best span (None where the passage has no context token)."""
    found = find_spans(model, tokenizer, questions, passages, per_window=1, **options)
    return [max(spans, key=lambda s: s.value) if spans else None for spans in found]

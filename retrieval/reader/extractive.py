"""Load the extractive reader: Byline's shipped model by default, or any HF QA model / folder."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from haystack import Document, component
from haystack.dataclasses import ExtractedAnswer
from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

from retrieval.errors import BylineError
from retrieval.ingest.chunking import split_sentences
from retrieval.reader.spans import Span, best_spans, find_spans

EXPECTED = ("a Hugging Face question-answering model folder (config.json with a *ForQuestionAnswering "
            "architecture, model weights and tokenizer files)")


def _looks_like_path(name: str) -> bool:
    """Absolute, relative or home paths are folders; `owner/name` that is not on disk is a hub id."""
    return name.startswith(("/", ".", "~")) or Path(name).expanduser().exists()


def check_model_location(name: str) -> str:
    """Return a local folder's absolute path, or the hub id unchanged; refuse what can't be a QA model."""
    path = Path(name).expanduser()
    if _looks_like_path(name):
        if not path.is_dir():
            raise BylineError(f"reader model '{name}' does not exist; expected {EXPECTED}")
        config_file = path / "config.json"
        try:
            architectures = json.loads(config_file.read_text()).get("architectures") or []
        except (OSError, ValueError):
            raise BylineError(f"reader model '{name}' has no readable config.json; expected {EXPECTED}") from None
        if not any(a.endswith("ForQuestionAnswering") for a in architectures):
            raise BylineError(f"reader model '{name}' is a {', '.join(architectures) or 'model of unknown kind'}, "
                              f"not a question-answering model; expected {EXPECTED}")
        if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
            raise BylineError(f"reader model '{name}' has no weights file; expected {EXPECTED}")
        return str(path.resolve())
    return name


@component
class NullRelativeExtractiveReader(TransformersExtractiveReader):
    """Haystack's extractive reader, scoring each span against the model's own "no answer", batched.

    Haystack masks the [CLS] token out of the spans and scores a span by sigmoid(start + end logit)
    alone, so a span's score ignores what the model says about the question being unanswerable.
    Here a span scores sigmoid(calibration_factor * (span logit - [CLS] logit of its window)): the
    SQuAD 2.0 null-score rule as a score, above 0.5 when the model prefers the span to "no answer"
    in its window. Haystack's default factor (0.1) keeps scores apart; the raw difference saturates.

    With `null_scope="question"` the "no answer" a span is measured against is the lowest `[CLS]`
    logit over all windows of the question's passages: the SQuAD 2.0 rule for a document split into
    windows (no answer only when no window makes one likelier than the most answerable window's
    null). Measuring each span against its own window's `[CLS]` instead (`"window"`) ranks spans in
    passages the model deems off-topic too low and refuses more answerable questions: on the
    open-collection tuning set it cost 2.3 F1 (see the README, Evaluation). For one passage both are
    the same. Each answer's `meta["margin"]` is that logit margin, for the assembler.

    The span search is `retrieval.reader.spans`: windows in length-sorted padded batches with their
    segment ids, and every window's spans (up to `max_answer_tokens` long, inside one sentence)
    scored as one matrix, instead of Haystack's per-candidate Python loop. Loading, answer type and
    de-duplication of overlapping spans are Haystack's.
    """

    def __init__(self, *, max_answer_tokens: int = 48, null_scope: str = "question", **kwargs) -> None:
        # The parent is named, not reached by super(): @component rebuilds the class.
        TransformersExtractiveReader.__init__(self, **kwargs)
        if null_scope not in ("question", "window"):
            raise BylineError(f"reader.null_scope must be 'question' or 'window', not {null_scope!r}")
        self.max_answer_tokens = max_answer_tokens
        self.null_scope = null_scope

    @component.output_types(answers=list[ExtractedAnswer])
    def run(self, query: str, documents: list[Document], top_k: int | None = None,
            score_threshold: float | None = None, max_seq_length: int | None = None, stride: int | None = None,
            max_batch_size: int | None = None, answers_per_seq: int | None = None, no_answer: bool | None = None,
            overlap_threshold: float | None = None) -> dict:
        self.warm_up()
        documents = [d for d in documents if d.content]
        if not documents:
            return {"answers": []}
        found = find_spans(self.model, self.tokenizer, [query] * len(documents), [d.content for d in documents],
                           max_length=max_seq_length or self.max_seq_length, stride=stride or self.stride,
                           max_answer_tokens=self.max_answer_tokens,
                           per_window=answers_per_seq or self.answers_per_seq or 20,
                           sentence_starts=[_sentence_starts(d) for d in documents])
        lowest_null = min((span.null for spans in found for span in spans), default=0.0)

        def margin(span: Span) -> float:
            return span.value + span.null - lowest_null if self.null_scope == "question" else span.value

        answers = [ExtractedAnswer(query=query, score=self.span_score(value), data=document.content[span.start:span.end],
                                   document=document, document_offset=ExtractedAnswer.Span(span.start, span.end),
                                   meta={"margin": value})
                   for document, spans in zip(documents, found) for span in spans for value in (margin(span),)]
        answers.sort(key=lambda a: a.score, reverse=True)
        threshold = score_threshold if score_threshold is not None else self.score_threshold
        if threshold is not None:
            answers = [a for a in answers if a.score >= threshold]
        if answers:
            answers = self.deduplicate_by_overlap(answers, overlap_threshold or self.overlap_threshold)
        return {"answers": answers[:top_k or self.top_k]}

    def span_score(self, value: float) -> float:
        """A span's score from its margin over the window's [CLS] logit."""
        return 1.0 / (1.0 + math.exp(-self.calibration_factor * value))

    def passage_spans(self, question: str, passage: str, sentence_starts: list[int]) -> list[Span]:
        """One passage's spans inside its sentences, best first, each measured against the `[CLS]`
        logit of its own window (the passage alone decides whether it answers)."""
        self.warm_up()
        found = find_spans(self.model, self.tokenizer, [question], [passage], max_length=self.max_seq_length,
                           stride=self.stride, max_answer_tokens=self.max_answer_tokens,
                           per_window=self.answers_per_seq or 20, sentence_starts=[sentence_starts])[0]
        return sorted(found, key=lambda span: -span.value)

    def best_spans(self, questions: list[str], passages: list[str]) -> list[tuple[str | None, float]]:
        """Each (question, passage) pair's best span and its score, many pairs per forward pass."""
        self.warm_up()
        found = best_spans(self.model, self.tokenizer, questions, passages, max_length=self.max_seq_length,
                           stride=self.stride, max_answer_tokens=self.max_answer_tokens)
        return [(passage[s.start:s.end], self.span_score(s.value)) if s else (None, 0.0)
                for passage, s in zip(passages, found)]


def _sentence_starts(document: Document) -> list[int]:
    """Where the document's sentences start: the focus step's, or the ingest splitter's on a bare passage.

    A span across a sentence end ("two years of repairs. The work cost the town 2.5 million euros")
    is never an answer; the reader's spans stay inside one sentence."""
    if "sentence_starts" in document.meta:
        return document.meta["sentence_starts"]
    return [sentence.start for sentence in split_sentences("", document.content)[1:]]


def load_reader(name: str, *, max_seq_length: int = 384, stride: int = 128, top_k: int = 10,
                max_answer_tokens: int = 48, null_scope: str = "question"):
    """A warm `NullRelativeExtractiveReader` for `name` (folder or hub id)."""
    from haystack.utils import ComponentDevice

    location = check_model_location(name)
    # fp32 on the CPU: the shipped weights are fp16 to stay small, and fp16/bf16 matmuls without
    # AVX-512 are many times slower here.
    reader = NullRelativeExtractiveReader(model=location, top_k=top_k, max_seq_length=max_seq_length,
                                          stride=stride, no_answer=False, max_answer_tokens=max_answer_tokens,
                                          null_scope=null_scope,
                                          device=ComponentDevice.from_str("cpu"),
                                          model_kwargs={"dtype": "float32"})
    try:
        reader.warm_up()
    except Exception as exc:  # hub/network/format errors surface in many types; name the model once
        hint = " (offline: HF_HUB_OFFLINE=1 allows only cached or local models)" if os.environ.get("HF_HUB_OFFLINE") else ""
        raise BylineError(f"cannot load reader model '{name}'{hint}: {str(exc).splitlines()[0][:200]}") from exc
    return reader


def load_configured_reader(reader_config: dict):
    """The reader that config's `reader` section names, with its window settings."""
    return load_reader(reader_config["model"], max_seq_length=reader_config["max_seq_length"],
                       stride=reader_config["stride"], top_k=reader_config["top_k"],
                       max_answer_tokens=reader_config["max_answer_tokens"],
                       null_scope=reader_config["null_scope"])


def pass_segment_ids(reader) -> None:
    """Give a stock Haystack reader's BERT-style model the question/context segment ids it was trained with.

    Haystack's reader calls the model with input ids and attention mask only, so every token
    would count as segment A (Byline's own reader passes them itself). Models without segment
    embeddings (RoBERTa, ...) are left alone.
    """
    tokenizer, model = reader.tokenizer, reader.model
    if "token_type_ids" not in tokenizer.model_input_names or getattr(model.config, "type_vocab_size", 1) < 2:
        return
    sep_id = tokenizer.sep_token_id

    def add_segment_ids(module, args, kwargs):
        if kwargs.get("token_type_ids") is None and "input_ids" in kwargs:
            separators = (kwargs["input_ids"] == sep_id).long()
            after_first_separator = (separators.cumsum(-1) - separators) >= 1
            kwargs["token_type_ids"] = after_first_separator.long() * kwargs["attention_mask"]
        return args, kwargs

    model.register_forward_pre_hook(add_segment_ids, with_kwargs=True)

"""Load the extractive reader: Byline's shipped model by default, or any HF QA model / folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from haystack import component
from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

from retrieval.errors import BylineError

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
    """Haystack's extractive reader, scoring each span against the model's own "no answer".

    Haystack masks the [CLS] token out of the spans and scores a span by sigmoid(start + end logit)
    alone, so a span's score ignores what the model says about the question being unanswerable.
    Here a span scores sigmoid(calibration_factor * (span logit - [CLS] logit of its window)): the
    SQuAD 2.0 null-score rule as a score, above 0.5 when the model prefers the span to "no answer"
    in its window. Haystack's default factor (0.1) keeps scores apart; the raw difference saturates.
    """

    # The parent is named, not reached by super(): @component rebuilds the class.
    def _postprocess(self, *, start, end, **kwargs):
        null_half = ((start[:, 0] + end[:, 0]) / 2).unsqueeze(-1)  # [CLS] start + end, split over both
        return TransformersExtractiveReader._postprocess(self, start=start - null_half, end=end - null_half,
                                                         **kwargs)


def load_reader(name: str, *, max_seq_length: int = 384, stride: int = 128, top_k: int = 10):
    """A warm `NullRelativeExtractiveReader` for `name` (folder or hub id)."""
    from haystack.utils import ComponentDevice

    location = check_model_location(name)
    # fp32 on the CPU: the shipped weights are fp16 to stay small, and fp16/bf16 matmuls without
    # AVX-512 are many times slower here.
    reader = NullRelativeExtractiveReader(model=location, top_k=top_k, max_seq_length=max_seq_length,
                                          stride=stride, no_answer=False,
                                          device=ComponentDevice.from_str("cpu"),
                                          model_kwargs={"dtype": "float32"})
    try:
        reader.warm_up()
    except Exception as exc:  # hub/network/format errors surface in many types; name the model once
        hint = " (offline: HF_HUB_OFFLINE=1 allows only cached or local models)" if os.environ.get("HF_HUB_OFFLINE") else ""
        raise BylineError(f"cannot load reader model '{name}'{hint}: {str(exc).splitlines()[0][:200]}") from exc
    _pass_segment_ids(reader)
    return reader


def load_configured_reader(reader_config: dict):
    """The reader that config's `reader` section names, with its window settings."""
    return load_reader(reader_config["model"], max_seq_length=reader_config["max_seq_length"],
                       stride=reader_config["stride"], top_k=reader_config["top_k"])


def _pass_segment_ids(reader) -> None:
    """Give BERT-style models the question/context segment ids they were trained with.

    Haystack's reader calls the model with input ids and attention mask only, so every token
    would count as segment A. Models without segment embeddings (RoBERTa, ...) are left alone.
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

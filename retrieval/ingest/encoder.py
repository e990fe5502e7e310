"""MiniLM sentence vectors for ingest, at the speed of the model itself.

The same vectors as sentence-transformers gives the query side (mean of the token vectors under
the attention mask, normalised; truncated at the model's `max_seq_length`), computed with less
around the model: every text is tokenised once, the whole ingest is sorted by token length and
cut into large batches of similar length (little padding), and each batch is one direct call of
the transformer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from haystack import component

from retrieval.errors import BylineError

Progress = Callable[[int, int], None]  # (tokens encoded so far, tokens in all)


@component
class SentenceEncoder:
    """`encode(texts, progress=None) -> np.ndarray` of normalised rows, in the order of `texts`.

    `max_batch_tokens` bounds a batch's padded size (rows × longest row), `max_batch_size` its rows.
    `precision` "bfloat16" runs the transformer under bf16 autocast (worth it only on CPUs with
    native bf16, e.g. AVX512-BF16; vectors then differ from fp32 by a cosine of about 1e-4).
    """

    def __init__(self, model_path: str, max_batch_tokens: int = 8192, max_batch_size: int = 256,
                 precision: str = "float32") -> None:
        if precision not in ("float32", "bfloat16"):
            raise BylineError(f"embedder precision must be float32 or bfloat16, not '{precision}'")
        self.model_path = model_path
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        self.precision = precision
        self.tokenizer = None
        self.model = None
        self.max_seq_length = 256

    def warm_up(self) -> None:
        if self.model is not None:
            return
        from transformers import AutoModel, AutoTokenizer

        folder = Path(self.model_path)
        settings = _json(folder / "sentence_bert_config.json")
        pooling = _json(folder / "1_Pooling" / "config.json")
        if pooling and not pooling.get("pooling_mode_mean_tokens"):
            raise BylineError(f"{folder}: the encoder needs a mean-pooling sentence-transformers model")
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
        self.model = AutoModel.from_pretrained(self.model_path, local_files_only=True).eval()
        self.max_seq_length = int(settings.get("max_seq_length") or self.tokenizer.model_max_length)
        self.dimension = int(self.model.config.hidden_size)

    @component.output_types(embeddings=np.ndarray)
    def run(self, texts: list[str]) -> dict:
        return {"embeddings": self.encode(texts)}

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, with [CLS]/[SEP], truncated as sentence-transformers does."""
        self.warm_up()
        return self.tokenizer(texts, truncation=True, max_length=self.max_seq_length,
                              return_attention_mask=False, return_token_type_ids=False)["input_ids"]

    def encode(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.encode_ids(self.tokenize(texts), progress)

    def encode_ids(self, ids: list[list[int]], progress: Progress | None = None) -> np.ndarray:
        """Vectors for texts already tokenised by `tokenize`."""
        import torch

        self.warm_up()
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        vectors = np.empty((len(ids), self.dimension), dtype=np.float32)
        total, done = int(lengths.sum()), 0
        pad = self.tokenizer.pad_token_id or 0
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bfloat16")
        with torch.inference_mode(), autocast:
            for rows in self.batches(lengths):
                width = int(lengths[rows].max())
                input_ids = np.full((len(rows), width), pad, dtype=np.int64)
                mask = np.zeros((len(rows), width), dtype=np.int64)
                for i, row in enumerate(rows):
                    input_ids[i, :lengths[row]] = ids[row]
                    mask[i, :lengths[row]] = 1
                attention = torch.from_numpy(mask)
                hidden = self.model(input_ids=torch.from_numpy(input_ids), attention_mask=attention).last_hidden_state
                weights = attention.unsqueeze(-1).to(torch.float32)
                pooled = (hidden.float() * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                vectors[rows] = torch.nn.functional.normalize(pooled, dim=1).numpy()
                done += int(lengths[rows].sum())
                if progress:
                    progress(done, total)
        return vectors

    def batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        """Row indices sorted by length, cut so that rows × longest row stays within the budget."""
        order = np.argsort(lengths, kind="stable")
        batches, start = [], 0
        while start < len(order):
            end = start + 1
            while (end < len(order) and end - start < self.max_batch_size
                   and (end + 1 - start) * lengths[order[end]] <= self.max_batch_tokens):
                end += 1
            batches.append(order[start:end])
            start = end
        return batches


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}

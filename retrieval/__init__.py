"""Byline's retrieval-QA library: ingestion, index, retrievers, reader and the answer pipeline."""

import os

# Set before any submodule imports huggingface_hub or haystack: the hub is unreachable here (a hub
# id would hang ~70 s before failing) and haystack's telemetry would try to phone home.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

"""Byline's retrieval-QA library: ingestion, index, retrievers, reader and the answer pipeline."""

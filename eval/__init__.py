"""Byline's evaluation suite: the gold question set, SQuAD-style metrics, `byline eval`."""

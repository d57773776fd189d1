"""Deterministic sample brand community: every input entity plus its ground truth."""

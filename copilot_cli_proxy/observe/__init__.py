"""Observability: request ids, the per-request JSON log, metrics, and secret redaction."""

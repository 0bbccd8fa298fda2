"""Database infrastructure: engine, base model, per-request transaction, org-scoped queries."""

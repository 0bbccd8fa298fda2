"""API keys for integrations (docs/api-keys.md)."""

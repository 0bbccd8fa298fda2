"""Redis/Valkey: the client, the embedded server, and the shared-state helpers built on it."""

"""/status: a live cluster page for operators, served by every instance (no CDN, no build)."""

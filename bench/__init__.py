"""Haven's benchmark harness: `make bench` or `python -m bench` (see bench/run.py)."""

"""`python -m bench.scale`: costs at 1,000 and 100,000 units (bench/RESULTS-scale.md)."""

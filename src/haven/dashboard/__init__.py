"""The dashboard: portfolio figures, cached in Redis per organization version."""

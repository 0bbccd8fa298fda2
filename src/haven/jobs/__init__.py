"""Scheduled work: the scheduler that runs the daily jobs once per cluster."""

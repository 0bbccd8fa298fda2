"""Leases: who rents which unit, when, for how much."""

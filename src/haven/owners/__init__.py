"""Rental owners: ownership shares, payouts and monthly owner statements."""

"""Billing: rent charges and late fees, once per lease and period, once per cluster."""

"""Tenants: the people who rent units."""

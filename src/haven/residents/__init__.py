"""Residents: tenants invited to sign in and see what is theirs."""

"""Audit trail: who changed what, when, on which instance, in which request."""

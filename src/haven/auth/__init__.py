"""Passwords, Redis sessions, bearer tokens, and the principal every route sees."""

"""The accounts domain's HTTP layer: sign-up, sign-in, sessions, tokens, passwords.

Its rules live in haven.auth.service (below the unit of work, so the principal and the
edge can use them); these routes write through the unit of work like any domain's.
"""

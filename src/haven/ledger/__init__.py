"""The rent ledger: append-only entries per lease, balances and aging."""

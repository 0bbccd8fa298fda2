"""One Redis command on a pooled connection, without redis-py's per-call layers.

Every authenticated request sends the gate's one EVALSHA (haven.cluster.gate_script).
Through `Redis.execute_command` that costs, besides the round trip itself, redis-py's
argument encoding (an `Encoder` call per argument), its retry and observability wrappers
and its response-callback lookup: about 12 us of CPU per call at 64 concurrent callers
(0.75x with this module, `python -m bench.redis_call`; bench/PROFILE.md), about a tenth
of a cached dashboard request.
`call` returns the reply as the parser reads it (no response callbacks: EVALSHA has
none), and keeps the parts that matter to a request: a connection from the client's own
pool (the Sentinel pool's primary-following included), redis-py's connection for the
exchange (connect, the health check it owes, its write timeout, the reply parser, which
raises `NoScriptError` and the other error replies, and a Sentinel connection's READONLY
handling), and one retry on a fresh connection after a connection error or timeout, as
the client's `Retry(retries=1)` gives `execute_command` (without its 20-40 ms backoff:
the gate fails open, so the retry is only worth it at once). `pack` encodes as redis-py's
`Encoder` does: str as UTF-8, int as its decimal digits, float as its `repr`, bytes as
they are; anything else (bool and None included) is refused the same way (`DataError`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = bytes | str | int | float


def pack(args: Sequence[Arg]) -> bytes:
    """The RESP array of `args`, as redis-py's `pack_command` would send it."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, bool) or not isinstance(arg, int | float):
            raise DataError(
                f"Invalid input of type: '{type(arg).__name__}'. "
                "Convert to a bytes, string, int or float first."
            )
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            data = repr(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


async def call(redis: Redis, packed: bytes) -> Any:
    """Send one packed command on a connection of `redis`'s pool and return its reply as
    read (an error reply raises, as `execute_command` raises it). A call cancelled or
    failed mid-exchange leaves its connection closed (redis-py's connection does that), so
    no reply is left on it for the next caller."""
    pool = redis.connection_pool
    connection = await pool.get_connection()
    try:
        try:
            await connection.send_packed_command(packed)
            return await connection.read_response()
        except (RedisConnectionError, RedisTimeoutError):
            await connection.disconnect()  # the next send connects afresh
            await connection.send_packed_command(packed)
            return await connection.read_response()
    finally:
        await pool.release(connection)

"""haven.store.wire: the gate's one command without redis-py's per-call layers sends the
bytes redis-py would send, answers what `execute_command` answers (error replies
included), and survives a connection the server dropped, on a real Valkey."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import redis
from redis.asyncio import Redis
from redis.exceptions import DataError, NoScriptError, ResponseError

from haven.store import wire
from haven.store.client import _options
from haven.store.embedded import EmbeddedValkey

ARGS: list[list[wire.Arg]] = [
    ["PING"],
    ["SET", "k", ""],
    ["EVALSHA", "ab" * 20, 2, "haven:rate:ip:1.2.3.4", "haven:session:abc", 60000, 100],
    ["SET", "naïve-ключ-🔑", b"\x00\xff raw bytes \r\n"],
    ["ZADD", "z", -3, 1.5, 2, 1e-7, 3, 12345678901234567890],
    ["SET", "t", 1764374400.123456],
]


@pytest.mark.parametrize("args", ARGS)
def test_pack_sends_the_bytes_redis_py_sends(args: list[wire.Arg]) -> None:
    connection = redis.Connection()
    assert wire.pack(args) == b"".join(connection.pack_command(*args))


@pytest.mark.parametrize("bad", [True, None, ["a"], {"a": 1}])
def test_pack_refuses_what_redis_py_refuses(bad: object) -> None:
    with pytest.raises(DataError):
        redis.Connection().pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        wire.pack(["SET", "k", bad])  # type: ignore[list-item]


def test_call_answers_as_execute_command_and_recovers_a_dropped_connection(
    valkey: EmbeddedValkey,
) -> None:
    key = f"wire:{secrets.token_hex(4)}"

    async def run() -> None:
        client = Redis.from_url(valkey.url, **_options())
        admin = Redis.from_url(valkey.url)
        try:
            script = "return {KEYS[1], tonumber(ARGV[1]) + 1, redis.call('INCR', KEYS[1])}"
            sha = await client.script_load(script)
            args: list[wire.Arg] = ["EVALSHA", sha, 1, key, 41]
            expected = await client.execute_command(*args)
            assert await wire.call(client, wire.pack(args)) == [key.encode(), 42, 2]
            assert expected == [key.encode(), 42, 1]

            # Error replies raise as they do through execute_command; the connection stays
            # usable (the reply was read) and goes back to the pool.
            with pytest.raises(NoScriptError):
                await wire.call(client, wire.pack(["EVALSHA", "0" * 40, 0]))
            with pytest.raises(ResponseError):
                await wire.call(client, wire.pack(["INCR", "wire:no-such-command", "x"]))
            assert await wire.call(client, wire.pack(["PING"])) == b"PONG"  # no response callbacks

            # The server drops every client connection (a restart, a failover, an idle
            # timeout): the pooled connection is dead, and the next call reconnects once.
            pool = client.connection_pool
            assert pool._in_use_connections == set()  # released, all of them
            name = f"wire-{secrets.token_hex(3)}"
            await wire.call(client, wire.pack(["CLIENT", "SETNAME", name]))
            clients = (await admin.execute_command("CLIENT", "LIST")).decode()
            ids = [
                line.split()[0].removeprefix("id=")
                for line in clients.splitlines()
                if f"name={name}" in line
            ]
            assert len(ids) == 1, clients
            await admin.execute_command("CLIENT", "KILL", "ID", ids[0])
            assert await wire.call(client, wire.pack(["GET", key])) == b"2"
            assert pool._in_use_connections == set()
        finally:
            await client.delete(key)
            await client.aclose()
            await admin.aclose()

    asyncio.run(run())


def test_a_cancelled_call_leaves_no_reply_behind_for_the_next_one(valkey: EmbeddedValkey) -> None:
    """A request cancelled while it waits for the reply (its client went away): the
    connection is dropped, not returned with a reply still to read, so the next call on
    the pool gets its own answer."""

    async def run() -> None:
        client = Redis.from_url(valkey.url, **{**_options(), "max_connections": 1})
        try:
            # BLPOP on an empty list answers nil after its timeout; only this client waits.
            slow = asyncio.ensure_future(
                wire.call(client, wire.pack(["BLPOP", f"wire:empty:{secrets.token_hex(4)}", 0.3]))
            )
            await asyncio.sleep(0.05)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            assert await wire.call(client, wire.pack(["ECHO", "mine"])) == b"mine"
        finally:
            await client.aclose()

    asyncio.run(run())

"""The gate's script is composed from the fragments of the modules that own each format,
and the Lua spelling of the keys names the keys Python writes."""

from __future__ import annotations

import secrets
import uuid

import redis

from haven.auth.sessions import _TOUCH, SESSION_TOUCH_LUA
from haven.cluster.gate_script import GATE_LUA
from haven.store.client import KEYS_LUA, Keys
from haven.store.embedded import EmbeddedValkey
from haven.store.org_cache import CACHED_READ_LUA
from haven.store.ratelimit import RATE_STEP_LUA


def test_the_gate_runs_the_owners_fragments() -> None:
    """One spelling of each: the session store's read/slide is the one in the gate (and in
    its own lookup script), likewise the key names, the cache read and the rate step."""
    for fragment in (RATE_STEP_LUA, KEYS_LUA, SESSION_TOUCH_LUA, CACHED_READ_LUA):
        assert GATE_LUA.count(fragment) == 1
    assert SESSION_TOUCH_LUA in _TOUCH
    assert KEYS_LUA in _TOUCH


def test_lua_key_names_are_the_python_ones(valkey: EmbeddedValkey) -> None:
    keys = Keys(f"k{secrets.token_hex(4)}")
    uid, oid = str(uuid.uuid4()), str(uuid.uuid4())
    script = (
        "local prefix = ARGV[1]\n"
        + KEYS_LUA
        + "return {user_authz_key(ARGV[2]), org_version_key(ARGV[3]),"
        " cache_key(ARGV[3], ARGV[4], ARGV[5])}"
    )
    client = redis.Redis.from_url(valkey.url, decode_responses=True)
    try:
        got = client.eval(script, 0, keys.prefix, uid, oid, "dashboard:2026-11-27", 7)
    finally:
        client.close()
    assert got == [
        keys.user_authz(uid),
        keys.org_version(oid),
        keys.cache(oid, "dashboard:2026-11-27", 7),
    ]

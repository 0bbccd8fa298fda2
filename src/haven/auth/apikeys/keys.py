"""The API key string: `hvn_<env>_<40 random base62><6 base62 CRC32>`, and its hash.

`hvn_` marks a Haven key for secret scanners and for Haven itself (a Bearer value that
starts with it is a key, never a session token); `<env>` is `live` in production and
`test` elsewhere; the CRC32 suffix lets a scanner (and Haven, before any lookup) tell a
real key from a random string that merely looks like one. 40 base62 characters carry
238 bits, so a fast hash (sha256) is the right one to store: nothing can be guessed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import zlib

PREFIX = "hvn_"
ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
RANDOM_LENGTH = 40
CHECKSUM_LENGTH = 6
SHOWN_RANDOM = 8  # characters of the random part kept (and shown) as the display prefix
PATTERN = re.compile(r"^hvn_(live|test)_[0-9A-Za-z]{46}$")


def _base62(value: int, width: int) -> str:
    out = []
    while value:
        value, digit = divmod(value, 62)
        out.append(ALPHABET[digit])
    return "".join(reversed(out)).rjust(width, "0")


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), CHECKSUM_LENGTH)


def environment_tag(production: bool) -> str:
    return "live" if production else "test"


def generate(production: bool) -> str:
    body = PREFIX + environment_tag(production) + "_"
    body += "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return body + _checksum(body)


def looks_like_key(value: str) -> bool:
    """Whether a credential claims to be an API key (and so is never a session)."""
    return value.startswith(PREFIX)


def well_formed(key: str) -> bool:
    """The shape and the checksum are right (no lookup needed to refuse a mistyped key)."""
    if not PATTERN.match(key):
        return False
    return _checksum(key[:-CHECKSUM_LENGTH]) == key[-CHECKSUM_LENGTH:]


def display_prefix(key: str) -> str:
    """What lists show: `hvn_live_` and the first 8 random characters."""
    return key[: len(PREFIX) + 5 + SHOWN_RANDOM]


def digest(key: str) -> str:
    """sha256 hex: what the database and the Redis record are keyed by."""
    return hashlib.sha256(key.encode()).hexdigest()

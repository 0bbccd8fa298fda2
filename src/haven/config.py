"""Settings read from the environment (ARCHITECTURE section 6).

Every value is parsed and checked once, at start. A bad value raises
ConfigError whose message is one line naming the variable, so an operator
sees exactly what to fix.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

ENVIRONMENTS = ("development", "production", "test")
LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/haven.db"
DEFAULT_TRUSTED_PROXIES = ("127.0.0.0/8", "::1/128")

SECRET_FIELDS = frozenset(
    {"secret_key", "operator_token", "redis_password", "redis_sentinel_password"}
)
# REDIS_SENTINELS + REDIS_SENTINEL_MASTER become redis_url = redis+sentinel://h:p,h:p/master.
SENTINEL_SCHEME = "redis+sentinel://"


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    env: str = "development"
    instance_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    host: str = "127.0.0.1"
    port: int = 4000
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    redis_password: str | None = None
    redis_sentinel_password: str | None = None
    redis_key_prefix: str = "haven"
    secret_key: str = ""
    secret_key_generated: bool = False
    session_ttl: int = 86400
    session_max_age: int = 2592000
    invitation_ttl_days: int = 7  # how long a resident invitation's token stays valid
    resident_grace_days: int = 30  # a resident signs in until their last lease's end + this
    session_cookie_name: str = "haven_session"
    shutdown_timeout_ms: int = 30000
    drain_delay_ms: int = 5000
    trust_proxy: bool = False
    trusted_proxies: tuple[str, ...] = DEFAULT_TRUSTED_PROXIES
    operator_token: str | None = None
    db_pool_min: int = 5
    db_pool_max: int = 20
    rate_limit_enabled: bool = True
    rate_limit_window: int = 60
    rate_limit_global: int = 6000
    rate_limit_per_user: int = 1200
    rate_limit_auth: int = 10
    rate_limit_auth_email: int = 50  # sign-in attempts per email per hour, from any address
    rate_limit_register: int = 10  # sign-ups per client IP per hour
    rate_limit_operator: int = 10  # wrong operator tokens per client IP per minute
    rate_limit_password: int = 10  # password-change attempts per session per hour
    rate_limit_per_key: int = 1200  # requests per window per API key
    cors_origins: tuple[str, ...] = ()
    log_level: str = "info"
    log_format: str = "console"
    version: str = "1.0.0"
    event_retention_days: int = 30
    webhook_allow_private: bool = False
    webhook_worker: bool = True
    webhook_timeout_ms: int = 10000
    webhook_retry_base_ms: int = 30000
    webhook_retry_max_ms: int = 3_600_000
    webhook_failing_after_s: int = 86400
    webhook_claim_ttl_ms: int = 60000
    webhook_poll_ms: int = 1000
    webhook_concurrency: int = 4
    webhook_rotation_overlap_s: int = 86400

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def public_view(self) -> dict[str, Any]:
        """Effective settings with every secret left out, named as the environment names them."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if key in SECRET_FIELDS or key == "secret_key_generated":
                continue
            if key in ("database_url", "redis_url") and value:
                value = redact_url(value)
            out[key.upper()] = list(value) if isinstance(value, tuple) else value
        out["SECRET_KEY"] = "(set)" if self.secret_key else "(unset)"
        out["OPERATOR_TOKEN"] = "(set)" if self.operator_token else "(unset)"
        return out


def redact_url(url: str) -> str:
    """Drop the password from a URL so it can be shown or logged."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}: must be between {lo} and {hi}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}: expected true or false, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {raw!r}")
    return value


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...] | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    return tuple(item.strip() for item in raw.split(",") if item.strip())


# Both end up in response headers on every answer, so they must be plain header tokens.
_INSTANCE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
_COOKIE_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def _token(env: Mapping[str, str], name: str, pattern: re.Pattern[str], allowed: str) -> str:
    raw = env.get(name, "").strip()
    if raw and not pattern.match(raw):
        raise ConfigError(f"{name}: use 1-64 letters, digits or {allowed}; got {raw!r}")
    return raw


def _sentinel_url(env: Mapping[str, str]) -> str | None:
    """REDIS_SENTINELS (host:port,...) and REDIS_SENTINEL_MASTER as one redis+sentinel:// URL."""
    sentinels = _list(env, "REDIS_SENTINELS")
    master = env.get("REDIS_SENTINEL_MASTER", "").strip()
    if sentinels is None:
        if master:
            raise ConfigError("REDIS_SENTINEL_MASTER: set REDIS_SENTINELS too (host:port,...)")
        return None
    if env.get("REDIS_URL", "").strip() or env.get("REDIS_HOST", "").strip():
        raise ConfigError("REDIS_SENTINELS: set either REDIS_SENTINELS or REDIS_URL/REDIS_HOST")
    if not master:
        raise ConfigError("REDIS_SENTINEL_MASTER: required with REDIS_SENTINELS (the service name)")
    if not _SENTINEL_MASTER.match(master):
        raise ConfigError(f"REDIS_SENTINEL_MASTER: use letters, digits or . _ -; got {master!r}")
    for item in sentinels:
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(f"REDIS_SENTINELS: expected host:port, got {item!r}")
        if not _SENTINEL_HOST.match(host):
            raise ConfigError(f"REDIS_SENTINELS: {host!r} is not a host name or address")
    return f"{SENTINEL_SCHEME}{','.join(sentinels)}/{master}"


_SENTINEL_MASTER = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
_SENTINEL_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._\-]{1,253})$")


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str]:
    """redis+sentinel://h:p,h:p/master -> ([(h, p), ...], master)."""
    hosts, _, master = url.removeprefix(SENTINEL_SCHEME).partition("/")
    out = []
    for item in hosts.split(","):
        host, _, port = item.rpartition(":")
        out.append((host.strip("[]"), int(port)))
    return out, master


def _redis_url(env: Mapping[str, str]) -> str | None:
    sentinel = _sentinel_url(env)
    if sentinel is not None:
        return sentinel
    url = env.get("REDIS_URL", "").strip()
    if url:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"REDIS_URL: expected redis://, rediss:// or unix://, got {url!r}")
        return url
    host = env.get("REDIS_HOST", "").strip()
    if not host:
        return None
    port = _int(env, "REDIS_PORT", 6379, 1, 65535)
    return f"redis://{host}:{port}/0"


def _database_url(env: Mapping[str, str]) -> str:
    url = env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    # Accept the plain driver names operators copy from their provider's console.
    for plain, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            url = driver + url[len(plain) :]
    if not url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        raise ConfigError(
            "DATABASE_URL: expected postgresql+asyncpg://... or sqlite+aiosqlite:///path, "
            f"got {redact_url(url)!r}"
        )
    return url


# -- security checks (docs/security.md) ---------------------------------------------------------

# A value containing one of these is a template's placeholder, not a secret.
_PLACEHOLDER_PARTS = ("change", "example", "placeholder", "replace")
# These only as a whole word: a random 64-character token contains "xxx" about once in 500.
_PLACEHOLDER_WORD = re.compile(r"^(todo|x{3,}|tbd|fixme)$", re.IGNORECASE)
_PLACEHOLDER_WHOLE = frozenset({"secret", "password", "token", "changeme"})
MIN_SECRET_BITS = 128
MIN_DISTINCT_CHARS = 8


def secret_bits(value: str) -> float:
    """Entropy estimate: length x log2 of the alphabet its character classes span."""
    alphabet = 0
    if any(c.islower() for c in value):
        alphabet += 26
    if any(c.isupper() for c in value):
        alphabet += 26
    if any(c.isdigit() for c in value):
        alphabet += 10
    if any(not c.isalnum() for c in value):
        alphabet += 33
    return len(value) * math.log2(alphabet) if alphabet > 1 else 0.0


def weak_secret_reason(value: str) -> str | None:
    """Why `value` is no production secret (a placeholder, too little entropy), or None."""
    lowered = value.lower()
    words = [w for w in re.split(r"[^A-Za-z0-9]+", value) if w]
    if (
        lowered in _PLACEHOLDER_WHOLE
        or any(part in lowered for part in _PLACEHOLDER_PARTS)
        or any(_PLACEHOLDER_WORD.match(w) for w in words)
    ):
        return "is a placeholder"
    if len(set(value)) < MIN_DISTINCT_CHARS:
        return f"has fewer than {MIN_DISTINCT_CHARS} distinct characters"
    if (value + value).find(value, 1) < len(value):
        return "is one short pattern repeated"
    if secret_bits(value) < MIN_SECRET_BITS:
        return f"has less than {MIN_SECRET_BITS} bits of entropy"
    return None


def _refuse_weak_secret(name: str, value: str) -> None:
    reason = weak_secret_reason(value)
    if reason is not None:
        raise ConfigError(
            f"{name}: {reason}; in production generate one with "
            "python3 -c 'import secrets;print(secrets.token_urlsafe(48))'"
        )


def _covers_everything(networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """True when the networks together hold every IPv4 or every IPv6 address."""
    v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
    # IPv4-mapped IPv6 (::ffff:0:0/96) is the IPv4 space spelt another way.
    mapped = ipaddress.IPv6Network("::ffff:0:0/96")
    for n in v6:
        if n.subnet_of(mapped) and n.prefixlen >= 96:
            v4.append(
                ipaddress.IPv4Network((int(n.network_address) & 0xFFFFFFFF, n.prefixlen - 96))
            )
        elif n.supernet_of(mapped):
            v4.append(ipaddress.IPv4Network("0.0.0.0/0"))
    whole_v4 = ipaddress.IPv4Network("0.0.0.0/0")
    whole_v6 = ipaddress.IPv6Network("::/0")
    return list(ipaddress.collapse_addresses(v4)) == [whole_v4] or list(
        ipaddress.collapse_addresses(v6)
    ) == [whole_v6]


def _trusted_proxies(env: Mapping[str, str]) -> tuple[str, ...]:
    trusted: tuple[str, ...] = _list(env, "TRUSTED_PROXIES") or DEFAULT_TRUSTED_PROXIES
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for cidr in trusted:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            raise ConfigError(f"TRUSTED_PROXIES: {cidr!r} is not an IP network") from None
    if _covers_everything(networks):
        raise ConfigError(
            "TRUSTED_PROXIES: must not cover every address (0.0.0.0/0, ::/0): any client could "
            "choose its IP; list only your load balancer's addresses"
        )
    return trusted


def _cors_origins(env: Mapping[str, str]) -> tuple[str, ...]:
    origins = _list(env, "CORS_ORIGINS") or ()
    for origin in origins:
        if origin == "*" or origin.lower() == "null":
            raise ConfigError(
                f"CORS_ORIGINS: {origin!r} cannot be combined with credentials (Haven sends "
                "session cookies): list each allowed origin, e.g. https://app.example.com"
            )
    return origins


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read Settings from the environment; raise ConfigError naming the first bad variable."""
    env = os.environ if environ is None else environ
    haven_env = _choice(env, "HAVEN_ENV", "development", ENVIRONMENTS)
    production = haven_env == "production"

    secret_key = env.get("SECRET_KEY", "").strip()
    generated = False
    if not secret_key:
        if production:
            raise ConfigError("SECRET_KEY: required when HAVEN_ENV=production")
        import secrets

        secret_key = secrets.token_urlsafe(48)
        generated = True
    elif production and len(secret_key) < 32:
        raise ConfigError("SECRET_KEY: must be at least 32 characters in production")
    elif production:
        _refuse_weak_secret("SECRET_KEY", secret_key)

    redis_url = _redis_url(env)
    if redis_url is None and production:
        raise ConfigError(
            "REDIS_URL: required when HAVEN_ENV=production (or REDIS_HOST, or REDIS_SENTINELS)"
        )

    trusted = _trusted_proxies(env)

    pool_min = _int(env, "DB_POOL_MIN", 5, 0, 1000)
    pool_max = _int(env, "DB_POOL_MAX", 20, 1, 1000)
    if pool_max < pool_min:
        raise ConfigError(f"DB_POOL_MAX: must be at least DB_POOL_MIN ({pool_min})")

    operator_token = env.get("OPERATOR_TOKEN", "").strip() or None
    if operator_token is not None and len(operator_token) < 16:
        raise ConfigError("OPERATOR_TOKEN: must be at least 16 characters")
    if operator_token is not None and production:
        _refuse_weak_secret("OPERATOR_TOKEN", operator_token)

    session_ttl = _int(env, "SESSION_TTL", 86400, 60, 90 * 86400)
    session_max_age = _int(env, "SESSION_MAX_AGE", 2592000, 60, 366 * 86400)
    if session_max_age < session_ttl:
        raise ConfigError(
            f"SESSION_MAX_AGE: must be at least SESSION_TTL ({session_ttl}), got {session_max_age}"
        )

    prefix = env.get("REDIS_KEY_PREFIX", "").strip() or "haven"
    values: dict[str, Any] = {
        "env": haven_env,
        "port": _int(env, "PORT", 4000, 1, 65535),
        "database_url": _database_url(env),
        "redis_url": redis_url,
        "redis_password": env.get("REDIS_PASSWORD") or None,
        "redis_sentinel_password": env.get("REDIS_SENTINEL_PASSWORD") or None,
        "redis_key_prefix": prefix,
        "secret_key": secret_key,
        "secret_key_generated": generated,
        "session_ttl": session_ttl,
        "session_max_age": session_max_age,
        "invitation_ttl_days": _int(env, "INVITATION_TTL_DAYS", 7, 1, 90),
        "resident_grace_days": _int(env, "RESIDENT_GRACE_DAYS", 30, 0, 366),
        "session_cookie_name": _token(env, "SESSION_COOKIE_NAME", _COOKIE_NAME, "_ -")
        or "haven_session",
        "shutdown_timeout_ms": _int(env, "SHUTDOWN_TIMEOUT", 30000, 0, 3_600_000),
        "drain_delay_ms": _int(env, "DRAIN_DELAY", 5000, 0, 600_000),
        "trust_proxy": _bool(env, "TRUST_PROXY", False),
        "trusted_proxies": trusted,
        "operator_token": operator_token,
        "db_pool_min": pool_min,
        "db_pool_max": pool_max,
        "rate_limit_enabled": _bool(env, "RATE_LIMIT_ENABLED", True),
        "rate_limit_window": _int(env, "RATE_LIMIT_WINDOW", 60, 1, 86400),
        "rate_limit_global": _int(env, "RATE_LIMIT_GLOBAL", 6000, 1, 10_000_000),
        "rate_limit_per_user": _int(env, "RATE_LIMIT_PER_USER", 1200, 1, 10_000_000),
        "rate_limit_auth": _int(env, "RATE_LIMIT_AUTH", 10, 1, 100_000),
        "rate_limit_auth_email": _int(env, "RATE_LIMIT_AUTH_EMAIL", 50, 1, 1_000_000),
        "rate_limit_register": _int(env, "RATE_LIMIT_REGISTER", 10, 1, 1_000_000),
        "rate_limit_operator": _int(env, "RATE_LIMIT_OPERATOR", 10, 1, 1_000_000),
        "rate_limit_password": _int(env, "RATE_LIMIT_PASSWORD", 10, 1, 1_000_000),
        "rate_limit_per_key": _int(env, "RATE_LIMIT_PER_KEY", 1200, 1, 10_000_000),
        "cors_origins": _cors_origins(env),
        "log_level": _choice(env, "LOG_LEVEL", "info", LOG_LEVELS),
        "log_format": _choice(env, "LOG_FORMAT", "json" if production else "console", LOG_FORMATS),
        "event_retention_days": _int(env, "EVENT_RETENTION_DAYS", 30, 1, 3650),
        "webhook_allow_private": _bool(env, "WEBHOOK_ALLOW_PRIVATE", False),
        "webhook_worker": _bool(env, "WEBHOOK_WORKER", True),
        "webhook_timeout_ms": _int(env, "WEBHOOK_TIMEOUT", 10000, 100, 60_000),
        "webhook_retry_base_ms": _int(env, "WEBHOOK_RETRY_BASE", 30000, 10, 3_600_000),
        "webhook_retry_max_ms": _int(env, "WEBHOOK_RETRY_MAX", 3_600_000, 10, 86_400_000),
        "webhook_failing_after_s": _int(env, "WEBHOOK_FAILING_AFTER", 86400, 1, 30 * 86400),
        "webhook_claim_ttl_ms": _int(env, "WEBHOOK_CLAIM_TTL", 60000, 1000, 3_600_000),
        "webhook_poll_ms": _int(env, "WEBHOOK_POLL_INTERVAL", 1000, 10, 60_000),
        "webhook_concurrency": _int(env, "WEBHOOK_CONCURRENCY", 4, 1, 64),
        "webhook_rotation_overlap_s": _int(env, "WEBHOOK_ROTATION_OVERLAP", 86400, 0, 30 * 86400),
    }
    if values["webhook_allow_private"] and production:
        raise ConfigError("WEBHOOK_ALLOW_PRIVATE: must not be true when HAVEN_ENV=production")
    if values["webhook_claim_ttl_ms"] <= values["webhook_timeout_ms"]:
        raise ConfigError("WEBHOOK_CLAIM_TTL: must be longer than WEBHOOK_TIMEOUT")
    if env.get("INSTANCE_ID", "").strip():
        values["instance_id"] = _token(env, "INSTANCE_ID", _INSTANCE_ID, ". _ : -")
    if env.get("HOST", "").strip():
        values["host"] = env["HOST"].strip()
    values.update(overrides)
    return Settings(**values)

"""Settings read from the environment (ARCHITECTURE section 6).

Every value is parsed and checked once, at start. A bad value raises
ConfigError whose message is one line naming the variable, so an operator
sees exactly what to fix.
"""

from __future__ import annotations

import ipaddress
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
    cors_origins: tuple[str, ...] = ()
    log_level: str = "info"
    log_format: str = "console"
    version: str = "1.0.0"

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

    redis_url = _redis_url(env)
    if redis_url is None and production:
        raise ConfigError(
            "REDIS_URL: required when HAVEN_ENV=production (or REDIS_HOST, or REDIS_SENTINELS)"
        )

    trusted: tuple[str, ...] = _list(env, "TRUSTED_PROXIES") or DEFAULT_TRUSTED_PROXIES
    for cidr in trusted:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ConfigError(f"TRUSTED_PROXIES: {cidr!r} is not an IP network") from None

    pool_min = _int(env, "DB_POOL_MIN", 5, 0, 1000)
    pool_max = _int(env, "DB_POOL_MAX", 20, 1, 1000)
    if pool_max < pool_min:
        raise ConfigError(f"DB_POOL_MAX: must be at least DB_POOL_MIN ({pool_min})")

    operator_token = env.get("OPERATOR_TOKEN", "").strip() or None
    if operator_token is not None and len(operator_token) < 16:
        raise ConfigError("OPERATOR_TOKEN: must be at least 16 characters")

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
        "session_ttl": _int(env, "SESSION_TTL", 86400, 60, 90 * 86400),
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
        "cors_origins": _list(env, "CORS_ORIGINS") or (),
        "log_level": _choice(env, "LOG_LEVEL", "info", LOG_LEVELS),
        "log_format": _choice(env, "LOG_FORMAT", "json" if production else "console", LOG_FORMATS),
    }
    if env.get("INSTANCE_ID", "").strip():
        values["instance_id"] = _token(env, "INSTANCE_ID", _INSTANCE_ID, ". _ : -")
    if env.get("HOST", "").strip():
        values["host"] = env["HOST"].strip()
    values.update(overrides)
    return Settings(**values)

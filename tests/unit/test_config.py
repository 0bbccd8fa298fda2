"""haven.config.load_settings: every bad value names its variable; production needs its secrets."""

from __future__ import annotations

import pytest

from haven.config import ConfigError, load_settings, parse_sentinel_url, redact_url

GOOD_KEY = "f3Yk0qR8Zt2LmWv9JcXb4NdHs6GpEa1uTy7oKi5nQw-Bz_Ue3RjVx8Ml0Cf2Dh9A"
GOOD_TOKEN = "Jq7Xw2Rk9Lm4Tz8Vb3Nc6Hf1Sd5Gy0Pa"

GOOD_PRODUCTION = {
    "HAVEN_ENV": "production",
    # secrets.token_urlsafe(48), fixed so the tests are repeatable.
    "SECRET_KEY": GOOD_KEY,
    "REDIS_URL": "redis://cache.internal:6379/0",
    "DATABASE_URL": "postgresql+asyncpg://haven:pw@db.internal/haven",
}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HAVEN_ENV", "staging"),
        ("PORT", "eighty"),
        ("PORT", "0"),
        ("PORT", "70000"),
        ("DATABASE_URL", "mysql://root@localhost/haven"),
        ("DATABASE_URL", "not a url"),
        ("REDIS_URL", "http://localhost:6379"),
        ("REDIS_PORT", "redis"),
        ("SESSION_TTL", "10"),
        ("SESSION_TTL", "1.5"),
        ("SESSION_MAX_AGE", "30"),
        ("SESSION_MAX_AGE", "forever"),
        ("SHUTDOWN_TIMEOUT", "-1"),
        ("DRAIN_DELAY", "soon"),
        ("TRUST_PROXY", "maybe"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,not-a-network"),
        ("OPERATOR_TOKEN", "short"),
        ("DB_POOL_MIN", "-3"),
        ("DB_POOL_MAX", "0"),
        ("RATE_LIMIT_ENABLED", "2"),
        ("RATE_LIMIT_GLOBAL", "0"),
        ("RATE_LIMIT_PER_USER", "lots"),
        ("RATE_LIMIT_AUTH", "-5"),
        ("RATE_LIMIT_WINDOW", "0"),
        ("RATE_LIMIT_AUTH_EMAIL", "0"),
        ("RATE_LIMIT_REGISTER", "ten"),
        ("RATE_LIMIT_OPERATOR", "-1"),
        ("LOG_LEVEL", "loud"),
        ("LOG_FORMAT", "xml"),
        ("INSTANCE_ID", "api 1"),
        ("INSTANCE_ID", "api-1\r\nSet-Cookie: x=1"),
        ("INSTANCE_ID", "a" * 65),
        ("SESSION_COOKIE_NAME", "haven;session"),
    ],
)
def test_each_invalid_value_raises_config_error_naming_the_variable(
    variable: str, value: str
) -> None:
    env = {variable: value}
    if variable == "REDIS_PORT":
        env["REDIS_HOST"] = "localhost"
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    message = str(info.value)
    assert message.startswith(f"{variable}:"), message
    assert "\n" not in message


def test_session_max_age_below_session_ttl_names_session_max_age() -> None:
    with pytest.raises(ConfigError, match=r"^SESSION_MAX_AGE: .*SESSION_TTL") as info:
        load_settings({"SESSION_TTL": "7200", "SESSION_MAX_AGE": "3600"})
    assert "\n" not in str(info.value)
    settings = load_settings({"SESSION_TTL": "3600", "SESSION_MAX_AGE": "3600"})
    assert (settings.session_ttl, settings.session_max_age) == (3600, 3600)
    assert load_settings({}).session_max_age == 30 * 86400


def test_pool_max_below_pool_min_names_db_pool_max() -> None:
    with pytest.raises(ConfigError, match=r"^DB_POOL_MAX:"):
        load_settings({"DB_POOL_MIN": "10", "DB_POOL_MAX": "5"})


@pytest.mark.parametrize(
    ("missing", "variable"),
    [("SECRET_KEY", "SECRET_KEY"), ("REDIS_URL", "REDIS_URL")],
)
def test_production_without_a_required_secret_or_store_fails(missing: str, variable: str) -> None:
    env = {k: v for k, v in GOOD_PRODUCTION.items() if k != missing}
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert str(info.value).startswith(f"{variable}:")


def test_production_refuses_a_short_secret_key() -> None:
    with pytest.raises(ConfigError, match=r"^SECRET_KEY:"):
        load_settings({**GOOD_PRODUCTION, "SECRET_KEY": "too-short"})


def test_production_with_everything_set_loads_and_uses_json_logs() -> None:
    settings = load_settings(GOOD_PRODUCTION)
    assert settings.is_production
    assert settings.log_format == "json"
    assert settings.redis_url == "redis://cache.internal:6379/0"
    assert not settings.secret_key_generated


def test_redis_host_and_port_build_a_url_in_production() -> None:
    env = {k: v for k, v in GOOD_PRODUCTION.items() if k != "REDIS_URL"}
    settings = load_settings({**env, "REDIS_HOST": "valkey", "REDIS_PORT": "6380"})
    assert settings.redis_url == "redis://valkey:6380/0"


def test_development_defaults_generate_a_secret_and_use_embedded_stores() -> None:
    settings = load_settings({})
    assert settings.env == "development"
    assert settings.port == 4000
    assert settings.database_url == "sqlite+aiosqlite:///var/haven.db"
    assert settings.redis_url is None
    assert settings.secret_key_generated
    assert len(settings.secret_key) >= 32
    assert settings.session_cookie_name == "haven_session"
    assert (settings.shutdown_timeout_ms, settings.drain_delay_ms) == (30000, 5000)
    assert (settings.db_pool_min, settings.db_pool_max) == (5, 20)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgresql://u@h:5433/db", "postgresql+asyncpg://u@h:5433/db"),
        ("sqlite:///tmp/x.db", "sqlite+aiosqlite:///tmp/x.db"),
    ],
)
def test_plain_driver_names_are_accepted(given: str, expected: str) -> None:
    assert load_settings({"DATABASE_URL": given}).database_url == expected


def test_error_messages_never_print_a_database_password() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"DATABASE_URL": "mysql://root:hunter2@db/haven"})
    assert "hunter2" not in str(info.value)


def test_public_view_leaves_every_secret_out() -> None:
    settings = load_settings(
        {
            **GOOD_PRODUCTION,
            "REDIS_URL": "redis://:valkeypass@cache:6379/0",
            "OPERATOR_TOKEN": "operator-token-0123456789",
            "REDIS_PASSWORD": "another-secret",
        }
    )
    view = str(settings.public_view())
    for secret in (GOOD_KEY, "valkeypass", "operator-token-0123456789", "another-secret", ":pw@"):
        assert secret not in view
    assert settings.public_view()["SECRET_KEY"] == "(set)"


def test_redact_url_keeps_user_and_host() -> None:
    assert redact_url("postgresql+asyncpg://u:secret@h/db") == "postgresql+asyncpg://u:***@h/db"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"


def test_instance_id_and_cookie_name_accept_header_tokens() -> None:
    settings = load_settings({"INSTANCE_ID": "api-1.eu:2", "SESSION_COOKIE_NAME": "my_sid"})
    assert settings.instance_id == "api-1.eu:2"
    assert settings.session_cookie_name == "my_sid"


# -- issue 12: secrets, trusted proxies, CORS ----------------------------------------------------


@pytest.mark.parametrize("variable", ["SECRET_KEY", "OPERATOR_TOKEN"])
@pytest.mark.parametrize(
    "value",
    [
        "CHANGE-ME-operator-token",  # deploy/k8s/secret.yaml before issue 12
        "CHANGE-ME-secret-key-at-least-32-random-characters",
        "change-me-please-this-is-not-set-yet-0123456789",
        "an-example-secret-key-with-many-words-0123456789",
        "PLACEHOLDER-value-for-the-secret-9876543210abcdef",
        "replace_with_a_long_random_string_0123456789abcd",
        "TODO-generate-a-real-one-before-going-live-123456",
        "xxx-xxx-xxx-generate-me-before-going-live-123456789",
        "secret",
        "Password",
        "TOKEN",
        "changeme",
        "x" * 64,
        "a1" * 32,  # one short pattern repeated
        "abcdefgh" * 6,
        "0123456789abcdef0123",  # 20 hex characters: 80 bits
    ],
)
def test_production_refuses_placeholder_and_low_entropy_secrets(variable: str, value: str) -> None:
    env = {**GOOD_PRODUCTION, "OPERATOR_TOKEN": GOOD_TOKEN, variable: value}
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    message = str(info.value)
    assert message.startswith(f"{variable}:"), message
    assert "\n" not in message
    assert value not in message or len(value) < 10  # the secret itself is never echoed


def test_production_accepts_generated_secrets() -> None:
    import secrets

    for _ in range(200):
        env = {
            **GOOD_PRODUCTION,
            "SECRET_KEY": secrets.token_urlsafe(48),
            "OPERATOR_TOKEN": secrets.choice(
                [secrets.token_urlsafe(24), secrets.token_hex(24), secrets.token_hex(16)]
            ),
        }
        settings = load_settings(env)
        assert settings.operator_token == env["OPERATOR_TOKEN"]


def test_development_still_accepts_a_simple_operator_token() -> None:
    settings = load_settings({"OPERATOR_TOKEN": "CHANGE-ME-operator-token"})
    assert settings.operator_token == "CHANGE-ME-operator-token"


@pytest.mark.parametrize(
    "value",
    [
        "0.0.0.0/0",
        "::/0",
        "0.0.0.0/0.0.0.0",
        "10.1.2.3/0",
        "0::0/0",
        "0.0.0.0/1,128.0.0.0/1",
        "10.0.0.0/8,0.0.0.0/0",
        "::ffff:0:0/96",
        "::/1,8000::/1",
    ],
)
def test_trusted_proxies_refuses_every_spelling_of_the_whole_address_space(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"TRUST_PROXY": "true", "TRUSTED_PROXIES": value})
    message = str(info.value)
    assert message.startswith("TRUSTED_PROXIES:"), message
    assert "\n" not in message


def test_trusted_proxies_accepts_narrow_networks() -> None:
    settings = load_settings({"TRUSTED_PROXIES": "172.28.0.10/32,10.0.0.0/8,fd00::/8"})
    assert settings.trusted_proxies == ("172.28.0.10/32", "10.0.0.0/8", "fd00::/8")


@pytest.mark.parametrize("value", ["*", "https://app.example.com,*", "null", " * "])
def test_cors_wildcard_with_credentials_is_refused(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"CORS_ORIGINS": value})
    message = str(info.value)
    assert message.startswith("CORS_ORIGINS:"), message
    assert "\n" not in message


def test_cors_accepts_listed_origins() -> None:
    settings = load_settings({"CORS_ORIGINS": "https://app.example.com, https://admin.example.com"})
    assert settings.cors_origins == ("https://app.example.com", "https://admin.example.com")


def _sentinel_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in GOOD_PRODUCTION.items() if k != "REDIS_URL"}
    env.update(extra)
    return env


def test_sentinels_and_service_name_replace_redis_url_in_production() -> None:
    settings = load_settings(
        _sentinel_env(
            REDIS_SENTINELS=" s1.internal:26379, 10.0.0.2:26380 ,[fd00::3]:26379",
            REDIS_SENTINEL_MASTER="haven-main",
            REDIS_SENTINEL_PASSWORD="sentinel-pass",
        )
    )
    assert settings.redis_url == (
        "redis+sentinel://s1.internal:26379,10.0.0.2:26380,[fd00::3]:26379/haven-main"
    )
    assert parse_sentinel_url(settings.redis_url) == (
        [("s1.internal", 26379), ("10.0.0.2", 26380), ("fd00::3", 26379)],
        "haven-main",
    )
    assert settings.redis_sentinel_password == "sentinel-pass"
    view = settings.public_view()
    assert "REDIS_SENTINEL_PASSWORD" not in view
    assert "sentinel-pass" not in str(view)


@pytest.mark.parametrize(
    ("extra", "variable"),
    [
        ({"REDIS_SENTINELS": "s1:26379"}, "REDIS_SENTINEL_MASTER"),
        ({"REDIS_SENTINEL_MASTER": "haven"}, "REDIS_SENTINEL_MASTER"),
        ({"REDIS_SENTINELS": "s1", "REDIS_SENTINEL_MASTER": "haven"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "s1:0", "REDIS_SENTINEL_MASTER": "haven"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "s1:99999", "REDIS_SENTINEL_MASTER": "haven"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "s/1:26379", "REDIS_SENTINEL_MASTER": "haven"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "s1:26379", "REDIS_SENTINEL_MASTER": "a/b"}, "REDIS_SENTINEL_MASTER"),
        (
            {
                "REDIS_SENTINELS": "s1:26379",
                "REDIS_SENTINEL_MASTER": "haven",
                "REDIS_URL": "redis://cache:6379/0",
            },
            "REDIS_SENTINELS",
        ),
    ],
)
def test_bad_sentinel_settings_name_their_variable(extra: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_sentinel_env(**extra))
    assert str(info.value).startswith(f"{variable}:")

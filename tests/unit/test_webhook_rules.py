"""Pure rules of webhook delivery: signatures, the retry schedule, outbound addresses, settings."""

from __future__ import annotations

import ipaddress
import json
import secrets
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from haven.config import ConfigError, load_settings
from haven.webhooks import egress, signing
from haven.webhooks.worker import JITTER, retry_delay_ms


def test_signature_verifies_with_the_standard_webhooks_library() -> None:
    secret = signing.new_secret()
    other = signing.new_secret()
    assert secret.startswith("whsec_")
    body = json.dumps({"type": "lease.activated"}).encode()
    ts = int(datetime.now(UTC).timestamp())
    headers = signing.headers("evt_1", ts, body, [secret, other])
    Webhook(secret).verify(body, headers)
    Webhook(other).verify(body, headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(signing.new_secret()).verify(body, headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(secret).verify(body + b" ", headers)


@pytest.mark.parametrize("attempt", range(1, 12))
def test_retry_delay_is_exponential_capped_and_jittered(attempt: int) -> None:
    base, cap = 1000, 60_000
    nominal = min(base * 2 ** (attempt - 1), cap)
    low = retry_delay_ms(attempt, base, cap, rand=lambda: 0.0)
    high = retry_delay_ms(attempt, base, cap, rand=lambda: 0.999999)
    assert low == pytest.approx(nominal * (1 - JITTER))
    assert high == pytest.approx(nominal * (1 + JITTER), rel=1e-5)
    assert retry_delay_ms(attempt, base, cap, rand=lambda: 0.5) == pytest.approx(nominal)


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.31.0.1", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("100.100.100.200", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("fd00:ec2::254", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("::ffff:93.184.215.14", True),
        ("2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
        ("2001:0::1", False),  # Teredo
        ("ff02::1", False),
    ],
)
def test_only_public_unicast_addresses_are_allowed(address: str, allowed: bool) -> None:
    assert egress.address_allowed(ipaddress.ip_address(address)) is allowed


def test_the_pinned_target_keeps_host_and_port() -> None:
    import asyncio

    target = asyncio.run(egress.target("https://93.184.215.14:8443/x?y=1", allow_private=False))
    assert target.url == "https://93.184.215.14:8443/x?y=1"
    assert target.host_header == "93.184.215.14:8443"
    v6 = asyncio.run(egress.target("http://[::1]:81/x", allow_private=True))
    assert v6.url == "http://[::1]:81/x"
    assert v6.address == "::1"


def test_webhook_settings_are_checked() -> None:
    base = {"SECRET_KEY": secrets.token_urlsafe(48), "REDIS_URL": "redis://r:6379/0"}
    with pytest.raises(ConfigError, match="WEBHOOK_ALLOW_PRIVATE"):
        load_settings({**base, "HAVEN_ENV": "production", "WEBHOOK_ALLOW_PRIVATE": "true"})
    with pytest.raises(ConfigError, match="WEBHOOK_CLAIM_TTL"):
        load_settings({"WEBHOOK_TIMEOUT": "5000", "WEBHOOK_CLAIM_TTL": "4000"})
    with pytest.raises(ConfigError, match="EVENT_RETENTION_DAYS"):
        load_settings({"EVENT_RETENTION_DAYS": "0"})
    settings = load_settings({"EVENT_RETENTION_DAYS": "7", "WEBHOOK_RETRY_BASE": "250"})
    assert settings.event_retention_days == 7
    assert settings.webhook_retry_base_ms == 250

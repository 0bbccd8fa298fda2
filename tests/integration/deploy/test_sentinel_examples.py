"""The commented Sentinel examples in the compose file and the manifests load as written."""

from __future__ import annotations

import re
import secrets as random_secrets

from haven.config import load_settings, parse_sentinel_url
from support_deploy import DEPLOY

EXAMPLE = re.compile(r"^\s*#\s+(REDIS_SENTINEL[A-Z_]*|REDIS_PASSWORD):\s*(\S+)\s*$")


def _examples(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for line in text.splitlines() if (m := EXAMPLE.match(line))}


def _load(env: dict[str, str]) -> tuple[list[tuple[str, int]], str]:
    settings = load_settings(
        {
            "HAVEN_ENV": "production",
            "SECRET_KEY": random_secrets.token_urlsafe(48),
            "DATABASE_URL": "postgresql+asyncpg://haven:pw@db/haven",
            **env,
        }
    )
    assert settings.redis_url is not None
    return parse_sentinel_url(settings.redis_url)


def test_the_compose_sentinel_example_is_a_valid_configuration() -> None:
    env = _examples((DEPLOY / "docker-compose.loadbalancer.yml").read_text())
    env["REDIS_SENTINEL_PASSWORD"] = "from-the-shell"  # ${REDIS_SENTINEL_PASSWORD:-}
    hosts, master = _load(env)
    assert [h for h, _ in hosts] == ["sentinel-1", "sentinel-2", "sentinel-3"]
    assert master == "haven"


def test_the_kubernetes_sentinel_example_is_a_valid_configuration() -> None:
    env = _examples((DEPLOY / "k8s" / "configmap.yaml").read_text())
    # secret.yaml ships no Secret, only the `kubectl create secret` command to run.
    literal = re.compile(r"--from-literal=(REDIS_[A-Z_]*PASSWORD)='([^']*)'")
    secrets = dict(literal.findall((DEPLOY / "k8s" / "secret.yaml").read_text()))
    assert set(secrets) == {"REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD"}
    hosts, master = _load({**env, **secrets})
    assert len(hosts) == 3
    assert all(port == 26379 for _, port in hosts)
    assert master == "haven"

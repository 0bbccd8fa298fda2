"""deploy/docker-compose.loadbalancer.yml against the vendored Compose specification and Haven."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import secrets
from typing import Any

import jsonschema
import pytest

from haven.config import ConfigError, load_settings
from support_deploy import (
    COMPOSE_FILE,
    COMPOSE_SCHEMA,
    DEPLOY,
    default_settings,
    duration_seconds,
    interpolate,
    load_yaml,
)

# What an operator exports before `docker compose up` (docs/deployment.md).
OPERATOR_ENV = {
    "SECRET_KEY": secrets.token_urlsafe(48),
    "POSTGRES_PASSWORD": "pg-password-from-the-operator",
    "OPERATOR_TOKEN": secrets.token_urlsafe(32),
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


def api_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc for name, svc in compose["services"].items() if re.fullmatch(r"api-\d+", name)
    }


def service_env(service: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    raw = service.get("environment", {})
    assert isinstance(raw, dict), "write environment as a mapping"
    return {key: interpolate(str(value), env) for key, value in raw.items()}


def test_compose_file_validates_against_the_vendored_compose_spec(compose: dict[str, Any]) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose)
    ]
    assert errors == []


def test_the_schema_rejects_what_compose_would_reject(compose: dict[str, Any]) -> None:
    """The validation bites: a misspelt key fails, so the test above means something."""
    validator = jsonschema.Draft202012Validator(json.loads(COMPOSE_SCHEMA.read_text()))
    broken = json.loads(json.dumps(compose))
    broken["services"]["api-1"]["healthcheck"]["intervall"] = "5s"
    assert list(validator.iter_errors(broken))
    broken = json.loads(json.dumps(compose))
    broken["services"]["api-1"]["depends_on"]["migrate"]["condition"] = "service_done"
    assert list(validator.iter_errors(broken))


def test_vendored_schema_records_its_source() -> None:
    readme = (DEPLOY / "schemas" / "README.md").read_text()
    digest = hashlib.sha256(COMPOSE_SCHEMA.read_bytes()).hexdigest()
    assert digest in readme, "deploy/schemas/README.md must record the schema's sha256"
    assert "check-jsonschema" in readme
    assert "0.39.0" in readme
    assert (DEPLOY / "schemas" / "LICENSE.compose-spec").exists()


def test_three_api_instances_with_their_own_instance_id(compose: dict[str, Any]) -> None:
    apis = api_services(compose)
    assert sorted(apis) == ["api-1", "api-2", "api-3"]
    for name, svc in apis.items():
        assert service_env(svc, OPERATOR_ENV)["INSTANCE_ID"] == name
        assert "ports" not in svc, f"{name} must be reached through nginx only"


def test_api_environment_loads_as_production_settings(compose: dict[str, Any]) -> None:
    for name, svc in api_services(compose).items():
        settings = load_settings(service_env(svc, OPERATOR_ENV))
        assert settings.is_production, name
        assert settings.instance_id == name
        assert settings.host == "0.0.0.0"
        assert settings.database_url.startswith("postgresql+asyncpg://haven:")
        assert "@postgres:5432/" in settings.database_url
        assert settings.redis_url == "redis://redis:6379/0"
        assert settings.secret_key == OPERATOR_ENV["SECRET_KEY"]
        assert settings.trust_proxy
    migrate = compose["services"]["migrate"]
    assert load_settings(service_env(migrate, OPERATOR_ENV)).is_production


def test_secrets_must_come_from_the_operator(compose: dict[str, Any]) -> None:
    env = service_env(compose["services"]["api-1"], OPERATOR_ENV)
    assert env["SECRET_KEY"] == OPERATOR_ENV["SECRET_KEY"]
    for missing in ("SECRET_KEY", "POSTGRES_PASSWORD"):
        partial = {k: v for k, v in OPERATOR_ENV.items() if k != missing}
        with pytest.raises(KeyError, match=missing):
            service_env(compose["services"]["api-1"], partial)


def test_api_healthcheck_asks_ready_on_havens_port(compose: dict[str, Any]) -> None:
    for name, svc in api_services(compose).items():
        settings = load_settings(service_env(svc, OPERATOR_ENV))
        test = svc["healthcheck"]["test"]
        assert test[0] == "CMD", f"{name}: exec-form healthcheck (no shell in between)"
        script = " ".join(test[1:])
        assert f"127.0.0.1:{settings.port}/ready" in script, name
        assert settings.port == default_settings().port == 4000
        assert svc["expose"] == [str(settings.port)]


def test_stop_grace_period_outlasts_the_drain(compose: dict[str, Any]) -> None:
    defaults = default_settings()
    for name, svc in api_services(compose).items():
        settings = load_settings(service_env(svc, OPERATOR_ENV))
        # The file sets them explicitly, to Haven's defaults.
        assert settings.drain_delay_ms == defaults.drain_delay_ms
        assert settings.shutdown_timeout_ms == defaults.shutdown_timeout_ms
        drain = (settings.drain_delay_ms + settings.shutdown_timeout_ms) / 1000
        assert duration_seconds(svc["stop_grace_period"]) > drain, name
        assert svc.get("stop_signal", "SIGTERM") == "SIGTERM", name


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        if name == "migrate":
            continue
        check = svc.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL")
        assert duration_seconds(check["timeout"]) < duration_seconds(check["interval"])
    pg = compose["services"]["postgres"]
    assert pg["image"].startswith("postgres:16")
    assert "pg_isready" in pg["healthcheck"]["test"]
    redis = compose["services"]["redis"]
    assert redis["command"][:3] == ["redis-server", "--appendonly", "yes"]
    assert "ping" in redis["healthcheck"]["test"]
    assert any(v.endswith(":/data") for v in redis["volumes"]), "AOF must live on a volume"


def test_start_order_uses_conditions(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on needs conditions"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert spec["condition"] in ("service_healthy", "service_completed_successfully")
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, svc in api_services(compose).items():
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy", name
    nginx = services["nginx"]
    conditions = {k: v["condition"] for k, v in nginx["depends_on"].items()}
    assert conditions == dict.fromkeys(api_services(compose), "service_healthy")


def test_haven_services_share_one_image_built_from_the_dockerfile(compose: dict[str, Any]) -> None:
    haven = {
        n: s
        for n, s in compose["services"].items()
        if n in ("migrate", "scheduler") or n.startswith("api-")
    }
    assert len({s["image"] for s in haven.values()}) == 1
    for name, svc in haven.items():
        build = svc["build"]
        assert (COMPOSE_FILE.parent / build["context"] / build["dockerfile"]).resolve() == (
            DEPLOY / "Dockerfile"
        ), name


def test_nginx_mounts_the_rendered_config_and_is_the_only_published_port(
    compose: dict[str, Any],
) -> None:
    nginx = compose["services"]["nginx"]
    assert "./compose:/etc/nginx/haven:ro" in nginx["volumes"]
    assert nginx["command"][:3] == ["nginx", "-c", "/etc/nginx/haven/nginx.conf"]
    published = [n for n, s in compose["services"].items() if s.get("ports")]
    assert published == ["nginx"]
    rendered = DEPLOY / "compose" / "nginx.conf"
    if rendered.exists():  # produced by `haven render-config nginx` (docs/deployment.md)
        text = rendered.read_text()
        for name in api_services(compose):
            assert re.search(rf"server\s+{name}:4000\b", text), f"{name} missing from nginx.conf"
        pid = re.search(r"^\s*pid\s+(\S+);", text, re.MULTILINE)
        assert pid is not None
        runtime_dir = pid.group(1).rsplit("/", 1)[0]
        assert runtime_dir in nginx.get("tmpfs", []), "nginx's runtime dir must be writable"


# -- issue 12: whom the instances believe, and what the operator must supply -------------------


def test_instances_trust_only_nginxs_fixed_address(compose: dict[str, Any]) -> None:
    nginx = compose["services"]["nginx"]
    address = interpolate(nginx["networks"]["default"]["ipv4_address"], OPERATOR_ENV)
    subnet = interpolate(compose["networks"]["default"]["ipam"]["config"][0]["subnet"], {})
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    for name, svc in api_services(compose).items():
        settings = load_settings(service_env(svc, OPERATOR_ENV))
        assert settings.trust_proxy, name
        networks = [ipaddress.ip_network(c, strict=False) for c in settings.trusted_proxies]
        assert networks == [ipaddress.ip_network(f"{address}/32")], name
        # No other container on the network (nor a VPN client) is believed.
        for other in ("172.28.0.11", "10.8.0.2", "192.168.1.20", "172.17.0.5"):
            assert not any(ipaddress.ip_address(other) in n for n in networks), (name, other)
    # Moving nginx moves the trust with it.
    moved = {**OPERATOR_ENV, "HAVEN_LB_ADDRESS": "172.28.0.99"}
    settings = load_settings(service_env(api_services(compose)["api-1"], moved))
    assert settings.trusted_proxies == ("172.28.0.99/32",)


def test_every_service_is_on_the_fixed_subnet_network(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        nets = svc.get("networks", {"default": None})
        assert list(nets) == ["default"], name


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SECRET_KEY", "CHANGE-ME-secret-key-at-least-32-random-characters"),
        ("SECRET_KEY", "x" * 48),
        ("OPERATOR_TOKEN", "CHANGE-ME-operator-token"),
        ("OPERATOR_TOKEN", "replace-with-a-random-operator-token"),
    ],
)
def test_a_placeholder_secret_stops_the_instances(
    compose: dict[str, Any], variable: str, value: str
) -> None:
    env = service_env(compose["services"]["api-1"], {**OPERATOR_ENV, variable: value})
    with pytest.raises(ConfigError, match=f"^{variable}:"):
        load_settings(env)


def test_the_scheduler_service_runs_the_daily_jobs_after_migrating(
    compose: dict[str, Any],
) -> None:
    from click.testing import CliRunner

    from haven.cli import main

    svc = compose["services"]["scheduler"]
    assert svc["command"][:2] == ["jobs", "scheduler"]
    assert "--once" not in svc["command"]  # a long-running loop, restarted if it dies
    assert svc["restart"] == "unless-stopped"
    assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    settings = load_settings(service_env(svc, OPERATOR_ENV))
    assert settings.is_production
    assert settings.instance_id == "scheduler"
    assert settings.redis_url == "redis://redis:6379/0"  # the cluster-wide job locks
    # The healthcheck reads the heartbeat file the command writes, on the writable tmpfs.
    beat = svc["command"][svc["command"].index("--heartbeat") + 1]
    assert beat in " ".join(svc["healthcheck"]["test"])
    assert any(beat.startswith(t) for t in svc["tmpfs"])
    interval = float(svc["command"][svc["command"].index("--interval") + 1])
    assert f"> {int(2 * interval)}" in " ".join(svc["healthcheck"]["test"])
    assert "ports" not in svc
    result = CliRunner().invoke(main, [*svc["command"], "--help"])
    assert result.exit_code == 0, result.output

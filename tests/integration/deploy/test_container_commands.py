"""The health checks the deploy files declare, run as written against a real `haven serve`.

No Docker engine runs here, so this runs the very commands Docker would: the
Dockerfile's HEALTHCHECK and the compose API healthcheck (with `python` being
this interpreter and the port being the test instance's), plus the paths the
Kubernetes probes ask. Liveness must stay green while an instance drains,
readiness must turn red, and SIGTERM must end in exit 0.
"""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from haven.config import load_settings
from haven.db.migrate import upgrade
from haven.store.embedded import EmbeddedValkey
from support_deploy import (
    COMPOSE_FILE,
    DOCKERFILE,
    duration_seconds,
    exec_form,
    load_yaml,
    one,
    parse_dockerfile,
)
from support_lb import Instance, instance_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

OPERATOR_TOKEN = "deploy-test-operator-token"


def dockerfile_healthcheck() -> list[str]:
    check = parse_dockerfile(DOCKERFILE.read_text())[-1].last("HEALTHCHECK")
    assert check is not None
    command = exec_form(re.sub(r"--[a-z-]+=\S+\s*", "", check.value).strip()[len("CMD ") :])
    assert command is not None
    return command


def compose_healthcheck(port: int) -> list[str]:
    test = load_yaml(COMPOSE_FILE)["services"]["api-1"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    return [arg.replace("127.0.0.1:4000/", f"127.0.0.1:{port}/") for arg in test[1:]]


def run_check(argv: list[str], env: dict[str, str]) -> int:
    assert argv[0] == "python", "the image has python, not curl"
    done = subprocess.run(
        [sys.executable, *argv[1:]], env=env, capture_output=True, timeout=20, check=False
    )
    return done.returncode


@pytest.fixture
def instance(tmp_path: Path, valkey: EmbeddedValkey) -> Iterator[Instance]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'haven.db'}"
    upgrade(load_settings({"DATABASE_URL": url}))
    env = instance_env(
        HAVEN_ENV="production",  # as the image runs it
        REDIS_URL=valkey.url,
        REDIS_KEY_PREFIX=f"deploy-{secrets.token_hex(4)}",
        DATABASE_URL=url,
        SECRET_KEY=secrets.token_urlsafe(48),
        OPERATOR_TOKEN=OPERATOR_TOKEN,
        DRAIN_DELAY="300",
        SHUTDOWN_TIMEOUT="5000",
        DB_POOL_MIN="1",
        DB_POOL_MAX="5",
    )
    started = Instance(env, tmp_path, "deploy-check")
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


def test_declared_health_checks_follow_the_instance_through_drain_and_exit(
    instance: Instance,
) -> None:
    check_env = instance_env(PORT=str(instance.port))
    docker_alive = dockerfile_healthcheck()
    compose_ready = compose_healthcheck(instance.port)

    # Serving: both checks pass, and the Kubernetes probe paths answer 200.
    assert run_check(docker_alive, check_env) == 0
    assert run_check(compose_ready, check_env) == 0
    container = one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        path = container[probe]["httpGet"]["path"]
        assert instance.get(path).status_code == 200, probe

    # Draining (operator drain: not ready, still serving): readiness red, liveness green,
    # so the load balancer lets go and nothing restarts the container.
    drained = httpx.post(
        f"{instance.url}/api/v1/load-balancer/drain",
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        timeout=5.0,
    )
    assert drained.status_code == 202
    assert run_check(compose_ready, check_env) != 0
    assert run_check(docker_alive, check_env) == 0
    assert instance.get(container["readinessProbe"]["httpGet"]["path"]).status_code == 503
    assert instance.get(container["livenessProbe"]["httpGet"]["path"]).status_code == 200

    # SIGTERM, as `docker stop` / the kubelet send it: exit 0 within the declared grace.
    grace = duration_seconds(load_yaml(COMPOSE_FILE)["services"]["api-1"]["stop_grace_period"])
    instance.signal(signal.SIGTERM)
    assert instance.process.wait(timeout=grace) == 0, instance.output()
    assert run_check(docker_alive, check_env) != 0

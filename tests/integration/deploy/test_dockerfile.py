"""deploy/Dockerfile, read statically (no Docker engine here): what the runtime stage will do."""

from __future__ import annotations

import re

import pytest

from support_deploy import (
    DEPLOY,
    DOCKERFILE,
    Stage,
    default_settings,
    exec_form,
    one,
    parse_dockerfile,
)


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def _healthcheck_command(value: str) -> list[str]:
    options = re.findall(r"--([a-z-]+)=(\S+)", value)
    rest = re.sub(r"--[a-z-]+=\S+\s*", "", value).strip()
    assert rest.startswith("CMD "), f"HEALTHCHECK must run a command, got {value!r}"
    command = exec_form(rest[len("CMD ") :])
    assert command is not None, "HEALTHCHECK CMD must be exec form (a JSON array)"
    assert dict(options).get("timeout"), "HEALTHCHECK needs a timeout"
    return command


def test_multi_stage_build_installs_a_wheel_into_slim_python(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    builder, runtime = stages[0], stages[-1]
    assert builder.name == "builder"
    assert any("pip wheel" in i.value for i in builder.all("RUN")), "builder must build wheels"
    assert runtime.base.startswith("python:")
    assert runtime.base.endswith("-slim")
    assert "${PYTHON_VERSION}" in runtime.base or "3.11" in runtime.base
    assert "ARG PYTHON_VERSION=3.11" in DOCKERFILE.read_text()
    installs = [i.value for i in runtime.all("RUN") if "pip install" in i.value]
    assert installs, "runtime stage must pip install the wheel"
    assert any("from=builder" in v and "--no-index" in v for v in installs), (
        "runtime must install only the builder's wheels, offline"
    )


def test_final_stage_runs_as_a_non_root_user(stages: list[Stage]) -> None:
    runtime = stages[-1]
    user = runtime.last("USER")
    assert user is not None, "final stage has no USER"
    uid = user.value.split(":")[0]
    assert uid not in ("root", "0"), f"final stage runs as {user.value}"
    # Numeric, so Kubernetes' runAsNonRoot can check it, and the manifests agree.
    assert uid.isdigit(), "use a numeric uid so runAsNonRoot can verify it"
    pod = one("Deployment")["spec"]["template"]["spec"]
    assert str(pod["securityContext"]["runAsUser"]) == uid
    # No instruction after USER switches back to root.
    after = [i for i in runtime.instructions if i.line > user.line]
    assert not [i for i in after if i.keyword == "USER"]


def test_healthcheck_asks_alive_with_python(stages: list[Stage]) -> None:
    check = stages[-1].last("HEALTHCHECK")
    assert check is not None, "final stage has no HEALTHCHECK"
    command = _healthcheck_command(check.value)
    assert command[0] == "python", "slim images have no curl: the check must use python"
    script = " ".join(command)
    assert "/alive" in script
    assert "/ready" not in script, "liveness must not depend on readiness or dependencies"
    assert "PORT" in script
    assert str(default_settings().port) in script


def test_entrypoint_and_cmd_are_exec_form_running_haven(stages: list[Stage]) -> None:
    runtime = stages[-1]
    entrypoint, cmd = runtime.last("ENTRYPOINT"), runtime.last("CMD")
    assert cmd is not None
    cmd_args = exec_form(cmd.value)
    assert cmd_args is not None, "CMD must be exec form so SIGTERM reaches haven (PID 1)"
    if entrypoint is not None:
        entry_args = exec_form(entrypoint.value)
        assert entry_args is not None, "ENTRYPOINT must be exec form"
        argv = entry_args + cmd_args
    else:
        argv = cmd_args
    assert argv[0] == "haven", f"the container must run haven directly, got {argv}"
    assert argv[1] == "serve"
    assert not {"sh", "bash", "/bin/sh", "-c"} & set(argv), "no shell between Docker and haven"
    stop = runtime.last("STOPSIGNAL")
    assert stop is not None
    assert stop.value == "SIGTERM"


def test_listens_on_all_interfaces_at_havens_port(stages: list[Stage]) -> None:
    runtime = stages[-1]
    port = default_settings().port
    exposed = {p.split("/")[0] for i in runtime.all("EXPOSE") for p in i.value.split()}
    assert exposed == {str(port)}
    env_text = " ".join(i.value for i in runtime.all("ENV"))
    assert re.search(r"\bHOST=0\.0\.0\.0\b", env_text), "bind 0.0.0.0 inside the container"
    assert re.search(rf"\bPORT={port}\b", env_text)
    assert re.search(r"\bHAVEN_ENV=production\b", env_text)


def test_build_context_ignore_file_keeps_what_the_wheel_needs() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for stage in parse_dockerfile(DOCKERFILE.read_text()):
        for copy in stage.all("COPY"):
            if "--from" in copy.value:
                continue
            copied.update(p.rstrip("/") for p in copy.value.split()[:-1])
    assert copied, "builder copies nothing"
    assert copied <= kept, f"COPY sources excluded from the context: {copied - kept}"

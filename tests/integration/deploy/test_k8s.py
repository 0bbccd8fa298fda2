"""deploy/k8s: every manifest validates (kubernetes-validate, strict) and agrees with Haven."""

from __future__ import annotations

import copy
import ipaddress
import re
import secrets
import shlex
import subprocess
import sys
from typing import Any

import kubernetes_validate
import pytest
import yaml

from haven.config import ConfigError, Settings, load_settings
from support_deploy import (
    DEPLOY,
    K8S,
    K8S_VERSION,
    default_settings,
    k8s_by_kind,
    k8s_resources,
    load_yaml,
    one,
)

RESOURCES = k8s_resources()
EXPECTED_KINDS = {
    "Namespace",
    "ServiceAccount",
    "ConfigMap",
    "Deployment",
    "Service",
    "Ingress",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Job",
    "NetworkPolicy",
    "CronJob",
}


def _validate(resource: dict[str, Any]) -> None:
    # SchemaNotFoundError (unknown kind/apiVersion) propagates: that is a failure too.
    kubernetes_validate.validate(resource, K8S_VERSION, strict=True)


@pytest.mark.parametrize(
    "resource",
    [doc for _, doc in RESOURCES],
    ids=[f"{name}:{doc['kind']}/{doc['metadata']['name']}" for name, doc in RESOURCES],
)
def test_manifest_validates_strictly(resource: dict[str, Any]) -> None:
    _validate(resource)


def test_strict_validation_rejects_a_misspelt_field() -> None:
    broken = copy.deepcopy(one("Deployment"))
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbes"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(broken)
    wrong_api = copy.deepcopy(one("HorizontalPodAutoscaler"))
    wrong_api["apiVersion"] = "autoscaling/v9"
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        _validate(wrong_api)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    on_disk = sorted(
        p.name
        for p in K8S.glob("*.yaml")
        if p.name != "kustomization.yaml" and any(yaml.safe_load_all(p.read_text()))
    )
    assert sorted(listed) == on_disk
    assert len(set(listed)) == len(listed)
    assert {doc["kind"] for _, doc in RESOURCES} == EXPECTED_KINDS
    assert kustomization["namespace"] == one("Namespace")["metadata"]["name"]
    assert [i["name"] for i in kustomization["images"]] == ["haven"]


SECRET_DOC = K8S / "secret.yaml"


def documented_secret_command() -> str:
    """The `kubectl create secret generic` command secret.yaml tells the operator to run."""
    lines = [line.removeprefix("#").strip() for line in SECRET_DOC.read_text().splitlines()]
    start = next(i for i, line in enumerate(lines) if "create secret generic" in line)
    command = []
    for line in lines[start:]:
        command.append(line.removesuffix("\\").strip())
        if not line.endswith("\\"):
            break
    return " ".join(command)


def operator_secret() -> tuple[str, dict[str, str]]:
    """(name, data) of the Secret the documented command creates, run as the operator would.

    The `$(python3 -c ...)` substitutions really run; the <...> passwords get random values.
    """
    argv = shlex.split(documented_secret_command())
    name = argv[argv.index("generic") + 1]
    data: dict[str, str] = {}
    for arg in argv:
        if not arg.startswith("--from-literal="):
            continue
        key, _, value = arg.removeprefix("--from-literal=").partition("=")
        substitution = re.fullmatch(r"\$\(python3 -c (.+)\)", value)
        if substitution:
            (code,) = shlex.split(substitution.group(1))
            value = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
            ).stdout.strip()
        data[key] = re.sub(r"<[a-z-]+>", lambda _: secrets.token_hex(12), value)
    return name, data


def merged_env() -> dict[str, str]:
    """What the pod sees from envFrom: the ConfigMap, then the operator's Secret."""
    env = dict(one("ConfigMap")["data"])
    env.update(operator_secret()[1])
    return {k: str(v) for k, v in env.items()}


def pod_settings() -> Settings:
    return load_settings({**merged_env(), "INSTANCE_ID": "haven-7d9f-abcde"})


def _own_pool(container: dict[str, Any]) -> int:
    """DB_POOL_MAX as the container sees it: the ConfigMap's, unless its env overrides it."""
    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    return load_settings({**merged_env(), "INSTANCE_ID": "job-1", **env}).db_pool_max


def haven_container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_configmap_and_the_operators_secret_load_as_production_settings() -> None:
    settings = pod_settings()
    assert settings.is_production
    assert settings.host == "0.0.0.0"
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.redis_url is not None
    assert settings.redis_url.startswith("redis://")
    assert settings.operator_token is not None
    assert settings.trust_proxy
    assert settings.log_format == "json"
    # Secrets stay out of the ConfigMap.
    assert not {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "OPERATOR_TOKEN"} & set(
        one("ConfigMap")["data"]
    )


def test_no_secret_with_placeholder_values_is_shipped() -> None:
    """Issue 12: secret.yaml's CHANGE-ME values passed the start-up check; now none exist."""
    assert k8s_by_kind("Secret") == []
    assert "secret.yaml" not in load_yaml(K8S / "kustomization.yaml")["resources"]
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and path.suffix in {".yaml", ".yml", ".conf", ".cfg", ""}:
            assert "CHANGE-ME" not in path.read_text(errors="replace"), path
    # What the old template shipped is refused at start.
    for key, placeholder in (
        ("SECRET_KEY", "CHANGE-ME-secret-key-at-least-32-random-characters"),
        ("OPERATOR_TOKEN", "CHANGE-ME-operator-token"),
    ):
        with pytest.raises(ConfigError, match=f"^{key}:"):
            load_settings({**merged_env(), key: placeholder})


def test_the_documented_secret_command_covers_what_production_needs() -> None:
    name, data = operator_secret()
    assert set(data) == {"SECRET_KEY", "OPERATOR_TOKEN", "DATABASE_URL", "REDIS_URL"}
    assert "token_urlsafe(48)" in documented_secret_command()
    # Every workload reads exactly that Secret.
    for workload in (one("Deployment"), one("Job")):
        assert {"secretRef": {"name": name}} in haven_container(workload)["envFrom"]
    # Two runs give two different keys (the command generates them; nothing is fixed).
    assert operator_secret()[1]["SECRET_KEY"] != data["SECRET_KEY"]


def test_configmap_trusts_no_whole_network_for_forwarded_headers() -> None:
    """Issue 12: 10/8, 172.16/12 and 192.168/16 let any pod or VPN client choose its IP."""
    settings = pod_settings()
    for cidr in settings.trusted_proxies:
        network = ipaddress.ip_network(cidr, strict=False)
        assert network.num_addresses == 1, f"TRUSTED_PROXIES {cidr} is more than one address"
    for client in ("10.0.0.7", "172.16.4.2", "192.168.0.9", "100.64.0.1"):
        assert not any(
            ipaddress.ip_address(client) in ipaddress.ip_network(c, strict=False)
            for c in settings.trusted_proxies
        ), client
    doc = (K8S / "configmap.yaml").read_text()
    assert "ingress controller's pod" in doc  # tells the operator what to set


def _ingress_routes(path: str) -> bool:
    """Whether a request path reaches Haven through the Ingress (Prefix/Exact semantics)."""
    for rule in one("Ingress")["spec"]["rules"]:
        for item in rule["http"]["paths"]:
            want, kind = item["path"], item["pathType"]
            if kind == "Exact" and path == want:
                return True
            if kind == "Prefix":
                prefix = want.rstrip("/").split("/")
                if path.rstrip("/").split("/")[: len(prefix)] == prefix:
                    return True
    return False


def test_ingress_routes_what_clients_use_and_not_metrics() -> None:
    for path in (
        "/api/v1/auth/me",
        "/api/v1/load-balancer/health",
        "/status",
        "/status/assets/status.js",
        "/docs",
        "/openapi.json",
        "/health",
        "/ready",
        "/alive",
    ):
        assert _ingress_routes(path), path
    for path in ("/metrics", "/metrics/", "/metricsx", "/", "/apiary"):
        assert not _ingress_routes(path), path
    annotations = one("Ingress")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"


def test_network_policy_admits_only_the_ingress_controller_and_prometheus() -> None:
    policy = one("NetworkPolicy")
    pod_labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    namespaces = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in rule["from"]
    }
    assert namespaces == {"ingress-nginx", "monitoring"}
    assert [p["port"] for p in rule["ports"]] == ["http"]


def test_probes_and_ports_match_haven() -> None:
    settings = pod_settings()
    assert settings.port == default_settings().port == 4000
    container = haven_container(one("Deployment"))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": settings.port}

    def target(probe: dict[str, Any]) -> tuple[str, int]:
        get = probe["httpGet"]
        port = get["port"]
        return get["path"], ports[port] if isinstance(port, str) else port

    assert target(container["startupProbe"]) == ("/alive", settings.port)
    assert target(container["livenessProbe"]) == ("/alive", settings.port)
    assert target(container["readinessProbe"]) == ("/ready", settings.port)
    # Liveness must tolerate a slow moment; startup must allow a cold start.
    assert container["livenessProbe"]["failureThreshold"] >= 3
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30
    assert container["args"] == ["serve"]
    env = {e["name"]: e for e in container["env"]}
    assert env["INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def _prestop_seconds(container: dict[str, Any]) -> float:
    hook = container.get("lifecycle", {}).get("preStop")
    if not hook:
        return 0.0
    if "sleep" in hook:
        return float(hook["sleep"]["seconds"])
    command = hook.get("exec", {}).get("command", [])
    if command and command[0].endswith("sleep"):
        return float(command[1])
    raise AssertionError(f"unrecognised preStop hook {hook}")


def test_termination_grace_period_outlasts_prestop_and_drain() -> None:
    settings = pod_settings()
    defaults = default_settings()
    assert settings.drain_delay_ms == defaults.drain_delay_ms
    assert settings.shutdown_timeout_ms == defaults.shutdown_timeout_ms
    deployment = one("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    needed = (
        _prestop_seconds(haven_container(deployment))
        + settings.drain_delay_ms / 1000
        + settings.shutdown_timeout_ms / 1000
    )
    assert pod["terminationGracePeriodSeconds"] > needed
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] >= 1


def test_references_between_resources_line_up() -> None:
    deployment = one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()

    service = one("Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    container = haven_container(deployment)
    port_names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names

    ingress = one("Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == service["metadata"]["name"]
            assert backend["port"]["name"] in service_ports

    hpa = one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] >= 2
    assert (
        hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    )

    pdb = one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    # Pool arithmetic from the ConfigMap comment: at the HPA's maximum, plus the surge pod
    # of a rollout, plus the migration Job and every CronJob (each with its own pool),
    # within a default PostgreSQL (100 - 3 reserved).
    worst = hpa["spec"]["maxReplicas"] + deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    jobs = [haven_container(one("Job"))] + [
        c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        for c in k8s_by_kind("CronJob")
    ]
    job_pools = sum(_own_pool(container) for container in jobs)
    assert worst * pod_settings().db_pool_max + job_pools <= 100 - 3

    config_name = one("ConfigMap")["metadata"]["name"]
    secret_name = operator_secret()[0]
    account = one("ServiceAccount")["metadata"]["name"]
    for workload in (deployment, one("Job")):
        pod = workload["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == account
        refs = haven_container(workload)["envFrom"]
        assert {"configMapRef": {"name": config_name}} in refs
        assert {"secretRef": {"name": secret_name}} in refs


def test_migration_job_runs_haven_migrate_with_the_same_image() -> None:
    job = one("Job")
    container = haven_container(job)
    assert container["args"] == ["migrate"]
    assert container["image"] == haven_container(one("Deployment"))["image"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] >= 1


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_run_non_root_read_only_with_resource_bounds(kind: str) -> None:
    (workload,) = k8s_by_kind(kind)
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys()
        assert {"cpu", "memory"} <= resources["limits"].keys()
        # Read-only root: /tmp is the one writable place.
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]


def _cron_pod(cron: dict[str, Any]) -> dict[str, Any]:
    return dict(cron["spec"]["jobTemplate"]["spec"]["template"]["spec"])


def test_a_cronjob_per_scheduled_job_runs_the_scheduler_once_without_overlap() -> None:
    from haven.jobs.scheduler import JOBS

    crons = k8s_by_kind("CronJob")
    jobs = {}
    for cron in crons:
        spec = cron["spec"]
        assert spec["concurrencyPolicy"] == "Forbid", cron["metadata"]["name"]
        assert spec["startingDeadlineSeconds"] > 0
        pod = _cron_pod(cron)
        assert pod["restartPolicy"] in ("Never", "OnFailure")
        (container,) = pod["containers"]
        args = container["args"]
        assert args[:3] == ["jobs", "scheduler", "--once"], args
        assert args[3] == "--job"
        jobs[args[4]] = spec["schedule"]
        assert container["image"] == haven_container(one("Deployment"))["image"]
        refs = container["envFrom"]
        assert {"configMapRef": {"name": one("ConfigMap")["metadata"]["name"]}} in refs
        assert {"secretRef": {"name": operator_secret()[0]}} in refs
        assert pod["serviceAccountName"] == one("ServiceAccount")["metadata"]["name"]
    assert sorted(jobs) == sorted(JOBS)
    # Billing every hour: an organization's local midnight is at most an hour behind.
    assert jobs["billing"].split()[1] == "*"


def test_cronjob_pods_run_non_root_read_only_with_resource_bounds() -> None:
    for cron in k8s_by_kind("CronJob"):
        pod = _cron_pod(cron)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            volumes = {v["name"]: v for v in pod["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]]


def test_cronjob_arguments_are_ones_the_cli_accepts() -> None:
    from click.testing import CliRunner

    from haven.cli import main

    for cron in k8s_by_kind("CronJob"):
        args = _cron_pod(cron)["containers"][0]["args"]
        # --help after the real arguments: click parses (and rejects) them, then stops.
        result = CliRunner().invoke(main, [*args, "--help"])
        assert result.exit_code == 0, result.output

"""The deployment docs agree with the code and files they describe."""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest

from haven import config
from haven.config import Settings
from support_deploy import DEPLOY, REPO

DOCS = REPO / "docs"

# Environment variable -> Settings field, where the names differ.
FIELD_OF = {
    "HAVEN_ENV": "env",
    "SHUTDOWN_TIMEOUT": "shutdown_timeout_ms",
    "DRAIN_DELAY": "drain_delay_ms",
}


def variables_read_by_config() -> set[str]:
    source = inspect.getsource(config)
    pattern = r'(?:env\.get\(|env\[|_[a-z]+\(env, )"([A-Z][A-Z0-9_]+)"'
    return set(re.findall(pattern, source))


def config_table() -> dict[str, str]:
    """variable -> default column of docs/configuration.md's table."""
    rows = {}
    for line in (DOCS / "configuration.md").read_text().splitlines():
        match = re.match(r"\| `([A-Z][A-Z0-9_]+)` \| ([^|]*) \|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip()
    return rows


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def test_configuration_reference_lists_every_variable_config_reads() -> None:
    read = variables_read_by_config()
    assert {"HAVEN_ENV", "DATABASE_URL", "SHUTDOWN_TIMEOUT", "OPERATOR_TOKEN"} <= read
    documented = config_table()
    assert read - documented.keys() == set(), "variables missing from docs/configuration.md"
    assert documented.keys() - read == set(), "documented variables config.py never reads"


def test_configuration_reference_defaults_match_settings() -> None:
    documented = config_table()
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    checked = 0
    for variable, column in documented.items():
        name = FIELD_OF.get(variable, variable.lower())
        default = defaults.get(name, dataclasses.MISSING)
        if default is dataclasses.MISSING or name in ("secret_key", "instance_id"):
            continue
        if default is None or default == () or default == "":
            assert column.startswith("none"), f"{variable}: documented default {column!r}"
        else:
            assert f"`{_shown(default)}`" in column, f"{variable}: {column!r} vs {default!r}"
        checked += 1
    assert checked >= 20


def test_troubleshooting_covers_the_seed_guides_problems() -> None:
    text = (DOCS / "troubleshooting.md").read_text()
    headings = [h.lower() for h in re.findall(r"^## (.+)$", text, re.MULTILINE)]
    for topic in (
        "sessions not shared",
        "uneven load distribution",
        "does not leave rotation",
        "502 / 504",
        "redis connection errors",
        "database pool exhaustion",
        "database is locked",
        "high memory",
    ):
        assert any(topic in h for h in headings), f"no section on {topic}"
    for tool in ("/api/v1/load-balancer/", "redis-cli", "psql", "socat", "nginx -t"):
        assert tool in text


@pytest.mark.parametrize("doc", ["deployment.md", "troubleshooting.md", "configuration.md"])
def test_deploy_paths_named_in_docs_exist(doc: str) -> None:
    text = (DOCS / doc).read_text()
    generated = {"deploy/compose/nginx.conf", "deploy/.env", "deploy/compose"}
    # Paths in the repository; not `kubectl logs deploy/NAME` (a Deployment).
    named = set(re.findall(r"(?<![\w/.-])(?<!logs )deploy/[\w./-]*\w", text))
    assert named
    for path in named - generated:
        assert (REPO / path).exists(), f"{doc} names {path}, which does not exist"
    for link in re.findall(r"\]\(([\w.-]+\.md)(?:#[\w-]+)?\)", text):
        assert (DOCS / link).exists(), f"{doc} links to missing {link}"


def test_deployment_guide_uses_the_real_names() -> None:
    text = (DOCS / "deployment.md").read_text()
    haproxy = (DEPLOY / "haproxy.cfg").read_text()
    backend = re.search(r"^backend (\S+)", haproxy, re.MULTILINE)
    assert backend is not None
    assert f"{backend.group(1)}/api-1" in text
    for command in (
        "set server be_haven/api-1 state drain",
        "nginx -s reload",
        "kubectl -n haven rollout status",
        "rollout undo",
        "weight=",
        "set weight",
        "pg_dump",
        "pg_restore",
        "BGSAVE",
        "haven render-config nginx --upstream api-1:4000,api-2:4000,api-3:4000 --listen 80",
    ):
        assert command in text, command


def test_readme_links_the_deployment_docs() -> None:
    readme = (REPO / "README.md").read_text()
    for doc in ("docs/deployment.md", "docs/configuration.md", "docs/troubleshooting.md"):
        assert f"({doc})" in readme


def _security_rows() -> list[str]:
    """The rows of the controls tables (after `## Controls`), header rows left out."""
    text = (DOCS / "security.md").read_text()
    controls = text[text.index("## Controls") :]
    return [
        line
        for line in controls.splitlines()
        if line.startswith("| ") and not line.startswith("| control ")
    ]


def test_security_doc_names_only_tests_that_exist() -> None:
    """Every test docs/security.md cites is a real test function (`::name` reuses the file)."""
    cited = 0
    for row in _security_rows():
        current: str | None = None
        for path, name in re.findall(r"`(tests/[\w/]+\.py)?::(\w+)(?:\[[\w-]+\])?`", row):
            current = path or current
            assert current is not None, f"{name} cited without a file: {row[:80]}"
            source = (REPO / current).read_text()
            assert re.search(rf"^def {name}\(", source, re.MULTILINE), f"{current}::{name}"
            cited += 1
        for bare in re.findall(r"`(\[[\w-]+\])`", row):
            assert current is not None, bare
    assert cited >= 60


def test_security_doc_covers_the_actors_boundaries_and_assets() -> None:
    text = (DOCS / "security.md").read_text()
    for heading in ("## Assets", "## Actors", "## Trust boundaries", "## Controls"):
        assert heading in text
    for actor in (
        "anonymous internet client",
        "owner",
        "manager",
        "maintenance",
        "viewer",
        "member of another organization",
        "internal network client",
        "operator",
        "compromised instance",
    ):
        assert actor in text, actor
    for asset in ("sessions", "credentials", "ledger", "tenant PII", "`OPERATOR_TOKEN`"):
        assert asset in text, asset
    # Every control names its test, or says whose work will (until merged).
    for row in _security_rows():
        assert "`tests/" in row or "TODO(auth)" in row or "TODO(limits)" in row, row[:80]

"""Helpers for the static deploy/ tests: load the files an operator would use, as they are."""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from haven.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = DEPLOY / "docker-compose.loadbalancer.yml"
COMPOSE_SCHEMA = DEPLOY / "schemas" / "compose-spec.json"
DOCKERFILE = DEPLOY / "Dockerfile"
K8S_VERSION = "1.30"


def default_settings() -> Settings:
    """Haven's own defaults: what `load_settings` gives with an empty environment."""
    return load_settings({})


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@functools.cache
def _k8s_resources() -> tuple[tuple[str, dict[str, Any]], ...]:
    return tuple(
        (path.name, doc)
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    )


def k8s_resources() -> list[tuple[str, dict[str, Any]]]:
    """(file name, resource) for every resource in deploy/k8s except the kustomization."""
    return copy.deepcopy(list(_k8s_resources()))


def k8s_by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in k8s_resources() if doc["kind"] == kind]


def one(kind: str) -> dict[str, Any]:
    found = k8s_by_kind(kind)
    assert len(found) == 1, f"expected one {kind} in deploy/k8s, found {len(found)}"
    return found[0]


_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` against `env`."""

    def sub(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        if op in (":-", "-"):
            if current is None or (op == ":-" and current == ""):
                return arg
            return current
        if op in (":?", "?") and (current is None or (op == ":?" and current == "")):
            raise KeyError(f"compose requires {name}: {arg}")
        return current or ""

    return _VAR.sub(sub, value)


def duration_seconds(text: str) -> float:
    """A compose duration (`45s`, `1m30s`, `500ms`) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    total, pos = 0.0, 0
    for match in re.finditer(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text):
        assert match.start() == pos, f"bad duration {text!r}"
        total += float(match.group(1)) * units[match.group(2)]
        pos = match.end()
    assert pos == len(text), f"bad duration {text!r}"
    assert pos > 0, f"empty duration {text!r}"
    return total


@dataclass
class Instruction:
    keyword: str
    value: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages of a Dockerfile: comments dropped, `\\` continuations joined, keywords upper-cased."""
    logical: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue  # comment lines inside a continuation are ignored, as Docker does
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        logical.append((start, buffer + stripped))
        buffer = ""
    assert not buffer, "Dockerfile ends inside a line continuation"

    stages: list[Stage] = []
    for line, content in logical:
        keyword, _, value = content.partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword == "FROM":
            parts = value.split()
            parts = [p for p in parts if not p.startswith("--platform")]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
            continue
        if keyword == "ARG" and not stages:
            continue  # global build arguments before the first FROM
        assert stages, f"line {line}: {keyword} before the first FROM"
        stages[-1].instructions.append(Instruction(keyword, value, line))
    return stages


def exec_form(value: str) -> list[str] | None:
    """The JSON array of an exec-form instruction, or None for shell form."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if isinstance(parsed, list) and parsed and all(isinstance(p, str) for p in parsed):
        return parsed
    return None

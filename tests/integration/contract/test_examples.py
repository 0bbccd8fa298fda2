"""Every operation's example is a real exchange, and replaying it still gets an answer that fits.

The examples in the document come from src/haven/openapi_examples.json, recorded by the scenario
in tests/support_examples.py. Here the scenario runs again against a fresh instance (each
backend): every operation answers with the recorded status, and every body matches the schema
the document gives for that status.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from haven.openapi import EXAMPLES_FILE
from support_examples import example_client, run_scenario, served_document

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return served_document()


def _schema(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator({**schema, "components": doc["components"]})


def test_every_operation_has_a_recorded_request_and_response(doc: dict[str, Any]) -> None:
    recorded = json.loads(EXAMPLES_FILE.read_text())
    operations = {
        f"{method.upper()} {path}"
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }
    assert sorted(operations - set(recorded)) == [], "operations without a recorded example"
    assert sorted(set(recorded) - operations) == [], "examples of operations that are gone"
    for key, exchange in recorded.items():
        method, path = key.split(" ", 1)
        op = doc["paths"][path][method.lower()]
        answer = op["responses"][str(exchange["status"])]
        content = answer.get("content", {})
        if exchange.get("contentType") in content:  # CSV and PDF have no recorded example
            media = content[exchange["contentType"]]
            assert media.get("examples"), f"{key}: no response example in the document"
        if exchange["requestBody"] is not None:
            body = op["requestBody"]["content"]["application/json"]
            assert body["examples"]["recorded"]["value"] == exchange["requestBody"], key


def test_replaying_the_examples_gets_answers_that_fit_the_document(
    doc: dict[str, Any], database: Any, valkey: Any
) -> None:
    recorded = json.loads(EXAMPLES_FILE.read_text())
    with example_client(database.url, valkey.url) as client:
        replayed = run_scenario(client)
    problems = []
    for key, exchange in replayed.items():
        method, path = key.split(" ", 1)
        if exchange["status"] != recorded[key]["status"]:
            problems.append(f"{key}: {exchange['status']}, recorded {recorded[key]['status']}")
            continue
        answer = doc["paths"][path][method.lower()]["responses"][str(exchange["status"])]
        content = answer.get("content", {})
        if not content:
            continue
        media = content.get(exchange["contentType"])
        if media is None:
            problems.append(f"{key}: answered {exchange['contentType']}, not documented")
            continue
        if "schema" in media and exchange["contentType"].endswith("json"):
            errors = list(_schema(doc, media["schema"]).iter_errors(exchange["response"]))
            problems += [f"{key}: {e.message} at {list(e.absolute_path)}" for e in errors[:3]]
    assert problems == []

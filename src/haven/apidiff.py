"""Breaking changes between two OpenAPI documents (docs/api-versioning.md says what counts).

Within /api/v1 the contract only grows. `breaking(old, new)` lists every change
that could break a client written against `old`: an operation, response status,
parameter or response property removed; a parameter, body or body field newly
required; a request value narrowed (type, enum, bounds, pattern, length); a
response property no longer required or of another type. Additions are fine.

    python -m haven.apidiff docs/openapi/v1.json new.json   # exit 1 and the list when breaking
"""

from __future__ import annotations

import json
import sys
from typing import Any

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
Doc = dict[str, Any]


def _resolve(doc: Doc, schema: Any, depth: int = 0) -> Any:
    while isinstance(schema, dict) and "$ref" in schema and depth < 50:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc.get("components", {}).get("schemas", {}).get(name, {})
        depth += 1
    return schema


def _types(doc: Doc, schema: Any) -> set[str]:
    """The JSON types a schema admits (its oneOf/anyOf branches included)."""
    schema = _resolve(doc, schema)
    if not isinstance(schema, dict):
        return set()
    out: set[str] = set()
    kind = schema.get("type")
    if isinstance(kind, list):
        out.update(kind)
    elif isinstance(kind, str):
        out.add(kind)
    for key in ("oneOf", "anyOf"):
        for branch in schema.get(key, []):
            out |= _types(doc, branch)
    if not out and ("properties" in schema or "$ref" in schema):
        out.add("object")
    return out


def _branch(doc: Doc, schema: Any, kind: str) -> Any:
    """The branch of a (possibly oneOf) schema that describes `kind` values."""
    schema = _resolve(doc, schema)
    if not isinstance(schema, dict):
        return {}
    for key in ("oneOf", "anyOf"):
        for branch in schema.get(key, []):
            if kind in _types(doc, branch):
                return _resolve(doc, branch)
    return schema


def _request_narrowed(old_doc: Doc, old: Any, new_doc: Doc, new: Any, where: str) -> list[str]:
    """Values `old` accepted that `new` refuses (request side)."""
    out: list[str] = []
    old_types, new_types = _types(old_doc, old), _types(new_doc, new)
    if old_types and new_types and not old_types <= new_types:
        lost = ", ".join(sorted(old_types - new_types))
        return [f"{where}: no longer accepts {lost}"]
    for kind in sorted(old_types & new_types) or [""]:
        o = _branch(old_doc, old, kind) if kind else _resolve(old_doc, old)
        n = _branch(new_doc, new, kind) if kind else _resolve(new_doc, new)
        if not isinstance(o, dict) or not isinstance(n, dict):
            continue
        if "enum" in n:
            missing = [v for v in o.get("enum", []) if v not in n["enum"]] if "enum" in o else ["*"]
            if missing:
                out.append(f"{where}: enum no longer accepts {missing}")
        for key, tighter in (
            ("maxLength", lambda a, b: b < a),
            ("maximum", lambda a, b: b < a),
            ("maxItems", lambda a, b: b < a),
            ("minLength", lambda a, b: b > a),
            ("minimum", lambda a, b: b > a),
            ("minItems", lambda a, b: b > a),
        ):
            if key in n and (key not in o or tighter(o[key], n[key])):
                out.append(f"{where}: {key} {o.get(key, 'unset')} -> {n[key]}")
        if "pattern" in n and n.get("pattern") != o.get("pattern"):
            out.append(f"{where}: pattern {o.get('pattern', 'unset')!r} -> {n['pattern']!r}")
        if kind == "object":
            old_props, new_props = o.get("properties", {}), n.get("properties", {})
            added = sorted(set(n.get("required", [])) - set(o.get("required", [])))
            out.extend(f"{where}.{name}: newly required" for name in added)
            for name, prop in old_props.items():
                if name not in new_props:
                    if n.get("additionalProperties") is False:
                        out.append(f"{where}.{name}: removed (the body is closed)")
                    continue
                out += _request_narrowed(old_doc, prop, new_doc, new_props[name], f"{where}.{name}")
        if kind == "array" and "items" in o and "items" in n:
            out += _request_narrowed(old_doc, o["items"], new_doc, n["items"], f"{where}[]")
    return out


def _response_changed(
    old_doc: Doc, old: Any, new_doc: Doc, new: Any, where: str, seen: set[str]
) -> list[str]:
    """What a client reading `old` responses relies on and `new` no longer promises."""
    key = f"{where}"
    if key in seen:
        return []
    seen.add(key)
    out: list[str] = []
    old_types, new_types = _types(old_doc, old), _types(new_doc, new)
    if old_types and new_types and not new_types <= old_types:
        gained = ", ".join(sorted(new_types - old_types))
        out.append(f"{where}: may now be {gained}")
    o, n = _branch(old_doc, old, "object"), _branch(new_doc, new, "object")
    if isinstance(o, dict) and isinstance(n, dict):
        new_props = n.get("properties", {})
        for name, prop in o.get("properties", {}).items():
            if name not in new_props:
                out.append(f"{where}.{name}: removed")
                continue
            out += _response_changed(
                old_doc, prop, new_doc, new_props[name], f"{where}.{name}", seen
            )
        for name in sorted(set(o.get("required", [])) - set(n.get("required", []))):
            out.append(f"{where}.{name}: no longer always present")
        if "enum" in n and "enum" in o:
            added = [v for v in n["enum"] if v not in o["enum"]]
            if added:
                out.append(f"{where}: may now be {added}")
    oa, na = _branch(old_doc, old, "array"), _branch(new_doc, new, "array")
    if isinstance(oa, dict) and isinstance(na, dict) and "items" in oa and "items" in na:
        out += _response_changed(old_doc, oa["items"], new_doc, na["items"], f"{where}[]", seen)
    return out


def _query_schema(param: dict[str, Any]) -> Any:
    """A query parameter is absent or a value: JSON null is not something a URL can say."""
    schema = param.get("schema", {})
    if param.get("in") != "query" or not isinstance(schema, dict):
        return schema
    branches = [b for b in schema.get("oneOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        merged = {k: v for k, v in schema.items() if k != "oneOf"}
        merged.update(branches[0])
        return merged
    if isinstance(schema.get("type"), list):
        kinds = [t for t in schema["type"] if t != "null"]
        schema = {**schema, "type": kinds[0] if len(kinds) == 1 else kinds}
    if "enum" in schema:
        schema = {**schema, "enum": [v for v in schema["enum"] if v is not None]}
    return schema


def breaking(old: Doc, new: Doc) -> list[str]:
    """Every change from `old` to `new` that can break an existing client."""
    out: list[str] = []
    for path, old_item in old.get("paths", {}).items():
        new_item = new.get("paths", {}).get(path)
        for method in METHODS:
            old_op = old_item.get(method)
            if old_op is None:
                continue
            name = f"{method.upper()} {path}"
            new_op = (new_item or {}).get(method)
            if new_op is None:
                out.append(f"{name}: removed")
                continue
            gone = [s for s in old_op.get("responses", {}) if s not in new_op.get("responses", {})]
            out.extend(f"{name}: response {status} removed" for status in gone)
            old_params = {(p["name"], p["in"]): p for p in old_op.get("parameters", [])}
            new_params = {(p["name"], p["in"]): p for p in new_op.get("parameters", [])}
            for key, param in new_params.items():
                if param.get("required") and not old_params.get(key, {}).get("required"):
                    out.append(f"{name}: parameter {key[0]} ({key[1]}) newly required")
            for key, param in old_params.items():
                if key not in new_params:
                    out.append(f"{name}: parameter {key[0]} ({key[1]}) removed")
                    continue
                out += _request_narrowed(
                    old,
                    _query_schema(param),
                    new,
                    _query_schema(new_params[key]),
                    f"{name} parameter {key[0]}",
                )
            old_body, new_body = old_op.get("requestBody"), new_op.get("requestBody")
            if new_body and new_body.get("required") and not (old_body or {}).get("required"):
                out.append(f"{name}: request body newly required")
            if old_body and new_body:
                for media, content in old_body.get("content", {}).items():
                    new_content = new_body.get("content", {}).get(media)
                    if new_content is None:
                        out.append(f"{name}: request body {media} no longer accepted")
                        continue
                    out += _request_narrowed(
                        old, content.get("schema"), new, new_content.get("schema"), f"{name} body"
                    )
            for status, response in old_op.get("responses", {}).items():
                new_response = new_op.get("responses", {}).get(status)
                # A 204 never has a body, whatever an old document said of its content.
                if new_response is None or not status.startswith("2") or status == "204":
                    continue
                for media, content in response.get("content", {}).items():
                    new_content = new_response.get("content", {}).get(media)
                    if new_content is None:
                        out.append(f"{name}: response {status} {media} removed")
                        continue
                    out += _response_changed(
                        old,
                        content.get("schema"),
                        new,
                        new_content.get("schema"),
                        f"{name} {status}",
                        set(),
                    )
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m haven.apidiff OLD.json NEW.json", file=sys.stderr)
        return 2
    with open(args[0]) as old_file, open(args[1]) as new_file:
        found = breaking(json.load(old_file), json.load(new_file))
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Make the OpenAPI document tell the truth: errors, closed bodies, security, links, examples.

Litestar documents a generic `400 Validation Exception` in its own error
shape on every handler with parameters. Haven answers validation failures
with 422 and every error as RFC 9457 problem+json, so the generated
responses are replaced here with the ones a client really gets: every status
an operation can answer, each naming the problem `type` URIs it may carry.

The rest is what Litestar cannot say by itself and schemathesis checks
(`make contract`): request bodies are closed (`additionalProperties: false`,
as msgspec's `forbid_unknown_fields` makes the server), query parameters
have examples, cursors have their alphabet, the security schemes are declared
per operation (`apiKey` where an API key is accepted; people-only operations
answer it 403), creates link to the operations on what they created (so a
stateful run follows create -> get -> update -> delete), and each operation
carries a request and response example recorded from a real exchange
(`openapi_examples.json`, written by `python tests/support_examples.py`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from litestar.openapi.spec import (
    Components,
    Example,
    Link,
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
    SecurityScheme,
)

from haven.cluster.asgi import LB_PREFIX, OPERATOR_PATHS
from haven.errors import PROBLEM_JSON, TYPE_BASE

PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    title="Problem",
    description="RFC 9457 problem details; `type` ends in a stable slug naming the problem.",
    required=["type", "title", "status"],
    properties={
        "type": Schema(type=OpenAPIType.STRING, format="uri"),  # type: ignore[arg-type]
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "detail": Schema(type=OpenAPIType.STRING),
        "instance": Schema(type=OpenAPIType.STRING),
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(
                type=OpenAPIType.OBJECT,
                required=["field", "message"],
                properties={
                    "field": Schema(type=OpenAPIType.STRING),
                    "message": Schema(type=OpenAPIType.STRING),
                },
            ),
        ),
    },
)

OPEN_PATHS = frozenset({"/api/v1/auth/login", "/api/v1/auth/register"})
PROPERTY_PL = "/api/v1/reports/property-pl"
CSV_TYPE = "text/csv"
PDF_TYPE = "application/pdf"
STATEMENT = "/api/v1/owners/{owner_id}/statements/{month}"
# Where an API key is refused (403) whatever its role: the caller's own session and account,
# the organization's members and the keys themselves (`people_only` in haven.auth.principal;
# tests/integration/contract/test_document.py checks this against the routes).
PEOPLE_ONLY_PREFIXES = ("/api/v1/auth/", "/api/v1/members", "/api/v1/api-keys")
PROBES = frozenset({"/health", "/ready", "/alive", "/metrics"})
EXAMPLES_FILE = Path(__file__).with_name("openapi_examples.json")
# The alphabet of a cursor a list issues: unpadded base64url (haven.db.pagination).
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"
EXAMPLE_ID = "3f2b8c1e-6a4d-4e8b-9c7a-1d2e3f4a5b6c"
# What a list sorted by createdAt issues after the row EXAMPLE_ID.
CURSOR_EXAMPLE = (
    "WyJjcmVhdGVkQXQiLCIyMDI2LTExLTI3VDEwOjAwOjAwKzAwOjAwIiwiM2Yy"
    "YjhjMWUtNmE0ZC00ZThiLTljN2EtMWQyZTNmNGE1YjZjIl0"
)


def _header(description: str, *, required: bool, kind: OpenAPIType = OpenAPIType.STRING) -> Any:
    return OpenAPIHeader(
        description=description,
        required=required,
        schema=Schema(type=kind),
        name="",
        param_in="header",
    )


RETRY_AFTER = "Seconds to wait before retrying"


def _problem(
    description: str, slugs: tuple[str, ...], *, headers: dict[str, Any] | None = None
) -> OpenAPIResponse:
    """A problem+json response naming the `type` URIs it may carry (one example each)."""
    ref = Reference(ref="#/components/schemas/Problem")
    types = ", ".join(f"`{TYPE_BASE}{slug}`" for slug in slugs)
    examples: dict[str, Example | Reference] = {
        slug: Example(
            summary=slug,
            value={"type": TYPE_BASE + slug, "title": slug.replace("-", " ").capitalize()},
        )
        for slug in slugs
    }
    return OpenAPIResponse(
        description=f"{description}. Problem types: {types}",
        content={PROBLEM_JSON: OpenAPIMediaType(schema=ref, examples=examples)},
        headers=headers,
    )


def _operations(openapi: OpenAPI) -> list[tuple[str, str, Operation]]:
    out: list[tuple[str, str, Operation]] = []
    for path, item in (openapi.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            op = getattr(item, method, None)
            if op is not None:
                out.append((path, method, op))
    return out


def people_only(path: str) -> bool:
    """Whether only a person (a session) may call `path`: an API key gets 403 there."""
    return path.startswith(PEOPLE_ONLY_PREFIXES) and path not in OPEN_PATHS


def takes_api_key(path: str) -> bool:
    """Whether an API key (`Authorization: Bearer hvn_...`) is accepted on `path`."""
    return (
        path.startswith("/api/")
        and not path.startswith(LB_PREFIX)
        and path not in OPEN_PATHS
        and not people_only(path)
    )


def _statuses(path: str, method: str, op: Operation) -> dict[str, OpenAPIResponse]:
    """Every error status this operation can answer, by what reaches it."""
    out: dict[str, OpenAPIResponse] = {}
    has_body = op.request_body is not None
    is_api = path.startswith("/api/")
    operator = path in OPERATOR_PATHS
    # Everything in front of Haven (granian, nginx, HAProxy) refuses an over-long request line
    # or header block before any route sees it.
    out["414"] = _problem("The URL is too long", ("uri-too-long",))
    out["431"] = _problem("The request headers are too large", ("headers-too-large",))
    if path == "/metrics":
        out["404"] = _problem(
            "Through the load balancer: /metrics is scraped from each instance, not from outside",
            ("not-found",),
        )
    if not is_api:
        if path in ("/ready", "/health"):
            out["503"] = _problem(
                "This instance is not ready (draining, or a dependency is down)",
                ("dependency-unavailable", "service-unavailable"),
                headers={"Retry-After": _header(RETRY_AFTER, required=False)},
            )
        return out
    if has_body:
        out["400"] = _problem("The body is not valid JSON", ("malformed-request",))
        out["413"] = _problem("The body is over 1 MiB", ("payload-too-large",))
        out["415"] = _problem("The body is not application/json", ("unsupported-media-type",))
    if has_body or op.parameters or method == "post":
        slugs: tuple[str, ...] = ("validation",)
        if method == "post":
            slugs = (*slugs, "idempotency-key-reused")
        out["422"] = _problem(
            "A field, query parameter, path parameter or header did not validate; "
            "`errors` lists them",
            slugs,
        )
    if path == "/api/v1/auth/login":
        out["401"] = _problem(
            "Wrong email or password (the same answer for both)", ("invalid-credentials",)
        )
    elif path not in OPEN_PATHS:
        who = "Not signed in, or the session has ended"
        if not path.startswith(LB_PREFIX):
            who += (
                ", or the API key is unknown, expired or revoked (a key is accepted only as "
                "`Authorization: Bearer hvn_...`, never as a cookie)"
            )
        out["401"] = _problem(who, ("not-signed-in",))
        forbidden = ("forbidden", "csrf") if method != "get" else ("forbidden",)
        if path == "/api/v1/auth/password":
            forbidden = (*forbidden, "wrong-password")
        if people_only(path):
            why = (
                "Your role does not allow this, a missing or wrong CSRF token, or the caller "
                "is an API key (only a person may do this, whatever the key's role)"
            )
        elif takes_api_key(path):
            why = (
                "Your role (or the API key's role) does not allow this, or a missing or wrong "
                "CSRF token"
            )
        else:
            why = "Not the operator token"
        out["403"] = _problem(why, forbidden)
    if "{" in path:
        out["404"] = _problem("No such resource in your organization", ("not-found",))
    if path == PROPERTY_PL:
        out["404"] = _problem("`propertyId` names no property of your organization", ("not-found",))
    if path in ("/api/v1/reports/rent-roll", "/api/v1/reports/aging", PROPERTY_PL):
        out["406"] = _problem(
            "Accept names neither application/json nor text/csv", ("not-acceptable",)
        )
    if path == STATEMENT:
        out["406"] = _problem(
            "Accept names none of application/json, text/csv, application/pdf",
            ("not-acceptable",),
        )
    if method in ("post", "patch", "delete") and not path.startswith(("/api/v1/auth/", LB_PREFIX)):
        slugs = (
            "conflict",
            "invalid-transition",
            "lease-overlap",
            "billing-in-progress",
        )
        if path.startswith("/api/v1/work-orders") or path.endswith("/work-orders"):
            slugs = (*slugs, "vendor-uninsured")
        if method == "post":
            slugs = (*slugs, "idempotency-in-flight")
        out["409"] = _problem(
            "The change conflicts with the resource's state (a rule names it in `detail`), or "
            "a request with this Idempotency-Key is still in flight (with Retry-After)",
            slugs,
            headers={"Retry-After": _header(RETRY_AFTER, required=False)},
        )
    if path == "/api/v1/auth/register":
        out["409"] = _problem("This email already has an account", ("conflict",))
    if method == "patch":
        out["412"] = _problem("If-Match does not match the current version", ("version-mismatch",))
    if not path.startswith(LB_PREFIX) or operator:
        limits = "Over a rate limit"
        if not path.startswith(LB_PREFIX):
            limits += " (per client address, or an API key's own RATE_LIMIT_PER_KEY)"
        out["429"] = _problem(
            f"{limits}; retry after Retry-After seconds; RateLimit-* name the exhausted limit",
            ("rate-limited",),
            headers={
                "Retry-After": _header(RETRY_AFTER, required=True),
                "RateLimit-Limit": _header("Requests allowed in the window", required=False),
                "RateLimit-Remaining": _header("Requests left in the window", required=False),
                "RateLimit-Reset": _header("Seconds until the window resets", required=False),
            },
        )
    slugs = ("dependency-unavailable", "service-unavailable")
    if path in OPEN_PATHS:  # sign-in and sign-up hash a password
        slugs = (*slugs, "sign-in-busy")
    out["503"] = _problem(
        "A shared dependency (Redis, the database) is unreachable, no instance is available, "
        "or every password-hashing slot stayed busy; retry after Retry-After seconds",
        slugs,
        headers={"Retry-After": _header(RETRY_AFTER, required=True)},
    )
    return out


# Operations whose success answer has other representations than JSON, chosen by Accept
# (and, on the P&L, `format=csv`): documented so a client (and schemathesis) knows them.
ALTERNATES: dict[tuple[str, str], tuple[str, ...]] = {
    ("/api/v1/reports/rent-roll", "get"): (CSV_TYPE,),
    ("/api/v1/reports/aging", "get"): (CSV_TYPE,),
    (PROPERTY_PL, "get"): (CSV_TYPE,),
    (STATEMENT, "get"): (CSV_TYPE, PDF_TYPE),
    ("/api/v1/leases/{lease_id}/deposit-statement", "get"): (CSV_TYPE,),
    ("/api/v1/leases/{lease_id}/deposit-disposition", "post"): (CSV_TYPE,),
}


def _document_alternates(path: str, method: str, responses: dict[str, Any]) -> None:
    kinds = ALTERNATES.get((path, method))
    if not kinds:
        return
    for status in ("200", "201"):
        response = responses.get(status)
        if isinstance(response, OpenAPIResponse):
            content = dict(response.content or {})
            for kind in kinds:
                fmt = "binary" if kind == PDF_TYPE else None
                content[kind] = OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING, format=fmt)  # type: ignore[arg-type]
                )
            response.content = content


def document_problems(openapi: OpenAPI) -> OpenAPI:
    """Replace Litestar's generic error responses with Haven's problem+json ones, in place."""
    if openapi.components is None:
        openapi.components = Components()
    if openapi.components.schemas is None:
        openapi.components.schemas = {}
    openapi.components.schemas["Problem"] = PROBLEM_SCHEMA
    for path, method, op in _operations(openapi):
        responses = dict(op.responses or {})
        responses.pop("400", None)
        responses.update(_statuses(path, method, op))
        _document_alternates(path, method, responses)
        no_content = responses.get("204")
        if isinstance(no_content, OpenAPIResponse):
            no_content.content = None  # a 204 has no body, not a JSON null
        op.responses = dict(sorted(responses.items()))
    return openapi


# -- closed request bodies --------------------------------------------------------------------


def _close(schema: Any, components: dict[str, Any], seen: set[str]) -> None:
    if isinstance(schema, Reference):
        name = schema.ref.rsplit("/", 1)[-1]
        if name in seen or name not in components:
            return
        seen.add(name)
        _close(components[name], components, seen)
        return
    if not isinstance(schema, Schema):
        return
    if schema.properties is not None and schema.additional_properties is None:
        schema.additional_properties = False
    for child in (schema.properties or {}).values():
        _close(child, components, seen)
    for group in (schema.one_of, schema.any_of, schema.all_of):
        for child in group or ():
            _close(child, components, seen)
    if schema.items is not None:
        _close(schema.items, components, seen)


def close_request_bodies(openapi: OpenAPI) -> None:
    """Every request struct forbids unknown fields (schemas.RequestBody): say so."""
    components = (openapi.components.schemas or {}) if openapi.components else {}
    seen: set[str] = set()
    for _path, _method, op in _operations(openapi):
        body = op.request_body
        if body is None or isinstance(body, Reference):
            continue
        for media in (body.content or {}).values():
            _close(media.schema, components, seen)


# -- parameters -------------------------------------------------------------------------------


def _example_for(name: str, schema: Any) -> Any:
    if not isinstance(schema, Schema):
        return None
    if schema.enum:
        return schema.enum[0]
    if schema.default is not None:
        return schema.default
    if schema.format == "uuid" or name.endswith("_id") or name.endswith("Id"):
        return EXAMPLE_ID
    if schema.format == "date":
        return "2026-11-01"
    if schema.format == "date-time":
        return "2026-11-27T10:00:00Z"
    if schema.type in ("integer", OpenAPIType.INTEGER):
        return int(schema.minimum or 1)
    if schema.type == OpenAPIType.BOOLEAN:
        return False
    if name == "sort":
        return "-createdAt"
    if name == "search":
        return "maple"
    return None


def document_parameters(openapi: OpenAPI) -> None:
    """Cursors with their alphabet, and an example on each parameter."""
    for _path, _method, op in _operations(openapi):
        for param in op.parameters or []:
            if not isinstance(param, Parameter):
                continue
            schema = param.schema
            if param.name == "cursor" and isinstance(schema, Schema):
                schema.pattern = CURSOR_PATTERN
                schema.format = "base64url"  # type: ignore[assignment]  # a custom format
                schema.description = "nextCursor of the previous page (opaque, unpadded base64url)"
                param.example = CURSOR_EXAMPLE
                continue
            if param.example is None and not param.examples:
                example = _example_for(param.name, schema)
                if example is not None:
                    param.example = example


# -- security ---------------------------------------------------------------------------------

SECURITY_SCHEMES = {
    "session": SecurityScheme(
        type="apiKey",
        name="haven_session",
        security_scheme_in="cookie",
        description="The session cookie set by login and register (HttpOnly).",
    ),
    "csrf": SecurityScheme(
        type="apiKey",
        name="X-CSRF-Token",
        security_scheme_in="header",
        description="With the session cookie on POST/PUT/PATCH/DELETE: the session's csrfToken.",
    ),
    "bearer": SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT",
        description="The accessToken from login or register; exempt from CSRF.",
    ),
    "apiKey": SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="hvn_<env>_<46 base62>",
        description=(
            "An API key for an integration (POST /api/v1/api-keys), sent as "
            "`Authorization: Bearer hvn_live_...` (`hvn_test_` outside production): 55 "
            "characters, `hvn_(live|test)_[0-9A-Za-z]{46}`, the last 6 a CRC32 checksum. "
            "It acts with its own role; operations that only a person may call (the "
            "caller's session and account, members, API keys) answer 403 to a key, and a key "
            "sent as a cookie is 401. Exempt from CSRF; counted against RATE_LIMIT_PER_KEY."
        ),
    ),
    "operator": SecurityScheme(
        type="http",
        scheme="bearer",
        description="The cluster's operator token (OPERATOR_TOKEN), for operator endpoints.",
    ),
}


def document_security(openapi: OpenAPI) -> None:
    """Declare the schemes, and on each operation which of them it takes."""
    if openapi.components is None:
        openapi.components = Components()
    openapi.components.security_schemes = dict(SECURITY_SCHEMES)
    for path, method, op in _operations(openapi):
        if path in OPERATOR_PATHS:
            op.security = [{"operator": []}]
        elif path == LB_PREFIX + "metrics":
            op.security = [{}, {"operator": []}]  # ?scope=cluster needs the operator token
        elif path in OPEN_PATHS or not path.startswith("/api/") or path.startswith(LB_PREFIX):
            op.security = [{}]
        else:
            session: dict[str, list[str]] = {"session": []}
            if method != "get":
                session["csrf"] = []
            keys: list[dict[str, list[str]]] = [{"apiKey": []}] if takes_api_key(path) else []
            op.security = [{"bearer": []}, *keys, session]


# -- links (stateful testing) ----------------------------------------------------------------


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


# A create whose resource lives under another collection: POST path -> item path prefix.
ITEM_HOMES = {"/api/v1/properties/{property_id}/units": "/api/v1/units/{unit_id}"}


def document_links(openapi: OpenAPI) -> None:
    """Link each create (201 with an `id`) to every operation on what it created."""
    paths = openapi.paths or {}
    for path, method, op in _operations(openapi):
        if method != "post" or "201" not in (op.responses or {}):
            continue
        response = (op.responses or {})["201"]
        if not isinstance(response, OpenAPIResponse):
            continue
        item_prefix = ITEM_HOMES.get(path)
        links: dict[str, Link | Reference] = {}
        for other_path, item in paths.items():
            if item_prefix is not None:
                if not (other_path == item_prefix or other_path.startswith(item_prefix + "/")):
                    continue
                own = _path_params(item_prefix)[-1]
            else:
                rest = other_path[len(path) :]
                if not (other_path.startswith(path + "/{") and rest.count("{") >= 1):
                    continue
                own = _path_params(path + rest.split("}", 1)[0] + "}")[-1]
                if rest.split("}", 1)[1].count("{"):
                    continue  # a deeper id the create does not give
            known = set(_path_params(path))
            for other_method in ("get", "patch", "delete", "post", "put"):
                target = getattr(item, other_method, None)
                if target is None or target.operation_id is None:
                    continue
                params: dict[str, Any] = {own: "$response.body#/id"}
                for name in _path_params(other_path):
                    if name in known:
                        params[name] = f"$request.path.{name}"
                if set(params) != set(_path_params(other_path)):
                    continue
                links[target.operation_id] = Link(
                    operation_id=target.operation_id, parameters=params
                )
        if links:
            response.links = links


# -- examples recorded from real exchanges ---------------------------------------------------


def load_examples() -> dict[str, Any]:
    if not EXAMPLES_FILE.exists():
        return {}
    data: dict[str, Any] = json.loads(EXAMPLES_FILE.read_text())
    return data


def document_examples(openapi: OpenAPI, examples: dict[str, Any] | None = None) -> None:
    """Attach each operation's recorded request and response (keyed `METHOD path`)."""
    recorded = load_examples() if examples is None else examples
    for path, method, op in _operations(openapi):
        exchange = recorded.get(f"{method.upper()} {path}")
        if exchange is None:
            continue
        body = exchange.get("requestBody")
        if (
            body is not None
            and op.request_body is not None
            and not isinstance(op.request_body, Reference)
        ):
            for media in (op.request_body.content or {}).values():
                media.examples = {
                    "recorded": Example(summary="A real request", value=body),
                    **(media.examples or {}),  # hand-written ones (POST /api-keys) stay
                }
        status = str(exchange["status"])
        response = (op.responses or {}).get(status)
        if isinstance(response, OpenAPIResponse) and response.content:
            for media_type, media in response.content.items():
                # The event feed documents one example per event type already.
                if media_type == exchange.get("contentType") and not media.examples:
                    media.examples = {
                        "recorded": Example(summary="A real response", value=exchange["response"])
                    }
        for param in op.parameters or []:
            if isinstance(param, Parameter) and param.name in exchange.get("parameters", {}):
                param.example = exchange["parameters"][param.name]


def unique_titles(openapi: OpenAPI) -> None:
    """Two structs of one name in different modules get the component key as their title.

    Client generators name classes by title; two `MaintenanceOut` models cannot both exist.
    """
    schemas = (openapi.components.schemas or {}) if openapi.components else {}
    seen: dict[str, int] = {}
    for schema in schemas.values():
        if isinstance(schema, Schema) and schema.title:
            seen[schema.title] = seen.get(schema.title, 0) + 1
    for key, schema in schemas.items():
        if isinstance(schema, Schema) and schema.title and seen[schema.title] > 1:
            schema.title = "".join(part[:1].upper() + part[1:] for part in key.split("_"))


def document_contract(openapi: OpenAPI) -> OpenAPI:
    """Everything after document_problems, in place."""
    unique_titles(openapi)
    close_request_bodies(openapi)
    document_parameters(openapi)
    document_security(openapi)
    document_links(openapi)
    document_examples(openapi)
    return openapi

"""Make the OpenAPI document tell the truth about errors.

Litestar documents a generic `400 Validation Exception` in its own error
shape on every handler with parameters. Haven answers validation failures
with 422 and every error as RFC 9457 problem+json, so the generated
responses are replaced here with the ones a client really gets.
"""

from __future__ import annotations

from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)

from haven.cluster.asgi import LB_PREFIX, OPERATOR_PATHS
from haven.errors import PROBLEM_JSON

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


def _problem(description: str) -> OpenAPIResponse:
    ref = Reference(ref="#/components/schemas/Problem")
    return OpenAPIResponse(
        description=description, content={PROBLEM_JSON: OpenAPIMediaType(schema=ref)}
    )


def _operations(openapi: OpenAPI) -> list[tuple[str, str, Operation]]:
    out: list[tuple[str, str, Operation]] = []
    for path, item in (openapi.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            op = getattr(item, method, None)
            if op is not None:
                out.append((path, method, op))
    return out


def document_problems(openapi: OpenAPI) -> OpenAPI:
    """Replace Litestar's generic error responses with Haven's problem+json ones, in place."""
    if openapi.components is None:
        openapi.components = Components()
    if openapi.components.schemas is None:
        openapi.components.schemas = {}
    openapi.components.schemas["Problem"] = PROBLEM_SCHEMA
    for path, method, op in _operations(openapi):
        if not path.startswith("/api/"):
            continue
        responses = dict(op.responses or {})
        responses.pop("400", None)
        has_body = op.request_body is not None
        if has_body:
            responses["400"] = _problem("The body is not valid JSON")
            responses["413"] = _problem("The body is over 1 MiB")
            responses["415"] = _problem("The body is not application/json")
        if has_body or op.parameters:
            responses["422"] = _problem(
                "A field, query parameter or path parameter did not validate; `errors` lists them"
            )
        if path not in OPEN_PATHS:
            responses["401"] = _problem("Not signed in, or the session has ended")
            responses["403"] = _problem("Your role does not allow this, or a missing CSRF token")
        if "{" in path:
            responses["404"] = _problem("No such resource in your organization")
        if method == "patch":
            responses["412"] = _problem("If-Match does not match the current version")
        if not path.startswith(LB_PREFIX) or path in OPERATOR_PATHS:
            responses["429"] = _problem("Over a rate limit; retry after Retry-After seconds")
        if path in OPEN_PATHS:  # sign-in and sign-up hash a password
            responses["503"] = _problem(
                "Every password-hashing slot stayed busy, or the sign-in rate limiter is "
                "unreachable; retry after Retry-After seconds"
            )
        op.responses = dict(sorted(responses.items()))
    return openapi

"""Every error Haven answers with, rendered as RFC 9457 problem+json.

Domain code raises a HavenError subclass; it carries its status and a stable
`type` slug. Framework exceptions (validation, 404, 405, 413...) are mapped
to the same shape here, and anything unexpected becomes a bare 500 problem
without a trace, logged with the request id.
"""

from __future__ import annotations

from typing import Any, ClassVar

import asyncpg
import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.exceptions.http_exceptions import (
    ClientException,
    MethodNotAllowedException,
    RequestEntityTooLarge,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError

TYPE_BASE = "https://haven.dev/problems/"
PROBLEM_JSON = "application/problem+json"

log = structlog.get_logger("haven.errors")


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str


class HavenError(Exception):
    """Base of every expected error: status, stable type slug, title."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors or []
        self.headers = headers or {}


class MalformedRequestError(HavenError):
    status, slug, title = 400, "malformed-request", "Malformed request"


class NotSignedInError(HavenError):
    status, slug, title = 401, "not-signed-in", "Not signed in"


class InvalidCredentialsError(HavenError):
    status, slug, title = 401, "invalid-credentials", "Wrong email or password"


class ForbiddenError(HavenError):
    status, slug, title = 403, "forbidden", "Your role does not allow this"


class WrongPasswordError(HavenError):
    status, slug, title = 403, "wrong-password", "The current password is wrong"


class CsrfError(HavenError):
    status, slug, title = 403, "csrf", "Missing or wrong X-CSRF-Token"


class NotFoundError(HavenError):
    status, slug, title = 404, "not-found", "Not found"


class InvalidInvitationError(HavenError):
    """One answer for an unknown, malformed, expired, used or revoked invitation token."""

    status, slug, title = 400, "invalid-invitation", "This invitation cannot be used"


class MethodNotAllowedError(HavenError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class NotAcceptableError(HavenError):
    status, slug, title = 406, "not-acceptable", "Not acceptable"


class ConflictError(HavenError):
    status, slug, title = 409, "conflict", "Conflict"


class InvalidTransitionError(ConflictError):
    status, slug, title = 409, "invalid-transition", "This status change is not allowed"


class LeaseOverlapError(HavenError):
    status, slug, title = 409, "lease-overlap", "Another active lease on this unit overlaps"


class VendorUninsuredError(ConflictError):
    status, slug, title = 409, "vendor-uninsured", "The vendor's insurance has lapsed"


class IdempotencyInFlightError(HavenError):
    status, slug, title = 409, "idempotency-in-flight", "A request with this key is in flight"

    def __init__(self, detail: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class IdempotencyKeyReusedError(HavenError):
    status, slug, title = 422, "idempotency-key-reused", "Idempotency-Key reused with another body"


class BillingInProgressError(HavenError):
    status, slug, title = 409, "billing-in-progress", "A billing run is in progress"


class VersionMismatchError(HavenError):
    status, slug, title = 412, "version-mismatch", "The resource changed since you read it"


class PayloadTooLargeError(HavenError):
    status, slug, title = 413, "payload-too-large", "Request body is over 1 MiB"


class UnsupportedMediaTypeError(HavenError):
    status, slug, title = 415, "unsupported-media-type", "Send the body as application/json"


class ValidationError(HavenError):
    status, slug, title = 422, "validation", "The request did not validate"


class RateLimitedError(HavenError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class DependencyUnavailableError(HavenError):
    status, slug, title = 503, "dependency-unavailable", "A service Haven depends on is unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 2) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class PasswordHashingBusyError(HavenError):
    """Every password-hashing slot of this instance stayed busy past the queue deadline."""

    status, slug, title = 503, "sign-in-busy", "Sign-in is busy"

    def __init__(self, detail: str | None = None, *, retry_after: int = 2) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class InternalError(HavenError):
    status, slug, title = 500, "internal", "Internal server error"


def problem_body(
    status: int, slug: str, title: str, detail: str, instance: str, errors: list[FieldError]
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    return body


def problem_response(error: HavenError, instance: str) -> Response[dict[str, Any]]:
    return Response(
        problem_body(error.status, error.slug, error.title, error.detail, instance, error.errors),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        # An error is about this request only; no cache may replay it to anyone.
        headers={"Cache-Control": "private, no-store", **error.headers},
    )


def _field_from_key(key: str | None, source: str | None) -> str:
    if not key:
        return "body" if source in (None, "body") else source or "request"
    # msgspec reports paths as `$.unit.rent` or `$[0].name`; callers want `unit.rent`.
    key = key.removeprefix("$.").removeprefix("$")
    if source == "query":
        # Litestar names the handler argument (`property_id`); clients sent `propertyId`.
        head, *rest = key.split("_")
        key = head + "".join(part[:1].upper() + part[1:] for part in rest)
    return "body" if key in ("", "data") else key


def from_validation(exc: ValidationException) -> HavenError:
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors: list[FieldError] = []
    for item in extra:
        if isinstance(item, dict):
            message = str(item.get("message", "invalid"))
            field = _field_from_key(item.get("key"), item.get("source"))
            # msgspec writes the path into the message too: "Expected `int`, got `str` - at `$.x`"
            message = message.split(" - at `", 1)[0]
            errors.append(FieldError(field, message))
    detail = exc.detail if "Validation failed" not in exc.detail else "The request did not validate"
    if not errors:
        # Litestar reports a JSON body that does not parse, and one whose structure
        # does not match, as a validation failure without a field list.
        lowered = detail.lower()
        if "malformed" in lowered or "json is malformed" in lowered or "decode" in lowered:
            return MalformedRequestError("The body is not valid JSON")
        errors.append(FieldError("body", detail))
    return ValidationError("The request did not validate", errors=errors)


def map_exception(exc: Exception) -> HavenError:
    """Turn any exception into the HavenError a client should see."""
    if isinstance(exc, HavenError):
        return exc
    if isinstance(exc, StaleDataError):
        # A flush inside the handler lost a version race (the commit-time case is mapped in
        # haven.uow.tx); either way the client re-reads and retries.
        return VersionMismatchError(
            "Another request changed this resource at the same moment; read it and retry"
        )
    if isinstance(exc, ValidationException):
        return from_validation(exc)
    if isinstance(exc, NotFoundException):
        return NotFoundError()
    if isinstance(exc, MethodNotAllowedException):
        return MethodNotAllowedError(headers=dict(exc.headers or {}))
    if isinstance(exc, NotAuthorizedException):
        return NotSignedInError()
    if isinstance(exc, PermissionDeniedException):
        return ForbiddenError(exc.detail)
    if isinstance(exc, RequestEntityTooLarge) or (
        isinstance(exc, HTTPException) and exc.status_code == 413
    ):
        return PayloadTooLargeError()
    if isinstance(exc, HTTPException) and exc.status_code == 406:
        return NotAcceptableError(exc.detail)
    if isinstance(exc, ClientException):
        detail = str(exc.detail)
        if "json" in detail.lower() or "malformed" in detail.lower() or "decode" in detail.lower():
            return MalformedRequestError("The body is not valid JSON")
        return MalformedRequestError(detail)
    if isinstance(exc, UnicodeDecodeError):
        # Only client bytes are decoded while serving a request (msgspec raises this, not
        # DecodeError, for invalid UTF-8 inside a JSON string): the net under every parser.
        return MalformedRequestError("The request is not valid UTF-8")
    if isinstance(exc, HTTPException):
        error = HavenError(str(exc.detail))
        error.status = exc.status_code  # type: ignore[misc]
        return error
    if isinstance(exc, PoolTimeoutError):
        return DependencyUnavailableError("Every database connection is busy; retry shortly")
    if isinstance(exc, IntegrityError):
        # A unique or foreign key the service checked first was taken by a concurrent
        # write on another instance (check-then-insert races under READ COMMITTED).
        return ConflictError("This conflicts with a change made at the same moment; read and retry")
    if _is_rolled_back_for_concurrency(exc):
        # PostgreSQL aborted this transaction for another's sake (a deadlock between two
        # writers' lock orders, a serialization failure): nothing of it was written, and
        # the same request retried (same Idempotency-Key) succeeds.
        return ConflictError("This conflicts with a change made at the same moment; retry")
    if (
        isinstance(exc, OperationalError | InterfaceError)
        or (isinstance(exc, DBAPIError) and (exc.connection_invalidated or _is_db_outage(exc)))
        or _is_driver_db_outage(exc)
    ):
        return DependencyUnavailableError("The database is unavailable; retry shortly")
    if _is_redis_outage(exc):
        return DependencyUnavailableError("The session and cache store is unavailable")
    if isinstance(exc, ConnectionError | TimeoutError | OSError):
        return DependencyUnavailableError()
    return InternalError("The server hit an unexpected condition; it has been logged")


# SQLSTATEs that mean "the database cannot be reached or will not take us now", not
# "this statement is wrong": connection exceptions (08), insufficient resources (53),
# operator intervention (57P01-57P05), unknown database (3D000), and a database that
# does not accept connections (55000 on connect).
_DB_OUTAGE_CLASSES = ("08", "53", "57P")
_DB_OUTAGE_CODES = frozenset({"3D000", "55000"})


# SQLSTATE class 40, transaction rollback: 40001 serialization failure, 40P01 deadlock
# detected (40002 and 40003 are integrity and completion failures: not concurrency).
_CONCURRENCY_CODES = frozenset({"40001", "40P01"})


def _is_rolled_back_for_concurrency(exc: Exception) -> bool:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code in _CONCURRENCY_CODES


def _is_db_outage(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if not isinstance(code, str):
        return False
    if code == "55000":
        return "accepting connections" in str(exc.orig)
    return code.startswith(_DB_OUTAGE_CLASSES) or code in _DB_OUTAGE_CODES


def _is_driver_db_outage(exc: Exception) -> bool:
    """The same outage seen from asyncpg itself (haven.db.fastpath sends reads to the driver)."""
    if isinstance(exc, asyncpg.PostgresError):
        code = exc.sqlstate
        return isinstance(code, str) and (
            code.startswith(_DB_OUTAGE_CLASSES) or code in _DB_OUTAGE_CODES
        )
    # "cannot call ...: the underlying connection is closed": the server went away mid-use.
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc)


def _is_redis_outage(exc: Exception) -> bool:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, RedisConnectionError | RedisTimeoutError)


def exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The one handler for every exception: a problem+json answer, never a trace."""
    error = map_exception(exc)
    if error.status >= 500:
        log.error(
            "request_failed",
            path=request.url.path,
            method=request.method,
            error=type(exc).__name__,
            exc_info=exc if isinstance(error, InternalError) else None,
        )
    return problem_response(error, request.url.path)

"""Small HTTP helpers shared by the domain routes: ETags, conditional GETs, client address."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.status_codes import HTTP_304_NOT_MODIFIED

from haven.config import Settings
from haven.errors import FieldError, MalformedRequestError, ValidationError, VersionMismatchError
from haven.limits import MAX_CURSOR

T = TypeVar("T")

# Lower case, as Litestar keys the router-level Cache-Control: one header, not two.
NO_STORE = {"cache-control": "private, no-store"}


def answers(body: Any, description: str) -> ResponseSpec:
    """A success response documented by hand (a handler that returns `Response[Any]`).

    Litestar would otherwise invent examples for it with polyfactory and Faker, importing
    both into every instance (about 16 MB of RSS) for examples the document replaces with
    recorded ones (haven.openapi.document_examples)."""
    return ResponseSpec(body, description=description, generate_examples=False)


def etag_for(version: int) -> str:
    """A row's ETag: its version, quoted (a strong validator)."""
    return f'"{version}"'


def check_version(row: Any, if_match: str | None) -> None:
    """Compare an If-Match header with the row's version; 412 when it is stale."""
    if if_match is None:
        return
    tags = [t.strip() for t in if_match.split(",")]
    if "*" in tags:
        return
    current = etag_for(row.version)
    if not any(t.removeprefix("W/") == current for t in tags):
        raise VersionMismatchError(
            f"If-Match {if_match} does not match the current version {current}"
        )


def with_etag(
    request: Request[Any, Any, Any], body: T, version: int, status_code: int = 200
) -> Response[T]:
    """A single-resource answer with its ETag; 304 when If-None-Match already has it."""
    etag = etag_for(version)
    headers = {"ETag": etag, **NO_STORE}
    inm = request.headers.get("if-none-match")
    # Only a read can be answered "not modified": a PATCH that matched has still been
    # applied, and a 304 would hide its result from the client.
    if status_code == 200 and inm is not None and request.method in ("GET", "HEAD"):
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        if etag in tags or "*" in tags:
            return Response(None, status_code=HTTP_304_NOT_MODIFIED, headers=headers)  # type: ignore[arg-type]
    return Response(body, status_code=status_code, headers=headers)


def client_ip(request: Request[Any, Any, Any], settings: Settings) -> str:
    """The caller's address; X-Forwarded-For is believed only from a trusted proxy."""
    return client_ip_from_scope(request.scope, settings)


@lru_cache(maxsize=16)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    """One X-Forwarded-For element as an address: `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]:80`
    (an IPv4-mapped IPv6 address as its IPv4 form); None when it is no address."""
    text = text.strip()
    if len(text) > 64:
        return None
    if text.startswith("["):
        text, bracket, _port = text[1:].partition("]")
        if not bracket:
            return None
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(ip: Address, trusted: tuple[str, ...]) -> bool:
    return any(ip in network for network in _networks(trusted))


def client_ip_from_scope(scope: Any, settings: Settings) -> str:
    """The one implementation (request handlers and ASGI middleware both use it).

    With TRUST_PROXY on and the peer in TRUSTED_PROXIES, walk X-Forwarded-For from
    the right, skipping our own proxies: the first untrusted hop is the client
    (left-most entries are whatever the client chose to send, so never believed).
    An element that is no address (`unknown`, garbage) ends the walk: the answer is
    then the last hop believed. Ports are dropped and addresses written canonically,
    so one client is one rate-limit bucket however a proxy spells it.
    """
    client = scope.get("client")
    peer = str(client[0]) if client else ""
    if not settings.trust_proxy:
        return peer
    forwarded = ",".join(
        value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name == b"x-forwarded-for"
    )
    if len(forwarded) > _MEMO_FORWARDED:
        return _walk(peer, forwarded, settings.trusted_proxies)
    # Every request of a client through the same proxies asks the same question: parsing
    # and matching addresses is tens of microseconds, a memo hit well under one.
    return _walk_memo(peer, forwarded, settings.trusted_proxies)


_MEMO_FORWARDED = 256  # longer X-Forwarded-For values are walked every time, never kept


def _walk(peer: str, forwarded: str, trusted: tuple[str, ...]) -> str:
    peer_ip = _address(peer)
    if peer_ip is None or not _trusted(peer_ip, trusted):
        return peer
    believed = str(peer_ip)
    for hop in reversed(forwarded.split(",")):
        if not hop.strip():
            continue
        ip = _address(hop)
        if ip is None:
            return believed
        if not _trusted(ip, trusted):
            return str(ip)
        believed = str(ip)
    return believed


_walk_memo = lru_cache(maxsize=4096)(_walk)


def request_is_https(request: Request[Any, Any, Any], settings: Settings) -> bool:
    """The client reached us over TLS: directly, or via a trusted proxy's X-Forwarded-Proto."""
    scope = request.scope
    if scope.get("scheme") == "https":
        return True
    client = scope.get("client")
    peer_ip = _address(str(client[0])) if client and settings.trust_proxy else None
    if peer_ip is None or not _trusted(peer_ip, settings.trusted_proxies):
        return False
    # The proxy nearest to us set it last; an earlier value is whatever the client sent.
    proto = request.headers.getall("x-forwarded-proto", [])
    last = proto[-1].split(",")[-1].strip().lower() if proto else ""
    return last == "https"


@dataclass(frozen=True, slots=True)
class ListParams:
    """The query every list accepts: limit, cursor, sort, search."""

    limit: int
    cursor: str | None
    sort: str | None
    search: str | None


async def provide_list_params(
    limit: Annotated[int, Parameter(ge=1, le=100, description="Page size, 1-100")] = 50,
    cursor: Annotated[
        str | None,
        Parameter(
            max_length=MAX_CURSOR,
            pattern=r"^[A-Za-z0-9_-]*$",  # unpadded base64url, as lists issue them
            description="nextCursor of the previous page",
        ),
    ] = None,
    sort: Annotated[str | None, Parameter(max_length=40, pattern=r"^-?[A-Za-z]+$")] = None,
    search: Annotated[str | None, Parameter(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")] = None,
) -> ListParams:
    return ListParams(limit, cursor or None, sort, search.strip() if search else None)


async def check_json_body(request: Request[Any, Any, Any]) -> None:
    """Decode the body strictly against the handler's `data` type before Litestar does.

    Litestar converts request data with msgspec's lax rules, which turn `"1990"` into
    1990 and `"true"` into True. A client sending the wrong type has a bug it should
    hear about, so bodies are checked here with strict rules: 400 when the bytes are
    not JSON, 422 naming the field when the JSON does not fit.
    """
    parameter = request.route_handler.parsed_fn_signature.parameters.get("data")
    if parameter is None:
        return
    body = await request.body()
    if not body.strip() and (parameter.has_default or parameter.is_optional):
        return  # a handler whose body is optional may be called without one
    try:
        msgspec.json.decode(body, type=parameter.annotation, strict=True)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).partition(" - at `")
        field = path.rstrip("`").removeprefix("$.").removeprefix("$") or "body"
        raise ValidationError(errors=[FieldError(field, message)]) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        # msgspec raises UnicodeDecodeError (not DecodeError) for invalid UTF-8 inside a string.
        raise MalformedRequestError("The body is not valid JSON (UTF-8)") from None


JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"


def wants_csv(request: Request[Any, Any, Any]) -> bool:
    """True for `Accept: text/csv`, False for JSON (or no Accept); 406 for anything else."""
    from haven.errors import NotAcceptableError

    if not request.headers.get("accept"):
        return False
    wanted = request.accept.best_match([JSON_TYPE, CSV_TYPE])
    if wanted is None:
        raise NotAcceptableError("This is available as application/json or text/csv")
    return wanted == CSV_TYPE


def csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is a formula to spreadsheets: quote it as text.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not text.lstrip("-").isdigit():
        return "'" + text
    return text


def csv_response(header: list[str], rows: list[list[object]], filename: str) -> Response[str]:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{filename}"'},
    )

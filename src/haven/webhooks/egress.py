"""Outbound requests to subscribers' URLs: no private, loopback, link-local or metadata targets.

A URL's host is resolved and *every* address it resolves to must be public
(an attacker's DNS name with one public and one private record is refused). The
request then goes to the address that was checked, with the original Host header
and TLS server name, so a second DNS answer (rebinding) cannot redirect it.
Redirects are never followed. WEBHOOK_ALLOW_PRIVATE=true lifts the address rule
(development and tests only; refused in production).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL = 2048
_RESOLVE_TIMEOUT_S = 3.0


class EgressRefusedError(Exception):
    """The URL may not be called; the message says why (shown to the subscription's owner)."""


@dataclass(frozen=True, slots=True)
class Target:
    url: str  # the URL with its host replaced by the checked address
    host_header: str
    sni_hostname: str | None
    address: str


def check_url_shape(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable webhook URL, or EgressRefusedError naming the fault."""
    if len(url) > MAX_URL:
        raise EgressRefusedError(f"the URL is longer than {MAX_URL} characters")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise EgressRefusedError("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EgressRefusedError(f"the URL does not parse: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise EgressRefusedError("the URL must start with https:// or http://")
    if parts.username is not None or parts.password is not None:
        raise EgressRefusedError("the URL must not carry a user name or password")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise EgressRefusedError("the URL has no host")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def address_allowed(ip: IPAddress) -> bool:
    """Only globally routable unicast addresses (IPv4-mapped IPv6 is judged as its IPv4)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return address_allowed(ip.ipv4_mapped)
        if ip.sixtofour is not None and not address_allowed(ip.sixtofour):
            return False
        if ip.teredo is not None:
            return False
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), _RESOLVE_TIMEOUT_S
        )
    except (TimeoutError, OSError, UnicodeError) as exc:
        raise EgressRefusedError(f"the host {host!r} does not resolve ({exc})") from None
    addresses: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise EgressRefusedError(f"the host {host!r} does not resolve")
    return addresses


async def target(url: str, *, allow_private: bool) -> Target:
    """Check the URL and every address of its host; the pinned request target."""
    scheme, host, port = check_url_shape(url)
    addresses = await resolve(host, port)
    if not allow_private:
        refused = [str(ip) for ip in addresses if not address_allowed(ip)]
        if refused:
            raise EgressRefusedError(
                f"the host {host!r} resolves to a private, loopback, link-local or reserved "
                f"address ({', '.join(refused[:3])}); webhooks go to public addresses only"
            )
    chosen = addresses[0]
    parts = urlsplit(url)
    netloc = f"[{chosen}]" if isinstance(chosen, ipaddress.IPv6Address) else str(chosen)
    default_port = 443 if scheme == "https" else 80
    if port != default_port:
        netloc = f"{netloc}:{port}"
    host_header = parts.netloc.rsplit("@", 1)[-1]
    pinned = parts._replace(netloc=netloc).geturl()
    return Target(
        url=pinned,
        host_header=host_header,
        sni_hostname=host if scheme == "https" else None,
        address=str(chosen),
    )

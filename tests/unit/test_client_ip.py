"""haven.web.client_ip_from_scope: whom X-Forwarded-For is believed about, and how far.

The rule: only when TRUST_PROXY is on and the TCP peer is one of TRUSTED_PROXIES, walk
X-Forwarded-For from the right, skipping trusted proxies; the first untrusted address is
the client. Everything left of it was written by the client and is never believed. The
answer feeds the per-IP rate limit and the session record, so it is always the peer or
an address in canonical form, never text a client chose.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haven.config import Settings
from haven.web import client_ip_from_scope

PROXY = "10.0.0.2"
TRUSTING = Settings(
    instance_id="unit",
    trust_proxy=True,
    trusted_proxies=("10.0.0.0/8", "127.0.0.0/8", "::1/128", "fd00::/8"),
)


def scope(peer: str | None, *forwarded: str) -> dict[str, Any]:
    return {
        "type": "http",
        "client": (peer, 40000) if peer is not None else None,
        "headers": [(b"x-forwarded-for", value.encode("latin-1")) for value in forwarded]
        + [(b"host", b"haven.test")],
    }


def ip(peer: str | None, *forwarded: str, config: Settings = TRUSTING) -> str:
    return client_ip_from_scope(scope(peer, *forwarded), config)


# -- who is believed --------------------------------------------------------------------


def test_without_trust_proxy_the_peer_is_the_client() -> None:
    assert ip(PROXY, "203.0.113.7", config=Settings(instance_id="unit")) == PROXY


def test_a_peer_that_is_not_a_trusted_proxy_cannot_choose_its_address() -> None:
    assert ip("198.51.100.9", "203.0.113.7") == "198.51.100.9"
    assert ip("198.51.100.9", "10.0.0.3") == "198.51.100.9"


def test_no_trusted_proxies_configured_believes_nobody() -> None:
    config = Settings(instance_id="unit", trust_proxy=True, trusted_proxies=())
    assert ip("127.0.0.1", "203.0.113.7", config=config) == "127.0.0.1"


def test_the_rightmost_untrusted_address_is_the_client() -> None:
    """The client wrote 6.6.6.6 itself; our proxies appended what they saw."""
    assert ip(PROXY, "6.6.6.6, 203.0.113.7, 10.0.0.9") == "203.0.113.7"
    assert ip(PROXY, "203.0.113.7") == "203.0.113.7"


def test_several_header_lines_are_one_list_in_order() -> None:
    assert ip(PROXY, "6.6.6.6", "203.0.113.7") == "203.0.113.7"
    assert ip(PROXY, "203.0.113.7", "10.0.0.9") == "203.0.113.7"


def test_an_all_trusted_chain_answers_its_first_address() -> None:
    """A request from inside the trusted network: the farthest hop is the client."""
    assert ip(PROXY, "10.1.2.3, 10.0.0.9") == "10.1.2.3"


def test_no_forwarded_header_from_a_proxy_is_the_proxy() -> None:
    assert ip(PROXY) == PROXY
    assert ip(PROXY, "") == PROXY
    assert ip(PROXY, " , ,") == PROXY


def test_no_peer_at_all_is_empty() -> None:
    assert ip(None, "203.0.113.7") == ""


# -- spellings --------------------------------------------------------------------------


def test_spaces_and_empty_elements_are_ignored() -> None:
    assert ip(PROXY, "  203.0.113.7  ,,  10.0.0.9 ,") == "203.0.113.7"
    assert ip(PROXY, "203.0.113.7\t") == "203.0.113.7"


@pytest.mark.parametrize(
    ("header", "client"),
    [
        ("2001:db8::7", "2001:db8::7"),
        ("2001:DB8:0:0::7", "2001:db8::7"),  # one address, one rate-limit bucket
        ("2001:db8::7, ::1", "2001:db8::7"),
        ("2001:db8::7, fd00::1", "2001:db8::7"),
        ("[2001:db8::7]:51234", "2001:db8::7"),
        ("203.0.113.7:51234", "203.0.113.7"),
        ("203.0.113.7:51234, 10.0.0.9:443", "203.0.113.7"),  # a trusted proxy with its port
        ("203.0.113.7, [::1]:8080", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("203.0.113.7, ::ffff:10.0.0.9", "203.0.113.7"),  # IPv4-mapped proxy: still trusted
    ],
)
def test_ipv6_and_ports(header: str, client: str) -> None:
    assert ip(PROXY, header) == client


def test_a_trusted_peer_on_a_dual_stack_socket_is_still_trusted() -> None:
    assert ip("::ffff:10.0.0.2", "203.0.113.7") == "203.0.113.7"
    assert ip("::1", "203.0.113.7") == "203.0.113.7"


@pytest.mark.parametrize(
    ("header", "client"),
    [
        ("unknown", PROXY),  # what Squid and RFC 7239 write for a hidden client
        ("unknown, 10.0.0.9", "10.0.0.9"),
        ("203.0.113.7, unknown", PROXY),
        ("<script>alert(1)</script>", PROXY),
        ("999.1.1.1", PROXY),
        ("1.2.3", PROXY),
        ("203.0.113.7 198.51.100.1", PROXY),
        ("[2001:db8::7", PROXY),
        ("2001:db8::7]:80", PROXY),
        ("x" * 10_000, PROXY),
        ("\xff\xfe", PROXY),
    ],
)
def test_an_element_that_is_no_address_stops_the_walk_at_the_last_believed_hop(
    header: str, client: str
) -> None:
    """Nothing left of a malformed element is believed, and its text is never the answer."""
    assert ip(PROXY, header) == client


def test_a_long_header_is_walked_from_the_right() -> None:
    hops = [f"198.51.{n // 256}.{n % 256}" for n in range(5000)]
    header = ", ".join([*hops, "203.0.113.7", *(["10.0.0.9"] * 50)])
    assert len(header) > 64_000
    assert ip(PROXY, header) == "203.0.113.7"


# -- the rule over any chain --------------------------------------------------------------

trusted_hops = st.sampled_from(["10.0.0.1", "10.9.8.7", "127.0.0.1", "::1", "fd00::5"])
untrusted_hops = st.ip_addresses().map(str).filter(lambda a: not _trusted(a))


def _trusted(address: str) -> bool:
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return any(parsed in ipaddress.ip_network(n) for n in TRUSTING.trusted_proxies)


@settings(deadline=None, max_examples=200)
@given(
    chain=st.lists(
        st.tuples(st.booleans(), untrusted_hops, trusted_hops).map(
            lambda t: t[2] if t[0] else t[1]
        ),
        max_size=12,
    ),
    spaces=st.sampled_from([",", ", ", " ,  "]),
)
def test_any_chain_answers_the_rightmost_untrusted_address(chain: list[str], spaces: str) -> None:
    got = ip(PROXY, spaces.join(chain))
    untrusted = [hop for hop in chain if not _trusted(hop)]
    if untrusted:
        expected = ipaddress.ip_address(untrusted[-1])
    elif chain:
        expected = ipaddress.ip_address(chain[0])
    else:
        expected = ipaddress.ip_address(PROXY)
    if isinstance(expected, ipaddress.IPv6Address) and expected.ipv4_mapped is not None:
        expected = expected.ipv4_mapped
    assert got == str(expected)


def test_a_trusted_peer_is_written_canonically_too() -> None:
    assert ip("::ffff:10.0.0.2") == "10.0.0.2"

"""Helmet-equivalent response headers, prebuilt once and added by the edge (cluster.middleware).

The API answers JSON, so its CSP allows nothing at all; the Swagger UI under
/docs loads its own assets from /docs/assets and runs one inline init script,
so /docs gets a CSP that allows exactly that (self + inline), still no
framing and no third-party origin.
"""

from __future__ import annotations

from haven.config import Settings

API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; font-src 'self' data:; object-src 'none'; "
    b"frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
# The operator status page: its own script and stylesheet only, no inline code.
STATUS_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
    b"form-action 'none'"
)
HSTS = b"max-age=31536000; includeSubDomains"


class SecurityHeaders:
    """The security headers of an answer, by path: built once per app, never per request."""

    def __init__(self, settings: Settings) -> None:
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"x-permitted-cross-domain-policies", b"none"),
        ]
        if settings.is_production:
            common.append((b"strict-transport-security", HSTS))
        self.api_headers = [*common, (b"content-security-policy", API_CSP)]
        self.docs_headers = [*common, (b"content-security-policy", DOCS_CSP)]
        self.status_headers = [*common, (b"content-security-policy", STATUS_CSP)]

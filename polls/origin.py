"""Whether a request comes from this site's own pages: the phone and stage sockets and the HTTP
fallback's POSTs share one rule.

A browser sends ``Origin`` (``scheme://host[:port]``) on every WebSocket handshake and every
POST; another site's page, or a page served on another port of the same machine, must not open
a socket or answer for a phone. Accepted: the origin of the request itself (its scheme, its
``Host`` header's host and port, the scheme's default port when none is given), with that host
in ``ALLOWED_HOSTS``; or an origin listed in ``CSRF_TRUSTED_ORIGINS`` (exactly: same scheme,
host and port). Channels' ``AllowedHostsOriginValidator``, which this replaces, compared only
the host, so ``http://127.0.0.1:9999`` and ``https://localhost`` passed, and
``ALLOWED_HOSTS = ['*']`` switched the check off; here a page must also match the Host it asked.

A missing ``Origin`` is refused, as Channels refused it: browsers always send one on these
requests, so its absence means a non-browser client, and the project's own (the load test's,
the test clients) send the origin of the server they talk to. ``Origin: null`` (a sandboxed
frame, a file) is refused too.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from .clientaddr import address_of_scope
from .logs import log_refusal

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]  # scheme (http or https), host (lower case), port


def parse_origin(text: str) -> Origin | None:
    """``scheme://host[:port]`` as one tuple, the default port filled in; None for anything
    else (another scheme, a path, credentials, ``null``)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:  # a port out of range, a broken IPv6 literal
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def allowed_host(host: str) -> bool:
    """``host`` (a Host header) is one of ALLOWED_HOSTS, as Django's request.get_host decides."""
    if "," in host:  # a repeated Host header, joined
        return False
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


def own_origin(host: str, secure: bool) -> Origin | None:
    """The origin of a request that asked for ``host`` (its Host header) over http, or https
    when ``secure``."""
    if not host or "," in host:
        return None
    return parse_origin(f"{'https' if secure else 'http'}://{host}")


def origin_allowed(origin: str | None, host: str, secure: bool) -> bool:
    """Whether a request with this ``Origin`` header, this ``Host`` header and this scheme
    (``secure``: https or wss, directly or per SECURE_PROXY_SSL_HEADER) may go on."""
    if not origin:
        return False
    claimed = parse_origin(origin)
    if claimed is None:
        return False
    trusted = {parse_origin(entry) for entry in settings.CSRF_TRUSTED_ORIGINS}
    if claimed in trusted:
        return True
    return claimed == own_origin(host, secure) and allowed_host(host)


def headers_of(scope) -> dict[str, str]:
    """A scope's headers by lower-case name; a repeated one joined as Django joins it, cookies
    with "; ", others with commas (then refused as a Host, and never a single origin)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name in headers:
            joiner = "; " if name == "cookie" else ","
            headers[name] = f"{headers[name]}{joiner}{value}"
        else:
            headers[name] = value
    return headers


def is_secure(scope, headers: dict[str, str]) -> bool:
    """As ``HttpRequest.is_secure``, for HTTP and WebSocket scopes: the trusted proxy's header
    when SECURE_PROXY_SSL_HEADER names one and the request carries it, else the scheme."""
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, expected = settings.SECURE_PROXY_SSL_HEADER
        name = meta_name.removeprefix("HTTP_").replace("_", "-").lower()
        if name in headers:
            return headers[name].split(",")[0].strip() == expected
    return scope.get("scheme") in ("https", "wss")


def request_origin_allowed(headers: dict[str, str], scope) -> bool:
    """``origin_allowed`` for a request given as its headers (lower-case names, as
    ``headers_of`` gives them) and its ASGI scope."""
    return origin_allowed(headers.get("origin"), headers.get("host", ""), is_secure(scope, headers))


class OriginCheck:
    """ASGI middleware: a WebSocket from another origin is refused before the handshake
    completes (Daphne answers the handshake with HTTP 403); everything else goes on."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        headers = headers_of(scope)
        if request_origin_allowed(headers, scope):
            return await self.app(scope, receive, send)
        detail = f"Origin {headers.get('origin')!r} is not this site (Host {headers.get('host')!r})"
        address = address_of_scope(scope)
        log_refusal("connect", "bad_origin", sender=address, path=scope["path"], detail=detail)
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.close"})

"""The client address a request came from, for the join guard and the connection caps.

Behind proxies each proxy appends the address it saw to X-Forwarded-For, so only the right-most
``ZP_TRUSTED_PROXY_HOPS`` entries were written by proxies we trust; everything to their left the
client wrote itself (a forged ``198.51.100.7, ...`` would otherwise make a new limit key per
request). Daphne's own ``--proxy-headers`` takes the left-most entry, which is why the servers are
never started with it and the address is read here.
"""

from __future__ import annotations

from django.conf import settings


def client_address(forwarded_for: str, peer: str | None) -> str:
    """The address the nearest untrusted hop connected from."""
    hops = settings.ZP_TRUSTED_PROXY_HOPS
    if hops and forwarded_for:
        chain = [part.strip() for part in forwarded_for.split(",") if part.strip()]
        if chain:
            # The first trusted proxy appended the client's address: hops entries from the
            # right. A shorter chain means fewer proxies than configured: the left-most entry
            # is then still one a trusted proxy wrote.
            return chain[-hops] if len(chain) >= hops else chain[0]
    return peer or "unknown"


def address_of_scope(scope) -> str:
    """``client_address`` of an ASGI scope (HTTP or WebSocket)."""
    forwarded = ",".join(
        value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name == b"x-forwarded-for"
    )
    peer = (scope.get("client") or (None,))[0]
    return client_address(forwarded, peer)

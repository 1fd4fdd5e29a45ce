"""The origin check of sockets and fallback POSTs: scheme, host and port, as browsers send them."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from polls.origin import origin_allowed, request_origin_allowed
from tests.servers import http_post

SITE = "127.0.0.1:8000"  # a server at http://127.0.0.1:8000, as dev.py serves it


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:8000",
        "HTTP://127.0.0.1:8000",  # schemes and hosts compare without case, as browsers serialise
    ],
)
def test_the_sites_own_origin_is_allowed(origin):
    assert origin_allowed(origin, SITE, secure=False)


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:9999",  # another port: another site on the same machine
        "https://127.0.0.1:8000",  # another scheme
        "https://localhost",  # another scheme, host and port
        "http://localhost:8000",  # another host (allowed, but not the one asked for)
        "http://127.0.0.1",  # port 80
        "http://evil.example",
        "http://127.0.0.1:8000/",  # an origin has no path
        "http://user@127.0.0.1:8000",
        "ws://127.0.0.1:8000",  # not an origin a browser sends
        "null",  # a sandboxed frame, a file:// page
        "",
        None,  # a non-browser client: see polls.origin
        "http://127.0.0.1:99999",
        "http://[::1",
    ],
)
def test_any_other_origin_is_refused(origin):
    assert not origin_allowed(origin, SITE, secure=False)


def test_default_ports_are_filled_in_on_both_sides():
    assert origin_allowed("http://localhost", "localhost:80", secure=False)
    assert origin_allowed("http://localhost:80", "localhost", secure=False)
    assert origin_allowed("https://localhost", "localhost", secure=True)
    assert origin_allowed("https://localhost:443", "localhost", secure=True)
    assert not origin_allowed("http://localhost", "localhost", secure=True)
    assert not origin_allowed("https://localhost:8443", "localhost", secure=True)


def test_the_host_must_be_allowed_even_when_it_matches(settings):
    assert not origin_allowed("http://evil.example", "evil.example", secure=False)
    assert not origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000,evil.example", False)
    # ALLOWED_HOSTS = ['*'] no longer switches the check off: the Origin must still be the Host.
    settings.ALLOWED_HOSTS = ["[::1]"]
    assert origin_allowed("http://[::1]:8000", "[::1]:8000", secure=False)
    assert not origin_allowed("http://[::1]:8001", "[::1]:8000", secure=False)
    settings.ALLOWED_HOSTS = ["*"]
    assert origin_allowed("http://poll.example", "poll.example", secure=False)
    assert not origin_allowed("http://evil.example", "poll.example", secure=False)


def test_trusted_origins_are_matched_exactly(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://poll.example.org", "http://kiosk.example:8080"]
    assert origin_allowed("https://poll.example.org", SITE, secure=False)
    assert origin_allowed("https://poll.example.org:443", SITE, secure=False)
    assert origin_allowed("http://kiosk.example:8080", SITE, secure=False)
    assert not origin_allowed("http://poll.example.org", SITE, secure=False)
    assert not origin_allowed("https://poll.example.org:8443", SITE, secure=False)
    assert not origin_allowed("https://sub.poll.example.org", SITE, secure=False)
    assert not origin_allowed("http://kiosk.example", SITE, secure=False)


def test_behind_a_tls_proxy_the_proxys_scheme_counts(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["poll.example.org"]
    proxied = {"host": "poll.example.org", "origin": "https://poll.example.org"}
    scope = {"type": "websocket", "scheme": "ws"}
    assert request_origin_allowed({**proxied, "x-forwarded-proto": "https"}, scope)
    assert not request_origin_allowed(proxied, scope)  # the page is https, the request not
    plain = {**proxied, "origin": "http://poll.example.org", "x-forwarded-proto": "http"}
    assert not request_origin_allowed({**plain, "x-forwarded-proto": "https"}, scope)
    assert request_origin_allowed(plain, scope)
    assert request_origin_allowed(proxied, {"type": "websocket", "scheme": "wss"})


# -- over a real socket ----------------------------------------------------------------------

CODE = "KSF2018"


async def open_socket(stack, path: str, origin: str | None, host: str = "127.0.0.1") -> int:
    """Open a socket to ``host`` (its Host header) with this Origin (None: none at all); 101 if
    it opened, else the HTTP status the handshake was refused with."""
    url = f"ws://{host}:{stack.port}{path}"
    try:
        async with connect(url, origin=origin, open_timeout=5) as ws:
            await asyncio.wait_for(ws.recv(), 5)  # the state: the consumer took it
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


@pytest.mark.e2e
async def test_sockets_from_another_origin_are_refused_with_403(stack):
    status, body = await http_post("127.0.0.1", stack.port, f"/api/e/{CODE}/join")
    assert status == 200
    key = parse_qs(urlsplit(stack.urls(CODE)["stage"]).query)["key"][0]
    phone = f"/ws/e/{CODE}/?token={body['token']}"
    stage = f"/ws/e/{CODE}/stage/?key={key}"
    port = stack.port
    for path in (phone, stage):
        assert await open_socket(stack, path, f"http://127.0.0.1:{port}") == 101
        assert await open_socket(stack, path, f"http://localhost:{port}", "localhost") == 101
        for origin in (
            "http://127.0.0.1:9999",
            "https://localhost",
            f"https://127.0.0.1:{port}",
            f"http://localhost:{port}",
            "http://evil.example",
            "null",
            None,
        ):
            assert await open_socket(stack, path, origin) == 403, (path, origin)

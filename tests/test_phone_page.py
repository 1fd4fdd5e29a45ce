"""The phone page served in front of Django (polls.transport.phone_page): the bytes and headers
Django's view and middlewares give, rendered once per event and language."""

from __future__ import annotations

import gzip

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.test import Client

from config.asgi import application
from polls.transport.phone_page import phone_pages
from tests.factories import make_event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_pages_left():
    phone_pages.forget()
    yield
    phone_pages.forget()


async def fetch(path, headers=(), query=b""):
    communicator = HttpCommunicator(
        application, "GET", path, headers=[(b"host", b"testserver"), *headers]
    )
    communicator.scope["query_string"] = query
    response = await communicator.get_response()
    return response["status"], dict(response["headers"]), response["body"]


def django_page(path, **headers):
    """The page as Django's own view renders it (the test client runs no ASGI app in front)."""
    response = Client().get(path, headers=headers)
    return response.status_code, response.content


async def test_the_page_is_django_s_page_in_each_language():
    event = await sync_to_async(make_event)(code="PAGE42", title="Klantcontact 2026")
    for language, accept in (("en", "en-GB,en;q=0.9"), ("nl", "nl-NL,nl;q=0.9,en;q=0.5")):
        status, headers, body = await fetch(
            f"/e/{event.code}/", [(b"accept-language", accept.encode())]
        )
        assert status == 200
        assert headers[b"content-language"] == language.encode()
        assert b"Accept-Language" in headers[b"vary"]
        assert b"script-src 'self'" in headers[b"content-security-policy"]
        assert headers[b"x-frame-options"] == b"DENY"
        expected = await sync_to_async(django_page)(
            f"/e/{event.code}/", **{"Accept-Language": accept}
        )
        assert (status, body) == expected
        assert f'<html lang="{language}">'.encode() in body
    assert set(phone_pages.pages) == {("PAGE42", "en"), ("PAGE42", "nl")}


async def test_gzip_revalidation_and_the_language_switch():
    event = await sync_to_async(make_event)(code="PAGE43")
    path = f"/e/{event.code}/"
    status, headers, body = await fetch(path, [(b"accept-encoding", b"gzip, deflate")])
    assert status == 200 and headers[b"content-encoding"] == b"gzip"
    plain = gzip.decompress(body)
    assert (await fetch(path))[2] == plain
    etag = headers[b"etag"]
    status, _headers, body = await fetch(path, [(b"if-none-match", etag)])
    assert (status, body) == (304, b"")

    status, headers, body = await fetch(path, query=b"lang=nl")
    assert status == 200 and b'<html lang="nl">' in body
    assert headers[b"set-cookie"].startswith(b"django_language=nl;")


async def test_what_the_page_path_does_not_serve_goes_to_django():
    event = await sync_to_async(make_event)(code="PAGE44")
    status, headers, _body = await fetch("/e/page44/")  # a typed variant: Django redirects it
    assert status == 302 and headers[b"Location"] == b"/e/PAGE44/"
    assert (await fetch("/e/NOPE99/"))[0] == 404
    assert (await fetch(f"/e/{event.code}/", [(b"host", b"evil.example")]))[0] == 400
    assert set(phone_pages.pages) == set()

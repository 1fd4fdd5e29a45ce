"""Static files served in front of Django (polls.transport.static_files): what WhiteNoise would
answer, without Django's middleware chain, and nothing it does not know."""

from __future__ import annotations

import gzip
import json

import pytest
from channels.testing import HttpCommunicator
from django.test import override_settings

from polls.transport.static_files import IMMUTABLE, REVALIDATE, StaticPath

SCRIPT = b"export const answer = 42;\n" * 40


async def behind(scope, receive, send):
    """What the static path hands on: Django, here a marker."""
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"django"})


@pytest.fixture
def static_root(tmp_path):
    polls = tmp_path / "polls"
    polls.mkdir()
    for name in ("phone.0123456789ab.js", "phone.js"):
        (polls / name).write_bytes(SCRIPT)
        (polls / f"{name}.gz").write_bytes(gzip.compress(SCRIPT))
    (polls / "icon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "staticfiles.json").write_text(
        json.dumps({"paths": {"polls/phone.js": "polls/phone.0123456789ab.js"}})
    )
    (tmp_path.parent / "secret.txt").write_text("not a static file")
    with override_settings(STATIC_ROOT=str(tmp_path), WHITENOISE_AUTOREFRESH=False):
        yield tmp_path


async def fetch(app, path, method="GET", headers=()):
    communicator = HttpCommunicator(app, method, path, headers=list(headers))
    response = await communicator.get_response()
    return response["status"], dict(response["headers"]), response["body"]


async def test_a_hashed_file_is_immutable_and_gzipped_when_asked(static_root):
    app = StaticPath(behind)
    status, headers, body = await fetch(
        app, "/static/polls/phone.0123456789ab.js", headers=[(b"accept-encoding", b"gzip, br")]
    )
    assert status == 200
    assert headers[b"cache-control"] == IMMUTABLE.encode()
    assert headers[b"content-encoding"] == b"gzip"
    assert headers[b"vary"] == b"Accept-Encoding"
    assert headers[b"content-type"] == b"text/javascript; charset=utf-8"
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert gzip.decompress(body) == SCRIPT
    assert int(headers[b"content-length"]) == len(body)

    status, headers, body = await fetch(app, "/static/polls/phone.0123456789ab.js")
    assert (status, body) == (200, SCRIPT)
    assert b"content-encoding" not in headers


async def test_an_unhashed_file_is_kept_a_minute_and_revalidated_with_304(static_root):
    app = StaticPath(behind)
    status, headers, _body = await fetch(app, "/static/polls/phone.js")
    assert (status, headers[b"cache-control"]) == (200, REVALIDATE.encode())
    etag = headers[b"etag"]
    status, headers, body = await fetch(
        app, "/static/polls/phone.js", headers=[(b"if-none-match", etag)]
    )
    assert (status, body, headers[b"etag"]) == (304, b"", etag)
    status, _headers, body = await fetch(app, "/static/polls/phone.js", method="HEAD")
    assert (status, body) == (200, b"")


async def test_what_it_does_not_know_goes_on_to_django(static_root):
    app = StaticPath(behind)
    for path in (
        "/static/polls/missing.js",
        "/static/../secret.txt",
        "/static/polls/../../secret.txt",
        "/e/DEMO2026/",
    ):
        status, _headers, body = await fetch(app, path)
        assert (status, body) == (299, b"django"), path
    assert (await fetch(app, "/static/polls/phone.js", method="POST"))[0] == 299
    ranged = await fetch(app, "/static/polls/phone.js", headers=[(b"range", b"bytes=0-9")])
    assert ranged[0] == 299
    assert set(app.files) == {"polls/phone.js"}  # made-up names are not remembered


async def test_files_that_change_under_the_server_are_left_to_whitenoise(static_root):
    with override_settings(WHITENOISE_AUTOREFRESH=True):
        assert (await fetch(StaticPath(behind), "/static/polls/phone.js"))[0] == 299
    with override_settings(STATIC_ROOT=None):
        assert (await fetch(StaticPath(behind), "/static/polls/phone.js"))[0] == 299

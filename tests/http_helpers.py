"""Helpers to drive the bare-ASGI HTTP parts (the join API, the fallback) through the real app.

What the fallback sends is held to the protocol's schemas as the socket's frames are
(tests/live_helpers.py): every event of a stream, and every POST's reply.
"""

from __future__ import annotations

import asyncio
import json
from typing import NoReturn
from urllib.parse import parse_qs

import pytest

from config.asgi import application
from tests.live_helpers import checked, closed_event, follow

# A page of the test site's Origin (the fallback's POSTs need it).
ORIGIN = (b"origin", b"http://testserver")


class Caller:
    """Stands for one phone or screen of the fallback, across its requests."""


# The fallback's callers, each by its credentials (a phone's token, a screen's key, as the query
# or the cookie carries it): a phone's POSTs are checked against what its stream said, as the
# frames of one socket are (a question's kind shapes the answer of an ack).
_callers: dict[tuple, Caller] = {}


def caller_of(path: str, query: str, headers) -> Caller:
    params = parse_qs(query)
    stage = "/stage/" in path
    cookies = tuple(value for name, value in headers if name == b"cookie")
    key = (stage, *params.get("token", ()), *params.get("key", ()), *cookies)
    caller = _callers.get(key)
    if caller is None:
        caller = _callers[key] = Caller()
        follow(caller, stage=stage)
    return caller


def refusal(content: bytes) -> dict:
    """The body where a socket would have been closed: ``{"error": {"code", "message"}}``."""
    body = json.loads(content)
    error = body.get("error") if isinstance(body, dict) else None
    if not (
        isinstance(error, dict)
        and set(body) == {"error"}
        and set(error) == {"code", "message"}
        and all(isinstance(value, str) for value in error.values())
    ):
        _refused_oddly(content)
    return body


def _refused_oddly(content: bytes) -> NoReturn:
    pytest.fail(f"a refusal that is not {{'error': {{'code', 'message'}}}}: {content!r}")


class Exchange:
    """One HTTP request through the ASGI app: a receive queue in, a send collector out."""

    def __init__(self, method: str, path: str, query: str = "", headers=(), body: bytes = b""):
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.outbox: asyncio.Queue = asyncio.Queue()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"testserver"), *headers],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        self.inbox.put_nowait({"type": "http.request", "body": body, "more_body": False})
        self.task = asyncio.ensure_future(application(scope, self.inbox.get, self.outbox.put))
        self.buffer = ""
        self.caller = caller_of(path, query, headers)
        self.status: int | None = None

    async def start(self, timeout: float = 5) -> tuple[int, dict[str, str]]:
        message = await asyncio.wait_for(self.outbox.get(), timeout)
        assert message["type"] == "http.response.start"
        headers = {name.decode().lower(): value.decode() for name, value in message["headers"]}
        self.status = message["status"]
        return message["status"], headers

    async def body(self, timeout: float = 5) -> bytes:
        """The rest of a plain response."""
        content = b""
        while True:
            message = await asyncio.wait_for(self.outbox.get(), timeout)
            content += message.get("body", b"")
            if not message.get("more_body", False):
                return content

    async def reply(self, timeout: float = 5) -> dict:
        """A fallback POST's JSON body, after ``start``: with 200, the frame the socket would
        have sent (checked as this caller's next frame), else a refusal."""
        content = await self.body(timeout)
        return checked(content, self.caller) if self.status == 200 else refusal(content)

    async def event(self, timeout: float = 5) -> tuple[str, str]:
        """The next server-sent event as (name, data), its data checked (a ``message`` is a
        frame of the protocol, a ``close`` carries a close code); comments and ``retry`` are
        skipped."""
        while True:
            if "\n\n" in self.buffer:
                block, self.buffer = self.buffer.split("\n\n", 1)
                fields = [line.split(": ", 1) for line in block.split("\n") if line]
                data = "\n".join(value for name, value in fields if name == "data")
                name = next((value for name, value in fields if name == "event"), "message")
                if any(name == "data" for name, _value in fields):
                    if name == "close":
                        closed_event(data)
                    else:
                        checked(data, self.caller)
                    return name, data
                continue
            message = await asyncio.wait_for(self.outbox.get(), timeout)
            assert message["type"] == "http.response.body"
            self.buffer += message["body"].decode()
            if not message.get("more_body", False) and "\n\n" not in self.buffer:
                raise EOFError("the stream ended")

    async def message(self, timeout: float = 5) -> dict:
        name, data = await self.event(timeout)
        assert name == "message", (name, data)
        return json.loads(data)

    async def message_of_type(self, kind: str, timeout: float = 5) -> dict:
        while True:
            message = await self.message(timeout)
            if message["type"] == kind:
                return message

    async def disconnect(self) -> None:
        self.inbox.put_nowait({"type": "http.disconnect"})
        await asyncio.wait_for(self.task, 5)

"""Helpers to drive the bare-ASGI HTTP parts (the join API, the fallback) through the real app."""

from __future__ import annotations

import asyncio
import json

from config.asgi import application

# A page of the test site's Origin (the fallback's POSTs need it).
ORIGIN = (b"origin", b"http://testserver")


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

    async def start(self, timeout: float = 5) -> tuple[int, dict[str, str]]:
        message = await asyncio.wait_for(self.outbox.get(), timeout)
        assert message["type"] == "http.response.start"
        headers = {name.decode().lower(): value.decode() for name, value in message["headers"]}
        return message["status"], headers

    async def body(self, timeout: float = 5) -> bytes:
        """The rest of a plain response."""
        content = b""
        while True:
            message = await asyncio.wait_for(self.outbox.get(), timeout)
            content += message.get("body", b"")
            if not message.get("more_body", False):
                return content

    async def event(self, timeout: float = 5) -> tuple[str, str]:
        """The next server-sent event as (name, data); comments and ``retry`` are skipped."""
        while True:
            if "\n\n" in self.buffer:
                block, self.buffer = self.buffer.split("\n\n", 1)
                fields = [line.split(": ", 1) for line in block.split("\n") if line]
                data = "\n".join(value for name, value in fields if name == "data")
                name = next((value for name, value in fields if name == "event"), "message")
                if any(name == "data" for name, _value in fields):
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

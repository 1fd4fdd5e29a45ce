"""Lean asyncio clients: one HTTP/1.1 request per connection, and WebSocket (RFC 6455).

The load generator holds thousands of sockets per process, so each socket is one
``asyncio.Protocol`` object driven by callbacks: no task, no queue and no keepalive timer per
connection (the phones' heartbeat runs from one timer per process). Frames are parsed straight
from the receive buffer and text payloads are handed over as ``bytes`` (``json.loads`` takes
them as is). No extension is offered, so the server never compresses.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import struct
import time
from collections.abc import Callable

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLOSE_TIMEOUT = 5.0
_random = random.Random()  # noqa: S311 - masking keys need not be secret (RFC 6455 10.3)


class HandshakeError(Exception):
    """The server refused the WebSocket upgrade (``status`` is the HTTP status, 0 if none)."""

    def __init__(self, status: int, detail: str = ""):
        super().__init__(f"handshake refused: HTTP {status} {detail}".strip())
        self.status = status


# --- HTTP -------------------------------------------------------------------------------------


class HttpResponse:
    __slots__ = ("body", "finished", "header_bytes", "headers", "started", "status")

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.header_bytes = 0
        self.started = 0.0
        self.finished = 0.0

    @property
    def wire_bytes(self) -> int:
        """Bytes as served: status line and headers plus the (possibly gzipped) body."""
        return self.header_bytes + len(self.body)


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def _dechunk(data: bytes) -> tuple[bytes, bool]:
    """Decode a chunked body; (body, complete)."""
    out = bytearray()
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return bytes(out), False
        size = int(data[pos:end].split(b";", 1)[0] or b"0", 16)
        if size == 0:
            return bytes(out), True
        start = end + 2
        if len(data) < start + size + 2:
            return bytes(out), False
        out += data[start : start + size]
        pos = start + size + 2


class _HttpProtocol(asyncio.Protocol):
    """Sends one request, resolves ``done`` with the response; the server closes (we asked
    for ``Connection: close``), so TIME_WAIT lands on the server's side, not on our ports."""

    def __init__(self, request: bytes, done: asyncio.Future) -> None:
        self.request = request
        self.done = done
        self.buffer = bytearray()
        self.response = HttpResponse()
        self.head_end = -1
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._try_finish(eof=False)

    def _try_finish(self, eof: bool) -> None:
        if self.done.done():
            return
        response = self.response
        if self.head_end < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if eof:
                    self.done.set_exception(ConnectionError("connection closed before headers"))
                return
            self.head_end = end + 4
            response.header_bytes = self.head_end
            response.status, response.headers = _parse_head(bytes(self.buffer[:end]))
        body = bytes(self.buffer[self.head_end :])
        headers = response.headers
        if "chunked" in headers.get("transfer-encoding", "").lower():
            decoded, complete = _dechunk(body)
            if complete or eof:
                response.body = decoded
                self._finish()
        elif "content-length" in headers:
            if len(body) >= int(headers["content-length"]) or eof:
                response.body = body[: int(headers["content-length"])]
                self._finish()
        elif eof or response.status in (204, 304):
            response.body = body
            self._finish()

    def _finish(self) -> None:
        self.response.finished = time.monotonic()
        self.done.set_result(self.response)

    def eof_received(self):
        self._try_finish(eof=True)
        return False

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self._try_finish(eof=True)
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("connection lost"))


async def http_request(
    host: str,
    port: int,
    method: str,
    path: str,
    *,
    host_header: str,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    body: bytes = b"",
) -> HttpResponse:
    """One request on a fresh connection (what a phone's browser does for the join call)."""
    loop = asyncio.get_running_loop()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    lines += ["Connection: close", "", ""]
    request = "\r\n".join(lines).encode("latin-1") + body
    done = loop.create_future()
    started = time.monotonic()
    transport, _protocol = await asyncio.wait_for(
        loop.create_connection(lambda: _HttpProtocol(request, done), host, port), timeout
    )
    try:
        response = await asyncio.wait_for(done, max(0.1, timeout - (time.monotonic() - started)))
    except BaseException:
        transport.abort()
        raise
    response.started = started
    # Let the server close first; only a server that keeps the socket open is cut off.
    loop.call_later(CLOSE_TIMEOUT, transport.close)
    return response


# --- WebSocket --------------------------------------------------------------------------------


def _mask(payload: bytes, key: int) -> bytes:
    size = len(payload)
    if not size:
        return payload
    stream = key.to_bytes(4, "little") * ((size + 3) // 4)
    masked = int.from_bytes(payload, "little") ^ int.from_bytes(stream[:size], "little")
    return masked.to_bytes(size, "little")


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """A final, masked client frame."""
    size = len(payload)
    key = _random.getrandbits(32)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return head + key.to_bytes(4, "little") + _mask(payload, key)


TextHandler = Callable[[bytes], None]
CloseHandler = Callable[[int, bool], None]


class WebSocket(asyncio.Protocol):
    """A client WebSocket. ``on_text(payload)`` for every text (or binary) message;
    ``on_close(code, by_us)`` once, when the TCP connection is gone (code 1006: no close frame).
    """

    def __init__(
        self, request: bytes, key: str, on_text: TextHandler, on_close: CloseHandler
    ) -> None:
        self.request = request
        self.accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()  # noqa: S324 - RFC 6455
        self.on_text = on_text
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.buffer = bytearray()
        self.is_open = False
        self.closing = False  # we sent a close frame
        self.close_code = 1006
        self.closed_by_us = False
        self.fragments: list[bytes] = []
        self.bytes_in = 0

    # asyncio.Protocol

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if not self.is_open:
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status, headers = _parse_head(bytes(self.buffer[:end]))
            rest = bytes(self.buffer[end + 4 :])
            self.buffer.clear()
            if status != 101:
                self._fail(HandshakeError(status))
                return
            if headers.get("sec-websocket-accept") != self.accept:
                self._fail(HandshakeError(status, "bad Sec-WebSocket-Accept"))
                return
            self.is_open = True
            if not self.opened.done():
                self.opened.set_result(True)
            if not rest:
                return
            data = rest
        if self.buffer:
            self.buffer += data
            buffer = self.buffer
        else:
            buffer = data
        consumed = self._frames(buffer)
        if buffer is self.buffer:
            del self.buffer[:consumed]
        elif consumed < len(data):
            self.buffer += data[consumed:]

    def _fail(self, error: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(error)
        if self.transport is not None:
            self.transport.abort()

    def _frames(self, buffer) -> int:
        """Handle every whole frame in ``buffer``; returns the bytes consumed."""
        pos = 0
        size = len(buffer)
        while size - pos >= 2:
            first, second = buffer[pos], buffer[pos + 1]
            length = second & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
                head = 10
            key = None
            if second & 0x80:
                if size - pos < head + 4:
                    break
                key = int.from_bytes(buffer[pos + head : pos + head + 4], "little")
                head += 4
            end = pos + head + length
            if end > size:
                break
            payload = bytes(buffer[pos + head : end])
            if key is not None:
                payload = _mask(payload, key)
            pos = end
            self._frame(first & 0x80, first & 0x0F, payload)
            if not self.is_open:  # a close frame (or a failed handshake): nothing more to read
                break
        return pos

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode in (0x1, 0x2):
            if fin:
                self.on_text(payload)
            else:
                self.fragments = [payload]
        elif opcode == 0x0:
            self.fragments.append(payload)
            if fin:
                whole = b"".join(self.fragments)
                self.fragments = []
                self.on_text(whole)
        elif opcode == 0x9:  # ping
            self._write(0xA, payload)
        elif opcode == 0x8:  # close
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            if not self.closing:
                self.closing = True
                self._write(0x8, payload[:2])
            self.is_open = False
            # The server closes TCP after the handshake; cut it off if it does not.
            asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._abort)

    def connection_lost(self, exc) -> None:
        self.is_open = False
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during handshake"))
            return
        if self.opened.cancelled() or self.opened.exception() is not None:
            return  # never opened: ws_connect raised, there is nothing to report as a drop
        handler, self.on_close = self.on_close, None
        if handler is not None:
            handler(self.close_code, self.closed_by_us)

    # API

    def _write(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(opcode, payload))

    def send_text(self, text: str | bytes) -> bool:
        if not self.is_open or self.closing:
            return False
        self._write(0x1, text.encode() if isinstance(text, str) else text)
        return True

    def close(self, code: int = 1000) -> None:
        """Start the closing handshake; the server answers and closes TCP."""
        self.closed_by_us = True
        if self.transport is None or self.transport.is_closing():
            return
        if self.is_open and not self.closing:
            self.closing = True
            self._write(0x8, code.to_bytes(2, "big"))
            asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._abort)
        else:
            self._abort()

    def _abort(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()


async def ws_connect(
    host: str,
    port: int,
    path: str,
    *,
    host_header: str,
    origin: str,
    on_text: TextHandler,
    on_close: CloseHandler,
    timeout: float = 10.0,
) -> WebSocket:
    """Open a WebSocket; raises HandshakeError, OSError or TimeoutError."""
    loop = asyncio.get_running_loop()
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {origin}\r\nUser-Agent: zaalpeiling-loadtest\r\n\r\n"
    ).encode("latin-1")
    started = time.monotonic()
    transport, protocol = await asyncio.wait_for(
        loop.create_connection(lambda: WebSocket(request, key, on_text, on_close), host, port),
        timeout,
    )
    try:
        await asyncio.wait_for(protocol.opened, max(0.1, timeout - (time.monotonic() - started)))
    except BaseException:
        protocol.on_close = None
        transport.abort()
        raise
    return protocol

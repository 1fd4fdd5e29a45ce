"""Lean asyncio clients: HTTP/1.1 (one request per connection, or a browser's keep-alive pool
of up to six connections per host) and WebSocket (RFC 6455).

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
import ssl
import struct
import time
from collections import deque
from collections.abc import Callable

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLOSE_TIMEOUT = 5.0
# static/polls/socket.js's reconnect backoff: full jitter between 0.5 s and a cap that starts at
# 1.5 s and doubles per try up to 15 s.
MIN_DELAY, FIRST_SPREAD, MAX_DELAY = 0.5, 1.5, 15.0


def reconnect_delay(tries: int, rng: random.Random) -> float:
    """Seconds before reconnect attempt ``tries`` (1, 2, ...), as a phone page waits them."""
    cap = min(MAX_DELAY, FIRST_SPREAD * 2 ** (tries - 1))
    return MIN_DELAY + rng.random() * (cap - MIN_DELAY)


_random = random.Random()  # noqa: S311 - masking keys need not be secret (RFC 6455 10.3)


_contexts: dict[str | None, ssl.SSLContext] = {}


def tls_of(target: dict) -> dict:
    """``create_connection``'s TLS arguments for a target (none for http://): the certificate
    checked against the system's authorities, or ``ca_file``'s. One context per process and
    authority file (a context cannot cross into a worker process; each makes its own)."""
    if not target.get("tls"):
        return {}
    ca_file = target.get("ca_file")
    context = _contexts.get(ca_file)
    if context is None:
        context = ssl.create_default_context(cafile=ca_file)
        # HTTP/1.1 only: the phones' sockets are RFC 6455 upgrades, which HTTP/2 has not.
        context.set_alpn_protocols(["http/1.1"])
        _contexts[ca_file] = context
    return {"ssl": context, "server_hostname": target["hostname"]}


class HandshakeError(Exception):
    """The server refused the WebSocket upgrade (``status`` is the HTTP status, 0 if none)."""

    def __init__(self, status: int, detail: str = ""):
        super().__init__(f"handshake refused: HTTP {status} {detail}".strip())
        self.status = status


# --- HTTP -------------------------------------------------------------------------------------


class HttpResponse:
    __slots__ = (
        "body",
        "finished",
        "header_bytes",
        "headers",
        "reused",
        "sent_bytes",
        "started",
        "status",
    )

    def __init__(self) -> None:
        self.status = 0
        self.reused = False  # sent on a kept-alive connection (no TCP connect)
        self.sent_bytes = 0
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


def _body_complete(response: HttpResponse, body: bytes, eof: bool) -> bytes | None:
    """The body once it is whole (by chunked encoding, Content-Length, or the end of the
    connection), else None."""
    headers = response.headers
    if response.status in (204, 304) or 100 <= response.status < 200:
        return b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        decoded, complete = _dechunk(body)
        return decoded if complete or eof else None
    if "content-length" in headers:
        length = int(headers["content-length"])
        return body[:length] if len(body) >= length or eof else None
    return body if eof else None


def _request_bytes(
    method: str,
    path: str,
    host_header: str,
    headers: dict[str, str] | None,
    body: bytes,
    close: bool,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    lines += ["", ""]
    return "\r\n".join(lines).encode("latin-1") + body


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
        body = _body_complete(response, bytes(self.buffer[self.head_end :]), eof)
        if body is not None:
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
    tls: dict | None = None,
) -> HttpResponse:
    """One request on a fresh connection (what a phone's browser does for the join call);
    ``tls``: ``tls_of(target)`` for https://."""
    loop = asyncio.get_running_loop()
    request = _request_bytes(method, path, host_header, headers, body, close=True)
    done = loop.create_future()
    started = time.monotonic()
    transport, _protocol = await asyncio.wait_for(
        loop.create_connection(lambda: _HttpProtocol(request, done), host, port, **(tls or {})),
        timeout,
    )
    try:
        response = await asyncio.wait_for(done, max(0.1, timeout - (time.monotonic() - started)))
    except BaseException:
        transport.abort()
        raise
    response.started = started
    response.sent_bytes = len(request)
    # Let the server close first; only a server that keeps the socket open is cut off.
    loop.call_later(CLOSE_TIMEOUT, transport.close)
    return response


class _KeptAlive(asyncio.Protocol):
    """One HTTP/1.1 connection that carries one request after another (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.head_end = -1
        self.response: HttpResponse | None = None
        self.done: asyncio.Future | None = None
        self.closed = False
        self.reusable = True
        self.requests = 0
        self.bytes_in = 0
        self.bytes_out = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self, request: bytes, done: asyncio.Future) -> None:
        self.buffer.clear()
        self.head_end = -1
        self.response = HttpResponse()
        self.response.reused = self.requests > 0
        self.response.sent_bytes = len(request)
        self.done = done
        self.requests += 1
        self.bytes_out += len(request)
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if self.done is None:
            return  # nothing asked: a stray byte makes the connection useless
        self.buffer += data
        self._try_finish(eof=False)

    def _try_finish(self, eof: bool) -> None:
        done, response = self.done, self.response
        if done is None or done.done():
            return
        if self.head_end < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if eof:
                    done.set_exception(ConnectionError("connection closed before headers"))
                return
            self.head_end = end + 4
            response.header_bytes = self.head_end
            response.status, response.headers = _parse_head(bytes(self.buffer[:end]))
        body = _body_complete(response, bytes(self.buffer[self.head_end :]), eof)
        if body is None:
            return
        response.body = body
        response.finished = time.monotonic()
        if eof or "close" in response.headers.get("connection", "").lower():
            self.reusable = False
        elif not (
            "content-length" in response.headers
            or "chunked" in response.headers.get("transfer-encoding", "").lower()
            or response.status in (204, 304)
        ):
            self.reusable = False  # a body delimited by the connection's end
        self.done = None
        done.set_result(response)

    def eof_received(self):
        self._try_finish(eof=True)
        self.reusable = False
        return False

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.reusable = False
        self._try_finish(eof=True)
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc or ConnectionError("connection lost"))
        self.done = None

    @property
    def idle_usable(self) -> bool:
        return self.reusable and not self.closed and self.done is None

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class HttpPool:
    """A browser's connections to one host: up to ``limit`` HTTP/1.1 keep-alive connections
    (six, as browsers allow per host over HTTP/1.1), each reused for the next request waiting.

    A request that fails on a reused connection before any response byte came is sent once
    more on a fresh one, as browsers do: the server may have closed the idle connection just
    as the request went out."""

    def __init__(self, target: dict, limit: int = 6) -> None:
        self.target = target
        self.limit = limit
        self.idle: list[_KeptAlive] = []
        self.busy = 0
        self.waiting: deque[asyncio.Future] = deque()
        self.connections: list[_KeptAlive] = []
        self.opened = 0
        self.closed = False

    @property
    def bytes_in(self) -> int:
        return sum(connection.bytes_in for connection in self.connections)

    @property
    def bytes_out(self) -> int:
        return sum(connection.bytes_out for connection in self.connections)

    async def _connect(self, timeout: float) -> _KeptAlive:
        loop = asyncio.get_running_loop()
        _transport, connection = await asyncio.wait_for(
            loop.create_connection(
                _KeptAlive, self.target["ip"], self.target["port"], **tls_of(self.target)
            ),
            timeout,
        )
        self.opened += 1
        self.connections.append(connection)
        return connection

    async def _acquire(self, deadline: float) -> _KeptAlive:
        while True:
            while self.idle:
                connection = self.idle.pop()
                if connection.idle_usable:
                    self.busy += 1
                    return connection
            if self.busy < self.limit:
                self.busy += 1
                try:
                    return await self._connect(max(0.1, deadline - time.monotonic()))
                except BaseException:
                    self._release(None)
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self.waiting.append(waiter)
            try:
                await asyncio.wait_for(waiter, max(0.1, deadline - time.monotonic()))
            finally:
                if waiter in self.waiting:
                    self.waiting.remove(waiter)

    def _release(self, connection: _KeptAlive | None) -> None:
        self.busy -= 1
        if connection is not None:
            if connection.idle_usable and not self.closed:
                self.idle.append(connection)
            else:
                connection.close()
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
        body: bytes = b"",
    ) -> HttpResponse:
        deadline = time.monotonic() + timeout
        request = _request_bytes(
            method, path, self.target["host_header"], headers, body, close=False
        )
        for attempt in (1, 2):
            started = time.monotonic()
            connection = await self._acquire(deadline)
            reused = connection.requests > 0
            done = asyncio.get_running_loop().create_future()
            try:
                connection.send(request, done)
                response = await asyncio.wait_for(done, max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                connection.reusable = False
                if connection.transport is not None:
                    connection.transport.abort()
                self._release(connection)
                raise
            except (OSError, ConnectionError) as error:
                got_nothing = connection.head_end < 0 and not connection.buffer
                connection.reusable = False
                self._release(connection)
                if attempt == 1 and reused and got_nothing:
                    continue
                raise error
            except BaseException:
                connection.reusable = False
                if connection.transport is not None:
                    connection.transport.abort()
                self._release(connection)
                raise
            response.started = started
            self._release(connection)
            return response
        raise ConnectionError("unreachable")

    def close(self) -> None:
        """Let go of every connection (the phone is done with the page)."""
        self.closed = True
        for connection in self.connections:
            if connection.done is None:
                connection.close()
        self.idle.clear()


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
        self.opened_at: float | None = None  # the 101 read (a first message may come with it)

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
            self.opened_at = time.monotonic()
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
    tls: dict | None = None,
) -> WebSocket:
    """Open a WebSocket (``tls``: ``tls_of(target)`` for wss://); raises HandshakeError,
    OSError or TimeoutError."""
    loop = asyncio.get_running_loop()
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {origin}\r\nUser-Agent: zaalpeiling-loadtest\r\n\r\n"
    ).encode("latin-1")
    started = time.monotonic()
    transport, protocol = await asyncio.wait_for(
        loop.create_connection(
            lambda: WebSocket(request, key, on_text, on_close), host, port, **(tls or {})
        ),
        timeout,
    )
    try:
        await asyncio.wait_for(protocol.opened, max(0.1, timeout - (time.monotonic() - started)))
    except BaseException:
        protocol.on_close = None
        transport.abort()
        raise
    return protocol

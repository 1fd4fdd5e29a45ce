"""The ceiling: the product's Redis work for each phone behind the thinnest server Python has.

What a phone costs the product is its transport (Daphne's HTTP parsing, the WebSocket
handshake, Channels and Django's ASGI layers) plus its own work: the join guard, the signed
token, the first state, the tally. This server keeps the second and drops the first, so the
load test measured against it gives the physical ceiling of this stack on these cores. It calls
the product's own functions for every Redis command and every signature:

- ``POST /api/e/<CODE>/join``: the join guard as ``views.join_response`` runs it (``guard``:
  the join priced and, when free, counted; for a busy address a ``428`` with a signed
  challenge, or the solution accepted with one ``SET NX`` and the join counted), then a token
  from ``tokens.issue_participant_token`` (Django's signing) -> ``{"token": ...}``.
- ``GET /ws/e/<CODE>/?token=...``: the token read back (``read_participant_token``), the
  phone's own answer (``tally.answer_of``: one ``HGET``), then the first ``state``. The state is
  held in this process, as the product's event hub holds it after its one ``GET``.
- ``answer`` -> ``tally.record_answer`` (the product's batcher: one pipeline of the record
  script's ``EVALSHA`` per answer and one ``SADD`` of the log) -> ``ack``; ``ping`` -> ``pong``.
- ``GET /api/e/<CODE>/counts`` and ``POST /api/e/<CODE>/broadcast?question=&kind=``: what
  ``manage.py loadtest --baseline`` asks of a bare side. The counts are the tally's version
  (it moves once per counted change, so its growth equals the acknowledged answers); a
  broadcast is one ``PUBLISH`` that every process hands to its own sockets, as the product's
  local fan-out does.

Not here: the database (the product's join looks its event up once per few seconds per process,
the answer writer drains the log), validation beyond the question id, the security headers and
the access log. The transport is hand-written on ``asyncio.Protocol`` callbacks, as the load
generator's own client is: the ``websockets`` server refuses a request with a body (the join
with a proof of work has one) and runs a task per connection; this runs a task only while
Redis is awaited.

Run it as several processes on one port, as the bench does::

    python -m loadgen.ceiling --fd N        # an inherited listening socket (devenv.daphne)
    python -m loadgen.ceiling --port 8703   # SO_REUSEPORT: start it as often as wanted

Settings are the product's (``DJANGO_SETTINGS_MODULE``, default ``config.settings.dev``: the
secret key, the join guard's rates, ``REDIS_URL``), read without ``django.setup()``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import struct
import sys
from urllib.parse import parse_qs, urlsplit

from redis.exceptions import RedisError

from loadgen.bare import state_text
from polls import joinguard, tally
from polls.clientaddr import client_address
from polls.redis_client import get_async_redis
from polls.tokens import (
    issue_participant_token,
    new_participant_id,
    participant_cookie_name,
    read_participant_token,
)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
API = re.compile(r"/api/e/(?P<code>[A-Z0-9]{4,12})/(?P<what>join|counts|broadcast)")
SOCKET = re.compile(r"/ws/e/(?P<code>[A-Z0-9]{4,12})/")
EVENT_ID = 1
FIRST_QUESTION = 1
SECOND_QUESTION = 2  # the baseline's broadcasts switch between the two
CHANNEL = "zp:ceiling:live"
MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 4096
MAX_MESSAGE_BYTES = 64 * 1024
CLOSE_BAD_TOKEN = 4401
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
REASONS |= {413: "Payload Too Large", 428: "Precondition Required", 500: "Internal Server Error"}


class Hall:
    """This process's sockets per event code and the question they are on."""

    def __init__(self) -> None:
        self.sockets: dict[str, set[Connection]] = {}
        self.question: dict[str, tuple[int, str]] = {}
        self.tasks: set[asyncio.Task] = set()

    def spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def question_of(self, code: str, kind: str) -> tuple[int, str]:
        return self.question.get(code, (FIRST_QUESTION, kind))

    def deliver(self, message: dict) -> None:
        code = message["code"]
        self.question[code] = (message["question"], message["kind"])
        payload = message["text"].encode()
        for connection in list(self.sockets.get(code, ())):
            connection.send_text(payload)


def _json(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class Connection(asyncio.Protocol):
    """One TCP connection: one HTTP request (the client asks ``Connection: close``), or an
    upgrade to a WebSocket that lives on here."""

    def __init__(self, hall: Hall) -> None:
        self.hall = hall
        self.transport: asyncio.Transport | None = None
        self.peer: str | None = None
        self.buffer = bytearray()
        self.busy = False  # a request is being answered: nothing more is read as HTTP
        self.websocket = False
        self.closing = False
        self.code = ""
        self.kind = "single"
        self.participant: str | None = None
        self.fragments: list[bytes] = []

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else None

    def connection_lost(self, exc) -> None:
        self.closing = True
        if self.participant is not None:
            self.hall.sockets.get(self.code, set()).discard(self)

    def data_received(self, data: bytes) -> None:
        if self.websocket:
            self.buffer += data
            consumed = self._frames(self.buffer)
            del self.buffer[:consumed]
            return
        if self.busy:
            return
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                self._respond(400, {"error": {"code": "bad_request"}})
            return
        try:
            method, target, headers = _parse_head(bytes(self.buffer[:end]))
            length = int(headers.get("content-length", "0") or "0")
        except ValueError:
            self._respond(400, {"error": {"code": "bad_request"}})
            return
        if length > MAX_BODY_BYTES:
            self._respond(413, {"error": {"code": "bad_request"}})
            return
        if len(self.buffer) < end + 4 + length:
            return  # the body is still coming
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        self.buffer.clear()
        self.busy = True
        self._route(method, target, headers, body)

    # --- HTTP ------------------------------------------------------------------------------

    def _route(self, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        split = urlsplit(target)
        query = parse_qs(split.query)
        match = SOCKET.fullmatch(split.path)
        if match and headers.get("upgrade", "").lower() == "websocket":
            self._upgrade(match["code"], headers, query)
            return
        match = API.fullmatch(split.path)
        if match is None:
            self._respond(404, {"error": {"code": "not_found"}})
            return
        code, what = match["code"], match["what"]
        if what == "counts":
            self.hall.spawn(self._counts(code))
        elif method != "POST":
            self._respond(405, {"error": {"code": "not_allowed"}})
        elif what == "join":
            self.hall.spawn(self._join(code, headers, body))
        else:
            self.hall.spawn(self._broadcast(code, query))

    def _respond(self, status: int, payload: dict, extra: str = "") -> None:
        if self.transport is None or self.closing:
            return
        body = _json(payload)
        head = (
            f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
        )
        self.transport.write(head.encode("latin-1") + body)
        self.transport.close()

    async def _join(self, code: str, headers: dict[str, str], raw: bytes) -> None:
        address = client_address(headers.get("x-forwarded-for", ""), self.peer)
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._respond(400, {"error": {"code": "bad_json"}})
            return
        work = await guard(address, body.get("work"))
        if work is not None:
            error = {"code": "work_required", "message": "Your phone is checking in."}
            self._respond(428, {"error": error, "work": work.payload()})
            return
        token = issue_participant_token(EVENT_ID, code, new_participant_id(address))
        cookie = f"Set-Cookie: {participant_cookie_name(code)}={token}; HttpOnly; SameSite=Lax\r\n"
        self._respond(200, {"token": token}, cookie)

    async def _counts(self, code: str) -> None:
        """The versions of the questions the phones may have answered: their growth is the
        number of counted changes."""
        current, _kind = self.hall.question_of(code, "single")
        questions = sorted({FIRST_QUESTION, SECOND_QUESTION, current})
        try:
            versions = await tally.read_versions(questions)
        except tally.TallyUnavailable:
            self._respond(500, {"error": {"code": "unavailable"}})
            return
        counts = {f"q{question}": versions.get(question, 0) for question in questions}
        self._respond(200, {"counts": counts, "total": sum(counts.values())})

    async def _broadcast(self, code: str, query: dict) -> None:
        question_id = int(query.get("question", ["2"])[-1])
        kind = query.get("kind", ["single"])[-1]
        message = {
            "code": code,
            "question": question_id,
            "kind": kind,
            "text": state_text(code, question_id, kind),
        }
        await get_async_redis().publish(CHANNEL, json.dumps(message))
        self._respond(200, {"ok": True})

    # --- WebSocket -------------------------------------------------------------------------

    def _upgrade(self, code: str, headers: dict[str, str], query: dict) -> None:
        key = headers.get("sec-websocket-key", "")
        if not key or headers.get("sec-websocket-version") != "13":
            self._respond(400, {"error": {"code": "bad_request"}})
            return
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())  # noqa: S324 - RFC 6455
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.websocket = True
        self.code = code
        self.kind = query.get("kind", ["single"])[-1]
        participant = read_participant_token(query.get("token", [""])[-1], code)
        if participant is None:
            self.close(CLOSE_BAD_TOKEN)
            return
        self.hall.spawn(self._open(participant.participant_id))

    async def _open(self, participant: str) -> None:
        question_id, kind = self.hall.question_of(self.code, self.kind)
        try:
            answer = await tally.answer_of(question_id, participant)
        except (RedisError, OSError):
            answer = None
        if self.closing:
            return
        self.participant = participant
        self.hall.sockets.setdefault(self.code, set()).add(self)
        self.send_text(state_text(self.code, question_id, kind, answer).encode())

    def _frames(self, buffer: bytearray) -> int:
        """Handle every whole frame in ``buffer``; returns the bytes consumed."""
        pos, size = 0, len(buffer)
        while size - pos >= 2 and not self.closing:
            first, second = buffer[pos], buffer[pos + 1]
            length, head = second & 0x7F, 2
            if not second & 0x80:  # a client frame must be masked (RFC 6455 5.1)
                self.close(1002)
                return size
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), 10
            if length > MAX_MESSAGE_BYTES:
                self.close(1009)
                return size
            end = pos + head + 4 + length
            if end > size:
                break
            key = int.from_bytes(buffer[pos + head : pos + head + 4], "little")
            payload = _unmask(bytes(buffer[pos + head + 4 : end]), key)
            pos = end
            self._frame(first & 0x80, first & 0x0F, payload)
        return pos

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode in (0x1, 0x2):
            if fin:
                self._message(payload)
            else:
                self.fragments = [payload]
        elif opcode == 0x0:
            self.fragments.append(payload)
            if fin:
                whole, self.fragments = b"".join(self.fragments), []
                self._message(whole)
        elif opcode == 0x9:
            self._write(0xA, payload)
        elif opcode == 0x8:
            self.close(int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1000)

    def _message(self, payload: bytes) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self.send_text(_json({"type": "error", "id": None, "code": "bad_message"}))
            return
        kind = message.get("type")
        if kind == "ping":
            self.send_text(_json({"type": "pong", "id": message.get("id")}))
        elif kind == "answer" and self.participant is not None:
            self.hall.spawn(self._answer(message))
        else:
            self.send_text(_json({"type": "error", "id": message.get("id"), "code": "bad_message"}))

    async def _answer(self, message: dict) -> None:
        message_id = message.get("id")
        question_id, kind = self.hall.question_of(self.code, self.kind)
        value = message.get("value")
        if message.get("question") != question_id or not isinstance(message_id, str):
            self.send_text(_json({"type": "error", "id": message_id, "code": "not_open"}))
            return
        try:
            outcome = await tally.record_answer(
                question_id, kind, self.participant, message_id, value
            )
        except tally.TallyUnavailable:
            self.send_text(_json({"type": "error", "id": message_id, "code": "unavailable"}))
            return
        if outcome.counted:
            reply = {"type": "ack", "id": message_id, "question": question_id, "answer": value}
        else:
            reply = {"type": "error", "id": message_id, "code": outcome.status}
        self.send_text(_json(reply))

    def send_text(self, payload: bytes) -> None:
        self._write(0x1, payload)

    def _write(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.closing:
            return
        size = len(payload)
        if size < 126:
            head = struct.pack("!BB", 0x80 | opcode, size)
        elif size < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, size)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, size)
        self.transport.write(head + payload)

    def close(self, code: int) -> None:
        """A close frame, then the TCP connection (the server closes first, RFC 6455 7.1.1)."""
        self._write(0x8, code.to_bytes(2, "big"))
        self.closing = True
        if self.transport is not None:
            self.transport.close()


async def guard(address: str, solution: object) -> joinguard.Work | None:
    """The join guard's steps as ``views.join_response`` takes them: None when the join may
    have its token (it is counted then), else the work to ask for."""
    return await joinguard.work_for_join(address, solution)


def _unmask(payload: bytes, key: int) -> bytes:
    size = len(payload)
    if not size:
        return payload
    stream = key.to_bytes(4, "little") * ((size + 3) // 4)
    return (int.from_bytes(payload, "little") ^ int.from_bytes(stream[:size], "little")).to_bytes(
        size, "little"
    )


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, target, headers


async def _hear_broadcasts(hall: Hall) -> None:
    """The other half of a broadcast: every process hears the one PUBLISH."""
    pubsub = get_async_redis().pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(CHANNEL)
    async for message in pubsub.listen():
        if message["type"] == "message":
            hall.deliver(json.loads(message["data"]))


def listening_socket(args: argparse.Namespace) -> socket.socket:
    if args.fd is not None:
        return socket.socket(fileno=args.fd)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((args.host, args.port))
    sock.listen(4096)
    return sock


async def serve(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    hall = Hall()
    # The tally script counts only while its question is open; the product's host opens it.
    await get_async_redis().hset(tally.question_keys(FIRST_QUESTION)["meta"], "open", "1")
    listener = loop.create_task(_hear_broadcasts(hall))
    server = await loop.create_server(lambda: Connection(hall), sock=sock)
    stopped = loop.create_future()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, lambda: stopped.done() or stopped.set_result(None))
    await stopped
    server.close()
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadgen.ceiling",
        description="The product's Redis work per phone on a minimal asyncio server.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--fd", type=int, help="An inherited listening socket.")
    where.add_argument("--port", type=int, help="A port to share with SO_REUSEPORT.")
    parser.add_argument("--host", default="127.0.0.1")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Read lazily by the product's functions; nothing here calls django.setup().
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    asyncio.run(serve(listening_socket(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The product's Daphne entry point (``python -m polls.server``) against real clients: a deadline
for request heads that spares sockets and event streams, and no stage keys or tokens in its
access log."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.client import connect

from tests.servers import ROOT, http_post, make_stack

pytestmark = [pytest.mark.e2e]

CODE = "KSF2018"
HEAD_TIMEOUT = 3


@pytest.fixture
def served(tmp_path, redis_server):
    """The demo event behind one ``polls.server`` with a 3 s head deadline and an access log."""
    stack = make_stack(tmp_path)
    stack.env["ZP_HEADER_TIMEOUT"] = str(HEAD_TIMEOUT)
    stack.access_log = tmp_path / "access.log"
    stack.start_daphne(extra=("--access-log", str(stack.access_log)))
    yield stack
    stack.stop()


async def join(stack) -> str:
    status, body = await http_post("127.0.0.1", stack.port, f"/api/e/{CODE}/join")
    assert status == 200, body
    return body["token"]


def stage_key(stack) -> str:
    return parse_qs(urlsplit(stack.urls(CODE)["stage"]).query)["key"][0]


async def get(stack, target: str, reader=None, writer=None) -> tuple[int, bytes]:
    """One keep-alive GET (on the given connection, else a new one): (status, head)."""
    if writer is None:
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{stack.port}\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        None,
    )
    if length is not None:
        await asyncio.wait_for(reader.readexactly(length), 10)
    return int(head.split(b" ", 2)[1]), head


async def closed_after(reader, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closes the connection, and what it sent before."""
    started = time.monotonic()
    received = await asyncio.wait_for(reader.read(), limit)
    return time.monotonic() - started, received


async def still_open(reader) -> bool:
    """Whether the server has not closed this connection (what it sent is read and dropped)."""
    while True:
        try:
            if not await asyncio.wait_for(reader.read(65536), 0.5):
                return False
        except TimeoutError:
            return True


async def trickle_headers(writer) -> None:
    """One header line every 2 s, the head never finished (Twisted's idle timeout never fires)."""
    for number in range(30):
        try:
            writer.write(f"X-Slow-{number}: still coming\r\n".encode())
            await writer.drain()
        except (ConnectionError, OSError):
            return
        await asyncio.sleep(2)


async def test_a_head_trickled_line_by_line_is_cut_while_sockets_and_streams_live_on(served):
    token = await join(served)
    phone_url = f"ws://127.0.0.1:{served.port}/ws/e/{CODE}/?token={token}"
    async with connect(phone_url, origin=served.base) as phone:
        await asyncio.wait_for(phone.recv(), 5)  # the state
        # An event stream in progress: its head came long ago, its response goes on.
        stream_reader, stream_writer = await asyncio.open_connection("127.0.0.1", served.port)
        stream_writer.write(
            f"GET /api/e/{CODE}/events?token={token} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{served.port}\r\n\r\n".encode()
        )
        await stream_writer.drain()
        stream_head = await asyncio.wait_for(stream_reader.readuntil(b"\r\n\r\n"), 5)
        assert stream_head.startswith(b"HTTP/1.1 200")

        slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", served.port)
        slow_writer.write(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n".encode())
        trickling = asyncio.create_task(trickle_headers(slow_writer))
        seconds, received = await closed_after(slow_reader, 12)
        trickling.cancel()
        slow_writer.close()
        assert HEAD_TIMEOUT - 0.5 < seconds < HEAD_TIMEOUT + 1.5, seconds
        assert received.startswith(b"HTTP/1.1 408 "), received

        # A request sent at once is answered, on a connection of its own as on a kept-alive one.
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        assert (await get(served, "/", reader, writer))[0] == 200
        await asyncio.sleep(1)
        assert (await get(served, "/", reader, writer))[0] == 200
        # ... and a kept-alive connection that sends nothing more is closed, without a word.
        seconds, received = await closed_after(reader, 12)
        writer.close()
        assert seconds < HEAD_TIMEOUT + 1.5 and received == b""

        await asyncio.sleep(5 - HEAD_TIMEOUT)  # the socket and the stream are 5 s old or more
        await phone.send('{"type": "ping", "id": "p1"}')
        while True:
            message = await asyncio.wait_for(phone.recv(), 5)
            if '"pong"' in message:
                break
        assert await still_open(stream_reader)
        stream_writer.close()


async def test_the_access_log_never_holds_a_stage_key_or_a_token(served):
    key = stage_key(served)
    token = await join(served)
    status, _head = await get(served, f"/e/{CODE}/stage/?key={key}")
    assert status == 200
    stage_url = f"ws://127.0.0.1:{served.port}/ws/e/{CODE}/stage/?key={key}"
    phone_url = f"ws://127.0.0.1:{served.port}/ws/e/{CODE}/?token={token}"
    async with connect(stage_url, origin=served.base) as stage:
        await asyncio.wait_for(stage.recv(), 5)
    async with connect(phone_url, origin=served.base) as phone:
        await asyncio.wait_for(phone.recv(), 5)
    # The HTTP fallback's stream and POST carry the token in their query too.
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    body = b'{"type": "ping", "id": "p1"}'
    writer.write(
        f"POST /api/e/{CODE}/answer?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n"
        f"Origin: {served.base}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    assert (await asyncio.wait_for(reader.read(), 10)).startswith(b"HTTP/1.1 200")
    writer.close()

    log = ""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the socket lines come as Daphne notices the closes
        log = served.access_log.read_text()
        if log.count("WSDISCONNECT") >= 2 and "POST" in log:
            break
        await asyncio.sleep(0.2)
    assert f'GET /e/{CODE}/stage/?key=***"' in log
    assert f'POST /api/e/{CODE}/answer?token=***"' in log
    assert log.count("WSCONNECT ") >= 2 and log.count("WSDISCONNECT") >= 2, log
    assert key not in log and token not in log
    assert key not in served.log_text() and token not in served.log_text()


def test_proxy_headers_are_refused():
    """Daphne's --proxy-headers believes the left-most X-Forwarded-For, which the client writes."""
    result = subprocess.run(
        [sys.executable, "-m", "polls.server", "--proxy-headers", "config.asgi:application"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--proxy-headers is refused" in result.stderr


def test_autobahn_debug_text_is_made_only_when_a_line_shows_it():
    import autobahn.websocket.protocol as autobahn_protocol

    import polls.server  # noqa: F401 - the module's import makes the change

    class Counted:
        shown = 0

        def __repr__(self):
            Counted.shown += 1
            return "counted"

    deferred = autobahn_protocol.pformat([Counted()])
    assert Counted.shown == 0  # what every socket's opening pays when debug logging is off
    assert f"{deferred}" == "[counted]" and Counted.shown == 1  # as txaio formats it
    assert str(autobahn_protocol.Timings()) == "{}"

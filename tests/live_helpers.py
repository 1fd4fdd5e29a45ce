"""Helpers to talk to the real ASGI application over WebsocketCommunicator."""

from __future__ import annotations

import contextlib
import json

from channels.testing import WebsocketCommunicator

from config.asgi import application

# A browser page of the test site: its Origin, and the Host it asked (the origin check compares).
ORIGIN = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
# Every communicator a test opened; the test's teardown disconnects them (channels' advice),
# so no consumer is left awaiting the channel layer when the event loop closes.
opened: list[WebsocketCommunicator] = []


async def connect(path: str, headers=None) -> tuple[WebsocketCommunicator, bool, int | None]:
    communicator = WebsocketCommunicator(application, path, headers=headers or ORIGIN)
    opened.append(communicator)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def refused_with(path: str, headers=None) -> int:
    """Connect and return the close code the server refused the socket with."""
    communicator, connected, code = await connect(path, headers)
    if not connected:
        return code
    output = await communicator.receive_output(timeout=3)
    while output["type"] != "websocket.close":
        output = await communicator.receive_output(timeout=3)
    return output["code"]


async def disconnect_all() -> None:
    while opened:
        communicator = opened.pop()
        with contextlib.suppress(Exception):  # already closed by the server or the test
            await communicator.disconnect(timeout=3)


async def receive(communicator: WebsocketCommunicator, timeout: float = 3) -> dict:
    return json.loads(await communicator.receive_from(timeout=timeout))


async def receive_type(communicator: WebsocketCommunicator, kind: str, timeout: float = 3) -> dict:
    """Skip other messages (e.g. results pushes) until one of the given type arrives."""
    while True:
        message = await receive(communicator, timeout)
        if message["type"] == kind:
            return message


async def send(communicator: WebsocketCommunicator, message) -> None:
    text = message if isinstance(message, str) else json.dumps(message)
    await communicator.send_to(text_data=text)

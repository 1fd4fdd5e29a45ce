"""Helpers to talk to the real ASGI application over WebsocketCommunicator."""

from __future__ import annotations

import json

from channels.testing import WebsocketCommunicator

from config.asgi import application

ORIGIN = [(b"origin", b"http://testserver")]


async def connect(path: str, headers=None) -> tuple[WebsocketCommunicator, bool, int | None]:
    communicator = WebsocketCommunicator(application, path, headers=headers or ORIGIN)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


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

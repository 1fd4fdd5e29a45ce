"""Helpers to talk to the real ASGI application over WebsocketCommunicator.

Every frame received through them is held to the protocol's schemas (``polls.protocol``): a
frame that does not fit fails the test with the path of the first wrong member. The readers of
the other lines (event streams and POSTs in tests/http_helpers.py, real sockets, the state
cache) check what they read with the same functions.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Awaitable, Callable
from typing import NoReturn

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application
from polls.protocol import (
    CLOSE_CODES,
    CloseEvent,
    FrameChecker,
    Published,
    SchemaError,
    check,
    check_event_state,
)

# A browser page of the test site: its Origin, and the Host it asked (the origin check compares).
ORIGIN = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
# Every communicator a test opened; the test's teardown disconnects them (channels' advice),
# so no consumer is left awaiting the channel layer when the event loop closes.
opened: list[WebsocketCommunicator] = []
# Per connection: what its earlier frames said (a question's kind shapes its answers and results).
_checkers: weakref.WeakKeyDictionary[object, FrameChecker] = weakref.WeakKeyDictionary()


def checked(text: str | bytes, connection: object = None) -> dict:
    """A server frame decoded, after checking it against the protocol's schemas. Pass the
    connection it came on (any object) to also check it against that connection's earlier
    frames. Readers of other transports (event streams, real sockets) use this too."""
    try:
        checker = _checkers.setdefault(connection, FrameChecker())
    except TypeError:  # None, or a connection that takes no weak reference: this frame alone
        checker = FrameChecker()
    try:
        return checker.frame(text)
    except SchemaError as error:
        _fail("the server sent a frame", error, text)


def follow(connection: object, stage: bool = False) -> None:
    """Check the frames of ``connection`` from now on as one line's (a stage screen's has no
    answer of its own and no ack)."""
    _checkers[connection] = FrameChecker(stage=stage)


def _fail(what: str, error: SchemaError, text: object) -> NoReturn:
    pytest.fail(f"{what} outside the protocol (polls.protocol): {error}\n{text!r}")


def closed_event(data: str) -> int:
    """The close code of an event stream's ``close`` event, after checking its data."""
    try:
        closing = json.loads(data)
    except ValueError:
        pytest.fail(f"the server sent a close event whose data is not JSON: {data!r}")
    try:
        check(CloseEvent, closing, "close")
    except SchemaError as error:
        _fail("the server sent a close event", error, data)
    return check_close_code(closing["code"])


def cached_event_state(text: str | bytes | None) -> dict | None:
    """The event state the Redis cache holds (None: nothing cached), after checking it against
    ``polls.protocol.EventState``, spec and public question agreeing."""
    if text is None:
        return None
    state = json.loads(text)
    try:
        check_event_state(state)
    except SchemaError as error:
        _fail("the state cache holds a state", error, text)
    return state


def published_message(message: object) -> dict:
    """A message ``push.publish`` sent to every server process, after checking it (a state's
    spec and public question agreeing)."""
    try:
        check(Published, message, "published")
        if message["type"] == "event.state":
            check_event_state(message["state"])
    except SchemaError as error:
        _fail("a process published a message", error, message)
    return message


def check_close_code(code: int) -> int:
    if code not in CLOSE_CODES:
        pytest.fail(
            f"the server closed with {code}, not a close code of the protocol {CLOSE_CODES}"
        )
    return code


async def connect(path: str, headers=None) -> tuple[WebsocketCommunicator, bool, int | None]:
    communicator = WebsocketCommunicator(application, path, headers=headers or ORIGIN)
    opened.append(communicator)
    follow(communicator, stage="/stage/" in path)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def refused_with(path: str, headers=None) -> int:
    """Connect and return the close code the server refused the socket with."""
    communicator, connected, code = await connect(path, headers)
    if not connected:
        return code
    return await closed_with(communicator)


async def closed_with(communicator: WebsocketCommunicator, timeout: float = 3) -> int:
    """The close code the server ends the socket with (frames before it are checked too)."""
    output = await communicator.receive_output(timeout=timeout)
    while output["type"] != "websocket.close":
        if output["type"] == "websocket.send":
            checked(output.get("text") or output.get("bytes"), communicator)
        output = await communicator.receive_output(timeout=timeout)
    return check_close_code(output["code"])


async def disconnect_all() -> None:
    while opened:
        communicator = opened.pop()
        try:
            await communicator.disconnect(timeout=3)
        except asyncio.CancelledError:
            # The socket's application task was cancelled (a receive that timed out cancels
            # it): that is the test's failure, already reported. Only a cancel of this
            # teardown itself goes on; else one failed test fails every later one on the
            # worker ("previous item was not torn down properly").
            if asyncio.current_task().cancelling():
                raise
        except Exception:  # noqa: S110 - already closed by the server or the test
            pass


async def receive(communicator: WebsocketCommunicator, timeout: float = 3) -> dict:
    return checked(await communicator.receive_from(timeout=timeout), communicator)


async def receive_text(communicator: WebsocketCommunicator, timeout: float = 3) -> str:
    """The next frame as the text it came as (to compare with another line's), checked."""
    text = await communicator.receive_from(timeout=timeout)
    checked(text, communicator)
    return text


async def receive_type(communicator: WebsocketCommunicator, kind: str, timeout: float = 3) -> dict:
    """Skip other messages (e.g. results pushes) until one of the given type arrives."""
    while True:
        message = await receive(communicator, timeout)
        if message["type"] == kind:
            return message


async def profile_then_state(
    next_frame: Callable[[], Awaitable[str | bytes]],
    connection: object = None,
    fresh: bool = True,
) -> tuple[dict, dict]:
    """A phone's first two frames in an event with profile questions (the demo's generation):
    its ``profile`` message, then its ``state`` (docs/protocol.md, "Profile questions"), each
    checked. ``next_frame`` reads one frame off any line (a real socket's ``recv``, a
    communicator's ``receive_from``). The profile message answers for every profile question
    the state asks on joining; from a ``fresh`` token (no profile answer given) every answer is
    ``None``. Returns (profile, state)."""
    profile = checked(await next_frame(), connection)
    assert profile["type"] == "profile", f"a phone's first frame is not its profile: {profile}"
    state = checked(await next_frame(), connection)
    assert state["type"] == "state", f"a phone's profile is not followed by its state: {state}"
    asked = {str(question["id"]) for question in state["profile"]}
    assert asked, f"the event asks no profile question on joining: {state}"
    assert asked <= set(profile["answers"]), (profile, state["profile"])
    if fresh:
        assert set(profile["answers"].values()) == {None}, profile
    return profile, state


async def send(communicator: WebsocketCommunicator, message) -> None:
    text = message if isinstance(message, str) else json.dumps(message)
    await communicator.send_to(text_data=text)

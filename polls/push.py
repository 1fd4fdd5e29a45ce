"""Pushing to screens and phones: group names, the event state cache, publishing a state.

The only module that sends to other server processes (``publish``); ``polls.delivery`` hands
what it sends to each process's own sockets, and pulls result snapshots from the tally itself
(``delivery.ResultsPump``): counting never pushes.
"""

from __future__ import annotations

import asyncio
import json
import logging

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import RedisError

from .redis_client import get_async_redis, get_sync_redis
from .state import build_event_state

logger = logging.getLogger(__name__)

STATE_CACHE_SECONDS = 3600


def event_group(event_id: int) -> str:
    """Every phone and screen of one event: they all need to hear of a host's change."""
    return f"event.{event_id}"


def state_cache_key(event_id: int) -> str:
    return f"zp:event:{event_id}:state"


def revision_key(event_id: int) -> str:
    """A counter bumped by every host change: a process never replaces a state with an older one
    (a slow resync, a delayed message)."""
    return f"zp:event:{event_id}:revision"


def encode(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


async def load_event_state(event_id: int) -> dict | None:
    """The event's live state from the cache the host's last change wrote, else the database."""
    return (await load_event_state_raw(event_id))[0]


async def load_event_state_raw(event_id: int) -> tuple[dict | None, str | None]:
    """The state and its cached JSON text (which tells a process whether its copy is current)."""
    redis = get_async_redis()
    try:
        cached = await redis.get(state_cache_key(event_id))
        # Read before the database: a change landing meanwhile then carries a higher revision.
        revision = int(await redis.get(revision_key(event_id)) or 0)
    except (RedisError, OSError):
        cached, revision = None, 0
    if cached:
        text = cached.decode()
        return json.loads(text), text
    state = await database_sync_to_async(build_event_state)(event_id)
    if state is None:
        return None, None
    state["revision"] = revision
    text = encode(state)
    try:
        if not await redis.set(state_cache_key(event_id), text, ex=STATE_CACHE_SECONDS, nx=True):
            # A host's change cached its state first: that one is newer than this read.
            cached = await redis.get(state_cache_key(event_id))
            if cached:
                text = cached.decode()
                return json.loads(text), text
    except (RedisError, OSError):
        logger.warning("could not cache the state of event %s", event_id)
    return state, text


def public_event(state: dict) -> dict:
    event = state["event"]
    return {"code": event["code"], "title": event["title"], "look": event.get("look", "")}


class StateTexts:
    """The ``state`` messages of one event state, encoded once for thousands of sockets.

    A screen's message has no answer; a phone's differs from it only in the phone's own
    answer, which is spliced in as the last member.
    """

    def __init__(self, state: dict) -> None:
        self.state = state
        without_answer = encode(
            {"type": "state", "event": public_event(state), "question": state["question"]}
        )
        self._head = without_answer[:-1] + ',"answer":'
        self.stage = self._head + "null}"

    def phone(self, answer) -> str:
        if answer is None:
            return self.stage
        return f"{self._head}{encode(answer)}}}"


def forget_event(event_id: int) -> None:
    """The event was deleted: drop its cached state and close its sockets everywhere."""
    try:
        get_sync_redis().delete(state_cache_key(event_id), revision_key(event_id))
    except (RedisError, OSError):
        logger.warning("could not drop the cached state of event %s", event_id)
    try:
        publish(event_id, {"type": "event.gone", "event": event_id})
    except (RedisError, OSError):
        logger.warning("could not tell the sockets of event %s it is gone", event_id)


# The Redis pub/sub channel every server process's hub listens on (ZP_FANOUT=local).
LIVE_CHANNEL = "zp:live"


def publish(event_id: int, message: dict) -> None:
    """To every server process: one PUBLISH that each process's hub hands to its own sockets,
    or, with ZP_FANOUT=group, a group_send to every socket's own channel (sync callers)."""
    if settings.ZP_FANOUT == "group":
        async_to_sync(get_channel_layer().group_send)(event_group(event_id), message)
    else:
        get_sync_redis().publish(LIVE_CHANNEL, encode(message))


def notify_event_changed(event_id: int) -> dict | None:
    """Rebuild the event's state and send it to all its phones and screens (sync callers)."""
    state = build_event_state(event_id)
    if state is None:
        return None
    redis = get_sync_redis()
    state["revision"] = redis.incr(revision_key(event_id))
    redis.set(state_cache_key(event_id), encode(state), ex=STATE_CACHE_SECONDS)
    publish(event_id, {"type": "event.state", "state": state})
    return state


def being_cancelled() -> bool:
    """A Redis client cancelled mid-read may raise ConnectionError instead of CancelledError;
    a retry loop that swallowed it would never let its event loop shut down."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0

"""Pushing to screens and phones: group names, the event state cache, coalesced snapshots.

The only module that calls ``group_send``. Counting never pushes: result snapshots are pulled
from the tally by a per-process pump at most ``ZP_SNAPSHOT_INTERVAL`` apart, and only when the
question's version moved, so thousands of answers a second become a few whole snapshots.
Snapshots are idempotent (version, total, every count), so a pump in every Daphne process is
safe and a screen that missed one loses nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Awaitable, Callable

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import RedisError

from . import tally
from .figures import comparisons
from .redis_client import get_async_redis, get_sync_redis
from .results import results_message
from .state import build_event_state

logger = logging.getLogger(__name__)

STATE_CACHE_SECONDS = 3600
Sender = Callable[[str], Awaitable[None]]


def event_group(event_id: int) -> str:
    """Every phone and screen of one event: they all need to hear of a host's change."""
    return f"event.{event_id}"


def state_cache_key(event_id: int) -> str:
    return f"zp:event:{event_id}:state"


def encode(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


async def load_event_state(event_id: int) -> dict | None:
    """The event's live state from the cache the host's last change wrote, else the database."""
    try:
        cached = await get_async_redis().get(state_cache_key(event_id))
    except (RedisError, OSError):
        cached = None
    if cached:
        return json.loads(cached)
    state = await database_sync_to_async(build_event_state)(event_id)
    if state is not None:
        try:
            await get_async_redis().set(
                state_cache_key(event_id), encode(state), ex=STATE_CACHE_SECONDS
            )
        except (RedisError, OSError):
            logger.warning("could not cache the state of event %s", event_id)
    return state


def forget_event_state(event_id: int) -> None:
    try:
        get_sync_redis().delete(state_cache_key(event_id))
    except (RedisError, OSError):
        logger.warning("could not drop the cached state of event %s", event_id)


def notify_event_changed(event_id: int) -> dict | None:
    """Rebuild the event's state and send it to all its phones and screens (sync callers)."""
    state = build_event_state(event_id)
    if state is None:
        return None
    get_sync_redis().set(state_cache_key(event_id), encode(state), ex=STATE_CACHE_SECONDS)
    async_to_sync(get_channel_layer().group_send)(
        event_group(event_id), {"type": "event.state", "state": state}
    )
    return state


def snapshot_message(spec: dict, snapshot: tally.Snapshot) -> dict:
    """A results message; once the research is revealed it carries the comparison too."""
    message = results_message(
        spec, snapshot.version, snapshot.total, snapshot.counts, snapshot.hidden
    )
    if spec.get("figures"):
        message["comparison"] = comparisons(
            spec, message["summary"], snapshot.total, spec.get("labels", {})
        )
    return message


def notify_stage_key_changed(event_id: int, stage_key: str) -> None:
    """Screens opened with the old key close; phones ignore this."""
    async_to_sync(get_channel_layer().group_send)(
        event_group(event_id), {"type": "stage.key", "key": stage_key}
    )


class ResultsPump:
    """Per event loop: pushes a question's snapshot to local subscribers when it changed."""

    def __init__(self) -> None:
        self.subscribers: dict[int, dict[object, Sender]] = {}
        self.specs: dict[int, dict] = {}
        self.sent_versions: dict[int, int] = {}
        self.task: asyncio.Task | None = None

    async def subscribe(self, subscriber: object, spec: dict, send: Sender) -> None:
        self.unsubscribe(subscriber)
        question_id = spec["id"]
        self.specs[question_id] = spec
        first = question_id not in self.subscribers
        self.subscribers.setdefault(question_id, {})[subscriber] = send
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
        try:
            snapshot = await tally.read_snapshot(question_id)
        except tally.TallyUnavailable:
            return
        if first:
            # The pump need not push this version again; later subscribers may have missed
            # nothing newer than what the first one just got, so this is safe only for the first.
            self.sent_versions.setdefault(question_id, snapshot.version)
        await send(self._encode(snapshot))

    def unsubscribe(self, subscriber: object) -> None:
        for question_id in list(self.subscribers):
            members = self.subscribers[question_id]
            members.pop(subscriber, None)
            if not members:
                del self.subscribers[question_id]
                self.sent_versions.pop(question_id, None)

    def _encode(self, snapshot: tally.Snapshot) -> str:
        return encode(snapshot_message(self.specs[snapshot.question_id], snapshot))

    async def _run(self) -> None:
        while self.subscribers:
            await asyncio.sleep(settings.ZP_SNAPSHOT_INTERVAL)
            question_ids = list(self.subscribers)
            try:
                versions = await tally.read_versions(question_ids)
                for question_id in question_ids:
                    if versions[question_id] == self.sent_versions.get(question_id):
                        continue
                    snapshot = await tally.read_snapshot(question_id)
                    if question_id not in self.subscribers:
                        continue
                    self.sent_versions[question_id] = snapshot.version
                    text = self._encode(snapshot)
                    for send in list(self.subscribers.get(question_id, {}).values()):
                        await _send_quietly(send, text)
            except tally.TallyUnavailable:
                logger.warning("results pump: Redis unavailable, retrying")
                await asyncio.sleep(1)


async def _send_quietly(send: Sender, text: str) -> None:
    try:
        await send(text)
    except Exception:  # a socket closing mid-push must not stop the pump for everyone else
        logger.debug("push to a closing socket failed", exc_info=True)


_pumps: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ResultsPump] = (
    weakref.WeakKeyDictionary()
)


def results_pump() -> ResultsPump:
    loop = asyncio.get_running_loop()
    pump = _pumps.get(loop)
    if pump is None:
        pump = _pumps[loop] = ResultsPump()
    return pump

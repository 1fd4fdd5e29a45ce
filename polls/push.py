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

from . import protocol
from .models import Event
from .redis_client import get_async_redis, get_sync_redis
from .state import build_event_state

logger = logging.getLogger(__name__)

STATE_CACHE_SECONDS = 3600
# Reads of the event's rows before a state goes with a revision that moved during the reads.
CONSISTENT_READ_ATTEMPTS = 5


def event_group(event_id: int) -> str:
    """Every phone and screen of one event: they all need to hear of a host's change."""
    return f"event.{event_id}"


def state_cache_key(event_id: int) -> str:
    """The event's newest state as JSON. Its revision counts the event's commits (Event.revision);
    ":v2" since that replaced a Redis counter, whose higher numbers must not outrank them."""
    return f"zp:event:{event_id}:state:v2"


def encode(message: object) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


# The cache keeps the highest revision, whichever process writes last: a state built from an
# older commit never replaces a newer one. An equal revision is the same commit read again, so
# storing it changes nothing. Returns {1, the text} when stored, else {0, the newer cached text}.
KEEP_NEWEST = """
local cached = redis.call('GET', KEYS[1])
if cached then
  local ok, held = pcall(cjson.decode, cached)
  if ok and type(held) == 'table' and (tonumber(held['revision']) or 0) > tonumber(ARGV[1]) then
    return {0, cached}
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return {1, ARGV[2]}
"""


def committed_state(event_id: int) -> protocol.EventState | None:
    """The event's state as one commit left it, with that commit's revision (sync callers).

    Every change moves the revision in its own transaction, so a revision read before the rows
    and again after them, unchanged, means no commit fell between: the rows are that revision's.
    Should commits keep falling between, the state goes with the revision read first, which is
    never newer than its rows: it may be passed over, never wrongly outrank a newer state."""
    revisions = Event.objects.filter(pk=event_id).values_list("revision", flat=True)
    for _attempt in range(CONSISTENT_READ_ATTEMPTS):
        before = revisions.first()
        state = build_event_state(event_id) if before is not None else None
        if state is None:
            return None
        state["revision"] = before
        if revisions.first() == before:
            break
    return state


async def load_event_state_raw(event_id: int) -> tuple[protocol.EventState | None, str | None]:
    """The state and its cached JSON text (which tells a process whether its copy is current):
    from the cache the last change wrote, else from the database (and then cached, unless a
    newer state was cached meanwhile: that one is returned)."""
    redis = get_async_redis()
    try:
        cached = await redis.get(state_cache_key(event_id))
    except (RedisError, OSError):
        cached = None
    if cached:
        text = cached.decode()
        return json.loads(text), text
    state = await database_sync_to_async(committed_state)(event_id)
    if state is None:
        return None, None
    text = encode(state)
    try:
        stored, newest = await redis.register_script(KEEP_NEWEST)(
            keys=[state_cache_key(event_id)], args=[state["revision"], text, STATE_CACHE_SECONDS]
        )
    except (RedisError, OSError):
        logger.warning("could not cache the state of event %s", event_id)
        return state, text
    if not stored:
        text = newest.decode()
        state = json.loads(text)
    return state, text


def public_event(state: protocol.EventState) -> protocol.PublicEvent:
    event = state["event"]
    return {
        "code": event["code"],
        "title": event["title"],
        "look": event.get("look", ""),
        "quiz": event.get("quiz", False),
        "podium": event.get("podium", False),
    }


class StateTexts:
    """The ``state`` messages of one event state, encoded once for thousands of sockets.

    A screen's message has no answer; a phone's differs from it only in the phone's own
    answer, which is spliced in as the last member.
    """

    def __init__(self, state: protocol.EventState) -> None:
        self.state = state
        without_answer = encode(
            {
                "type": "state",
                "event": public_event(state),
                "question": state["question"],
                "profile": state.get("profile", []),
            }
        )
        self._head = without_answer[:-1] + ',"answer":'
        self.stage = self._head + "null}"

    def phone(self, answer: protocol.AnswerValue | None) -> str:
        if answer is None:
            return self.stage
        return f"{self._head}{encode(answer)}}}"


def forget_event(event_id: int) -> None:
    """The event was deleted: drop its cached state and close its sockets everywhere."""
    try:
        get_sync_redis().delete(state_cache_key(event_id))
    except (RedisError, OSError):
        logger.warning("could not drop the cached state of event %s", event_id)
    try:
        publish(event_id, {"type": "event.gone", "event": event_id})
    except (RedisError, OSError):
        logger.warning("could not tell the sockets of event %s it is gone", event_id)


# The Redis pub/sub channel every server process's hub and join-event cache listen on.
LIVE_CHANNEL = "zp:live"


def publish(event_id: int, message: protocol.Published) -> None:
    """To every server process: one PUBLISH that each process's hub hands to its own sockets,
    and, with ZP_FANOUT=group, a group_send to every socket's own channel too (sync callers).

    The PUBLISH goes in both ways: every process's caches (``polls.caches``) and its hub's
    HTTP-fallback streams hear the event's changes there."""
    if settings.ZP_FANOUT == "group":
        async_to_sync(get_channel_layer().group_send)(event_group(event_id), message)
    get_sync_redis().publish(LIVE_CHANNEL, encode(message))


def notify_event_changed(event_id: int) -> protocol.EventState | None:
    """Send the event's committed state to all its phones and screens (sync callers, after the
    commit). Unless a newer state is cached already: its own push told everyone."""
    state = committed_state(event_id)
    if state is None:
        return None
    redis = get_sync_redis()
    stored, _newest = redis.register_script(KEEP_NEWEST)(
        keys=[state_cache_key(event_id)],
        args=[state["revision"], encode(state), STATE_CACHE_SECONDS],
    )
    if stored:
        publish(event_id, {"type": "event.state", "state": state})
    return state


def being_cancelled() -> bool:
    """A Redis client cancelled mid-read may raise ConnectionError instead of CancelledError;
    a retry loop that swallowed it would never let its event loop shut down."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0

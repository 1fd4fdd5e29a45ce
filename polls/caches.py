"""Process-local caches of what a host can change, kept honest by the live channel.

The live channel (``push.LIVE_CHANNEL``) carries every host change (``event.state``) and every
deletion (``event.gone``), published by whichever process commits it. One thread per process
listens there (``listen``) and, as each message arrives, on every host sharing the Redis:

- drops the event's entries from the code -> event cache of the join storm (``event_for_join``),
  and any entry under the code the state names (renamed, deleted, made again under the same
  code, switched to its attendee list: the next join reads the database again);
- moves ``version()``, which any other cache stores with what it made and compares on each use
  (an int compared: a cached page, say, is current while the version has not moved).

Neither costs a hit anything but a dict lookup or an int compare: no Redis round trip per join.
A message can be lost (Redis away or restarted, a deletion outside the ORM), so every entry also
has a time bound (``MAX_AGE_SECONDS`` here); when the listener (re)subscribes, the version moves
and the join cache empties, as a message may have gone by meanwhile. A database read that a drop
overtook is answered but not kept: it may hold what the drop was about.

Why a thread and not the event hub's own subscription (``delivery.EventHub``): the hub lives per
event loop and starts with the first socket, while joins and pages come first, in processes that
may hold no socket yet, and (under Django's test client) on event loops made for one request.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import redis
from channels.db import database_sync_to_async
from redis.exceptions import RedisError

from . import push
from .models import Event
from .redis_client import CLIENT_OPTIONS, config_key, sync_client

logger = logging.getLogger(__name__)

MAX_AGE_SECONDS = 5.0
# How long one wait for a message lasts before the listener looks whether to stop.
LISTEN_POLL_SECONDS = 1.0
RETRY_SECONDS = 1.0

JoinEvent = tuple[int, str, str]  # event id, code, voice

# code -> (event id, code, voice, monotonic expiry). Read by joins without a lock (a dict's get
# is atomic); written only under _lock, so a drop and a store cannot interleave.
_entries: dict[str, tuple[int, str, str, float]] = {}
_lock = threading.Lock()
# Moved by every drop: a read that began before it is not kept.
_drops = 0
_listener: threading.Thread | None = None
_stopping = threading.Event()
_subscribed = threading.Event()


async def event_for_join(code: str) -> JoinEvent | None:
    """The event of a normalised join code, or None when no event has it (not cached: a code
    made a moment later must be found)."""
    cached = _entries.get(code)
    if cached is not None and cached[3] > time.monotonic():
        return cached[:3]
    return await _read(code)


async def _read(code: str) -> JoinEvent | None:
    listen()
    drops_before = _drops
    found = await _find_event(code)
    if found is not None:
        with _lock:
            if _drops == drops_before:
                _entries[code] = (*found, time.monotonic() + MAX_AGE_SECONDS)
    return found


@database_sync_to_async  # closes stale database connections, as a request's end would
def _find_event(code: str) -> JoinEvent | None:
    return Event.objects.filter(code=code).values_list("id", "code", "voice").first()


def forget_event(event_id: int, code: str | None = None) -> None:
    """Drop the event's entries, under any code, and whatever is cached under ``code``."""
    global _drops
    with _lock:
        _drops += 1
        for key, entry in list(_entries.items()):
            if entry[0] == event_id or key == code:
                del _entries[key]


def version() -> int:
    """Moves with every change heard (and every (re)subscription). A cache keeps the version it
    read before reading what it caches, and serves that while ``version()`` still returns it;
    the caller starts the listener with ``listen()`` when it fills an entry."""
    return _drops


def forget_all() -> None:
    global _drops
    with _lock:
        _drops += 1
        _entries.clear()


def hear(data: bytes | str) -> None:
    """One message of the live channel."""
    message = json.loads(data)
    if message.get("type") == "event.gone":
        forget_event(message["event"])
    elif message.get("type") == "event.state":
        event = message["state"]["event"]
        forget_event(event["id"], event["code"])


# -- the listener -----------------------------------------------------------------------------


def listen() -> None:
    """Start this process's listener unless it runs (a forked child has none of its parent's).
    Cheap, but not free: call it when filling an entry, not on every hit."""
    global _listener
    if _listener is not None and _listener.is_alive():
        return
    with _lock:
        if _listener is None or not _listener.is_alive():
            _stopping.clear()
            _listener = threading.Thread(target=_run, name="live-caches", daemon=True)
            _listener.start()


def listening() -> bool:
    """Whether the listener is subscribed now (entries are then dropped as changes happen)."""
    return _subscribed.is_set()


def stop_listening() -> None:
    global _listener
    _stopping.set()
    if _listener is not None:
        _listener.join(timeout=LISTEN_POLL_SECONDS + 1)
        _listener = None


def _run() -> None:
    while not _stopping.is_set():
        # Under Sentinel a new client asks where the primary is: after a failover, the
        # promoted one (a PUBLISH reaches the subscribers of the node it is sent to).
        made_for = config_key()
        client = sync_client(**CLIENT_OPTIONS)
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(push.LIVE_CHANNEL)
            _wait_until_subscribed(pubsub)
            forget_all()  # cached while not subscribed: a message may have gone by
            _subscribed.set()
            while not _stopping.is_set() and made_for == config_key():
                message = pubsub.get_message(timeout=LISTEN_POLL_SECONDS)
                if message is not None and message["type"] == "message":
                    _hear_quietly(message["data"])
        except (RedisError, OSError):
            # Said at debug only: the hub's subscription and /readyz tell of Redis away already.
            logger.debug("live caches: lost the live channel; entries age out", exc_info=True)
            _stopping.wait(RETRY_SECONDS)
        finally:
            _subscribed.clear()
            try:
                pubsub.close()
                client.close()
            except Exception:  # the connection is gone already
                logger.debug("live caches: closing the subscription failed", exc_info=True)


def _wait_until_subscribed(pubsub) -> None:
    """Until Redis confirms the subscription: from then on every message reaches this process."""
    deadline = time.monotonic() + CLIENT_OPTIONS["socket_timeout"]
    while time.monotonic() < deadline:
        if _stopping.is_set():
            return
        message = pubsub.get_message(timeout=LISTEN_POLL_SECONDS)
        if message is not None and message["type"] == "subscribe":
            return
        if message is not None and message["type"] == "message":
            _hear_quietly(message["data"])
    raise redis.exceptions.TimeoutError("no confirmation of the subscription")


def _hear_quietly(data: bytes) -> None:
    try:
        hear(data)
    except Exception:  # an unreadable message must not end the listening; it ages out instead
        logger.exception("live caches: could not read a published message")

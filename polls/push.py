"""Pushing to screens and phones: group names, the event state cache, coalesced snapshots.

The only module that sends to other server processes (``publish``); ``polls.hub`` hands
what it sends to each process's own sockets. Counting never pushes: result snapshots are pulled
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
from .models import Event
from .redis_client import get_async_redis, get_sync_redis
from .results import results_message
from .state import build_event_state

logger = logging.getLogger(__name__)

STATE_CACHE_SECONDS = 3600
# Reads of the event's rows before a state goes with a revision that moved during the reads.
CONSISTENT_READ_ATTEMPTS = 5
Sender = Callable[[str], Awaitable[None]]


def event_group(event_id: int) -> str:
    """Every phone and screen of one event: they all need to hear of a host's change."""
    return f"event.{event_id}"


def state_cache_key(event_id: int) -> str:
    """The event's newest state as JSON. Its revision counts the event's commits (Event.revision);
    ":v2" since that replaced a Redis counter, whose higher numbers must not outrank them."""
    return f"zp:event:{event_id}:state:v2"


def encode(message: dict) -> str:
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


def committed_state(event_id: int) -> dict | None:
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


async def load_event_state_raw(event_id: int) -> tuple[dict | None, str | None]:
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
        get_sync_redis().delete(state_cache_key(event_id))
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


class ResultsPump:
    """Per event loop: pushes a question's snapshot to local subscribers when it changed.

    The last pushed snapshot is kept encoded, so the thousands of phones that subscribe when a
    host shows the results cost no Redis read each: they get that text, and the pump pushes
    every later version to them as to everyone else.
    """

    def __init__(self) -> None:
        self.subscribers: dict[int, dict[object, Sender]] = {}
        self.specs: dict[int, dict] = {}
        self.sent_versions: dict[int, int] = {}
        self.texts: dict[int, str] = {}
        self.reads: dict[int, asyncio.Future] = {}
        self.task: asyncio.Task | None = None

    async def subscribe(self, subscriber: object, spec: dict, send: Sender) -> None:
        self.unsubscribe(subscriber)
        question_id = spec["id"]
        known = self.specs.get(question_id)
        if known is not spec and known != spec:
            # A new question, or the same one revealed: earlier texts lack the comparison.
            self.specs[question_id] = spec
            self.texts.pop(question_id, None)
        self.subscribers.setdefault(question_id, {})[subscriber] = send
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
        text = self.texts.get(question_id)
        if text is None:
            read = self.reads.get(question_id)
            if read is None:
                read = self.reads[question_id] = asyncio.ensure_future(self._read(question_id))
            try:
                text = await asyncio.shield(read)
            except tally.TallyUnavailable:
                return  # the pump pushes once Redis answers again
        if text is not None:
            await send(text)

    async def _read(self, question_id: int) -> str | None:
        """One snapshot read shared by everyone subscribing in the same moment."""
        try:
            snapshot = await tally.read_snapshot(question_id)
        finally:
            self.reads.pop(question_id, None)
        if question_id not in self.subscribers:
            return None
        if self.sent_versions.get(question_id, -1) > snapshot.version:
            return self.texts.get(question_id)  # the pump pushed a newer one meanwhile
        text = self._encode(snapshot)
        self.sent_versions[question_id] = snapshot.version
        self.texts[question_id] = text
        return text

    def unsubscribe(self, subscriber: object) -> None:
        for question_id in list(self.subscribers):
            members = self.subscribers[question_id]
            members.pop(subscriber, None)
            if not members:
                del self.subscribers[question_id]
                self.sent_versions.pop(question_id, None)
                self.texts.pop(question_id, None)
                self.specs.pop(question_id, None)

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
                    text = self._encode(snapshot)
                    self.sent_versions[question_id] = snapshot.version
                    self.texts[question_id] = text
                    for send in list(self.subscribers.get(question_id, {}).values()):
                        await _send_quietly(send, text)
            except tally.TallyUnavailable:
                if being_cancelled():
                    raise
                logger.warning("results pump: Redis unavailable, retrying")
                await asyncio.sleep(1)


def being_cancelled() -> bool:
    """A Redis client cancelled mid-read may raise ConnectionError instead of CancelledError;
    a retry loop that swallowed it would never let its event loop shut down."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


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

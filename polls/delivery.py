"""Process-local fan-out: each server process hears a host's change once and hands it to its
own sockets.

With a group membership per socket (stock Channels) a host's change to 5,000 phones is 5,000
messages through Redis, each popped, decoded and dispatched on its own; a join costs a group_add
and a leave a group_discard. Here the change is one Redis PUBLISH (``push.publish``) that each
process's hub receives on one subscription: the state is encoded once (``push.StateTexts``),
and the phones' own answers are read with a few HMGETs for all of them. Sockets join and leave
the hub in memory. ``ZP_FANOUT=group`` keeps the stock way for comparison (docs/performance.md).

Every state carries the event's revision (bumped by each host change), and a process never
replaces a state with an older one. It also checks every ``ZP_STATE_RESYNC_SECONDS`` that its
copy is the one cached in Redis, so a message lost between processes (pub/sub delivers only to
whoever is subscribed at that moment: a Redis restart loses it) heals within seconds, and the
sockets of a deleted event are closed.

Result snapshots are pulled, not pushed: a per-process pump (``ResultsPump``) reads the tally at
most ``ZP_SNAPSHOT_INTERVAL`` apart, and only when the question's version moved, so thousands of
answers a second become a few whole snapshots. Snapshots are idempotent (version, total, every
count), so a pump in every server process is safe and a screen that missed one loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from redis.exceptions import RedisError

from . import metrics, protocol, push, qa, qa_tally, tally
from .by_segment import segments_message
from .figures import comparisons
from .kinds import results_message
from .redis_client import get_async_redis

logger = logging.getLogger(__name__)

# How long one wait for a published message lasts before the listener looks up again.
LISTEN_POLL_SECONDS = 1.0
# A phone's own answer when the caller has not read it (the phone then asks the tally itself).
ANSWER_UNKNOWN = object()
Sender = Callable[[str], Awaitable[None]]


class Member(Protocol):
    participant_id: str | None  # None for screens
    gone_code: protocol.CloseCode

    def apply_view(self, view: EventView, answer: object) -> Awaitable[None]: ...
    def close(self, code: protocol.CloseCode) -> Awaitable[None]: ...


@dataclass(frozen=True)
class EventView:
    """One state of an event with its messages already encoded, and its parts by name."""

    state: protocol.EventState
    texts: push.StateTexts
    text: str  # the state as JSON, as the Redis state cache holds it

    @classmethod
    def of(cls, state: protocol.EventState, text: str | None = None) -> EventView:
        return cls(state, push.StateTexts(state), text or push.encode(state))

    @property
    def revision(self) -> int:
        return self.state.get("revision", 0)

    @property
    def event_id(self) -> int:
        return self.state["event"]["id"]

    @property
    def stage_key_digest(self) -> str | None:
        return self.state["event"].get("stage_key_digest")

    @property
    def question(self) -> protocol.Question | None:
        """The current question as phones and screens see it."""
        return self.state["question"]

    @property
    def spec(self) -> protocol.EventSpec:
        """What answers are checked against (``answers.validate_answer``)."""
        return self.state["spec"]

    @property
    def current(self) -> protocol.QuestionSpec | None:
        """The current question's spec: what its answers and snapshots are computed with."""
        return self.state["spec"]["current"]

    def replaces(self, current: EventView | None) -> bool:
        """Newer than ``current``; at the same revision, a differing copy wins (the cache was
        rebuilt from the database), an identical one is nothing new."""
        if current is None or self.revision > current.revision:
            return True
        return self.revision == current.revision and self.text != current.text


class EventHub:
    """Per event loop: the local sockets of each event and the state they were last sent."""

    def __init__(self) -> None:
        self.members: dict[int, set[Member]] = {}
        self.views: dict[int, EventView] = {}
        self.loads: dict[int, asyncio.Future] = {}
        self.tasks: list[asyncio.Task] = []
        self.closed = False

    # -- sockets ------------------------------------------------------------------------------

    async def add(self, member: Member, event_id: int) -> EventView | None:
        """Register a socket; returns the event's current view (None: the event is gone).
        The caller removes the socket again when it ends, however it ends."""
        members = self.members.setdefault(event_id, set())
        if member not in members:
            members.add(member)
            metrics.line_joined(member.participant_id is not None)
        if not self.tasks or any(task.done() for task in self.tasks):
            self._start()
        return await self.view_of(event_id)

    def remove(self, member: Member, event_id: int) -> None:
        members = self.members.get(event_id)
        if members is None or member not in members:
            return  # a socket of a deleted event was removed by close_event, and leaves again
        members.remove(member)
        metrics.line_joined(member.participant_id is not None, -1)
        if not members:
            del self.members[event_id]
            self.views.pop(event_id, None)

    async def view_of(self, event_id: int) -> EventView | None:
        view = self.views.get(event_id)
        if view is not None:
            return view
        load = self.loads.get(event_id)
        if load is None:
            # A join storm asks for the same event thousands of times: one read serves all.
            load = self.loads[event_id] = asyncio.ensure_future(self._load(event_id))
        return await asyncio.shield(load)

    async def _load(self, event_id: int) -> EventView | None:
        try:
            state, text = await push.load_event_state_raw(event_id)
        finally:
            self.loads.pop(event_id, None)
        if state is None:
            return None
        view = EventView.of(state, text)
        current = self.views.get(event_id)
        if not view.replaces(current):  # a newer state arrived while reading
            return current
        if event_id in self.members:
            self.views[event_id] = view
        return view

    def _start(self) -> None:
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                logger.error("hub: a task ended", exc_info=task.exception())
            task.cancel()
        self.tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._resync())]

    async def close(self) -> None:
        """Stop listening (a server process just exits; tests close their loop's hub).

        On Python 3.11 a cancel that lands while redis-py's get_message times out is swallowed
        by asyncio.timeout (the task goes on polling, and a plain gather waited forever), so the
        loops also watch ``closed`` and the cancel is repeated until the tasks are done."""
        self.closed = True
        pending, self.tasks = set(self.tasks), []
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=LISTEN_POLL_SECONDS)

    # -- between processes ---------------------------------------------------------------------

    async def _listen(self) -> None:
        while not self.closed:
            pubsub = get_async_redis().pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(push.LIVE_CHANNEL)
                # Whatever was published while not subscribed is fetched by the next resync.
                while not self.closed:
                    message = await pubsub.get_message(timeout=LISTEN_POLL_SECONDS)
                    if message is not None and message["type"] == "message":
                        await self._deliver_quietly(message["data"])
            except (RedisError, OSError) as error:
                if push.being_cancelled():
                    raise
                # One line, not a traceback: a Redis failover says this on every process.
                logger.warning("hub: lost the Redis subscription (%r), resubscribing", error)
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _deliver_quietly(self, data: bytes) -> None:
        try:
            await self.deliver(json.loads(data))
        except Exception:
            logger.exception("hub: could not deliver a published message")

    async def deliver(self, message: protocol.Published) -> None:
        if message["type"] == "event.state":
            view = EventView.of(message["state"])
            await self.hand_out(view.event_id, view)
        elif message["type"] == "event.gone":
            await self.close_event(message["event"])

    async def hand_out(self, event_id: int, view: EventView) -> None:
        """Send a new state to every local socket of the event, each phone with its answer."""
        if event_id not in self.members or not view.replaces(self.views.get(event_id)):
            return
        self.views[event_id] = view
        members = list(self.members[event_id])
        question = view.question
        answers: dict[str, protocol.AnswerValue] | None = {}
        phones = [m.participant_id for m in members if m.participant_id is not None]
        if question is not None and phones:
            try:
                answers = await tally.answers_of(question["id"], phones)
            except Exception:  # Redis away, or an unreadable stored answer
                logger.warning("hub: could not read the phones' answers", exc_info=True)
                answers = None  # each phone sends what its own socket got acknowledged
        # Screens first: the room watches the stage while thousands of phones are sent to, and
        # the loop turns between slices of them (a quiz's deadline: docs/performance.md).
        members.sort(key=lambda member: member.participant_id is not None)
        for number, member in enumerate(members, start=1):
            if number % FANOUT_SLICE == 0:
                await asyncio.sleep(0)
            current = self.members.get(event_id, ())
            if member not in current or self.views.get(event_id) is not view:
                continue  # left meanwhile, or a newer state overtook this one
            if answers is None or member.participant_id is None:
                answer = None
            else:
                answer = answers.get(member.participant_id)
            await _quietly(member.apply_view(view, answer))

    async def close_event(self, event_id: int) -> None:
        for member in list(self.members.get(event_id, ())):
            self.remove(member, event_id)
            await _quietly(member.close(member.gone_code))

    async def _resync(self) -> None:
        while not self.closed:
            await asyncio.sleep(max(settings.ZP_STATE_RESYNC_SECONDS, 0.1))
            for event_id in list(self.members):
                try:
                    await self._resync_event(event_id)
                except Exception:
                    if push.being_cancelled():
                        raise
                    logger.warning("hub: resync of event %s failed", event_id, exc_info=True)

    async def _resync_event(self, event_id: int) -> None:
        try:
            cached = await get_async_redis().get(push.state_cache_key(event_id))
        except (RedisError, OSError):
            return
        if cached is not None:
            text = cached.decode()
            current = self.views.get(event_id)
            if current is None or current.text != text:
                await self.hand_out(event_id, EventView.of(json.loads(text), text))
            return
        state, text = await push.load_event_state_raw(event_id)
        if state is None:
            await self.close_event(event_id)  # deleted while its message was lost
        else:
            await self.hand_out(event_id, EventView.of(state, text))


async def _quietly(awaitable: Awaitable[None]) -> None:
    try:
        await awaitable
    except Exception:  # one closing socket must not stop the others' update
        logger.debug("hub: a socket failed to take an update", exc_info=True)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, EventHub] = weakref.WeakKeyDictionary()


def event_hub() -> EventHub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = EventHub()
    return hub


async def close_event_hub() -> None:
    hub = _hubs.pop(asyncio.get_running_loop(), None)
    if hub is not None:
        await hub.close()


# -- result snapshots ----------------------------------------------------------------------


def snapshot_message(
    spec: protocol.QuestionSpec, snapshot: tally.Snapshot
) -> protocol.ResultsMessage:
    """A results message; once the research is revealed it carries the comparison too."""
    message: protocol.ResultsMessage = results_message(
        spec, snapshot.version, snapshot.total, snapshot.counts, snapshot.hidden
    )
    if spec.get("figures"):
        message["comparison"] = comparisons(
            spec, message["summary"], snapshot.total, spec.get("labels", {})
        )
    segments = segments_message(spec, snapshot)
    if segments is not None:
        message["segments"] = segments
    return message


class ResultsPump:
    """Per event loop: pushes a question's snapshot to local subscribers when it changed.

    The last pushed snapshot is kept encoded, so the thousands of phones that subscribe when a
    host shows the results cost no Redis read each: they get that text, and the pump pushes
    every later version to them as to everyone else.
    """

    def __init__(self) -> None:
        self.subscribers: dict[int, dict[object, Sender]] = {}
        self.specs: dict[int, protocol.QuestionSpec] = {}
        self.sent_versions: dict[int, int] = {}
        self.texts: dict[int, str] = {}
        self.reads: dict[int, asyncio.Future] = {}
        self.task: asyncio.Task | None = None

    async def subscribe(
        self, subscriber: object, spec: protocol.QuestionSpec, send: Sender
    ) -> None:
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
            metrics.snapshots_pushed(1)
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
        return push.encode(snapshot_message(self.specs[snapshot.question_id], snapshot))

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
                    sends = list(self.subscribers.get(question_id, {}).values())
                    metrics.snapshots_pushed(len(sends))
                    for send in sends:
                        await _send_quietly(send, text)
            except tally.TallyUnavailable:
                if push.being_cancelled():
                    raise
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


# -- the audience Q&A: a board to screens, changes to phones -----------------------------------


@dataclass
class _QaMember:
    participant_id: str | None  # None: a stage screen
    send: Sender


# Sends of one fan-out between two turns of the event loop: a push to thousands of phones
# would otherwise hold the loop (and every vote waiting for its ack) for its whole length.
FANOUT_SLICE = 500


@dataclass
class _QaSeen:
    version: int  # of the board the screens were last sent (and new phones' lists come from)
    config: int
    listed: int  # the version the phones' lists were last brought to
    listed_at: float  # when (the loop's clock)


class QaPump:
    """Per event loop: the Q&A of each event with local phones or screens, pushed coalesced.

    Every ``ZP_SNAPSHOT_INTERVAL`` one round trip reads the version (and config counter) of
    every such event; only an event whose version moved is read further. Screens then get the
    whole board (``qa_board``: small, idempotent). Phones get what changed since the version
    this pump last sent them (``qa_changes``, one text for all of them), at most every
    ``ZP_QA_LIST_INTERVAL``: each push is a frame to every phone's socket, and a room voting
    moves the version all the time (docs/performance.md, "Audience Q&A"). An item waiting for a
    host only reaches its author's phones. When the host switches the Q&A (the config counter
    moved) every phone gets its whole list again (``qa``), its own items and votes read for all
    of them in one round trip. A phone joining gets its list from the board this pump last
    read (never older than what the phones were last sent), so a join storm costs one read of
    the board and one of the phones' own.
    """

    def __init__(self) -> None:
        self.members: dict[int, dict[object, _QaMember]] = {}
        self.seen: dict[int, _QaSeen] = {}
        self.boards: dict[int, qa_tally.Board] = {}
        self.reads: dict[int, asyncio.Future] = {}
        self.task: asyncio.Task | None = None

    async def join(
        self, member: object, event_id: int, participant_id: str | None, send: Sender
    ) -> None:
        self.members.setdefault(event_id, {})[member] = _QaMember(participant_id, send)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
        try:
            board = await self._board(event_id)
            off = board.meta.mode == "off"
            if off and not board.meta.config:
                return  # never switched on: nothing of it, until the host does
            if participant_id is None:
                await send(push.encode(qa.board_message(board)))
            else:
                # Off since it was on: said once more, for a phone that was away when it went.
                mine, voted = set(), set()
                if not off:
                    own = await qa_tally.own_of(event_id, [participant_id])
                    mine, voted = own[participant_id]
                await send(qa.list_text(qa.list_head(board), board, mine, voted))
        except tally.TallyUnavailable:
            logger.warning("qa pump: Redis unavailable on join")

    def leave(self, member: object) -> None:
        for event_id in list(self.members):
            members = self.members[event_id]
            members.pop(member, None)
            if not members:
                del self.members[event_id]
                self.seen.pop(event_id, None)
                self.boards.pop(event_id, None)

    async def _board(self, event_id: int) -> qa_tally.Board:
        board = self.boards.get(event_id)
        if board is not None:
            return board
        read = self.reads.get(event_id)
        if read is None:
            read = self.reads[event_id] = asyncio.ensure_future(self._read(event_id))
        return await asyncio.shield(read)

    async def _read(self, event_id: int) -> qa_tally.Board:
        try:
            board = await qa_tally.read_board(event_id)
        finally:
            self.reads.pop(event_id, None)
        if event_id in self.members and event_id not in self.seen:
            self.seen[event_id] = self._seen(board)
            self.boards[event_id] = board
        return board

    @staticmethod
    def _seen(board: qa_tally.Board) -> _QaSeen:
        version = board.meta.version
        return _QaSeen(version, board.meta.config, version, asyncio.get_running_loop().time())

    async def _run(self) -> None:
        while self.members:
            await asyncio.sleep(settings.ZP_SNAPSHOT_INTERVAL)
            event_ids = [event_id for event_id in self.members if event_id in self.seen]
            if not event_ids:
                continue
            try:
                metas = await qa_tally.read_metas(event_ids)
                for event_id, meta in metas.items():
                    seen = self.seen.get(event_id)
                    if seen is None:
                        continue
                    if meta.config != seen.config:
                        await self._switch(event_id)
                    elif meta.version != seen.version or meta.version != seen.listed:
                        await self._push(event_id, seen, meta)
            except tally.TallyUnavailable:
                if push.being_cancelled():
                    raise
                logger.warning("qa pump: Redis unavailable, retrying")
                await asyncio.sleep(1)

    async def _switch(self, event_id: int) -> None:
        """The host switched the Q&A: every phone's whole list again, and the board."""
        board = await qa_tally.read_board(event_id)
        self.seen[event_id] = self._seen(board)
        self.boards[event_id] = board
        await self._send_boards(event_id, board)
        await self._send_lists(event_id, board)

    async def _push(self, event_id: int, seen: _QaSeen, meta: qa_tally.Meta) -> None:
        members = list(self.members.get(event_id, {}).values())
        screens = [member for member in members if member.participant_id is None]
        phones = [member for member in members if member.participant_id is not None]
        now = asyncio.get_running_loop().time()
        phones_due = (
            meta.version != seen.listed and now - seen.listed_at >= settings.ZP_QA_LIST_INTERVAL
        )
        if not phones_due and not (screens and meta.version != seen.version):
            return  # the screens have it; the phones' turn comes
        changes = None
        if phones_due:
            # One read: a phone joining later gets its list from this board, at the version
            # the others were brought to, and the changes after it.
            board, changes = await qa_tally.read_board_changes(event_id, seen.listed)
        else:
            board = await qa_tally.read_board(event_id)
        if self.seen.get(event_id) is not seen:
            return  # the members left, or the host switched the Q&A meanwhile
        self.boards[event_id] = board
        if board.meta.version != seen.version:
            seen.version = board.meta.version
            await self._send_boards(event_id, board, screens)
        if changes is None:
            return
        seen.listed, seen.listed_at = changes.version, now
        if board.meta.mode == "off":
            return
        shared, authors = qa.changes_messages(changes, board.count("visible"))
        # A pending item's change is its author's alone: the others hear nothing of it.
        empty = not (shared["items"] or shared["removed"] or shared["votes"])
        text = None if empty else push.encode(shared)
        own = {author: push.encode(message) for author, message in authors.items()}
        for number, member in enumerate(phones, start=1):
            if text is not None:
                await _send_quietly(member.send, text)
            if member.participant_id in own:
                await _send_quietly(member.send, own[member.participant_id])
            if number % FANOUT_SLICE == 0:
                await asyncio.sleep(0)

    async def _send_boards(
        self, event_id: int, board: qa_tally.Board, screens: list[_QaMember] | None = None
    ) -> None:
        if screens is None:
            screens = [m for m in self.members.get(event_id, {}).values() if not m.participant_id]
        text = push.encode(qa.board_message(board))
        for member in screens:
            await _send_quietly(member.send, text)

    async def _send_lists(self, event_id: int, board: qa_tally.Board) -> None:
        phones = [m for m in self.members.get(event_id, {}).values() if m.participant_id]
        if not phones:
            return
        head = qa.list_head(board)
        if board.meta.mode == "off":
            own = {}
        else:
            own = await qa_tally.own_of(event_id, sorted({m.participant_id for m in phones}))
        for number, member in enumerate(phones, start=1):
            mine, voted = own.get(member.participant_id, (set(), set()))
            await _send_quietly(member.send, qa.list_text(head, board, mine, voted))
            if number % FANOUT_SLICE == 0:
                await asyncio.sleep(0)


_qa_pumps: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, QaPump] = (
    weakref.WeakKeyDictionary()
)


def qa_pump() -> QaPump:
    loop = asyncio.get_running_loop()
    pump = _qa_pumps.get(loop)
    if pump is None:
        pump = _qa_pumps[loop] = QaPump()
    return pump

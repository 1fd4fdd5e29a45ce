"""The simulated phones of one load-generator process.

A ``Worker`` owns some of the phones and runs them on its event loop; the coordinator
(``runner``) tells it what to do next: join, answer (the burst), arm/collect a broadcast, report,
close. Every phone uses the real protocol. It arrives as a phone does (``arrival`` "page"): the
phone page ``/e/<CODE>/`` (or the join page ``/?code=<CODE>``, which redirects there) with its
scripts and styles through its own browser (``page.Browser``: keep-alive connections, an HTTP
cache that is empty on a first visit), then ``POST /api/e/<CODE>/join`` for a token on one of
those connections, the phone socket ``/ws/e/<CODE>/?token=...``, the first ``state``; with
``arrival`` "api" (a server without pages) it starts at the join POST on a fresh connection.
Then ``answer`` -> ``ack`` / ``error``, a ``ping`` every 25 s like the phone page's heartbeat.

No Django in here: a worker process imports only this module (and ``wsclient``/``page``/
``values``).
All times are ``time.monotonic()``, which is one system-wide clock on Linux, so the
coordinator can compare them across processes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ctypes
import functools
import gc
import json
import os
import random
import signal
import time
from collections import Counter
from typing import Any
from urllib.parse import quote

from polls import joinguard

from . import stats, values
from .page import Browser
from .wsclient import HandshakeError, http_request, reconnect_delay, tls_of, ws_connect

NO_RETRY_CLOSE_CODES = (4401, 4403, 4404)
SWEEP_SECONDS = 0.5
# Which phones arrive with a warm cache, or typing the code on the join page: spread evenly over
# the phone numbers (a low-discrepancy sequence), without drawing from the phones' own random
# streams, so their answers stay what the seed made them.
WARM_STEP = 0.6180339887498949
HOME_STEP = 0.7548776662466927
OBSERVER_STEP = 0.5698402909980532
# What a Q&A message may be refused with and still be sent again with its id: nothing was
# counted (the votes-per-second limit, Redis away), as the phone page resends its outbox.
QA_RESEND = {"flood": 1.0, "unavailable": 2.0, "rate_limited": 2.0}
QA_CHANGES = b'{"type":"qa_changes"'


def chosen(index: int, step: float, share: float) -> bool:
    return (index * step) % 1.0 < share


class Answer:
    __slots__ = (
        "ack_at",
        "counted",
        "first_sent",
        "kind",
        "last_sent",
        "message_id",
        "phone",
        "question",
        "resolved",
        "retries",
        "status",
        "value",
        "wall",
    )

    def __init__(
        self, phone: Phone, message_id: str, kind: str, value: Any, now: float, question: Any
    ) -> None:
        self.phone = phone
        self.message_id = message_id
        self.question = question
        self.kind = kind  # "first", "change", "profile" (a profile question's) or "quiz"
        self.value = value
        self.first_sent = now
        self.last_sent = now
        self.ack_at: float | None = None
        self.counted: Any = None  # the value the ack says is counted
        self.status = (
            "sent"  # sent, acked, timeout (no reply yet), lost (socket gone), error:<code>
        )
        self.retries = 0
        self.resolved = False
        self.wall: float | None = None  # time.time() of the first send (the quiz's)


class QaSent:
    """One ``ask``, ``vote`` or ``unvote`` of a phone, and what its ``qa_ack`` said."""

    __slots__ = (
        "ack_at",
        "count",
        "first_sent",
        "item",
        "kind",
        "message_id",
        "phone",
        "resolved",
        "retries",
        "status",
        "voted",
    )

    def __init__(self, phone: Phone, message_id: str, kind: str, item: int | None) -> None:
        self.phone = phone
        self.message_id = message_id
        self.kind = kind
        self.item = item  # an ask's is the item its ack made
        self.first_sent: float | None = None
        self.ack_at: float | None = None
        self.status = "planned"  # planned, sent, acked, timeout, lost, skipped, error:<code>
        self.voted: bool | None = None  # the ack's: whether this phone's vote counts now
        self.count: int | None = None  # the ack's: the item's votes counted now
        self.retries = 0
        self.resolved = False

    def record(self) -> tuple:
        return (
            self.phone.index,
            self.phone.participant,
            self.kind,
            self.item,
            self.first_sent,
            self.ack_at,
            self.status,
            self.voted,
            self.count,
            self.retries,
        )


class Phone:
    __slots__ = (
        "acked_value",
        "answers",
        "assets_seconds",
        "bcast_round",
        "browser",
        "bytes_in",
        "bytes_out",
        "close_code",
        "closed_by_us",
        "dropped_at",
        "failed",
        "first_state_seconds",
        "gave_up",
        "has_acked",
        "home",
        "index",
        "join_started",
        "last_rx",
        "outstanding",
        "page_seconds",
        "participant",
        "ping_due",
        "ping_sent",
        "player",
        "profile_acked",
        "profile_given",
        "profile_questions",
        "profile_rng",
        "qa_deferred",
        "qa_observer",
        "qa_outstanding",
        "qa_seen",
        "qa_sent",
        "question",
        "quiz_closed",
        "quiz_due",
        "quiz_opened",
        "quiz_scores",
        "ready_at",
        "reconnecting_since",
        "reconnects",
        "rng",
        "socket_opened_at",
        "target",
        "token",
        "waiter",
        "wants_change",
        "warm",
        "ws",
    )

    def __init__(self, index: int, target: dict, seed: int) -> None:
        self.index = index
        self.target = target
        self.rng = random.Random(seed * 1_000_003 + index)  # noqa: S311 - simulated choices
        # Its own stream: with or without a profile question, a phone's burst is the same.
        self.profile_rng = random.Random(seed * 1_000_033 + index)  # noqa: S311
        self.profile_acked: dict[int, Any] = {}  # profile question id -> value acknowledged
        self.profile_given: dict | None = None  # the server's "profile" message, if any
        self.profile_questions: list = []  # the state's ask-on-join profile questions
        self.token: str | None = None
        self.participant: str | None = None
        self.ws = None
        self.waiter: asyncio.Future | None = None
        self.join_started: float | None = None
        self.ready_at: float | None = None
        self.failed: str | None = None
        self.question: dict | None = None
        self.dropped_at: float | None = None
        self.close_code: int | None = None
        self.closed_by_us = False
        self.bcast_round = 0
        self.answers: list[Answer] = []
        self.outstanding: dict[str, Answer] = {}
        self.acked_value: Any = None
        self.has_acked = False
        self.wants_change = False
        self.last_rx = 0.0
        self.ping_due = 0.0
        self.ping_sent = 0.0
        self.browser: Browser | None = None
        self.warm = False
        self.home = False
        self.page_seconds: float | None = None
        self.assets_seconds: float | None = None
        self.socket_opened_at: float | None = None
        self.first_state_seconds: float | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.reconnecting_since: float | None = None  # dropped, connecting again since then
        self.reconnects = 0
        self.gave_up = False  # stopped reconnecting (--join-timeout, or a refused token)
        # The audience Q&A: an observer keeps every list and change it gets (version, counts)
        self.qa_observer = False
        self.qa_seen: list[tuple] = []
        self.qa_sent: list[QaSent] = []
        self.qa_outstanding: dict[str, QaSent] = {}
        self.qa_deferred: dict[int, QaSent] = {}  # item -> its unvote, waiting for the vote's ack
        # The quiz (wall-clock times, time.time(), to compare with the server's deadline)
        self.player: int | None = None  # its number, from the server's "player"
        self.quiz_due: dict[int, tuple[float, Any]] = {}  # question -> (s after opening, value)
        self.quiz_opened: dict[int, float] = {}  # question -> when its open state arrived
        self.quiz_closed: dict[int, float] = {}  # question -> when its closed state arrived
        self.quiz_scores: dict[int, tuple[float, dict]] = {}  # question -> (arrived, "score")

    @property
    def live(self) -> bool:
        return self.ws is not None and self.ws.is_open and not self.ws.closing


def participant_of(token: str) -> str:
    """The participant id inside a signed join token (read, not verified: that is the server's
    job). A token that is not a Django signed value (the baseline's) is its own id."""
    head = token.split(":", 1)[0]
    try:
        payload = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
        return str(payload["p"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        return token


def _ignore(_payload: bytes) -> None:
    """The text handler of an abandoned socket."""


class ConnectionClosed(Exception):
    def __init__(self, code: int):
        super().__init__(f"closed with {code}")
        self.code = code


class Worker:
    """The phones of one process and the figures they measure."""

    def __init__(self, index: int, config: dict, phone_indexes: list[int]) -> None:
        self.index = index
        self.config = config
        targets = config["targets"]
        self.phones = [Phone(i, targets[i % len(targets)], config["seed"]) for i in phone_indexes]
        self.code = config["code"]
        self.arrival = config.get("arrival", "api")
        self.warm_cache = config.get("warm_cache") or {}
        for phone in self.phones:
            phone.warm = chosen(phone.index, WARM_STEP, config.get("cached_share", 0.0))
            phone.home = chosen(phone.index, HOME_STEP, config.get("home_share", 0.0))
            phone.qa_observer = chosen(
                phone.index, OBSERVER_STEP, config.get("qa_observer_share", 0.0)
            )
        self.arrival_requests: Counter[str] = Counter()
        self.connections_opened = 0
        self.parse_cache: dict[bytes, dict] = {}
        # counters (progress)
        self.joining = 0
        self.ready = 0
        self.failed = 0
        self.dropped = 0
        self.sent = 0
        self.acked = 0
        self.errors: Counter[str] = Counter()
        self.retries = 0
        self.messages_in = 0
        self.pong_misses = 0
        self.pings = 0
        self.skipped: Counter[str] = Counter()
        self.join_status: Counter[str] = Counter()
        self.join_work = 0  # joins that carried a proof of work (a hot address)
        self.fail_reasons: Counter[str] = Counter()
        self.close_codes: Counter[str] = Counter()
        self.join_post_seconds: list[float] = []
        self.ws_open_seconds: list[float] = []
        self.answers: list[Answer] = []
        self.unresolved: set[Answer] = set()
        self.stray_acks = 0
        # answers to the event's ask-on-join profile questions, sent on the first state
        self.answers_profile = True  # not the coordinator's warm-up phone: it is no attendee
        self.profile_none_share = float(config.get("profile_none_share", 0.1))
        self.profile_answers: list[Answer] = []
        self.profile_unresolved: set[Answer] = set()
        # burst
        self.pending = 0
        self.burst_done: asyncio.Future | None = None
        self.burst_duration = 0.0
        self.ack_timeout = float(config.get("ack_timeout", 30))
        # broadcast
        self.bcast_round = 0
        self.bcast_times: list[float] = []
        self.closed_count = 0
        self.heartbeat: asyncio.Task | None = None
        # reconnecting after a drop (config "reconnect")
        self.reconnect = bool(config.get("reconnect"))
        self.reconnect_timeout = float(config.get("join_timeout", 60))
        self.reconnecting = 0
        self.reconnect_seconds: list[float] = []
        self.reconnect_failures: Counter[str] = Counter()
        self.resent_after_reconnect = 0
        self.tasks: set[asyncio.Task] = set()
        # the audience Q&A (``qa_ask``, ``qa_vote``): what was sent, the replies, the lists
        self.qa_messages: list[QaSent] = []
        self.qa_unresolved: set[QaSent] = set()
        self.qa_pending = 0
        self.qa_done: asyncio.Future | None = None
        self.qa_acked = 0
        self.qa_errors: Counter[str] = Counter()
        self.qa_retries = 0
        self.qa_texts: dict[bytes, tuple] = {}  # one parse per distinct list text
        # the quiz (``quiz_arm``, ``quiz_wait``)
        self.quiz_answers: list[Answer] = []
        self.quiz_unresolved: set[Answer] = set()

    # --- progress --------------------------------------------------------------------------

    def progress(self) -> dict:
        return {
            "ready": self.ready,
            "failed": self.failed,
            "joining": self.joining,
            "dropped": self.dropped,
            "sent": self.sent,
            "acked": self.acked,
            "errors": sum(self.errors.values()),
            "bcast": len(self.bcast_times),
            "reconnecting": self.reconnecting,
            "reconnected": len(self.reconnect_seconds),
            "cpu": time.process_time(),
        }

    async def status(self) -> dict:
        return self.progress()

    # --- joining ---------------------------------------------------------------------------

    async def join(self, start_at: float, rate: float, join_timeout: float) -> dict:
        """Each phone joins at ``start_at + index / rate`` (one global schedule across the
        processes), then opens its socket and waits for its first ``state``."""
        loop = asyncio.get_running_loop()
        tasks = []
        done = loop.create_future()
        remaining = [len(self.phones)]

        def finished(_task) -> None:
            remaining[0] -= 1
            if remaining[0] == 0 and not done.done():
                done.set_result(None)

        def launch(phone: Phone) -> None:
            task = loop.create_task(self._join_phone(phone, join_timeout))
            task.add_done_callback(finished)
            tasks.append(task)

        for phone in self.phones:
            at = start_at + (phone.index / rate if rate > 0 else 0.0)
            loop.call_at(at, launch, phone)
        if not self.phones:
            done.set_result(None)
        if self.heartbeat is None and self.config.get("ping_interval", 0) > 0:
            self.heartbeat = loop.create_task(self._heartbeat())
        await done
        return self.progress()

    async def _join_phone(self, phone: Phone, join_timeout: float) -> None:
        self.joining += 1
        try:
            phone.join_started = time.monotonic()
            deadline = phone.join_started + join_timeout
            if self.arrival == "page":
                target = phone.target
                cache = self.warm_cache.get(target["url"]) if phone.warm else None
                phone.browser = Browser(target, cache)
                if not await self._load_page(phone, deadline):
                    return
            if await self._get_token(phone, deadline):
                await self._open_socket(phone, deadline)
        except Exception as error:  # a phone's failure is a figure, not a crash
            self._fail(phone, f"unexpected:{type(error).__name__}")
        finally:
            self.joining -= 1
            self._let_go_of_the_page(phone)

    def _let_go_of_the_page(self, phone: Phone) -> None:
        """The page is loaded and the socket open (or the phone gave up): its HTTP connections
        go. A browser would keep them idle until the server's idle timeout (10 s); six per phone
        for 10 s at 1,000 phones a second would be 60,000 of the generator's ~28,000 ports to
        one address."""
        browser, phone.browser = phone.browser, None
        if browser is None:
            return
        phone.bytes_in += browser.pool.bytes_in
        phone.bytes_out += browser.pool.bytes_out
        self.connections_opened += browser.pool.opened
        browser.close()

    async def _load_page(self, phone: Phone, deadline: float) -> bool:
        """The phone page and its assets, as its browser loads them. A page that fails
        (a 5xx, a refused connection) is reloaded after 1 s, doubling up to 15 s, as a person
        would; a 404 or a failed script or style ends the phone (the page cannot join)."""
        code = self.code
        start = f"/?code={code}" if phone.home else f"/e/{code}/"
        wait = 1.0
        while True:
            if deadline - time.monotonic() <= 0:
                self._fail(phone, "page:timeout")
                return False
            try:
                visit = await phone.browser.visit(start, deadline)
            except (OSError, TimeoutError, ConnectionError) as error:
                reason = f"page:{type(error).__name__}"
            else:
                self.arrival_requests.update(visit.requests)
                reason = visit.failed
                if reason is None:
                    phone.page_seconds = visit.page_seconds
                    phone.assets_seconds = visit.assets_seconds
                    return True
                if reason == "page:404" or reason.startswith("asset:"):
                    self._fail(phone, reason)
                    return False
                if visit.page_seconds is not None:
                    phone.page_seconds = visit.page_seconds
            self.join_status[reason] += 1
            await asyncio.sleep(wait * (1 + phone.rng.random() / 4))
            wait = min(wait * 2, 15.0)

    def _fail(self, phone: Phone, reason: str) -> None:
        if phone.failed is None and phone.ready_at is None:
            phone.failed = reason
            self.failed += 1
            self.fail_reasons[reason] += 1

    async def _get_token(self, phone: Phone, deadline: float) -> bool:
        target = phone.target
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "Origin": target["origin"],
        }
        spread = self.config.get("forwarded_for", 0)
        if spread:
            n = phone.index % spread
            headers["X-Forwarded-For"] = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        wait = 1.0
        body = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._fail(phone, "join:timeout")
                return False
            try:
                if phone.browser is not None:  # the page's fetch(): a kept-alive connection
                    response = await phone.browser.pool.request(
                        "POST",
                        f"/api/e/{self.code}/join",
                        headers=headers,
                        timeout=remaining,
                        body=body,
                    )
                else:
                    response = await http_request(
                        target["ip"],
                        target["port"],
                        "POST",
                        f"/api/e/{self.code}/join",
                        host_header=target["host_header"],
                        headers=headers,
                        timeout=remaining,  # a browser has no shorter limit
                        body=body,
                        tls=tls_of(target),
                    )
                    phone.bytes_in += response.wire_bytes
                    phone.bytes_out += response.sent_bytes
            except (OSError, TimeoutError, ConnectionError) as error:
                self.join_status[type(error).__name__] += 1
                delay = wait
                wait = min(wait * 2, 15.0)
            else:
                self.join_status[str(response.status)] += 1
                self.join_post_seconds.append(response.finished - response.started)
                if response.status == 200:
                    try:
                        phone.token = json.loads(response.body)["token"]
                    except (ValueError, KeyError, TypeError):
                        self._fail(phone, "join:bad_body")
                        return False
                    phone.participant = participant_of(phone.token)
                    return True
                if response.status == 404:
                    self._fail(phone, "join:404")
                    return False
                if response.status == 428:  # a busy address: solve, as the phone page does
                    body = self._solved(response.body)
                    if body:
                        self.join_work += 1
                        continue
                if response.status == 429:
                    try:
                        delay = float(response.headers.get("retry-after", "5"))
                    except ValueError:
                        delay = 5.0
                else:
                    delay = wait
                    wait = min(wait * 2, 15.0)
            await asyncio.sleep(delay * (1 + phone.rng.random() / 4))

    @staticmethod
    def _solved(raw: bytes) -> bytes:
        """The join body carrying the proof of work a 428 asked for (b"" if it asked none)."""
        try:
            work = json.loads(raw)["work"]
        except (ValueError, KeyError, TypeError):
            return b""
        solution = {"challenge": work["challenge"], "nonce": joinguard.solve(work)}
        return json.dumps({"work": solution}).encode()

    def _socket_path(self, phone: Phone) -> str:
        path = f"/ws/e/{self.code}/?token={quote(phone.token, safe='')}&lang=en"
        if self.config.get("baseline_kind"):
            path += f"&kind={self.config['baseline_kind']}"
        return path

    async def _open_socket(self, phone: Phone, deadline: float) -> None:
        target = phone.target
        path = self._socket_path(phone)
        tries = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._fail(phone, "socket:timeout")
                return
            loop = asyncio.get_running_loop()
            phone.waiter = loop.create_future()
            started = time.monotonic()
            try:
                phone.ws = await ws_connect(
                    target["ip"],
                    target["port"],
                    path,
                    host_header=target["host_header"],
                    origin=target["origin"],
                    on_text=functools.partial(self._on_text, phone),
                    on_close=functools.partial(self._on_close, phone),
                    timeout=remaining,  # a browser has no shorter limit
                    tls=tls_of(target),
                )
                phone.socket_opened_at = phone.ws.opened_at or time.monotonic()
                self.ws_open_seconds.append(phone.socket_opened_at - started)
                await asyncio.wait_for(phone.waiter, max(0.1, deadline - time.monotonic()))
                # ready (the first state arrived, perhaps in the handshake's own packet)
                phone.first_state_seconds = max(0.0, phone.ready_at - phone.socket_opened_at)
                # The socket is the phone's now (the state may have come with the handshake).
                self._answer_profile(phone)
                phone.bytes_in += phone.ws.bytes_in if phone.ws is not None else 0
                phone.bytes_out += len(phone.ws.request) if phone.ws is not None else 0
                return
            except HandshakeError as error:
                reason = f"socket:http_{error.status}"
            except ConnectionClosed as error:
                if error.code in NO_RETRY_CLOSE_CODES:
                    self._fail(phone, f"socket:close_{error.code}")
                    return
                reason = f"socket:close_{error.code}"
            except (OSError, TimeoutError, ConnectionError) as error:
                reason = f"socket:{type(error).__name__}"
            finally:
                phone.waiter = None
            self.join_status[reason] += 1
            if phone.ws is not None:
                # Abandoned: whatever this socket still receives is not this phone's any more.
                phone.ws.on_text = _ignore
                phone.ws.on_close = None
                phone.ws.close()
                phone.ws = None
            tries += 1
            await asyncio.sleep(reconnect_delay(tries, phone.rng))

    # --- messages --------------------------------------------------------------------------

    def _on_text(self, phone: Phone, payload: bytes) -> None:
        now = time.monotonic()
        phone.last_rx = now
        self.messages_in += 1
        if payload.startswith(QA_CHANGES) and not phone.qa_observer:
            return  # the room's list changes: only the observers read them
        if len(payload) > 400:
            # Broadcast states are the same bytes for many phones: parse each text once.
            message = self.parse_cache.get(payload)
            if message is None:
                message = json.loads(payload)
                if len(self.parse_cache) > 32:
                    self.parse_cache.clear()
                self.parse_cache[payload] = message
        else:
            message = json.loads(payload)
        kind = message.get("type")
        if kind == "ack":
            self._on_ack(phone, message, now)
        elif kind == "state":
            self._on_state(phone, message, now)
        elif kind == "error":
            self._on_error(phone, message, now)
        elif kind == "profile":
            phone.profile_given = message.get("answers")
        elif kind == "qa_ack":
            self._on_qa_ack(phone, message, now)
        elif kind == "score":
            phone.quiz_scores[message.get("question")] = (time.time(), message)
        elif kind == "player":
            phone.player = message.get("number")
        elif kind in ("qa", "qa_changes") and phone.qa_observer:
            phone.qa_seen.append((now, *self._qa_counts(payload, message)))

    def _on_state(self, phone: Phone, message: dict, now: float) -> None:
        phone.question = message.get("question")
        if phone.quiz_due and phone.question is not None:
            self._quiz_state(phone, phone.question)
        if "profile" in message:
            phone.profile_questions = message.get("profile") or []
        if phone.reconnecting_since is not None:
            # The new socket's first state: the loop reconnecting this phone takes it from here
            # (the socket may not be handed to the phone yet when it comes with the handshake).
            if phone.waiter is not None and not phone.waiter.done():
                phone.waiter.set_result(True)
        elif phone.ready_at is None:
            phone.ready_at = now
            phone.ping_due = now + self.config.get("ping_interval", 0)
            self.ready += 1
            if phone.waiter is not None and not phone.waiter.done():
                phone.waiter.set_result(True)
        elif self.bcast_round and phone.bcast_round != self.bcast_round:
            phone.bcast_round = self.bcast_round
            self.bcast_times.append(now)

    def _on_ack(self, phone: Phone, message: dict, now: float) -> None:
        answer = phone.outstanding.pop(message.get("id"), None)
        if answer is None:
            self.stray_acks += 1
            return
        answer.ack_at = now
        answer.status = "acked"
        answer.counted = message.get("answer")
        if answer.kind == "quiz":
            self.acked += 1
            self._resolve(answer)
            return
        if answer.kind == "profile":
            phone.profile_acked[answer.question] = answer.counted
            self._resolve(answer)
            return
        phone.acked_value = answer.counted
        phone.has_acked = True
        self.acked += 1
        self._resolve(answer)
        if answer.kind == "first" and phone.wants_change and self.burst_done is not None:
            delay = phone.rng.uniform(0.1, max(0.2, self.burst_duration / 2))
            self.pending += 1
            asyncio.get_running_loop().call_later(delay, self._send_answer, phone, "change")

    def _on_error(self, phone: Phone, message: dict, now: float) -> None:
        code = str(message.get("code"))
        if message.get("id") in phone.qa_outstanding:
            self._on_qa_error(phone, message, code, now)
            return
        self.errors[code] += 1
        answer = phone.outstanding.get(message.get("id"))
        if answer is None:
            return
        if code in ("rate_limited", "unavailable") and now - answer.first_sent < self.ack_timeout:
            # Nothing was counted: keep the answer and resend it with the same id, as the
            # phone page does (2 s, doubling, jittered).
            answer.retries += 1
            self.retries += 1
            delay = min(15.0, 2.0 * 2 ** (answer.retries - 1)) * phone.rng.uniform(0.75, 1.25)
            asyncio.get_running_loop().call_later(delay, self._resend, phone, answer)
            return
        phone.outstanding.pop(answer.message_id, None)
        answer.status = f"error:{code}"
        self._resolve(answer)

    def _on_close(self, phone: Phone, code: int, by_us: bool) -> None:
        ws, phone.ws = phone.ws, None
        if by_us or phone.closed_by_us:
            self.closed_count += 1
            return
        if phone.ready_at is None or phone.reconnecting_since is not None:
            # Closed before its first state: the loop connecting it tries again.
            if phone.waiter is not None and not phone.waiter.done():
                phone.waiter.set_exception(ConnectionClosed(code))
            return
        del ws
        phone.dropped_at = time.monotonic()
        phone.close_code = code
        self.dropped += 1
        self.close_codes[str(code)] += 1
        if self.reconnect and code not in NO_RETRY_CLOSE_CODES:
            # As the phone page: what was not acknowledged stays in the outbox, and goes again
            # (same ids) once the new socket's first state is in.
            self._spawn(self._reconnect(phone))
            return
        for answer in list(phone.outstanding.values()):
            if answer.status == "sent":
                answer.status = "lost"
            self._resolve(answer)
        self._qa_lost(phone)

    # --- reconnecting ----------------------------------------------------------------------

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reconnect(self, phone: Phone) -> None:
        """socket.js after a drop: full jitter, 0.5 s doubling up to 15 s, the same token, until
        the first state (then ``_reconnected`` resends the outbox) or ``join_timeout``."""
        since = phone.reconnecting_since = time.monotonic()
        self.reconnecting += 1
        deadline = since + self.reconnect_timeout
        target = phone.target
        tries = 0
        why = "timeout"
        try:
            while True:
                tries += 1
                await asyncio.sleep(reconnect_delay(tries, phone.rng))
                remaining = deadline - time.monotonic()
                if phone.closed_by_us:
                    why = "closed"  # the run ended first
                    break
                if remaining <= 0:
                    break
                phone.waiter = asyncio.get_running_loop().create_future()
                try:
                    phone.ws = await ws_connect(
                        target["ip"],
                        target["port"],
                        self._socket_path(phone),
                        host_header=target["host_header"],
                        origin=target["origin"],
                        on_text=functools.partial(self._on_text, phone),
                        on_close=functools.partial(self._on_close, phone),
                        timeout=remaining,
                        tls=tls_of(target),
                    )
                    await asyncio.wait_for(phone.waiter, max(0.1, deadline - time.monotonic()))
                    if phone.live:
                        self._reconnected(phone)
                        return
                    reason = "closed_after_state"
                except HandshakeError as error:
                    reason = f"http_{error.status}"
                except ConnectionClosed as error:
                    if error.code in NO_RETRY_CLOSE_CODES:
                        why = f"close_{error.code}"
                        break
                    reason = f"close_{error.code}"
                except (OSError, TimeoutError, ConnectionError) as error:
                    reason = type(error).__name__
                finally:
                    phone.waiter = None
                self.join_status[f"reconnect:{reason}"] += 1
                if phone.ws is not None:
                    phone.ws.on_text = _ignore
                    phone.ws.on_close = None
                    phone.ws.close()
                    phone.ws = None
            self.reconnect_failures[why] += 1
            phone.gave_up = True
            for answer in list(phone.outstanding.values()):
                if answer.status == "sent":
                    answer.status = "lost"
                self._resolve(answer)
            self._qa_lost(phone)
        finally:
            if phone.reconnecting_since == since:  # gave up (else _reconnected cleared it)
                phone.reconnecting_since = None
                self.reconnecting -= 1

    def _reconnected(self, phone: Phone) -> None:
        """Back: the time since the drop (to the first state), and the outbox sent again."""
        self.reconnect_seconds.append(phone.last_rx - phone.dropped_at)
        phone.reconnects += 1
        phone.reconnecting_since = None
        self.reconnecting -= 1
        phone.ping_due = time.monotonic() + self.config.get("ping_interval", 0)
        phone.ping_sent = 0.0
        for answer in sorted(phone.outstanding.values(), key=lambda a: a.first_sent):
            # A timed-out answer goes again too: the phone page keeps its outbox until an ack.
            if answer.status in ("sent", "timeout"):
                self.resent_after_reconnect += 1
                self._transmit(phone, answer)
        for sent in sorted(phone.qa_outstanding.values(), key=lambda s: s.first_sent):
            if sent.status in ("sent", "timeout"):
                self.resent_after_reconnect += 1
                self._qa_transmit(phone, sent)
        self._answer_profile(phone)

    # --- answering -------------------------------------------------------------------------

    async def burst(self, start_at: float, duration: float, change_share: float) -> dict:
        """Every connected phone answers once at a random moment in [start, start + duration);
        ``change_share`` of them change their answer after the first ack."""
        loop = asyncio.get_running_loop()
        self.burst_done = loop.create_future()
        self.burst_duration = duration
        self.pending = 0
        for phone in self.phones:
            if not phone.live:
                continue
            phone.wants_change = phone.rng.random() < change_share
            self.pending += 1
            loop.call_at(
                start_at + phone.rng.random() * duration, self._send_answer, phone, "first"
            )
        sweeper = loop.create_task(self._sweep())
        if self.pending == 0:
            self.burst_done.set_result(None)
        try:
            await self.burst_done
        finally:
            sweeper.cancel()
            self.burst_done = None
        return self.progress()

    def _send_answer(self, phone: Phone, kind: str) -> None:
        question = phone.question
        # With --reconnect a phone between sockets (dropped, or its drop not yet noticed) keeps
        # the answer in its outbox, sent once it is back, as the phone page does.
        waiting = self.reconnect and phone.ready_at is not None and not phone.gave_up
        if not phone.live and not waiting:
            self._skip("not connected")
            return
        if question is None or not question.get("open"):
            self._skip("no open question")
            return
        try:
            if kind == "first":
                value = values.draw(question, phone.rng)
            else:
                value = values.draw_change(question, phone.rng, phone.acked_value)
        except values.UnsupportedQuestion as error:
            self._skip(str(error))
            return
        message_id = f"a{len(phone.answers) + 1}"
        text = json.dumps(
            {"type": "answer", "id": message_id, "question": question["id"], "value": value},
            separators=(",", ":"),
        )
        answer = Answer(phone, message_id, kind, value, time.monotonic(), question["id"])
        phone.answers.append(answer)
        phone.outstanding[message_id] = answer
        self.answers.append(answer)
        self.unresolved.add(answer)
        self.sent += 1
        if phone.live:
            phone.ws.send_text(text)

    def _answer_profile(self, phone: Phone) -> None:
        """What a person does first on the phone page of an event with profile questions:
        answers each, an option or (``profile_none_share`` of them) "rather not say" (0)."""
        if not self.answers_profile:
            return
        waiting = {a.question for a in phone.outstanding.values() if a.kind == "profile"}
        for question in phone.profile_questions:
            question_id = question.get("id")
            given = (phone.profile_given or {}).get(str(question_id))
            if question_id is None or given is not None:
                continue
            if question_id in phone.profile_acked or question_id in waiting:
                continue
            options = [option["id"] for option in question.get("options") or []]
            rng = phone.profile_rng
            value = 0  # rather not say
            if options and rng.random() >= self.profile_none_share:
                value = rng.choice(options)
            message_id = f"p{len(phone.answers) + 1}"
            answer = Answer(phone, message_id, "profile", value, time.monotonic(), question_id)
            phone.answers.append(answer)
            phone.outstanding[message_id] = answer
            self.profile_answers.append(answer)
            self.profile_unresolved.add(answer)
            self._transmit(phone, answer)

    async def profile_wait(self, timeout: float) -> dict:
        """Until every profile answer has its reply (or ``timeout``: those left are timeouts)."""
        deadline = time.monotonic() + timeout
        while self.profile_unresolved and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for answer in list(self.profile_unresolved):
            answer.status = "timeout"
            self._resolve(answer)
        return {
            "sent": len(self.profile_answers),
            "acked": sum(1 for a in self.profile_answers if a.status == "acked"),
        }

    def _resend(self, phone: Phone, answer: Answer) -> None:
        if answer.status != "sent" or answer.resolved or not phone.live:
            return
        self._transmit(phone, answer)

    def _transmit(self, phone: Phone, answer: Answer) -> None:
        """Send an answer again, with its own id: counted at most once whatever came of the
        first send."""
        answer.last_sent = time.monotonic()
        phone.ws.send_text(
            json.dumps(
                {
                    "type": "answer",
                    "id": answer.message_id,
                    "question": answer.question,
                    "value": answer.value,
                },
                separators=(",", ":"),
            )
        )

    def _skip(self, reason: str) -> None:
        self.skipped[reason] += 1
        self._settle_one()

    def _resolve(self, answer: Answer) -> None:
        if answer.resolved:
            return
        answer.resolved = True
        if answer.kind == "quiz":  # quiz_wait waits for these
            self.quiz_unresolved.discard(answer)
            return
        if answer.kind == "profile":  # not the burst's: profile_wait waits for these
            self.profile_unresolved.discard(answer)
            return
        self.unresolved.discard(answer)
        self._settle_one()

    def _settle_one(self) -> None:
        self.pending -= 1
        if self.pending <= 0 and self.burst_done is not None and not self.burst_done.done():
            self.burst_done.set_result(None)

    async def _sweep(self) -> None:
        """Answers without a reply after ``ack_timeout`` stop being waited for (a late ack is
        still recorded)."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            limit = time.monotonic() - self.ack_timeout
            for answer in [a for a in self.unresolved if a.first_sent < limit]:
                answer.status = "timeout"
                self._resolve(answer)

    # --- the audience Q&A ------------------------------------------------------------------

    async def qa_phones(self) -> list[int]:
        """The phones that can take part (connected now)."""
        return [phone.index for phone in self.phones if phone.live]

    async def qa_ask(self, start_at: float, duration: float, askers: list[int]) -> dict:
        """Each of ``askers`` asks one item at a random moment within ``duration``; returns
        once every ask has its reply (or ``ack_timeout``): (phone, item) of the acknowledged."""
        loop = asyncio.get_running_loop()
        mine = set(askers)
        asks = []
        for phone in self.phones:
            if phone.index not in mine:
                continue
            sent = self._qa_new(phone, "ask", None)
            asks.append(sent)
            loop.call_at(start_at + phone.rng.random() * duration, self._qa_send, sent)
        await self._qa_wait(len(asks))
        return {
            "items": [(s.phone.index, s.item) for s in asks if s.status == "acked"],
            "statuses": dict(Counter(s.status for s in asks)),
        }

    async def qa_vote(self, start_at: float, plan: dict[int, list[tuple[float, str, int]]]) -> dict:
        """Each phone's planned votes and unvotes (``qa_plan.plan_votes``) at their moments; an
        unvote whose vote has no reply yet waits for it. Returns once every one has its reply."""
        loop = asyncio.get_running_loop()
        by_index = {phone.index: phone for phone in self.phones}
        planned = 0
        for index, actions in plan.items():
            phone = by_index[int(index)]
            for offset, kind, item in actions:
                sent = self._qa_new(phone, kind, item)
                loop.call_at(start_at + offset, self._qa_act, sent)
                planned += 1
        await self._qa_wait(planned)
        return self.progress()

    def _qa_new(self, phone: Phone, kind: str, item: int | None) -> QaSent:
        sent = QaSent(phone, f"{kind}-{len(phone.qa_sent) + 1}", kind, item)
        phone.qa_sent.append(sent)
        self.qa_messages.append(sent)
        return sent

    async def _qa_wait(self, planned: int) -> None:
        self.qa_pending = planned
        self.qa_done = asyncio.get_running_loop().create_future()
        if planned == 0:
            self.qa_done.set_result(None)
        sweeper = asyncio.get_running_loop().create_task(self._qa_sweep())
        try:
            await self.qa_done
        finally:
            sweeper.cancel()
            self.qa_done = None

    def _qa_act(self, sent: QaSent) -> None:
        phone = sent.phone
        if sent.kind == "unvote":
            vote = next(
                (
                    other
                    for other in phone.qa_outstanding.values()
                    if other.kind == "vote" and other.item == sent.item
                ),
                None,
            )
            if vote is not None:  # as a person: the vote's tick first, then the change of mind
                phone.qa_deferred[sent.item] = sent
                return
        self._qa_send(sent)

    def _qa_send(self, sent: QaSent) -> None:
        phone = sent.phone
        waiting = self.reconnect and phone.ready_at is not None and not phone.gave_up
        if not phone.live and not waiting:
            sent.status = "skipped"
            self._qa_resolve(sent)
            return
        sent.first_sent = time.monotonic()
        sent.status = "sent"
        phone.qa_outstanding[sent.message_id] = sent
        self.qa_unresolved.add(sent)
        self.sent += 1
        if phone.live:
            self._qa_transmit(phone, sent)

    def _qa_transmit(self, phone: Phone, sent: QaSent) -> None:
        if sent.kind == "ask":
            message = {
                "type": "ask",
                "id": sent.message_id,
                "text": f"Load test item from phone {phone.index}: will the slides be shared?",
            }
        else:
            message = {"type": sent.kind, "id": sent.message_id, "item": sent.item}
        phone.ws.send_text(json.dumps(message, separators=(",", ":")))

    def _qa_resend(self, sent: QaSent) -> None:
        if sent.resolved or sent.status != "sent" or not sent.phone.live:
            return
        self._qa_transmit(sent.phone, sent)

    def _on_qa_ack(self, phone: Phone, message: dict, now: float) -> None:
        sent = phone.qa_outstanding.pop(message.get("id"), None)
        if sent is None:
            self.stray_acks += 1
            return
        item = message.get("item") or {}
        sent.ack_at = now
        sent.status = "acked"
        sent.item = item.get("id", sent.item)
        sent.count = item.get("votes")
        sent.voted = bool(message.get("voted"))
        self.acked += 1
        self.qa_acked += 1
        self._qa_resolve(sent)

    def _on_qa_error(self, phone: Phone, message: dict, code: str, now: float) -> None:
        self.qa_errors[code] += 1
        sent = phone.qa_outstanding[message["id"]]
        wait = QA_RESEND.get(code)
        if wait is not None and now - sent.first_sent < self.ack_timeout:
            sent.retries += 1
            self.qa_retries += 1
            delay = min(15.0, wait * 2 ** (sent.retries - 1)) * phone.rng.uniform(0.75, 1.25)
            asyncio.get_running_loop().call_later(delay, self._qa_resend, sent)
            return
        phone.qa_outstanding.pop(sent.message_id, None)
        sent.status = f"error:{code}"
        self._qa_resolve(sent)

    def _qa_resolve(self, sent: QaSent) -> None:
        if sent.resolved:
            return
        sent.resolved = True
        self.qa_unresolved.discard(sent)
        self.qa_pending -= 1
        if sent.kind == "vote":
            unvote = sent.phone.qa_deferred.pop(sent.item, None)
            if unvote is not None:
                if sent.status == "acked":
                    self._qa_send(unvote)
                else:  # nothing to take back
                    unvote.status = "skipped"
                    self._qa_resolve(unvote)
        if self.qa_pending <= 0 and self.qa_done is not None and not self.qa_done.done():
            self.qa_done.set_result(None)

    def _qa_lost(self, phone: Phone) -> None:
        for sent in list(phone.qa_outstanding.values()):
            if sent.status == "sent":
                sent.status = "lost"
            self._qa_resolve(sent)

    async def _qa_sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            limit = time.monotonic() - self.ack_timeout
            for sent in [s for s in self.qa_unresolved if s.first_sent < limit]:
                sent.status = "timeout"
                self._qa_resolve(sent)

    def _qa_counts(self, payload: bytes, message: dict) -> tuple:
        """(version, item -> votes, whole) of a ``qa`` list or its ``qa_changes``, kept once
        per distinct text (thousands of phones get the same changes)."""
        known = self.qa_texts.get(payload)
        if known is not None:
            return known
        counts = {item["id"]: item["votes"] for item in message.get("items") or []}
        whole = message["type"] == "qa"
        if not whole:
            counts.update((int(item), votes) for item, votes in message["votes"].items())
        known = (message["version"], counts, whole)
        if whole:
            return known  # a phone's own list (its marks are its own): not shared
        if len(self.qa_texts) > 64:
            self.qa_texts.clear()
        self.qa_texts[payload] = known
        return known

    async def qa_shown(self) -> dict:
        """The oldest version the live observers' lists are at, and how many there are."""
        versions = [
            max((seen[1] for seen in phone.qa_seen), default=-1)
            for phone in self.phones
            if phone.qa_observer and phone.live
        ]
        return {"observers": len(versions), "oldest": min(versions, default=None)}

    async def qa_results(self) -> dict:
        return {
            "messages": [sent.record() for sent in self.qa_messages],
            "errors": dict(self.qa_errors),
            "retries": self.qa_retries,
            "observers": sum(1 for phone in self.phones if phone.qa_observer),
            "observer_messages": sum(len(phone.qa_seen) for phone in self.phones),
        }

    async def qa_latencies(self, votes: list[tuple]) -> dict:
        """For every observer and every acknowledged vote of another phone ((sent, acked, item,
        count, phone, version bound)): from the ack to the observer's list first showing the
        item with that count or more (or at a version that includes the vote), binned."""
        bins: dict[int, int] = {}
        not_seen = 0
        observers = 0
        for phone in self.phones:
            if not phone.qa_observer or not phone.qa_seen:
                continue
            observers += 1
            view = stats.QaView(phone.qa_seen)
            for sent, acked, item, count, voter, version in votes:
                if voter == phone.index:
                    continue  # its own list follows its own ack
                shown = view.first_showing(item, count, version, sent)
                if shown is None:
                    not_seen += 1
                    continue
                key = int(max(0.0, shown[0] - acked) * 1000 + 0.5)
                bins[key] = bins.get(key, 0) + 1
        return {"observers": observers, "histogram": bins, "not_seen": not_seen}

    # --- the quiz --------------------------------------------------------------------------

    async def quiz_arm(self, question: int, plan: dict[int, tuple[float, Any]]) -> int:
        """Each phone of ``plan`` answers ``question`` with its value at its moment after the
        opening (the server's: deadline - limit), once its open state is in. Returns the armed
        phones."""
        armed = 0
        for phone in self.phones:
            due = plan.get(phone.index)
            if due is not None and phone.live:
                phone.quiz_due[question] = due
                armed += 1
        return armed

    def _quiz_state(self, phone: Phone, question: dict) -> None:
        question_id = question.get("id")
        if question_id not in phone.quiz_due:
            return
        if question.get("open"):
            if question_id in phone.quiz_opened:
                return
            wall = time.time()
            phone.quiz_opened[question_id] = wall
            quiz = question.get("quiz") or {}
            offset, value = phone.quiz_due[question_id]
            if quiz.get("deadline") and quiz.get("limit"):
                opened = (quiz["deadline"] - quiz["limit"] * 1000) / 1000
                delay = max(0.0, opened + offset - wall)
            else:
                delay = offset
            asyncio.get_running_loop().call_later(delay, self._quiz_send, phone, question_id, value)
        elif question_id in phone.quiz_opened and question_id not in phone.quiz_closed:
            phone.quiz_closed[question_id] = time.time()

    def _quiz_send(self, phone: Phone, question_id: int, value: Any) -> None:
        if not phone.live:
            self.skipped["quiz: not connected"] += 1
            return
        answer = Answer(phone, f"q{question_id}", "quiz", value, time.monotonic(), question_id)
        answer.wall = time.time()
        phone.answers.append(answer)
        phone.outstanding[answer.message_id] = answer
        self.quiz_answers.append(answer)
        self.quiz_unresolved.add(answer)
        self.sent += 1
        self._transmit(phone, answer)

    def _quiz_done(self, question: int) -> bool:
        for phone in self.phones:
            if question not in phone.quiz_due or not phone.live:
                continue
            if question not in phone.quiz_scores:
                return False
        return not any(answer.question == question for answer in self.quiz_unresolved)

    async def quiz_wait(self, question: int, until: float) -> dict:
        """Until every armed phone has its answer's reply and its ``score`` for ``question``
        (or the wall clock passes ``until``); what each phone sent, heard and when."""
        while time.time() < until and not self._quiz_done(question):
            await asyncio.sleep(0.05)
            limit = time.monotonic() - self.ack_timeout
            for answer in [a for a in self.quiz_unresolved if a.first_sent < limit]:
                answer.status = "timeout"
                self._resolve(answer)
        answers = [
            (
                a.phone.index,
                a.phone.participant,
                a.first_sent,
                a.ack_at,
                a.status,
                a.value,
                a.counted,
                a.wall,
                a.retries,
            )
            for a in self.quiz_answers
            if a.question == question
        ]
        phones = []
        for phone in self.phones:
            if question not in phone.quiz_due:
                continue
            score = phone.quiz_scores.get(question)
            phones.append(
                (
                    phone.index,
                    phone.participant,
                    phone.live,
                    phone.quiz_opened.get(question),
                    phone.quiz_closed.get(question),
                    score[0] if score else None,
                    score[1] if score else None,
                    phone.player,
                )
            )
        return {"answers": answers, "phones": phones, "errors": dict(self.errors)}

    # --- heartbeat -------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        """The phone page pings every 25 s and calls the link dead without a reply in 10 s."""
        interval = float(self.config.get("ping_interval", 25))
        pong_within = float(self.config.get("pong_timeout", 10))
        count = 0
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for phone in self.phones:
                if phone.ready_at is None or not phone.live:
                    continue
                if phone.ping_sent and now - phone.ping_sent > pong_within:
                    if phone.last_rx < phone.ping_sent:
                        self.pong_misses += 1
                        if self.reconnect:  # socket.js: silence is a dead line; drop it
                            phone.ping_sent = 0.0
                            phone.ws._abort()
                            continue
                    phone.ping_sent = 0.0
                if now >= phone.ping_due:
                    count += 1
                    phone.ws.send_text(f'{{"type":"ping","id":"ping-{count}"}}')
                    phone.ping_sent = now
                    phone.ping_due = now + interval
                    self.pings += 1

    # --- broadcasts ------------------------------------------------------------------------

    async def arm(self, round_number: int) -> int:
        """From now on, each phone's next ``state`` is the answer to broadcast ``round``."""
        self.bcast_times = []
        self.bcast_round = round_number
        return sum(1 for phone in self.phones if phone.live)

    async def collect(self, t0: float, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        live_then = sum(1 for phone in self.phones if phone.live)
        dropped_then = self.dropped
        while time.monotonic() < deadline:
            if len(self.bcast_times) >= live_then - (self.dropped - dropped_then):
                break
            await asyncio.sleep(0.02)
        live = sum(1 for phone in self.phones if phone.live)
        times, self.bcast_times = self.bcast_times, []
        self.bcast_round = 0
        return {
            "latencies": [t - t0 for t in times],
            "live": live,
            "missing": max(0, live - len(times)),
        }

    # --- the end ---------------------------------------------------------------------------

    async def results(self) -> dict:
        phones = []
        for phone in self.phones:
            unsure = [a for a in phone.answers if a.status in ("sent", "timeout", "lost")]
            uncertain = [a.value for a in unsure if a.kind != "profile"]
            profile_uncertain: dict[str, list] = {}
            for a in unsure:
                if a.kind == "profile":
                    profile_uncertain.setdefault(str(a.question), []).append(a.value)
            phones.append(
                {
                    "index": phone.index,
                    "participant": phone.participant,
                    "failed": phone.failed,
                    "ready": phone.ready_at is not None,
                    "ready_seconds": (
                        phone.ready_at - phone.join_started
                        if phone.ready_at is not None and phone.join_started is not None
                        else None
                    ),
                    "ready_at": phone.ready_at,
                    "page_seconds": phone.page_seconds,
                    "assets_seconds": phone.assets_seconds,
                    "first_state_seconds": phone.first_state_seconds,
                    "bytes_in": phone.bytes_in,
                    "bytes_out": phone.bytes_out,
                    "warm": phone.warm,
                    "home": phone.home,
                    "dropped_at": phone.dropped_at,
                    "close_code": phone.close_code,
                    "live": phone.live,
                    "reconnects": phone.reconnects,
                    "has_acked": phone.has_acked,
                    "acked_value": phone.acked_value,
                    "uncertain": uncertain,
                    "profile": {str(q): value for q, value in phone.profile_acked.items()},
                    "profile_uncertain": profile_uncertain,
                }
            )
        answers = [
            (a.first_sent, a.ack_at, a.status, a.retries, a.kind, a.phone.index)
            for a in self.answers
        ]
        profile_answers = [
            (a.first_sent, a.ack_at, a.status, a.retries, a.question, a.phone.index)
            for a in self.profile_answers
        ]
        return {
            "phones": phones,
            "answers": answers,
            "profile_answers": profile_answers,
            "join_post_seconds": self.join_post_seconds,
            "ws_open_seconds": self.ws_open_seconds,
            "join_status": dict(self.join_status),
            "arrival_requests": dict(self.arrival_requests),
            "arrival_connections": self.connections_opened,
            "fail_reasons": dict(self.fail_reasons),
            "close_codes": dict(self.close_codes),
            "errors": dict(self.errors),
            "skipped": dict(self.skipped),
            "retries": self.retries,
            "stray_acks": self.stray_acks,
            "pong_misses": self.pong_misses,
            "pings": self.pings,
            "messages_in": self.messages_in,
            "reconnect_seconds": self.reconnect_seconds,
            "reconnect_failures": dict(self.reconnect_failures),
            "resent_after_reconnect": self.resent_after_reconnect,
        }

    async def close(self, timeout: float = 15.0) -> int:
        """Close every socket (a mass disconnect) and wait for the server to let go."""
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        expected = 0
        for phone in self.phones:
            phone.closed_by_us = True  # a reconnect under way stops
            if phone.ws is not None:
                phone.closed_by_us = True
                phone.ws.close()
                expected += 1
        deadline = time.monotonic() + timeout
        while self.closed_count < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.closed_count


# --- worker processes ------------------------------------------------------------------------


def _end_with_the_coordinator() -> None:
    """Have the kernel end this worker when the coordinator goes: a worker busy solving a join's
    proof of work never reads its pipe's end, and was seen burning a core for many minutes
    after its coordinator was killed (Linux's PR_SET_PDEATHSIG; elsewhere nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG


def serve(connection, index: int, config: dict, phone_indexes: list[int]) -> None:
    """The body of a worker process: run commands from the coordinator until told to exit."""
    _end_with_the_coordinator()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)  # thousands of live objects: fewer, cheaper collections
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(connection, index, config, phone_indexes))


async def _serve(connection, index: int, config: dict, phone_indexes: list[int]) -> None:
    worker = Worker(index, config, phone_indexes)
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue = asyncio.Queue()

    def readable() -> None:
        try:
            inbox.put_nowait(connection.recv())
        except (EOFError, OSError):
            loop.remove_reader(connection.fileno())
            inbox.put_nowait((None, "exit", {}))

    loop.add_reader(connection.fileno(), readable)

    async def report_progress() -> None:
        while True:
            await asyncio.sleep(0.5)
            connection.send(("progress", worker.progress()))

    async def run(request_id: int, command: str, arguments: dict) -> None:
        try:
            result = await getattr(worker, command)(**arguments)
            connection.send((request_id, "ok", result))
        except Exception as error:  # reported to the coordinator
            connection.send((request_id, "error", f"{type(error).__name__}: {error}"))

    reporter = loop.create_task(report_progress())
    tasks = set()
    while True:
        request_id, command, arguments = await inbox.get()
        if command == "exit":
            break
        task = loop.create_task(run(request_id, command, arguments))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    reporter.cancel()
    loop.remove_reader(connection.fileno())
    os._exit(0)  # the sockets are closed already; skip the slow teardown of thousands of objects

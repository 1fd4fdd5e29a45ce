"""The HTTP fallback of phones and stage screens, for venue networks that break WebSockets
(docs/protocol.md).

``GET /api/e/<code>/events`` is a server-sent-events stream carrying exactly the text frames the
phone socket would get (``state``, ``results``), and ``POST /api/e/<code>/answer`` takes exactly
the message the phone would send on the socket (``answer``, ``ping``) and answers with exactly
the reply the socket would send (``ack``, ``error``, ``pong``). Nothing is decided here: a stream
is a member of the process's event hub like a phone socket, with the socket's own rules for its
state and result pushes (``PhoneConsumer``'s methods, not copies), and an answer goes through
``answers.parse_message`` and ``answers.count_answer`` as on the socket.

A stage screen has the same pair under ``/api/e/<code>/stage/`` with its stage key in the query:
its stream carries what the stage socket sends, its POST takes only pings.

Like ``polls.join_api`` this is a bare ASGI app in front of Django: a stream lives for minutes
and must not hold anything of Django's request machinery. Nothing here is needed across server
processes: the stream and the answers of one phone may reach different processes; the tally and
the event state are in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import OrderedDict

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from . import answers, attendees, push
from .answers import Rejection
from .clientaddr import address_of_scope
from .connlimits import admit
from .consumers import (
    CLOSE_BAD_TOKEN,
    CLOSE_UNKNOWN_EVENT,
    LiveConsumer,
    PhoneConsumer,
    StageConsumer,
    _cookies,
    _event_exists,
    _event_for_stage,
    _language,
    _query,
)
from .delivery import event_hub
from .join_api import SECURITY_HEADERS, _send
from .middleware import content_security_policy
from .models import Event
from .origin import allowed_host, headers_of, is_secure, origin_allowed
from .ratelimit import TokenBucket
from .state import stage_key_digest, stage_key_matches
from .tokens import Participant, participant_cookie_name, read_participant_token

logger = logging.getLogger("django.request")

KEEPALIVE_SECONDS = 15.0
RETRY_MILLISECONDS = 3000
# Message budgets kept per process (see ``_budget``): enough for every phone of a big hall.
MAX_BUDGETS = 20_000


# -- the stream ------------------------------------------------------------------------------


class EventStream:
    """An event stream: a hub member that writes what its socket would send."""

    participant_id: str | None = None

    def __init__(self, send) -> None:
        self._send = send
        self.view = None
        self.state: dict | None = None
        self.ended = asyncio.Event()  # closed by the server, or the client went away
        self.finished = False

    async def _body(self, text: str, more: bool = True) -> None:
        if self.finished:
            return
        self.finished = not more
        await self._send({"type": "http.response.body", "body": text.encode(), "more_body": more})

    async def write(self, text: str) -> None:
        if not self.ended.is_set():
            await self._body(text)

    async def send(self, text_data: str) -> None:
        # JSON text has no raw line breaks, so one frame is one ``data:`` line.
        await self.write(f"data: {text_data}\n\n")

    async def push_text(self, text: str) -> None:
        await self.send(text_data=text)

    async def close(self, code: int) -> None:
        """As a socket's close code: the page reads it from the ``close`` event."""
        if self.ended.is_set():
            return
        self.ended.set()
        await self._body(f"event: close\ndata: {push.encode({'code': code})}\n\n", more=False)

    async def finish(self) -> None:
        self.ended.set()
        await self._body("", more=False)


class PhoneStream(EventStream):
    """One phone's stream."""

    gone_code = CLOSE_BAD_TOKEN

    # The phone socket's own rules, not a copy of them: which answer a state carries, and when
    # result snapshots are pushed. They use only ``view``, ``state``, ``answers``,
    # ``participant``, ``participant_id``, ``send_view``, ``wants_results``, ``push_text``,
    # ``send`` and ``close``.
    apply_view = LiveConsumer.apply_view
    send_view = PhoneConsumer.send_view
    wants_results = PhoneConsumer.wants_results

    def __init__(self, send, participant: Participant) -> None:
        super().__init__(send)
        self.participant = participant
        self.participant_id = participant.participant_id
        self.answers: dict[int, object] = {}  # acknowledged through this process (see _remember)


class StageStream(EventStream):
    """One stage screen's stream, with the stage socket's rules: every state and every result
    snapshot, and closed with 4403 once its key is rotated."""

    gone_code = CLOSE_UNKNOWN_EVENT
    apply_view = StageConsumer.apply_view
    send_view = StageConsumer.send_view
    wants_results = StageConsumer.wants_results

    def __init__(self, send, key_digest: str) -> None:
        super().__init__(send)
        self.key_digest = key_digest


# participant id -> this process's streams of that phone: an ack given here reaches them as the
# answer the phone socket would remember (``PhoneConsumer.answers``). When the answer arrives at
# another process, the hub's read of the phones' answers serves, as for sockets.
_streams: dict[str, set[PhoneStream]] = {}


def _remember(participant_id: str, ack: dict) -> None:
    for stream in _streams.get(participant_id, ()):
        stream.answers[ack["question"]] = ack["answer"]


async def _until_disconnect(receive, stream: EventStream) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    stream.ended.set()


# -- rate limit ------------------------------------------------------------------------------

# participant id -> message budget, least recently used first. Per server process, like a
# socket's budget: a phone whose requests are spread over N processes gets up to N times the
# budget, which still stops a flood; the tally's own limit on answers per question is shared.
# Bounded, so tokens cannot grow it without limit (a forgotten budget starts full again).
_budgets: OrderedDict[str, TokenBucket] = OrderedDict()


def _budget(participant_id: str) -> TokenBucket:
    bucket = _budgets.get(participant_id)
    if bucket is None:
        bucket = _budgets[participant_id] = TokenBucket(rate=5, burst=20)  # as PhoneConsumer
        if len(_budgets) > MAX_BUDGETS:
            _budgets.popitem(last=False)
    else:
        _budgets.move_to_end(participant_id)
    return bucket


# -- responses -------------------------------------------------------------------------------


def _json(text: str, status: int = 200) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="application/json")


def _error(code: str, message: str, status: int) -> HttpResponse:
    return _json(push.encode({"error": {"code": code, "message": message}}), status)


def _stream_headers(host: str, secure: bool) -> list[tuple[bytes, bytes]]:
    """The stream's own headers and the security headers ``join_api._send`` gives a response."""
    headers = {
        **SECURITY_HEADERS,
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",  # a buffering proxy (nginx) would hold the events back
        "Content-Security-Policy": content_security_policy(host),
    }
    if secure and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers["Strict-Transport-Security"] = hsts
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


async def _read_body(receive, limit: int) -> bytes | None:
    """The request body, cut after ``limit`` bytes (then too large anyway); None: the client
    went away."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > limit or not message.get("more_body", False):
            return body[: limit + 1]


class FallbackPath:
    """ASGI middleware: the fallback's two URLs answered here, every other request goes on."""

    def __init__(self, app) -> None:
        self.app = app
        self.pattern: re.Pattern | None = None

    def _match(self, scope) -> tuple[str, str] | None:
        if scope["type"] != "http":
            return None
        if self.pattern is None:
            # Next to the join URL: /api/e/<code>/events and /api/e/<code>/answer for phones,
            # /api/e/<code>/stage/events and /api/e/<code>/stage/answer for stage screens.
            base = reverse("polls:join", args=["CODE"]).removesuffix("join")
            self.pattern = re.compile(
                re.escape(base).replace("CODE", "(?P<code>[^/]{1,32})")
                + "(?P<kind>(?:stage/)?(?:events|answer))"
            )
        match = self.pattern.fullmatch(scope["path"])
        return (match["code"], match["kind"]) if match else None

    async def __call__(self, scope, receive, send):
        matched = self._match(scope)
        if matched is None:
            return await self.app(scope, receive, send)
        code, kind = matched
        headers = headers_of(scope)
        secure = is_secure(scope, headers)
        if settings.SECURE_SSL_REDIRECT and not secure:
            return await self.app(scope, receive, send)  # Django redirects to https
        host = headers.get("host", "")
        if not allowed_host(host):
            logger.warning("Invalid HTTP_HOST header for the phone fallback: %r", host)
            return await _send(send, _error("bad_request", "", 400), host, secure)
        method = "GET" if kind.endswith("events") else "POST"
        if scope["method"] != method:
            response = _error("method_not_allowed", "", 405)
            response["Allow"] = method
            return await _send(send, response, host, secure)
        query = _query(scope)
        with translation.override(_language(scope, query)):  # of the error messages
            if kind == "events":
                await self.events(scope, receive, send, code, query, host, secure)
            elif kind == "answer":
                await self.answer(scope, receive, send, code, query, headers, host, secure)
            elif kind == "stage/events":
                await self.stage_events(receive, send, code, query, host, secure)
            else:
                await self.stage_answer(receive, send, code, query, headers, host, secure)

    @staticmethod
    async def participant(
        scope, query: dict, code: str
    ) -> tuple[Participant | None, HttpResponse | None]:
        """The token's participant, as the phone socket reads it, else the refusal: 401 where
        the socket closes with 4401, 404 where it closes with 4404."""
        token = query.get("token") or _cookies(scope).get(participant_cookie_name(code))
        participant = read_participant_token(token, code)
        if participant is not None and not await attendees.revoked(participant):
            return participant, None
        return None, await _refusal(code)

    async def events(self, scope, receive, send, code, query, host, secure) -> None:
        participant, refusal = await self.participant(scope, query, code)
        if participant is None:
            await _send(send, refusal, host, secure)
            return
        admission = admit(participant.participant_id, address_of_scope(scope))
        if admission is None:
            message = _("Too many open connections for this phone; close other tabs.")
            await _send(send, _error("too_many_connections", message, 429), host, secure)
            return
        stream = PhoneStream(send, participant)
        _streams.setdefault(stream.participant_id, set()).add(stream)
        try:
            await _serve_stream(stream, participant.event_id, receive, send, host, secure)
        finally:
            admission.release()
            streams = _streams.get(stream.participant_id)
            if streams is not None:
                streams.discard(stream)
                if not streams:
                    del _streams[stream.participant_id]

    @staticmethod
    async def stage_screen(code: str, query: dict) -> tuple[Event | None, HttpResponse | None]:
        """The event whose stage key the query carries, else the refusal: 404 where the stage
        socket closes with 4404, 403 where it closes with 4403."""
        event = await _event_for_stage(code)
        if event is None:
            return None, _error("unknown_event", _("There is no session with this code."), 404)
        if not stage_key_matches(event, query.get("key", "")):
            return None, _error("bad_key", _("This screen's link is not valid (any more)."), 403)
        return event, None

    async def stage_events(self, receive, send, code, query, host, secure) -> None:
        event, refusal = await self.stage_screen(code, query)
        if event is None:
            await _send(send, refusal, host, secure)
            return
        stream = StageStream(send, stage_key_digest(event.stage_key))
        await _serve_stream(stream, event.id, receive, send, host, secure)

    async def stage_answer(self, receive, send, code, query, headers, host, secure) -> None:
        """Screens only ping (to notice a dead line), as on the stage socket."""
        if not origin_allowed(headers.get("origin"), host, secure):
            await _send(send, _error("bad_origin", "", 403), host, secure)
            return
        body = await _read_body(receive, settings.ZP_MAX_MESSAGE_BYTES)
        if body is None:
            return
        event, refusal = await self.stage_screen(code, query)
        if event is None:
            await _send(send, refusal, host, secure)
            return
        try:
            if not _budget(f"stage:{event.id}").take():
                raise Rejection("rate_limited")
            message = answers.parse_message(None, body)
            if message["type"] != "ping":
                raise Rejection("not_allowed", message.get("id"))
            reply = {"type": "pong", "id": message.get("id")}
        except Rejection as rejection:
            reply = rejection.payload()
        await _send(send, _json(push.encode(reply)), host, secure)

    async def answer(self, scope, receive, send, code, query, headers, host, secure) -> None:
        if not origin_allowed(headers.get("origin"), host, secure):
            await _send(send, _error("bad_origin", "", 403), host, secure)
            return
        body = await _read_body(receive, settings.ZP_MAX_MESSAGE_BYTES)
        if body is None:
            return  # the phone went away
        participant, refusal = await self.participant(scope, query, code)
        if participant is None:
            await _send(send, refusal, host, secure)
            return
        reply = await self.reply(participant, body)
        if reply is None:  # the event was deleted: as the socket's 4401, join again
            await _send(send, await _refusal(code), host, secure)
            return
        await _send(send, _json(push.encode(reply)), host, secure)

    @staticmethod
    async def reply(participant: Participant, body: bytes) -> dict | None:
        """What the phone socket would answer to this frame (``PhoneConsumer.receive``); None
        when the event is gone or no longer takes this token (the socket's 4401)."""
        try:
            if not _budget(participant.participant_id).take():
                raise Rejection("rate_limited")
            message = answers.parse_message(None, body)  # too_large, bad_json, ...
            if message["type"] == "ping":
                return {"type": "pong", "id": message.get("id")}
            view = await event_hub().view_of(participant.event_id)
            if view is None or not attendees.admitted(participant, view.state["spec"]):
                return None
            ack = await answers.count_answer(message, view.state["spec"], participant)
        except Rejection as rejection:
            return rejection.payload()
        _remember(participant.participant_id, ack)
        return ack


async def _serve_stream(
    stream: EventStream, event_id: int, receive, send, host: str, secure: bool
) -> None:
    """Hold the stream open as a member of the event's hub until either side ends it."""
    await send(
        {"type": "http.response.start", "status": 200, "headers": _stream_headers(host, secure)}
    )
    await stream.write(f"retry: {RETRY_MILLISECONDS}\n\n")
    watcher = asyncio.ensure_future(_until_disconnect(receive, stream))
    hub = event_hub()
    try:
        view = await hub.add(stream, event_id)
        if view is None:
            await stream.close(stream.gone_code)  # the event was deleted
        elif stream.view is None:  # else a host's change arrived meanwhile, and it is newer
            await stream.apply_view(view)
        while not stream.ended.is_set():
            try:
                await asyncio.wait_for(stream.ended.wait(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await stream.write(": keepalive\n\n")
    finally:
        # However the stream ended (the client left, the server closed it, Daphne cancelled
        # the app), it must not stay registered for updates.
        watcher.cancel()
        push.results_pump().unsubscribe(stream)
        hub.remove(stream, event_id)
        with contextlib.suppress(Exception):  # the client may be gone
            await stream.finish()


async def _refusal(code: str) -> HttpResponse:
    if await _event_exists(code):
        return _error("bad_token", _("Your pass for this session is not valid; join again."), 401)
    return _error("unknown_event", _("There is no session with this code."), 404)

"""The HTTP line of phones and stage screens, for venue networks that break WebSockets
(docs/protocol.md): a thin adapter over ``polls.session``, beside the socket's.

``GET /api/e/<code>/events`` is a server-sent-events stream carrying exactly the text frames the
phone socket would get (``state``, ``results``): the stream is the line of a phone's session as
the socket is. ``POST /api/e/<code>/answer`` takes exactly the message the phone would send on
the socket (``answer``, ``ping``) and answers with exactly the reply the socket would send
(``ack``, ``error``, ``pong``): each POST is one frame of a session that holds no line here, with
the participant's budget kept in this process. A stage screen has the same pair under
``/api/e/<code>/stage/`` with its stage key in the query: its POST takes only pings.

The session's close codes become statuses where no stream is open yet: 401 for 4401, 403 for
4403, 404 for 4404, 429 for 4408; a POST past its budget's strikes keeps getting
``rate_limited`` (there is no socket to close with 4429).

Like ``polls.join_api`` this is a bare ASGI app in front of Django: a stream lives for minutes
and must not hold anything of Django's request machinery. Nothing here is needed across server
processes: the stream and the answers of one phone may reach different processes; the tally and
the event state are in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from .. import metrics, protocol, push
from ..codes import PLACEHOLDER, path_pattern
from ..logs import log_refusal
from ..origin import origin_allowed
from ..ratelimit import KeptBudgets
from ..session import (
    CLOSE_BAD_KEY,
    CLOSE_BAD_TOKEN,
    CLOSE_FLOOD,
    CLOSE_TOO_MANY,
    Caller,
    PhoneSession,
    Refused,
    Session,
    StageSession,
    open_phone,
    open_stage,
    participant_of,
    stage_event,
    token_refusal,
)
from .responses import Door, encode_headers, read_body, security_headers, send_response

logger = logging.getLogger("django.request")

KEEPALIVE_SECONDS = 15.0
RETRY_MILLISECONDS = 3000

# participant id (or "stage:<event id>") -> message budget. Per server process, like a socket's
# budget: a phone whose requests are spread over N processes gets up to N times the budget,
# which still stops a flood; the tally's own limit on answers per question is shared.
budgets = KeptBudgets()


class EventStream:
    """An event stream as a session's line: each frame one ``data:`` line."""

    def __init__(self, send) -> None:
        self._send = send
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

    async def send_text(self, text: str) -> None:
        # JSON text has no raw line breaks, so one frame is one ``data:`` line.
        await self.write(f"data: {text}\n\n")

    async def close(self, code: protocol.CloseCode) -> None:
        """As a socket's close code: the page reads it from the ``close`` event."""
        if self.ended.is_set():
            return
        self.ended.set()
        closing: protocol.CloseEvent = {"code": code}
        await self._body(f"event: close\ndata: {push.encode(closing)}\n\n", more=False)

    async def finish(self) -> None:
        self.ended.set()
        await self._body("", more=False)

    async def until_disconnect(self, receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.ended.set()


class OneReply:
    """The line of a POST's session: its reply is the response; a close only says why not."""

    closed_with: protocol.CloseCode | None = None

    async def send_text(self, text: str) -> None:
        raise RuntimeError("a POST's session never joins, so it is sent no state")

    async def close(self, code: protocol.CloseCode) -> None:
        self.closed_with = code


def _json(text: str, status: int = 200) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="application/json")


def _error(code: str, message: str, status: int) -> HttpResponse:
    return _json(push.encode({"error": {"code": code, "message": message}}), status)


def refusal(close_code: protocol.CloseCode) -> HttpResponse:
    """The response where the socket would close with ``close_code`` (in the active language)."""
    if close_code == CLOSE_BAD_TOKEN:
        return _error("bad_token", _("Your pass for this session is not valid; join again."), 401)
    if close_code == CLOSE_BAD_KEY:
        return _error("bad_key", _("This screen's link is not valid (any more)."), 403)
    if close_code == CLOSE_TOO_MANY:
        message = _("Too many open connections for this phone; close other tabs.")
        return _error("too_many_connections", message, 429)
    return _error("unknown_event", _("There is no session with this code."), 404)


class FallbackPath:
    """ASGI middleware: the fallback's two URLs answered here, every other request goes on."""

    def __init__(self, app) -> None:
        self.app = app
        self.pattern = None

    def _match(self, scope) -> tuple[str, str] | None:
        if scope["type"] != "http":
            return None
        if self.pattern is None:
            # Next to the join URL: /api/e/<code>/events and /api/e/<code>/answer for phones,
            # /api/e/<code>/stage/events and /api/e/<code>/stage/answer for stage screens.
            base = reverse("polls:join", args=[PLACEHOLDER]).removesuffix("join")
            self.pattern = path_pattern(base, "(?P<kind>(?:stage/)?(?:events|answer))")
        match = self.pattern.fullmatch(scope["path"])
        return (match["code"], match["kind"]) if match else None

    async def __call__(self, scope, receive, send):
        matched = self._match(scope)
        if matched is None:
            return await self.app(scope, receive, send)
        code, kind = matched
        door = Door.of(scope)
        if door.for_django:
            return await self.app(scope, receive, send)
        headers, host, secure = door.headers, door.host, door.secure
        if not door.host_allowed:
            logger.warning("Invalid HTTP_HOST header for the phone fallback: %r", host)
            return await send_response(send, _error("bad_request", "", 400), host, secure)
        method = "GET" if kind.endswith("events") else "POST"
        if scope["method"] != method:
            response = _error("method_not_allowed", "", 405)
            response["Allow"] = method
            return await send_response(send, response, host, secure)
        caller = Caller.of(scope, code)
        exchange = Exchange(receive, send, host, secure)
        with translation.override(caller.language):  # of the refusals' messages
            if method == "GET":
                opening = open_stage if kind.startswith("stage/") else open_phone
                await exchange.stream(opening, caller)
            elif not origin_allowed(headers.get("origin"), host, secure):
                log_refusal("answer", "bad_origin", sender=caller.address, event=code)
                await exchange.respond(_error("bad_origin", "", 403))
            elif kind == "answer":
                await exchange.post(caller, phone_post_session)
            else:
                await exchange.post(caller, stage_post_session)


class Exchange:
    """One request of the fallback and its response."""

    def __init__(self, receive, send, host: str, secure: bool) -> None:
        self.receive = receive
        self.send = send
        self.host = host
        self.secure = secure

    async def respond(self, response: HttpResponse) -> None:
        await send_response(self.send, response, self.host, self.secure)

    async def stream(self, opening, caller: Caller) -> None:
        """Hold the stream open as a session's line until either side ends it."""
        line = EventStream(self.send)
        try:
            session = await opening(line, caller)
        except Refused as refused:
            await self.respond(refusal(refused.code))
            return
        headers = {
            **security_headers(self.host, self.secure),
            "Content-Type": "text/event-stream; charset=utf-8",
            "X-Accel-Buffering": "no",  # a buffering proxy (nginx) would hold the events back
        }
        start = {"type": "http.response.start", "status": 200, "headers": encode_headers(headers)}
        watcher = None
        try:
            await self.send(start)
            await line.write(f"retry: {RETRY_MILLISECONDS}\n\n")
            watcher = asyncio.ensure_future(line.until_disconnect(self.receive))
            await session.join_hub()
            while not line.ended.is_set():
                try:
                    await asyncio.wait_for(line.ended.wait(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await line.write(": keepalive\n\n")
        finally:
            # However the stream ended (the client left, the server closed it, Daphne cancelled
            # the app), nothing may stay registered for it.
            if watcher is not None:
                watcher.cancel()
            session.leave()
            with contextlib.suppress(Exception):  # the client may be gone
                await line.finish()

    async def post(self, caller: Caller, session_of) -> None:
        """One frame through a session that holds no line here (``session_of`` makes it, or
        refuses), answered as the socket would answer it."""
        body = await read_body(self.receive, settings.ZP_MAX_MESSAGE_BYTES)
        if body is None:
            return  # the client went away
        try:
            session = await session_of(caller)
        except Refused as refused:
            await self.respond(refusal(refused.code))
            return
        reply = await session.reply(None, body)
        if reply is None and session.line.closed_with == CLOSE_FLOOD:
            metrics.answer_refused("rate_limited")  # as the session counts its own refusals
            reply = caller.rejection("rate_limited")
        if reply is None:  # the event was deleted, or takes this token no more: join again
            await self.respond(refusal(await token_refusal(caller.code)))
            return
        await self.respond(_json(push.encode(reply)))


async def phone_post_session(caller: Caller) -> Session:
    participant = await participant_of(caller)
    budget = budgets.of(participant.participant_id)
    return PhoneSession(OneReply(), participant, caller.language, budget)


async def stage_post_session(caller: Caller) -> Session:
    """Screens only ping (to notice a dead line), as on the stage socket."""
    event = await stage_event(caller)
    budget = budgets.of(f"stage:{event.id}")
    return StageSession(OneReply(), event.id, "", caller.language, budget, event.code)

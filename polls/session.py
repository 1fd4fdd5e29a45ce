"""The rules of a phone and of a stage screen, whatever line they arrive on.

A phone joins with its participant token (from the query, else its cookie), receives the event's
state with its own answer and, while the host shows them, the results; it sends answers and
pings within a message budget and gets ``ack``, ``error`` or ``pong``. A stage screen joins with
its stage key, receives every state and every result snapshot, and only pings. Messages to
either are in the language negotiated once, as the join API and the pages negotiate it.

Both transports are thin adapters over this, side by side in ``polls.transport``: the WebSocket
and the server-sent-events stream with its POSTs. A transport gives a session a ``Line`` (send
one text frame, close with a code) and hands it every frame it receives. Refusals are close
codes (``Refused``); the HTTP stream answers them with the statuses docs/protocol.md lists.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings
from django.http.cookie import parse_cookie
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header

from . import answers, attendees, deadlines, metrics, players, protocol, qa, quiz_board, tally
from .answers import Rejection
from .clientaddr import address_of_scope
from .connlimits import Admission, admit
from .delivery import ANSWER_UNKNOWN, EventView, event_hub, qa_pump, results_pump
from .logs import log_refusal
from .models import Event
from .origin import headers_of
from .push import encode
from .ratelimit import ABUSIVE, MessageBudget
from .segments import tags_of
from .stagekeys import stage_key_digest, stage_key_matches
from .tokens import Participant, participant_cookie_name, read_participant_token

CLOSE_BAD_TOKEN: Final[protocol.CloseCode] = 4401
CLOSE_BAD_KEY: Final[protocol.CloseCode] = 4403
CLOSE_UNKNOWN_EVENT: Final[protocol.CloseCode] = 4404
# Over the cap of open connections for this participant or address (polls.connlimits).
CLOSE_TOO_MANY: Final[protocol.CloseCode] = 4408
CLOSE_FLOOD: Final[protocol.CloseCode] = 4429
# Each close code by the error code the HTTP fallback answers it with (the logs name it so).
REFUSAL_CODES: Final[dict[protocol.CloseCode, str]] = {
    CLOSE_BAD_TOKEN: "bad_token",
    CLOSE_BAD_KEY: "bad_key",
    CLOSE_UNKNOWN_EVENT: "unknown_event",
    CLOSE_TOO_MANY: "too_many_connections",
    CLOSE_FLOOD: "flood",
}

# What a session answers one frame with.
Reply = (
    protocol.AckMessage
    | protocol.ErrorMessage
    | protocol.PongMessage
    | protocol.QaAckMessage
    | protocol.PlayerMessage
)
# The Q&A's messages from a phone (polls.qa); the rest are answers.
QA_TYPES = ("ask", "vote", "unvote")

logger = logging.getLogger(__name__)


class Line(Protocol):
    """What a transport offers a session: one text frame at a time, and a close with a code."""

    async def send_text(self, text: str) -> None: ...
    async def close(self, code: protocol.CloseCode) -> None: ...


class Refused(Exception):
    """A join refused with a close code (the HTTP stream answers it with a status)."""

    def __init__(self, code: protocol.CloseCode) -> None:
        super().__init__(code)
        self.code = code


# -- who knocks ------------------------------------------------------------------------------


def negotiate_language(query: dict[str, str], headers: dict[str, str]) -> str:
    """As a page's language is decided: ``?lang=`` (LanguageParameterMiddleware), else the
    language cookie, else Accept-Language by its weights (LocaleMiddleware), else the site's."""
    supported = {code for code, _name in settings.LANGUAGES}
    chosen = query.get("lang")
    if chosen in supported:
        return chosen
    chosen = parse_cookie(headers.get("cookie", "")).get(settings.LANGUAGE_COOKIE_NAME)
    if chosen in supported:
        return chosen
    for code, _weight in parse_accept_lang_header(headers.get("accept-language", "")):
        base = code.split("-")[0]
        if base in supported:
            return base
    return settings.LANGUAGE_CODE


def query_of(scope) -> dict[str, str]:
    """A scope's query parameters, the last of a repeated one."""
    parsed = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {key: values[-1] for key, values in parsed.items()}


@dataclass(frozen=True)
class Caller:
    """Who opens a line or sends a frame, as any transport's ASGI scope tells it."""

    code: str  # the event code as the URL has it (a phone's page has taken it to its own)
    query: dict[str, str]
    headers: dict[str, str]
    address: str
    language: str

    @classmethod
    def of(cls, scope, code: str) -> Caller:
        query, headers = query_of(scope), headers_of(scope)
        language = negotiate_language(query, headers)
        return cls(code, query, headers, address_of_scope(scope), language)

    @property
    def token(self) -> str | None:
        cookies = parse_cookie(self.headers.get("cookie", ""))
        return self.query.get("token") or cookies.get(participant_cookie_name(self.code))

    def refused(self, close_code: protocol.CloseCode, participant_id: str | None = None) -> Refused:
        """The refusal of this caller's line, logged once, here where it is decided."""
        code = REFUSAL_CODES[close_code]
        sender = participant_id or self.address
        log_refusal("connect", code, sender=sender, event=self.code, participant=participant_id)
        return Refused(close_code)

    def rejection(self, code: protocol.ErrorCode) -> protocol.ErrorMessage:
        """An ``error`` message in this caller's language."""
        with translation.override(self.language):
            return Rejection(code).payload()


@database_sync_to_async
def _event_exists(code: str) -> bool:
    return Event.objects.filter(code=code).exists()


@database_sync_to_async
def _event_of(code: str) -> Event | None:
    return Event.objects.filter(code=code).first()


async def token_refusal(code: str) -> protocol.CloseCode:
    """Why a token is not taken: a phone whose event is gone holds a stale token (the code may
    live on in a new event), so 4401 makes it join again; 4404 when no event has the code."""
    return CLOSE_BAD_TOKEN if await _event_exists(code) else CLOSE_UNKNOWN_EVENT


async def participant_of(caller: Caller) -> Participant:
    """The participant the caller's token names, unless that token is forged, expired, for
    another event or of a revoked personal code (``Refused``)."""
    participant = read_participant_token(caller.token, caller.code)
    if participant is None or await attendees.revoked(participant):
        participant_id = participant.participant_id if participant else None
        raise caller.refused(await token_refusal(caller.code), participant_id)
    return participant


async def stage_event(caller: Caller) -> Event:
    """The event whose stage key the caller carries (``Refused`` 4404, or 4403 for the key)."""
    event = await _event_of(caller.code)
    if event is None:
        raise caller.refused(CLOSE_UNKNOWN_EVENT)
    if not stage_key_matches(event, caller.query.get("key", "")):
        raise caller.refused(CLOSE_BAD_KEY)
    return event


async def open_phone(line: Line, caller: Caller) -> PhoneSession:
    """A phone's session on a line that stays open (a socket, an event stream), within the
    caps on open lines per participant and address."""
    participant = await participant_of(caller)
    admission = admit(participant.participant_id, caller.address)
    if admission is None:
        raise caller.refused(CLOSE_TOO_MANY, participant.participant_id)
    return PhoneSession(line, participant, caller.language, MessageBudget(), admission)


async def open_stage(line: Line, caller: Caller) -> StageSession:
    event = await stage_event(caller)
    digest = stage_key_digest(event.stage_key)
    return StageSession(line, event.id, digest, caller.language, MessageBudget(), event.code)


# -- sessions --------------------------------------------------------------------------------


class Session:
    """One phone or screen on one line; once started, a member of its process's event hub
    (``polls.delivery``), which hands it every state of the event."""

    gone_code: protocol.CloseCode  # when the event is deleted
    participant_id: str | None = None  # a phone's; the hub reads phones' answers by it
    event_code = ""  # as the logs name the event

    def __init__(self, line: Line, event_id: int, language: str, budget: MessageBudget) -> None:
        self.line = line
        self.event_id = event_id
        self.language = language
        self.budget = budget
        self.view: EventView | None = None

    async def join_hub(self) -> None:
        """Become a member of this process's hub and take the state it holds."""
        view = await event_hub().add(self, self.event_id)
        deadlines.keep()
        await self.start(view)

    async def start(self, view: EventView | None) -> None:
        """The first state, as the line's join read it (None: the event is gone)."""
        if view is None:
            await self.close(self.gone_code)
            return
        if self.view is None:  # else a host's change arrived meanwhile, and it is newer
            await self.apply_view(view)
        if self.wants_qa(view):
            # After the state: the phone's list (or the screen's board) follows the page's.
            await qa_pump().join(self, self.event_id, self.participant_id, self.line.send_text)

    def wants_qa(self, view: EventView) -> bool:
        """A phone still admitted (not closed for its token), and every screen."""
        return True

    async def take(self, view: EventView) -> None:
        """A host's change that reached this line on its own (ZP_FANOUT=group)."""
        if view.replaces(self.view):
            await self.apply_view(view)

    async def apply_view(self, view: EventView, answer: object = ANSWER_UNKNOWN) -> None:
        self.view = view
        await self.send_view(view, answer)
        if self.view is not view:
            return  # a newer state arrived while this one was sent; it subscribes itself
        if quiz_board.shows_board(view.state) is not None:
            await self.send_board(view)  # the quiz's moment: before the results' snapshot
            if self.view is not view:
                return
        question = view.current
        if question is not None and self.wants_results(view):
            await results_pump().subscribe(self, question, self.line.send_text)
        else:
            results_pump().unsubscribe(self)

    async def send_board(self, view: EventView) -> None:
        """The quiz's leaderboard (a screen) or the phone's own place, after the state."""
        try:
            board = await quiz_board.boards().of(view.state)
        except tally.TallyUnavailable:
            logger.warning("quiz: the leaderboard could not be read")
            return
        if board is None or self.view is not view:
            return
        text = self.board_text(board)
        if text is not None:
            await self.line.send_text(text)

    def board_text(self, board: quiz_board.Board) -> str | None:
        raise NotImplementedError

    async def close(self, code: protocol.CloseCode) -> None:
        await self.line.close(code)

    def leave(self) -> None:
        """However the line ended, nothing may stay registered for it."""
        results_pump().unsubscribe(self)
        qa_pump().leave(self)
        event_hub().remove(self, self.event_id)

    async def reply(self, text: str | None, data: bytes | None) -> Reply | None:
        """The answer to one frame; None when the line was closed instead (for flooding)."""
        arrived = time.perf_counter()
        try:
            spent = self.budget.spend()
            if spent == ABUSIVE:
                self.log_refusal(REFUSAL_CODES[CLOSE_FLOOD])
                await self.close(CLOSE_FLOOD)
                return None
            if spent is not None:
                raise Rejection(spent)
            message = answers.parse_message(text, data)  # too_large, bad_json, ...
            if message["type"] == "ping":
                pong: protocol.PongMessage = {
                    "type": "pong",
                    "id": message.get("id"),
                    "now": int(time.time() * 1000),
                }
                return pong
            reply = await self.handle(message)
            if reply is not None:
                metrics.answer_acknowledged(time.perf_counter() - arrived)
            return reply
        except Rejection as rejection:
            self.log_refusal(rejection.code)
            metrics.answer_refused(rejection.code)
            with translation.override(self.language):
                return rejection.payload()

    def log_refusal(self, code: str) -> None:
        """A frame refused, on whichever transport (once per sender and code a while)."""
        sender = self.participant_id or f"stage:{self.event_id}"
        participant = self.participant_id
        log_refusal("answer", code, sender=sender, event=self.event_code, participant=participant)

    def wants_results(self, view: EventView) -> bool:
        raise NotImplementedError

    async def send_view(self, view: EventView, answer: object) -> None:
        raise NotImplementedError

    async def handle(self, message: protocol.ClientMessage) -> Reply | None:
        """A message other than a ping: its reply, else None with the line closed."""
        raise NotImplementedError


# participant id -> this process's phone sessions: an ack given through any of them (or through
# a POST of the fallback) reaches all, as the answer each sends with the next state. When the
# answer arrives at another process, the hub's read of the phones' answers serves.
phones_here: dict[str, set[PhoneSession]] = {}


class PhoneSession(Session):
    """One attendee's phone: the state with its own answer, answers counted and acknowledged."""

    gone_code = CLOSE_BAD_TOKEN

    def __init__(
        self,
        line: Line,
        participant: Participant,
        language: str,
        budget: MessageBudget,
        admission: Admission | None = None,
    ) -> None:
        super().__init__(line, participant.event_id, language, budget)
        self.participant = participant
        self.participant_id = participant.participant_id
        self.event_code = participant.event_code
        self.admission = admission
        # Acknowledged through this process (None: a resend whose answer is no longer counted).
        self.answers: dict[int, protocol.AnswerValue | None] = {}
        self.segments = answers.SegmentMemory()

    async def start(self, view: EventView | None) -> None:
        phones_here.setdefault(self.participant_id, set()).add(self)
        if view is not None and view.spec.get("profiles"):
            await self.send_profile(view.spec)
        if view is not None and view.spec.get("quiz"):
            await self.send_player()
        await super().start(view)

    async def send_player(self) -> None:
        """Before the first state of a quiz: who this phone plays as (its row made now)."""
        try:
            with translation.override(self.language):
                player = await players.joined(self.event_id, self.participant_id)
        except Exception:  # the database away: the phone plays on, nameless until it reconnects
            logger.warning("quiz: the player of a joining phone could not be read", exc_info=True)
            return
        await self.line.send_text(encode(player))

    async def send_profile(self, spec: protocol.EventSpec) -> None:
        """Before the first state: the phone's own profile answers, so it asks only what it has
        not answered (on any device with this token), and this line learns its segments."""
        profiles = [profile["id"] for profile in spec["profiles"]]
        try:
            given = await tally.answers_across(profiles, self.participant_id)
        except tally.TallyUnavailable:
            return  # the phone asks again; an answer given twice changes nothing
        self.segments.known = tags_of(given)
        message: protocol.ProfileMessage = {
            "type": "profile",
            "answers": {str(question_id): given.get(question_id) for question_id in profiles},
        }
        await self.line.send_text(encode(message))

    def leave(self) -> None:
        super().leave()
        if self.admission is not None:
            self.admission.release()
        phones = phones_here.get(self.participant_id)
        if phones is not None:
            phones.discard(self)
            if not phones:
                del phones_here[self.participant_id]

    def wants_results(self, view: EventView) -> bool:
        return bool(view.question and view.question["show_results"])

    def board_text(self, board: quiz_board.Board) -> str | None:
        return board.score_text(self.participant_id)

    def wants_qa(self, view: EventView) -> bool:
        return attendees.admitted(self.participant, view.spec)

    async def send_view(self, view: EventView, answer: object) -> None:
        """The state with this phone's own answer: what was acknowledged here (it may be newer
        than the hub's read), else what the hub read for all phones at once, else (on joining)
        from the tally."""
        if not attendees.admitted(self.participant, view.spec):
            await self.close(CLOSE_BAD_TOKEN)  # the phone joins again, with a personal code
            return
        question = view.question
        if question is None:
            answer = None
        elif question["id"] in self.answers:
            answer = self.answers[question["id"]]
        elif answer is ANSWER_UNKNOWN:
            try:
                answer = await tally.answer_of(question["id"], self.participant_id)
            except tally.TallyUnavailable:
                answer = None
            if self.view is not view:
                return  # overtaken while reading: the newer state has been sent
        await self.line.send_text(view.texts.phone(answer))

    async def handle(self, message: protocol.ClientMessage) -> Reply | None:
        # A session that never joined (one POSTed answer) checks against this process's copy.
        view = self.view or await event_hub().view_of(self.event_id)
        if view is None or not attendees.admitted(self.participant, view.spec):
            self.log_refusal(REFUSAL_CODES[CLOSE_BAD_TOKEN])
            await self.close(CLOSE_BAD_TOKEN)  # the event is gone or takes this token no more
            return None
        if message["type"] in QA_TYPES:
            return await qa.handle(message, self.participant, view.spec)
        if message["type"] == "nickname":
            return await self.choose_nickname(message, view)
        ack = await answers.count_answer(message, view.spec, self.participant, self.segments)
        self.answers[ack["question"]] = ack["answer"]
        for phone in phones_here.get(self.participant_id, ()):
            phone.answers[ack["question"]] = ack["answer"]
        return ack

    async def choose_nickname(
        self, message: protocol.ClientMessage, view: EventView
    ) -> protocol.PlayerMessage:
        message_id = message.get("id")
        if message_id is None:
            raise Rejection("bad_message", detail="id")
        if not view.spec.get("quiz"):
            raise Rejection("not_allowed", message_id)
        with translation.override(self.language):
            return await players.choose(
                self.event_id, self.participant_id, message.get("name"), message_id
            )


class StageSession(Session):
    """A projected screen: every state and every result snapshot; it never writes."""

    gone_code = CLOSE_UNKNOWN_EVENT

    def __init__(
        self,
        line: Line,
        event_id: int,
        key_digest: str,
        language: str,
        budget: MessageBudget,
        event_code: str = "",
    ) -> None:
        super().__init__(line, event_id, language, budget)
        self.key_digest = key_digest
        self.event_code = event_code

    async def apply_view(self, view: EventView, answer: object = ANSWER_UNKNOWN) -> None:
        if view.stage_key_digest != self.key_digest:
            await self.close(CLOSE_BAD_KEY)  # the key was rotated: this screen's link is revoked
            return
        await super().apply_view(view, answer)

    def wants_results(self, view: EventView) -> bool:
        return True

    def board_text(self, board: quiz_board.Board) -> str | None:
        return board.leaderboard

    async def send_view(self, view: EventView, answer: object) -> None:
        await self.line.send_text(view.texts.stage)

    async def handle(self, message: protocol.ClientMessage) -> Reply | None:
        raise Rejection("not_allowed", message.get("id"))  # screens only ping

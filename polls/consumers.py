"""WebSocket faces: phones answer, stage screens watch. Thin: validation lives in ``answers``,
counting in ``tally``, pushing in ``push``."""

from __future__ import annotations

import logging
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from autobahn.exception import Disconnected
from channels import DEFAULT_CHANNEL_LAYER
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import translation

from . import answers, attendees, push, tally
from .answers import Rejection
from .clientaddr import address_of_scope
from .connlimits import Admission, admit
from .delivery import ANSWER_UNKNOWN, EventView, event_hub, results_pump
from .models import Event
from .ratelimit import TokenBucket
from .stagekeys import stage_key_digest, stage_key_matches
from .tokens import participant_cookie_name, read_participant_token

logger = logging.getLogger(__name__)

CLOSE_UNKNOWN_EVENT = 4404
CLOSE_BAD_TOKEN = 4401
CLOSE_BAD_KEY = 4403
CLOSE_FLOOD = 4429
# Over the cap of open connections for this participant or address (polls.connlimits).
CLOSE_TOO_MANY = 4408
# An alias no layer is configured under: Channels then gives the socket no channel of its own.
NO_CHANNEL_LAYER = "zp.none"


def _query(scope) -> dict[str, str]:
    parsed = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {key: values[-1] for key, values in parsed.items()}


def _cookies(scope) -> dict[str, str]:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            cookie = SimpleCookie()
            cookie.load(value.decode("latin-1"))
            return {key: morsel.value for key, morsel in cookie.items()}
    return {}


def _language(scope, query: dict[str, str], default: str = settings.LANGUAGE_CODE) -> str:
    supported = {code for code, _name in settings.LANGUAGES}
    if query.get("lang") in supported:
        return query["lang"]
    for name, value in scope.get("headers", []):
        if name == b"accept-language":
            for part in value.decode("latin-1").split(","):
                code = part.split(";")[0].strip().lower()[:2]
                if code in supported:
                    return code
    return default


@database_sync_to_async
def _event_exists(code: str) -> bool:
    return Event.objects.filter(code=code).exists()


@database_sync_to_async
def _event_for_stage(code: str) -> Event | None:
    return Event.objects.filter(code=code).first()


class LiveConsumer(AsyncWebsocketConsumer):
    """What phones and screens share: joining the event, the state message, result pushes."""

    event_id: int | None = None
    participant_id: str | None = None
    state: dict | None = None
    view: EventView | None = None

    @property
    def channel_layer_alias(self) -> str:
        # With the process-local fan-out (polls.delivery) a socket needs no channel of its own.
        return DEFAULT_CHANNEL_LAYER if settings.ZP_FANOUT == "group" else NO_CHANNEL_LAYER

    async def dispatch(self, message):
        # Channels 4.3 runs close_old_connections in a worker thread before every handler: a
        # thread hop per answer. These handlers reach the database only through
        # database_sync_to_async, which closes stale connections itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message):
        # As dispatch: Channels would hop to a worker thread to close database connections
        # these sockets never opened (5,000 phones leaving at once are 5,000 hops).
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def refuse(self, close_code: int) -> None:
        """Accept, then close with our code: a close before accept reaches browsers as a bare
        HTTP 403 (close code 1006), and the page could not tell a stale token from a dead line."""
        await self.accept()
        await self.close(close_code)

    # A phone whose event is gone holds a stale token (the code may live on in a new event):
    # 4401 makes it join again; a stage screen gets 4404.
    gone_code = CLOSE_UNKNOWN_EVENT

    async def join_event(self, event_id: int) -> None:
        self.event_id = event_id
        await self.accept()
        if settings.ZP_FANOUT == "group":
            await self.channel_layer.group_add(push.event_group(event_id), self.channel_name)
            state, cached = await push.load_event_state_raw(event_id)
            view = EventView.of(state, cached) if state is not None else None
        else:
            view = await event_hub().add(self, event_id)
        if view is None:
            await self.close(self.gone_code)
        elif self.view is None:  # else a host's change arrived meanwhile, and it is newer
            await self.apply_view(view)

    admission: Admission | None = None

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.admission is not None:
                self.admission.release()
            # However the socket ended (a disconnect, or Daphne cancelling a slow app), it must
            # not stay registered for updates.
            results_pump().unsubscribe(self)
            if self.event_id is not None and settings.ZP_FANOUT == "local":
                event_hub().remove(self, self.event_id)

    async def disconnect(self, code):
        if self.event_id is not None and settings.ZP_FANOUT == "group":
            await self.channel_layer.group_discard(
                push.event_group(self.event_id), self.channel_name
            )

    async def event_state(self, message):
        """A host's change, when every socket is a group member (ZP_FANOUT=group)."""
        view = EventView.of(message["state"])
        if view.replaces(self.view):
            await self.apply_view(view)

    async def event_gone(self, message):
        await self.close(self.gone_code)

    async def apply_view(self, view: EventView, answer: object = ANSWER_UNKNOWN) -> None:
        self.view = view
        self.state = view.state
        await self.send_view(view, answer)
        if self.view is not view:
            return  # a newer state arrived while this one was sent; it subscribes itself
        question = view.state["spec"]["current"]
        if question is not None and self.wants_results(view.state):
            await results_pump().subscribe(self, question, self.push_text)
        else:
            results_pump().unsubscribe(self)

    async def send(self, text_data=None, bytes_data=None, close=False):
        try:
            await super().send(text_data, bytes_data, close)
        except Disconnected:
            # The phone left between its message and this reply (a mass disconnect does this):
            # its disconnect event is on its way and ends the consumer.
            logger.debug("reply to a socket that has just closed dropped")

    async def push_text(self, text: str) -> None:
        await self.send(text_data=text)

    async def send_json(self, message: dict) -> None:
        await self.send(text_data=push.encode(message))

    def wants_results(self, state: dict) -> bool:
        raise NotImplementedError

    async def send_view(self, view: EventView, answer: object) -> None:
        raise NotImplementedError


class PhoneConsumer(LiveConsumer):
    """One attendee's phone: receives the event state, sends answers, gets ack or error."""

    gone_code = CLOSE_BAD_TOKEN

    async def connect(self):
        code = self.scope["url_route"]["kwargs"]["code"]
        query = _query(self.scope)
        self.language = _language(self.scope, query)
        self.answers: dict[int, object] = {}
        self.budget = TokenBucket(rate=5, burst=20)
        self.strikes = 0
        token = query.get("token") or _cookies(self.scope).get(participant_cookie_name(code))
        participant = read_participant_token(token, code)
        if participant is None or await attendees.revoked(participant):
            close_code = CLOSE_BAD_TOKEN if await _event_exists(code) else CLOSE_UNKNOWN_EVENT
            await self.refuse(close_code)
            return
        self.admission = admit(participant.participant_id, address_of_scope(self.scope))
        if self.admission is None:
            await self.refuse(CLOSE_TOO_MANY)
            return
        self.participant = participant
        self.participant_id = participant.participant_id
        await self.join_event(participant.event_id)

    def wants_results(self, state: dict) -> bool:
        return bool(state["question"] and state["question"]["show_results"])

    async def send_view(self, view: EventView, answer: object) -> None:
        """The state with this phone's own answer: what this socket got acknowledged (it may be
        newer than the hub's read), else what the hub read for all phones at once, else (on
        connect) from the tally."""
        if not attendees.admitted(self.participant, view.state["spec"]):
            await self.close(CLOSE_BAD_TOKEN)  # the phone joins again, with a personal code
            return
        question = view.state["question"]
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
        await self.send(text_data=view.texts.phone(answer))

    async def receive(self, text_data=None, bytes_data=None):
        try:
            if not self.budget.take():
                self.strikes += 1
                if self.strikes > 50:
                    await self.close(CLOSE_FLOOD)
                    return
                raise Rejection("rate_limited")
            message = answers.parse_message(text_data, bytes_data)
            if message["type"] == "ping":
                await self.send_json({"type": "pong", "id": message.get("id")})
                return
            await self.receive_answer(message)
        except Rejection as rejection:
            with translation.override(self.language):
                await self.send_json(rejection.payload())

    async def receive_answer(self, message: dict) -> None:
        ack = await answers.count_answer(message, self.state["spec"], self.participant)
        self.answers[ack["question"]] = ack["answer"]
        await self.send_json(ack)


class StageConsumer(LiveConsumer):
    """A projected screen: watches one event with its stage key; never writes."""

    async def connect(self):
        code = self.scope["url_route"]["kwargs"]["code"]
        key = _query(self.scope).get("key", "")
        event = await _event_for_stage(code)
        if event is None:
            await self.refuse(CLOSE_UNKNOWN_EVENT)
            return
        if not stage_key_matches(event, key):
            await self.refuse(CLOSE_BAD_KEY)
            return
        self.key_digest = stage_key_digest(key)
        await self.join_event(event.id)

    async def apply_view(self, view: EventView, answer: object = ANSWER_UNKNOWN) -> None:
        if view.state["event"].get("stage_key_digest") != self.key_digest:
            await self.close(CLOSE_BAD_KEY)  # the key was rotated: this screen's link is revoked
            return
        # Named, not super(): the stage's HTTP stream (polls.fallback) borrows this method.
        await LiveConsumer.apply_view(self, view, answer)

    def wants_results(self, state: dict) -> bool:
        return True

    async def send_view(self, view: EventView, answer: object) -> None:
        await self.send(text_data=view.texts.stage)

    async def receive(self, text_data=None, bytes_data=None):
        """Screens only ping (to notice a dead line); anything else is refused."""
        try:
            message = answers.parse_message(text_data, bytes_data)
            if message["type"] != "ping":
                raise Rejection("not_allowed", message.get("id"))
            await self.send_json({"type": "pong", "id": message.get("id")})
        except Rejection as rejection:
            with translation.override(_language(self.scope, _query(self.scope))):
                await self.send_json(rejection.payload())

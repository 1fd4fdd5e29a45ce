"""The WebSocket line of phones and stage screens: a thin adapter over ``polls.session``."""

from __future__ import annotations

import logging

from autobahn.exception import Disconnected
from channels import DEFAULT_CHANNEL_LAYER
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from .. import protocol, push
from ..delivery import EventView
from ..session import Caller, Refused, Session, open_phone, open_stage

logger = logging.getLogger(__name__)

# An alias no layer is configured under: Channels then gives the socket no channel of its own.
NO_CHANNEL_LAYER = "zp.none"


class SessionSocket(AsyncWebsocketConsumer):
    """A socket as a session's line: text frames out, a close code, every frame handed on."""

    session: Session | None = None

    @property
    def channel_layer_alias(self) -> str:
        # With the process-local fan-out (polls.delivery) a socket needs no channel of its own.
        return DEFAULT_CHANNEL_LAYER if settings.ZP_FANOUT == "group" else NO_CHANNEL_LAYER

    async def open_session(self, caller: Caller) -> Session:
        raise NotImplementedError

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

    async def connect(self):
        caller = Caller.of(self.scope, self.scope["url_route"]["kwargs"]["code"])
        try:
            session = await self.open_session(caller)
        except Refused as refused:
            # Accepted, then closed with the code: a close before accept reaches browsers as a
            # bare HTTP 403 (close code 1006), and the page could not tell a stale token from a
            # dead line.
            await self.accept()
            await self.close(refused.code)
            return
        self.session = session
        await self.accept()
        if settings.ZP_FANOUT == "group":
            group = push.event_group(session.event_id)
            await self.channel_layer.group_add(group, self.channel_name)
            state, cached = await push.load_event_state_raw(session.event_id)
            await session.start(EventView.of(state, cached) if state is not None else None)
        else:
            await session.join_hub()

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            # However the socket ended (a disconnect, or Daphne cancelling a slow app).
            if self.session is not None:
                self.session.leave()

    async def disconnect(self, code):
        if self.session is not None and settings.ZP_FANOUT == "group":
            group = push.event_group(self.session.event_id)
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        if self.session is None:
            return  # a frame that overtook the refusal's close
        reply = await self.session.reply(text_data, bytes_data)
        if reply is not None:
            await self.send_text(push.encode(reply))

    async def event_state(self, message: protocol.Published):
        """A host's change, when every socket is a group member (ZP_FANOUT=group)."""
        await self.session.take(EventView.of(message["state"]))

    async def event_gone(self, message: protocol.Published):
        await self.close(self.session.gone_code)

    async def send_text(self, text: str) -> None:
        await self.send(text_data=text)

    async def send(self, text_data=None, bytes_data=None, close=False):
        try:
            await super().send(text_data, bytes_data, close)
        except Disconnected:
            # The phone left between its message and this reply (a mass disconnect does this):
            # its disconnect event is on its way and ends the consumer.
            logger.debug("reply to a socket that has just closed dropped")


class PhoneSocket(SessionSocket):
    """One attendee's phone: receives the event state, sends answers, gets ack or error."""

    async def open_session(self, caller: Caller) -> Session:
        return await open_phone(self, caller)


class StageSocket(SessionSocket):
    """A projected screen: watches one event with its stage key; never writes."""

    async def open_session(self, caller: Caller) -> Session:
        return await open_stage(self, caller)

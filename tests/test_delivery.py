"""The process-local fan-out (polls.delivery) over the real ASGI app and real Redis: a host's change
reaches every socket with each phone's own answer, a lost message heals, a deleted event closes
its sockets, and the stock per-socket groups still work on both real channels_redis layers."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import override_settings

from config.settings.base import channel_layer_settings
from polls import actions, push, tally
from polls.delivery import event_hub
from polls.models import Event
from polls.push import StateTexts, encode
from polls.redis_client import get_sync_redis
from polls.state import build_event_state, look_digest
from polls.tokens import read_participant_token
from tests.factories import make_event, make_question, option_ids, token_for
from tests.live_helpers import (
    cached_event_state,
    closed_with,
    connect,
    disconnect_all,
    receive,
    receive_type,
    send,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("disconnect_sockets"),
]


@pytest.fixture
def event():
    return make_event(code="HUB42")


async def phone(event, token=None):
    token = token or await sync_to_async(token_for)(event)
    communicator, connected, code = await connect(f"/ws/e/{event.code}/?token={token}")
    assert connected, code
    assert (await receive(communicator))["type"] == "state"
    return communicator


async def answer(communicator, question_id, value, message_id):
    await send(
        communicator, {"type": "answer", "id": message_id, "question": question_id, "value": value}
    )
    assert (await receive_type(communicator, "ack"))["id"] == message_id


def token_participant(token: str, event) -> str:
    return read_participant_token(token, event.code).participant_id


def test_a_phone_state_text_is_the_message_with_its_answer(event, question):
    state = build_event_state(event.id)
    texts = StateTexts(state)
    public = {"code": event.code, "title": event.title, "look": look_digest(event)}
    public |= {"quiz": False, "podium": False}
    for value in (None, 3, [1, 2], {"a": 40, "b": 60}, "zelfservice \u00e9\u00e9n"):
        message = {
            "type": "state",
            "event": public,
            "question": state["question"],
            "profile": [],
            "answer": value,
        }
        assert json.loads(texts.phone(value)) == message
    assert texts.phone(None) == texts.stage


@pytest.mark.parametrize(
    ("fanout", "layer"), [("local", "redis"), ("group", "redis"), ("group", "pubsub")]
)
async def test_a_host_change_reaches_every_socket_with_its_own_answer(
    event, question, fanout, layer
):
    layers = {"default": channel_layer_settings(settings.REDIS_URL, layer)}
    with override_settings(CHANNEL_LAYERS=layers, ZP_FANOUT=fanout):
        later = await database_sync_to_async(make_question)(event, prompt="Next one?")
        first, second = await phone(event), await phone(event)
        chosen = (await database_sync_to_async(option_ids)(question))[1]
        await answer(first, question.id, chosen, "m1")
        await database_sync_to_async(actions.do_host_action)(event, "next")
        for communicator in (first, second):
            state = await receive_type(communicator, "state")
            assert state["question"]["id"] == later.id and state["answer"] is None
        await database_sync_to_async(actions.do_host_action)(event, "prev")
        back = [await receive_type(c, "state") for c in (first, second)]
        assert [s["question"]["id"] for s in back] == [question.id, question.id]
        assert [s["answer"] for s in back] == [chosen, None]
        await disconnect_all()  # while the fan-out under test is still the setting


async def test_a_lost_broadcast_heals_from_the_cached_state(event, question):
    with override_settings(ZP_STATE_RESYNC_SECONDS=0.2):
        communicator = await phone(event)
        # The host's change lands in the Redis cache, but its message between processes is
        # lost: nothing is sent on the channel layer.
        await database_sync_to_async(Event.objects.filter(pk=event.pk).update)(
            title="Renamed on the way"
        )
        state = await database_sync_to_async(build_event_state)(event.id)
        cached = cached_event_state(get_sync_redis().get(push.state_cache_key(event.id)))
        state["revision"] = cached["revision"] + 1  # as the next commit's
        get_sync_redis().set(push.state_cache_key(event.id), encode(state))
        healed = await receive_type(communicator, "state", timeout=5)
        assert healed["event"]["title"] == "Renamed on the way"


async def test_an_older_state_never_replaces_a_newer_one(event, question):
    with override_settings(ZP_STATE_RESYNC_SECONDS=0.2):
        communicator = await phone(event)
        await database_sync_to_async(actions.do_host_action)(event, "close")
        newest = await receive_type(communicator, "state")
        assert newest["question"]["open"] is False
        # A slow process's message, or a stale cache, carrying the state from before the close.
        state = await database_sync_to_async(build_event_state)(event.id)
        state["question"]["open"] = True
        state["revision"] = 1
        get_sync_redis().set(push.state_cache_key(event.id), encode(state))
        await event_hub().deliver({"type": "event.state", "state": state})
        assert await communicator.receive_nothing(timeout=1)


async def test_sockets_of_a_deleted_event_are_closed_at_once(event, question):
    with override_settings(ZP_STATE_RESYNC_SECONDS=60):  # by the message, not the resync
        communicator = await phone(event)
        await database_sync_to_async(event.delete)()
        assert await closed_with(communicator, timeout=3) == 4401
        assert event.id not in event_hub().members


async def test_sockets_of_a_deleted_event_close_even_when_the_message_is_lost(
    event, question, monkeypatch
):
    monkeypatch.setattr(push, "publish", lambda event_id, message: None)
    with override_settings(ZP_STATE_RESYNC_SECONDS=0.2):
        communicator = await phone(event)
        await database_sync_to_async(event.delete)()
        assert await closed_with(communicator, timeout=5) == 4401


async def test_a_phone_gets_its_answer_given_on_another_socket_from_the_hubs_read(event, question):
    """The hub reads every phone's answer at once; a second socket of the same participant
    (another tab, a reconnect) has none of its own to fall back on."""
    later = await database_sync_to_async(make_question)(event, prompt="Next one?")
    token = await sync_to_async(token_for)(event)
    first = await phone(event, token)
    chosen = (await database_sync_to_async(option_ids)(question))[2]
    # Answered through the tally directly: neither socket has it acknowledged.
    participant = token_participant(token, event)
    outcome = await tally.record_answer(question.id, "single", participant, "m9", chosen)
    assert outcome.counted
    await database_sync_to_async(actions.do_host_action)(event, "next")
    await receive_type(first, "state")
    second = await phone(event, token)
    await database_sync_to_async(actions.do_host_action)(event, "prev")
    for communicator in (first, second):
        back = await receive_type(communicator, "state")
        assert back["question"]["id"] == question.id and back["answer"] == chosen
    assert later.id != question.id


async def test_a_host_change_during_a_phones_join_is_what_it_ends_up_showing(
    event, question, monkeypatch
):
    """The phone's join is held while it reads its own answer; the host moves on meanwhile.
    The join must not then send the older state after the newer one."""
    later = await database_sync_to_async(make_question)(event, prompt="Next one?")
    release = asyncio.Event()
    real_answer_of = tally.answer_of

    async def slow_answer_of(question_id, participant):
        await release.wait()
        return await real_answer_of(question_id, participant)

    monkeypatch.setattr(tally, "answer_of", slow_answer_of)
    token = await sync_to_async(token_for)(event)
    communicator, connected, _code = await connect(f"/ws/e/{event.code}/?token={token}")
    assert connected
    await asyncio.sleep(0.2)  # the join now waits in answer_of
    await database_sync_to_async(actions.do_host_action)(event, "next")
    newer = await receive_type(communicator, "state")
    assert newer["question"]["id"] == later.id
    release.set()
    assert await communicator.receive_nothing(timeout=0.5)


async def test_answers_and_a_change_in_the_same_moment_keep_every_socket_consistent(
    event, question
):
    later = await database_sync_to_async(make_question)(event, prompt="Next one?")
    phones = [await phone(event) for _ in range(12)]
    chosen = (await database_sync_to_async(option_ids)(question))[0]
    for number, communicator in enumerate(phones):
        await answer(communicator, question.id, chosen, f"a{number}")
    await database_sync_to_async(actions.do_host_action)(event, "next")
    await database_sync_to_async(actions.do_host_action)(event, "prev")
    for communicator in phones:
        assert (await receive_type(communicator, "state"))["question"]["id"] == later.id
        back = await receive_type(communicator, "state")
        assert back["question"]["id"] == question.id and back["answer"] == chosen
    assert len(event_hub().members[event.id]) == 12
    for communicator in phones:
        await communicator.disconnect()
    assert event.id not in event_hub().members


async def test_closing_the_hub_ends_a_loop_that_swallowed_its_cancel():
    """On Python 3.11 redis-py's get_message can swallow a cancel (asyncio.timeout meeting it at
    its own deadline); a close that only cancelled once then waited forever (a CI hang)."""
    from polls.delivery import EventHub

    hub = EventHub()

    async def stubborn_poll() -> None:
        while not hub.closed:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                asyncio.current_task().uncancel()  # what the swallowed cancel looks like

    hub.tasks = [asyncio.create_task(stubborn_poll())]
    await asyncio.sleep(0)
    await asyncio.wait_for(hub.close(), timeout=5)
    assert hub.tasks == [] and hub.closed

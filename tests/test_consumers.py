"""Phone and stage sockets over the real ASGI app, real Redis and the real channels_redis layer."""

from __future__ import annotations

import asyncio
from unittest.mock import ANY

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from polls import actions, tally
from polls.models import Question
from polls.state import look_digest
from tests.factories import make_event, make_open_question, make_question, option_ids, token_for
from tests.live_helpers import closed_with, connect, receive, receive_type, refused_with, send

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("disconnect_sockets"),
]


ids_of = database_sync_to_async(option_ids)


@database_sync_to_async
def options_payload(question):
    return [{"id": option.id, "label": option.label} for option in question.options.all()]


async def send_answer(communicator, question_id, value, message_id="x"):
    await send(
        communicator, {"type": "answer", "id": message_id, "question": question_id, "value": value}
    )


async def phone(event, token=None):
    token = token or await sync_to_async(token_for)(event)
    communicator, connected, code = await connect(f"/ws/e/{event.code}/?token={token}")
    assert connected, code
    state = await receive(communicator)
    assert state["type"] == "state"
    return communicator, state


async def test_connect_sends_the_state_payload(event, question):
    communicator, state = await phone(event)
    options = await options_payload(question)
    assert state == {
        "type": "state",
        "event": {
            "code": "TEST42",
            "title": "Test event",
            "look": look_digest(event),
            "quiz": False,
            "podium": False,
        },
        "question": {
            "id": question.id,
            "kind": "single",
            "prompt": "Which one?",
            "options": options,
            "open": True,
            "state": "open",
            "show_results": False,
            "revealed": False,
            "segment": False,
            "scale": None,
            "choices": None,
            "split": None,
            "text": None,
            "quadrant": None,
            "figures": [],
            "figures_count": 0,
            "position": 1,
            "count": 1,
            "quiz": None,
        },
        "profile": [],
        "answer": None,
    }
    await communicator.disconnect()


async def test_answer_is_acked_after_it_is_counted(event, question):
    communicator, _state = await phone(event)
    choice = (await ids_of(question))[1]
    await send(
        communicator, {"type": "answer", "id": "a1", "question": question.id, "value": choice}
    )
    ack = await receive(communicator)
    assert ack == {"type": "ack", "id": "a1", "question": question.id, "answer": choice}
    snapshot = await tally.read_snapshot(question.id)
    assert snapshot.total == 1 and snapshot.counts[str(choice)] == 1
    await communicator.disconnect()


async def test_changed_answer_replaces_the_old_one_and_reconnect_shows_it(event, question):
    token = await sync_to_async(token_for)(event)
    communicator, _state = await phone(event, token)
    first, second = (await ids_of(question))[:2]
    for message_id, value in (("a1", first), ("a2", second), ("a1", first)):
        await send(
            communicator,
            {"type": "answer", "id": message_id, "question": question.id, "value": value},
        )
        await receive_type(communicator, "ack")
    await communicator.disconnect()
    snapshot = await tally.read_snapshot(question.id)
    assert snapshot.total == 1
    assert snapshot.counts[str(first)] == 0 and snapshot.counts[str(second)] == 1
    again, state = await phone(event, token)
    assert state["answer"] == second
    await again.disconnect()


BAD_MESSAGES = [
    ("{not json", "bad_json"),
    ("[1, 2]", "bad_message"),
    ('"answer"', "bad_message"),
    ('{"type": "poll", "id": "x"}', "unknown_type"),
    ('{"id": "x"}', "unknown_type"),
    ('{"type": "answer", "id": "x" , "question": 1, "value": "' + "a" * 5000 + '"}', "too_large"),
    ('{"type": "answer", "question": QUESTION, "value": OPTION}', "bad_message"),
    (
        '{"type": "answer", "id": "has spaces", "question": QUESTION, "value": OPTION}',
        "bad_message",
    ),
    ('{"type": "answer", "id": "x", "question": "QUESTION", "value": OPTION}', "bad_message"),
    ('{"type": "answer", "id": "x", "question": QUESTION}', "bad_message"),
    ('{"type": "answer", "id": "x", "question": 999999, "value": OPTION}', "unknown_question"),
    ('{"type": "answer", "id": "x", "question": QUESTION, "value": 999999}', "bad_value"),
    ('{"type": "answer", "id": "x", "question": QUESTION, "value": "OPTION"}', "bad_value"),
    ('{"type": "answer", "id": "x", "question": QUESTION, "value": [OPTION]}', "bad_value"),
    ('{"type": "answer", "id": "x", "question": QUESTION, "value": true}', "bad_value"),
    ('{"type": "answer", "id": "x", "question": QUESTION, "value": null}', "bad_value"),
]


@pytest.mark.parametrize(("template", "code"), BAD_MESSAGES)
async def test_bad_input_gets_a_stable_code_and_changes_nothing(event, question, template, code):
    communicator, _state = await phone(event)
    option = (await ids_of(question))[0]
    text = template.replace("QUESTION", str(question.id)).replace("OPTION", str(option))
    await send(communicator, text)
    error = await receive(communicator)
    assert error["type"] == "error"
    assert error["code"] == code
    assert error["message"]
    snapshot = await tally.read_snapshot(question.id)
    assert (snapshot.total, snapshot.version) == (0, 0)
    # The connection stays usable for an honest answer.
    await send(
        communicator, {"type": "answer", "id": "ok1", "question": question.id, "value": option}
    )
    assert (await receive(communicator))["type"] == "ack"
    await communicator.disconnect()


async def test_error_messages_follow_the_phone_language(event, question):
    token = await sync_to_async(token_for)(event)
    communicator, connected, _code = await connect(f"/ws/e/{event.code}/?token={token}&lang=nl")
    assert connected
    await receive(communicator)
    await send(communicator, "{oops")
    error = await receive(communicator)
    assert error["code"] == "bad_json"
    assert error["message"] == "Het bericht is geen geldige JSON."
    await communicator.disconnect()


async def test_answer_to_a_question_of_another_event_is_refused(event, question):
    other = await database_sync_to_async(make_event)(code="OTHER7")
    foreign = await database_sync_to_async(make_open_question)(other)
    foreign_option = (await ids_of(foreign))[0]
    communicator, _state = await phone(event)
    await send(
        communicator, {"type": "answer", "id": "x", "question": foreign.id, "value": foreign_option}
    )
    assert (await receive(communicator))["code"] == "unknown_question"
    assert (await tally.read_snapshot(foreign.id)).total == 0
    await communicator.disconnect()


async def test_option_of_another_question_is_a_bad_value(event, question):
    other_question = await database_sync_to_async(make_question)(event)
    stranger = (await ids_of(other_question))[0]
    communicator, _state = await phone(event)
    await send(
        communicator, {"type": "answer", "id": "x", "question": question.id, "value": stranger}
    )
    assert (await receive_type(communicator, "error"))["code"] == "bad_value"
    await communicator.disconnect()


async def test_closed_and_not_current_questions_are_not_open(event, question):
    later = await database_sync_to_async(make_question)(event)
    communicator, _state = await phone(event)
    option = (await ids_of(question))[0]
    await database_sync_to_async(actions.do_set_state)(question, Question.State.CLOSED)
    state = await receive_type(communicator, "state")
    assert state["question"]["open"] is False
    await send(
        communicator, {"type": "answer", "id": "x", "question": question.id, "value": option}
    )
    assert (await receive(communicator))["code"] == "not_open"
    later_option = (await ids_of(later))[0]
    await send(
        communicator, {"type": "answer", "id": "y", "question": later.id, "value": later_option}
    )
    assert (await receive(communicator))["code"] == "not_open"
    assert (await tally.read_snapshot(question.id)).total == 0
    assert (await tally.read_snapshot(later.id)).total == 0
    await communicator.disconnect()


async def test_answer_racing_a_close_is_refused_by_the_tally(event, question):
    """The phone has not heard of the close yet; the tally's own open flag still refuses."""
    communicator, _state = await phone(event)
    await sync_to_async(tally.set_open)(question.id, False)
    await send_answer(communicator, question.id, (await ids_of(question))[0])
    assert (await receive(communicator))["code"] == "not_open"
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("kind", "extra", "good", "bad"),
    [
        ("multiple", {"max_choices": 2}, "FIRST2", ["ALL", [], "DUPLICATE", [0.5]]),
        ("scale", {"scale_min": 1, "scale_max": 10}, 7, [0, 11, 7.5, "7", [7]]),
    ],
)
async def test_values_per_kind(event, kind, extra, good, bad):
    question = await database_sync_to_async(make_open_question)(
        event, kind=kind, options=() if kind == "scale" else ("a", "b", "c"), **extra
    )
    ids = await ids_of(question)
    resolve = {"FIRST2": ids[:2], "ALL": ids, "DUPLICATE": ids[:1] * 2}
    communicator, _state = await phone(event)
    for index, value in enumerate(bad):
        await send(
            communicator,
            {
                "type": "answer",
                "id": f"b{index}",
                "question": question.id,
                "value": resolve.get(value, value) if isinstance(value, str) else value,
            },
        )
        error = await receive(communicator)
        assert error["code"] == "bad_value", value
    assert (await tally.read_snapshot(question.id)).total == 0
    await send(
        communicator,
        {
            "type": "answer",
            "id": "g",
            "question": question.id,
            "value": resolve.get(good, good) if isinstance(good, str) else good,
        },
    )
    assert (await receive(communicator))["type"] == "ack"
    await communicator.disconnect()


async def test_missing_forged_or_foreign_token_is_refused(event, question):
    other = await database_sync_to_async(make_event)(code="OTHER7")
    foreign = await sync_to_async(token_for)(other)
    genuine = await sync_to_async(token_for)(event)
    for token in ("", "forged", genuine[:-2] + "xx", foreign):
        assert await refused_with(f"/ws/e/{event.code}/?token={token}") == 4401


async def test_unknown_event_closes_with_4404():
    assert await refused_with("/ws/e/NOPE99/?token=x") == 4404
    assert await refused_with("/ws/e/NOPE99/stage/?key=x") == 4404


async def test_flood_gets_rate_limited_then_closed(event, question):
    communicator, _state = await phone(event)
    codes = []
    for index in range(40):
        await send(communicator, {"type": "ping", "id": f"p{index}"})
    for _ in range(40):
        codes.append((await receive(communicator)).get("code"))
    assert codes.count("rate_limited") >= 15
    assert (await tally.read_snapshot(question.id)).total == 0
    await communicator.disconnect()


async def test_stage_needs_its_key(event, question):
    for path in (f"/ws/e/{event.code}/stage/", f"/ws/e/{event.code}/stage/?key=wrong"):
        assert await refused_with(path) == 4403


async def stage(event):
    communicator, connected, code = await connect(
        f"/ws/e/{event.code}/stage/?key={event.stage_key}"
    )
    assert connected, code
    return communicator


async def test_stage_gets_state_then_coalesced_whole_snapshots(event, question):
    screen = await stage(event)
    state = await receive(screen)
    assert state["type"] == "state" and state["question"]["id"] == question.id
    first = await receive(screen)
    assert first["type"] == "results" and first["total"] == 0
    ids = await ids_of(question)
    phones = [await phone(event) for _ in range(30)]
    for index, (communicator, _state) in enumerate(phones):
        await send(
            communicator,
            {"type": "answer", "id": "a", "question": question.id, "value": ids[index % 3]},
        )
    for communicator, _state in phones:
        assert (await receive(communicator))["type"] == "ack"
    snapshots = []
    while True:
        message = await receive(screen, timeout=2)
        snapshots.append(message)
        if message["total"] == 30:
            break
    assert len(snapshots) < 30  # coalesced, never one push per answer
    last = snapshots[-1]
    assert last["counts"] == {str(ids[0]): 10, str(ids[1]): 10, str(ids[2]): 10}
    assert last["summary"]["percent"] == {str(ids[0]): 34, str(ids[1]): 33, str(ids[2]): 33}
    assert set(last) == {"type", "question", "version", "total", "counts", "summary"}
    assert await screen.receive_nothing(timeout=0.4)
    await send(screen, {"type": "answer", "id": "s1"})
    assert (await receive(screen))["code"] == "not_allowed"
    await send(screen, {"type": "ping", "id": "s2"})
    assert await receive(screen) == {"type": "pong", "id": "s2", "now": ANY}
    for communicator, _state in phones:
        await communicator.disconnect()
    await screen.disconnect()


async def test_host_changes_reach_phones_and_stage(event, question):
    later = await database_sync_to_async(make_question)(event, prompt="Next one?")
    communicator, _state = await phone(event)
    screen = await stage(event)
    await receive_type(screen, "results")
    await database_sync_to_async(actions.do_host_action)(event, "next")
    for client in (communicator, screen):
        state = await receive_type(client, "state")
        assert state["question"]["id"] == later.id
        assert state["question"]["prompt"] == "Next one?"
        assert state["question"]["open"] is False
    await communicator.disconnect()
    await screen.disconnect()


async def test_phones_get_results_only_when_the_host_shows_them(event, question):
    communicator, _state = await phone(event)
    assert await communicator.receive_nothing(timeout=0.3)
    await database_sync_to_async(actions.do_show_results)(question, True)
    state = await receive_type(communicator, "state")
    assert state["question"]["show_results"] is True
    results = await receive_type(communicator, "results")
    assert results["question"] == question.id
    await communicator.disconnect()


async def test_rotating_the_stage_key_closes_old_screens(event, question):
    screen = await stage(event)
    await receive_type(screen, "results")
    await database_sync_to_async(actions.do_rotate_stage_key)(event)
    assert await closed_with(screen) == 4403


async def test_redis_down_gives_unavailable_and_counts_nothing(event, question, monkeypatch):
    communicator, _state = await phone(event)

    async def unreachable(*args, **kwargs):
        raise tally.TallyUnavailable("connection refused")

    monkeypatch.setattr(tally, "record_answer", unreachable)
    await send_answer(communicator, question.id, (await ids_of(question))[0])
    error = await receive(communicator)
    assert error["code"] == "unavailable"
    await communicator.disconnect()


async def test_ping_gets_pong(event, question):
    communicator, _state = await phone(event)
    await send(communicator, {"type": "ping", "id": "p1"})
    assert await receive(communicator) == {"type": "pong", "id": "p1", "now": ANY}
    await asyncio.sleep(0)
    await communicator.disconnect()


async def test_a_foreign_origin_is_refused(event, question):
    token = await sync_to_async(token_for)(event)
    for origin in (b"http://evil.example", b"null"):
        _communicator, connected, _code = await connect(
            f"/ws/e/{event.code}/?token={token}", headers=[(b"origin", origin)]
        )
        assert not connected
    _communicator, connected, _code = await connect(
        f"/ws/e/{event.code}/stage/?key={event.stage_key}",
        headers=[(b"origin", b"http://evil.example")],
    )
    assert not connected


async def test_a_token_for_a_deleted_event_makes_the_phone_join_again(event, question):
    token = await sync_to_async(token_for)(event)
    communicator, _state = await phone(event, token)
    await communicator.disconnect()
    await database_sync_to_async(event.delete)()
    await database_sync_to_async(make_event)(code="TEST42")  # the same code, a new event
    assert await refused_with(f"/ws/e/TEST42/?token={token}") == 4401

"""Random and mutated messages against a live phone consumer: never a server error, never a
tally change without an ack, always an answer on an open socket."""

from __future__ import annotations

import json
from unittest.mock import ANY

import pytest
from asgiref.sync import sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polls import tally
from polls.delivery import close_event_hub
from tests.factories import make_event, make_open_question, option_ids, token_for
from tests.live_helpers import connect, disconnect_all, receive

pytestmark = pytest.mark.django_db(transaction=True)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def mutated_answers(question_id: int, options: list[int]):
    good = {"type": "answer", "id": "m1", "question": question_id, "value": options[0]}
    return st.builds(
        lambda key, value, drop: {
            **{k: v for k, v in good.items() if k != drop},
            **({key: value} if key else {}),
        },
        st.sampled_from([None, "type", "id", "question", "value", "extra"]),
        json_values,
        st.sampled_from([None, "type", "id", "question", "value"]),
    )


@pytest.fixture
def live_question():
    event = make_event(code="FUZZ42")
    question = make_open_question(event)
    return event, question, option_ids(question), token_for(event)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_fuzzed_messages_never_break_the_socket_or_the_tally(live_question, data):
    event, question, options, token = live_question
    frame = data.draw(
        st.one_of(
            st.text(max_size=200),
            json_values.map(json.dumps),
            mutated_answers(question.id, options).map(json.dumps),
            st.binary(max_size=100),
        )
    )
    communicator, connected, _code = await connect(f"/ws/e/{event.code}/?token={token}")
    assert connected
    await receive(communicator)  # state
    before = await tally.read_snapshot(question.id)
    field = "bytes" if isinstance(frame, bytes) else "text"
    await communicator.send_input({"type": "websocket.receive", field: frame})
    reply = await receive(communicator)
    assert reply["type"] in ("ack", "error", "pong"), reply
    after = await tally.read_snapshot(question.id)
    if reply["type"] != "ack":
        assert after == before
        if reply["type"] == "error":
            assert reply["code"] and reply["message"]
    # Still usable: a ping gets its pong.
    await communicator.send_to(text_data='{"type": "ping", "id": "alive"}')
    assert await receive(communicator) == {"type": "pong", "id": "alive", "now": ANY}
    await disconnect_all()
    await close_event_hub()
    await sync_to_async(tally.rebuild)(question.id, "single", True, {})

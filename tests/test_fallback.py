"""The HTTP fallback (polls.transport.http_stream): server-sent events and answer POSTs, driven
straight through the real ASGI app, with real Redis; and once through real Daphne processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from unittest.mock import ANY

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from polls import actions, session, tally
from polls.delivery import event_hub
from polls.transport import http_stream
from tests.factories import make_event, make_question, option_ids, token_for
from tests.http_helpers import ORIGIN, Exchange
from tests.live_helpers import checked, connect, profile_then_state, receive, receive_text

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("disconnect_sockets"),
]

ids_of = database_sync_to_async(option_ids)
host_action = database_sync_to_async(actions.do_host_action)


@pytest.fixture
def event():
    return make_event(code="FALL42")


@pytest.fixture
async def token(event):
    return await sync_to_async(token_for)(event)


async def stream(event, token: str | None, headers=()) -> Exchange:
    query = f"token={token}" if token is not None else ""
    exchange = Exchange("GET", f"/api/e/{event.code}/events", query, headers)
    return exchange


async def post(event, token: str | None, message, headers=(ORIGIN,), query: str = ""):
    """POST one message; (status, parsed body), the body checked as the socket's reply."""
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    if token is not None:
        query = f"token={token}&{query}"
    exchange = Exchange("POST", f"/api/e/{event.code}/answer", query, headers, body)
    status, response_headers = await exchange.start()
    reply = await exchange.reply()
    await asyncio.wait_for(exchange.task, 5)
    assert response_headers["content-type"] == "application/json"
    return status, reply


def on_a_stream(member, kind) -> bool:
    """A hub member that is a session of this kind whose line is an event stream."""
    return isinstance(member, kind) and isinstance(member.line, http_stream.EventStream)


def answer(question_id, value, message_id="a1") -> dict:
    return {"type": "answer", "id": message_id, "question": question_id, "value": value}


async def test_the_stream_carries_what_the_socket_sends(event, question, token):
    socket, connected, _code = await connect(f"/ws/e/{event.code}/?token={token}")
    assert connected
    over_socket = await receive_text(socket)
    sse = await stream(event, token)
    status, headers = await sse.start()
    assert status == 200
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    assert headers["x-accel-buffering"] == "no"
    assert headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in headers["content-security-policy"]
    assert (await sse.outbox.get())["body"] == b"retry: 3000\n\n"
    name, data = await sse.event()
    assert name == "message" and data == over_socket  # the very same text
    assert any(on_a_stream(m, session.PhoneSession) for m in event_hub().members[event.id])
    await sse.disconnect()
    await socket.disconnect()
    assert event.id not in event_hub().members  # the stream left the hub


async def test_a_host_change_arrives_on_the_stream(event, question, token):
    second = await database_sync_to_async(make_question)(event, prompt="Next one?")
    sse = await stream(event, token)
    await sse.start()
    assert (await sse.message())["question"]["id"] == question.id
    await host_action(event, "next")
    state = await sse.message_of_type("state")
    assert state["question"]["id"] == second.id and state["question"]["prompt"] == "Next one?"
    await sse.disconnect()


async def test_an_answer_post_is_acked_and_counted_once(event, question, token):
    choice, other = (await ids_of(question))[:2]
    sse = await stream(event, token)
    await sse.start()
    await sse.message()
    status, ack = await post(event, token, answer(question.id, choice))
    assert status == 200
    assert ack == {"type": "ack", "id": "a1", "question": question.id, "answer": choice}
    status, again = await post(event, token, answer(question.id, choice))  # a lost ack's resend
    assert again == ack
    snapshot = await tally.read_snapshot(question.id)
    assert snapshot.total == 1 and snapshot.counts[str(choice)] == 1
    # A changed answer replaces the first; the resend of the first id changes nothing.
    assert (await post(event, token, answer(question.id, other, "a2")))[1]["answer"] == other
    assert (await post(event, token, answer(question.id, choice)))[1]["answer"] == other
    snapshot = await tally.read_snapshot(question.id)
    assert snapshot.total == 1
    assert snapshot.counts[str(choice)] == 0 and snapshot.counts[str(other)] == 1
    # The next state on the stream carries the answer this phone has counted.
    await host_action(event, "close")
    state = await sse.message_of_type("state")
    assert state["question"]["open"] is False and state["answer"] == other
    await sse.disconnect()


async def test_the_token_may_come_from_the_participant_cookie(event, question, token):
    cookie = (b"cookie", f"zp_p_{event.code}={token}".encode())
    sse = await stream(event, None, headers=[cookie])
    assert (await sse.start())[0] == 200
    assert (await sse.message())["type"] == "state"
    choice = (await ids_of(question))[0]
    status, ack = await post(event, None, answer(question.id, choice), headers=(ORIGIN, cookie))
    assert status == 200 and ack["type"] == "ack"
    await sse.disconnect()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "bad_json"),
        (b"[1, 2]", "bad_message"),
        (b'{"type": "poll", "id": "x"}', "unknown_type"),
        (b'{"type": "answer", "question": QUESTION, "value": OPTION}', "bad_message"),
        (b'{"type": "answer", "id": "x", "question": 999999, "value": OPTION}', "unknown_question"),
        (b'{"type": "answer", "id": "x", "question": QUESTION, "value": 999999}', "bad_value"),
        (
            b'{"type": "answer", "id": "x", "question": QUESTION, "value": "' + b"a" * 5000 + b'"}',
            "too_large",
        ),
    ],
)
async def test_a_bad_message_gets_the_sockets_error_and_counts_nothing(
    event, question, token, body, code
):
    option = (await ids_of(question))[0]
    body = body.replace(b"QUESTION", str(question.id).encode())
    body = body.replace(b"OPTION", str(option).encode())
    before = await tally.read_snapshot(question.id)
    status, error = await post(event, token, body)
    assert status == 200
    assert error["type"] == "error" and error["code"] == code, error
    assert error["message"]
    if code in ("unknown_question", "bad_value"):
        assert error["id"] == "x"
    after = await tally.read_snapshot(question.id)
    assert after.version == before.version and after.total == 0


async def test_an_answer_to_a_closed_question_is_not_open(event, question, token):
    option = (await ids_of(question))[0]
    await host_action(event, "close")
    status, error = await post(event, token, answer(question.id, option, "late"))
    assert (status, error["code"], error["id"]) == (200, "not_open", "late")
    assert (await tally.read_snapshot(question.id)).total == 0


async def test_errors_come_in_the_phones_language(event, question, token):
    _status, error = await post(event, token, b"{", query="lang=nl")
    assert error["code"] == "bad_json" and error["message"] == "Het bericht is geen geldige JSON."


async def test_ping_is_answered_with_pong(event, question, token):
    assert await post(event, token, {"type": "ping", "id": "p1"}) == (
        200,
        {"type": "pong", "id": "p1", "now": ANY},
    )


async def test_a_flood_is_rate_limited_per_participant(event, question, token):
    replies = [(await post(event, token, {"type": "ping", "id": f"p{n}"}))[1] for n in range(30)]
    codes = [reply.get("code") for reply in replies]
    assert codes[:20] == [None] * 20  # the socket's burst
    assert "rate_limited" in codes[20:]
    # Another phone still has its whole budget.
    other = await sync_to_async(token_for)(event)
    assert (await post(event, other, {"type": "ping", "id": "q"}))[1]["type"] == "pong"


async def test_forged_foreign_and_missing_tokens_are_refused(event, question, token):
    other_event = await database_sync_to_async(make_event)(code="OTHER1")
    foreign = await sync_to_async(token_for)(other_event)
    for bad in ("forged." + token[7:], foreign, None):
        sse = await stream(event, bad)
        status, _headers = await sse.start()
        body = await sse.reply()
        assert status == 401 and body["error"]["code"] == "bad_token"
        status, body = await post(event, bad, {"type": "ping", "id": "p"})
        assert status == 401 and body["error"]["code"] == "bad_token"


async def test_an_unknown_event_is_404(event, token):
    sse = Exchange("GET", "/api/e/NOPE99/events", f"token={token}")
    status, _headers = await sse.start()
    assert status == 404 and (await sse.reply())["error"]["code"] == "unknown_event"


async def test_answers_need_this_sites_origin_and_a_post(event, question, token):
    for headers in ((), ((b"origin", b"https://evil.example"),)):
        exchange = Exchange("POST", f"/api/e/{event.code}/answer", f"token={token}", headers)
        assert (await exchange.start())[0] == 403
    exchange = Exchange("GET", f"/api/e/{event.code}/answer", f"token={token}")
    status, headers = await exchange.start()
    assert status == 405 and headers["allow"] == "POST"
    exchange = Exchange("POST", f"/api/e/{event.code}/events", f"token={token}", [ORIGIN])
    assert (await exchange.start())[0] == 405


async def test_results_are_pushed_while_the_host_shows_them(event, question, token):
    choice = (await ids_of(question))[0]
    sse = await stream(event, token)
    await sse.start()
    await sse.message()
    await post(event, token, answer(question.id, choice))
    await host_action(event, "show_results")
    results = await sse.message_of_type("results")
    assert results["question"] == question.id and results["total"] == 1
    await sse.disconnect()
    assert not session.phones_here


async def test_a_deleted_event_closes_the_stream_with_4401(event, question, token):
    sse = await stream(event, token)
    await sse.start()
    await sse.message()
    await database_sync_to_async(event.delete)()
    name, data = await sse.event()
    assert (name, json.loads(data)) == ("close", {"code": 4401})
    await asyncio.wait_for(sse.task, 5)  # the app ends by itself
    assert event.id not in event_hub().members


async def test_keepalive_comments_keep_the_line_busy(event, question, token, monkeypatch):
    monkeypatch.setattr(http_stream, "KEEPALIVE_SECONDS", 0.05)
    sse = await stream(event, token)
    await sse.start()
    await sse.message()
    chunk = await asyncio.wait_for(sse.outbox.get(), 3)
    assert chunk["body"] == b": keepalive\n\n" and chunk["more_body"] is True
    await sse.disconnect()


# -- real Daphne ---------------------------------------------------------------------------


async def _raw_request(port: int, head: str, body: bytes = b""):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode() + body)
    await writer.drain()
    return reader, writer


@pytest.mark.e2e
async def test_over_real_daphne_processes(tmp_path, redis_server):
    """Two Daphne processes on one port: a stream on one, answers to whichever takes them."""
    from tests.servers import http_post, make_stack

    stack = make_stack(tmp_path)
    try:
        await asyncio.to_thread(stack.start_daphnes, 2)
        question_id, options = await asyncio.to_thread(stack.current_question, "KSF2018")
        status, body = await http_post("127.0.0.1", stack.port, "/api/e/KSF2018/join")
        assert status == 200
        token = body["token"]
        host = f"127.0.0.1:{stack.port}"
        reader, writer = await _raw_request(
            stack.port,
            f"GET /api/e/KSF2018/events?token={token} HTTP/1.1\r\nHost: {host}\r\n"
            "Accept: text/event-stream\r\n\r\n",
        )
        raw = b""
        # The demo's profile message, then its state.
        while len(re.findall(rb"data: (\{.*?\})\n\n", raw)) < 2:
            raw += await asyncio.wait_for(reader.read(65536), 10)
        assert raw.startswith(b"HTTP/1.1 200")
        assert b"text/event-stream" in raw
        frames = iter(re.findall(rb"data: (\{.*?\})\n\n", raw))
        _profile, state = await profile_then_state(lambda: asyncio.sleep(0, next(frames)), reader)
        assert state["type"] == "state" and state["question"]["id"] == question_id
        acks = []
        for index in range(6):  # separate connections: both processes take some
            message = json.dumps(answer(question_id, options[index % 2], f"m{index}")).encode()
            answer_reader, answer_writer = await _raw_request(
                stack.port,
                f"POST /api/e/KSF2018/answer?token={token} HTTP/1.1\r\nHost: {host}\r\n"
                f"Origin: http://{host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(message)}\r\nConnection: close\r\n\r\n",
                message,
            )
            response = await asyncio.wait_for(answer_reader.read(), 10)
            answer_writer.close()
            assert response.startswith(b"HTTP/1.1 200"), response
            acks.append(checked(response.partition(b"\r\n\r\n")[2], reader))
        assert [(ack["type"], ack["id"]) for ack in acks] == [("ack", f"m{n}") for n in range(6)]
        snapshot = await tally.read_snapshot(question_id)  # the last answer, counted once
        assert snapshot.total == 1 and snapshot.counts[str(options[1])] == 1
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    finally:
        await asyncio.to_thread(stack.stop)


# -- the stage screen's fallback -------------------------------------------------------------


def stage_stream(event, key: str | None = None) -> Exchange:
    return Exchange("GET", f"/api/e/{event.code}/stage/events", f"key={key or event.stage_key}")


async def stage_post(event, message, key: str | None = None, headers=(ORIGIN,)):
    body = json.dumps(message).encode()
    query = f"key={key or event.stage_key}"
    exchange = Exchange("POST", f"/api/e/{event.code}/stage/answer", query, headers, body)
    status, _headers = await exchange.start()
    reply = await exchange.reply()
    await asyncio.wait_for(exchange.task, 5)
    return status, reply


async def test_the_stage_stream_carries_what_the_stage_socket_sends(event, question, token):
    socket, connected, _code = await connect(f"/ws/e/{event.code}/stage/?key={event.stage_key}")
    assert connected
    over_socket = await receive_text(socket)
    sse = stage_stream(event)
    status, headers = await sse.start()
    assert status == 200 and headers["content-type"] == "text/event-stream; charset=utf-8"
    name, data = await sse.event()
    assert name == "message" and data == over_socket  # the very same text, no answer in it
    assert any(on_a_stream(m, session.StageSession) for m in event_hub().members[event.id])
    # A screen gets every snapshot, whether or not the host shows results to the phones.
    choice = (await ids_of(question))[0]
    assert (await post(event, token, answer(question.id, choice)))[1]["type"] == "ack"
    results = await sse.message_of_type("results")
    while results["total"] == 0:  # the snapshot a screen gets on connect
        results = await sse.message_of_type("results")
    from_socket = await receive(socket)
    while from_socket["total"] == 0:
        from_socket = await receive(socket)
    assert results == from_socket and results["total"] == 1
    await sse.disconnect()
    await socket.disconnect()
    assert event.id not in event_hub().members


async def test_a_stage_stream_needs_the_stage_key_and_a_known_event(event, question):
    for exchange, status, code in (
        (stage_stream(event, key="not-the-key"), 403, "bad_key"),
        (Exchange("GET", f"/api/e/{event.code}/stage/events", ""), 403, "bad_key"),
        (Exchange("GET", "/api/e/NOPE99/stage/events", f"key={event.stage_key}"), 404, None),
    ):
        assert (await exchange.start())[0] == status
        error = (await exchange.reply())["error"]
        assert error["code"] == (code or "unknown_event") and error["message"]


async def test_a_rotated_stage_key_closes_the_stage_stream_with_4403(event, question):
    sse = stage_stream(event)
    await sse.start()
    await sse.message()
    await database_sync_to_async(actions.do_rotate_stage_key)(event)
    name, data = await sse.event()
    while name == "message":  # a results snapshot may come first
        name, data = await sse.event()
    assert (name, json.loads(data)) == ("close", {"code": 4403})
    await asyncio.wait_for(sse.task, 5)
    assert event.id not in event_hub().members


async def test_a_stage_only_pings_over_http_and_never_counts(event, question):
    assert await stage_post(event, {"type": "ping", "id": "p1"}) == (
        200,
        {"type": "pong", "id": "p1", "now": ANY},
    )
    choice = (await ids_of(question))[0]
    status, reply = await stage_post(event, answer(question.id, choice, "s1"))
    assert status == 200 and reply["type"] == "error" and reply["code"] == "not_allowed"
    assert reply["id"] == "s1"
    assert (await tally.read_snapshot(question.id)).total == 0
    assert (await stage_post(event, {"type": "ping"}, key="wrong"))[0] == 403
    assert (await stage_post(event, {"type": "ping"}, headers=()))[0] == 403  # no origin


async def test_nested_json_gets_bad_json_as_json_and_counts_nothing(event, question, token, caplog):
    status, body = await post(event, token, b"[" * 1500)
    assert status == 200 and body["code"] == "bad_json"
    assert (await tally.read_snapshot(question.id)).total == 0
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


@pytest.mark.parametrize(
    "origin", ["http://testserver:9999", "https://testserver", "http://evil.example", "null"]
)
async def test_answers_from_another_scheme_port_or_site_are_refused(event, question, token, origin):
    ids = await ids_of(question)
    status, body = await post(
        event, token, answer(question.id, ids[0]), [(b"origin", origin.encode())]
    )
    assert status == 403 and body["error"]["code"] == "bad_origin"
    assert (await tally.read_snapshot(question.id)).total == 0


async def test_a_phone_holds_a_few_streams_not_hundreds(event, question, token, settings):
    settings.ZP_MAX_CONNECTIONS_PER_PARTICIPANT = 2
    held = [await stream(event, token) for _ in range(2)]
    for exchange in held:
        assert (await exchange.start())[0] == 200
    extra = await stream(event, token)
    status, _headers = await extra.start()
    assert status == 429 and (await extra.reply())["error"]["code"] == "too_many_connections"
    for exchange in held:
        await exchange.disconnect()


async def test_a_revoked_attendee_is_refused_on_the_stream_and_the_answer(event, question):
    from polls import attendees
    from polls.models import AttendeeCode, Event
    from polls.tokens import attendee_participant_id, issue_participant_token

    @database_sync_to_async
    def attendee_token():
        Event.objects.filter(pk=event.pk).update(voice=Event.Voice.ATTENDEES)
        code = AttendeeCode.objects.create(event=event, code="ABCDEFGHJK")
        pid = attendee_participant_id(code.id)
        return code, issue_participant_token(event.id, event.code, pid, code.id)

    code, attendee = await attendee_token()
    ids = await ids_of(question)
    status, body = await post(event, attendee, answer(question.id, ids[0], "before"))
    assert status == 200 and body["type"] == "ack"
    await database_sync_to_async(attendees.revoke)(event, [code.id])
    status, body = await post(event, attendee, answer(question.id, ids[1], "after"))
    assert status == 401 and body["error"]["code"] == "bad_token"
    refused = await stream(event, attendee)
    assert (await refused.start())[0] == 401


async def test_an_open_token_answers_no_more_once_the_event_takes_only_attendees(
    event, question, token
):
    from polls.models import Event

    ids = await ids_of(question)

    @database_sync_to_async
    def switch():
        Event.objects.filter(pk=event.pk).update(voice=Event.Voice.ATTENDEES)
        actions.go_live(event.id)

    await switch()
    status, body = await post(event, token, answer(question.id, ids[0]))
    assert status == 401 and body["error"]["code"] == "bad_token"
    assert (await tally.read_snapshot(question.id)).total == 0

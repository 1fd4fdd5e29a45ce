"""The join guard, the client address, the warm-up of new tokens and the connection caps: the
open event's defences against a script in the hall (docs/reliability.md), with real Redis."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from asgiref.sync import sync_to_async
from django.core import signing
from django.test import override_settings

from polls import joinguard, tally
from polls.clientaddr import client_address
from polls.models import AttendeeCode, Event
from polls.tokens import origin_of, read_participant_token
from tests.factories import make_event, make_open_question, option_ids, token_for
from tests.live_helpers import closed_with, connect, receive, receive_type, refused_with, send

pytestmark = pytest.mark.django_db(transaction=True)


class FixedClock:
    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = FixedClock(1_800_000_010.0)  # ten seconds into a minute
    monkeypatch.setattr(joinguard.time, "time", clock.time)
    return clock


@pytest.fixture
def event():
    return make_event(code="GUARD42")


def join(client, event, body=None, address="203.0.113.7", **headers):
    data = json.dumps(body) if body is not None else ""
    return client.post(
        f"/api/e/{event.code}/join",
        data=data,
        content_type="application/json",
        REMOTE_ADDR=address,
        **headers,
    )


# -- the proof of work ------------------------------------------------------------------------


@override_settings(ZP_JOIN_FREE_PER_MINUTE=20, ZP_JOIN_WORK_BITS=8)
def test_joins_are_free_up_to_the_rate_and_then_carry_a_proof_of_work(client, event, clock):
    assert [join(client, event).status_code for _ in range(20)] == [200] * 20
    asked = join(client, event)
    assert asked.status_code == 428
    assert asked.json()["error"]["code"] == "work_required"
    work = asked.json()["work"]
    assert work["bits"] == 8
    solution = {"challenge": work["challenge"], "nonce": joinguard.solve(work)}
    joined = join(client, event, {"work": solution})
    assert joined.status_code == 200 and joined.json()["token"]
    # Spent: the same solution mints no second token.
    again = join(client, event, {"work": solution})
    assert again.status_code == 428 and again.json()["work"]["challenge"] != work["challenge"]


@override_settings(ZP_JOIN_FREE_PER_MINUTE=0, ZP_JOIN_WORK_BITS=8)  # every join needs work
def test_a_solution_must_be_right_fresh_signed_and_for_this_address(client, event, clock):
    work = join(client, event).json()["work"]
    nonce = joinguard.solve(work)
    wrong = next(str(n) for n in range(10**6) if not _solves(work, str(n)))
    forged = work["challenge"].rsplit(".", 1)[0] + ".0000000000000000"
    easier = work["challenge"].replace(".8.", ".1.", 1)
    for attempt, address in [
        ({"challenge": work["challenge"], "nonce": wrong}, "203.0.113.7"),
        ({"challenge": work["challenge"], "nonce": nonce}, "198.51.100.1"),
        ({"challenge": forged, "nonce": nonce}, "203.0.113.7"),
        ({"challenge": easier, "nonce": nonce}, "203.0.113.7"),
        ("x", "203.0.113.7"),
        ([], "203.0.113.7"),
        ({"challenge": 1, "nonce": "1"}, "203.0.113.7"),
        ({"challenge": "a.b.c.d", "nonce": "-1"}, "203.0.113.7"),
    ]:
        assert join(client, event, {"work": attempt}, address=address).status_code == 428, attempt
    clock.now += joinguard.CHALLENGE_SECONDS + 1
    stale = {"challenge": work["challenge"], "nonce": nonce}
    assert join(client, event, {"work": stale}).status_code == 428
    clock.now -= joinguard.CHALLENGE_SECONDS + 1
    assert join(client, event, {"work": stale}).status_code == 200


def _solves(work, nonce: str) -> bool:
    import hashlib

    digest = hashlib.sha256(f"{work['challenge']}:{nonce}".encode()).digest()
    return joinguard.leading_zero_bits(digest) >= work["bits"]


def test_the_work_grows_with_log2_of_the_rate_and_has_a_ceiling(settings):
    settings.ZP_JOIN_FREE_PER_MINUTE, settings.ZP_JOIN_WORK_BITS = 100, 14
    settings.ZP_JOIN_WORK_MAX_BITS = 20
    assert [joinguard.bits_for(rate) for rate in (0, 99, 100, 199, 200, 400, 1600)] == [
        0,
        0,
        14,
        14,
        15,
        16,
        18,
    ]
    assert joinguard.bits_for(10**9) == 20


def test_the_window_slides_so_a_minute_boundary_gives_no_second_budget():
    # 100 joins in the last second of one minute and 100 in the first second of the next: a
    # fixed window would see 100 in each; the sliding minute sees about 200.
    assert joinguard.sliding_rate(100, 100, now=1_800_000_001.0) > 195


@override_settings(ZP_JOIN_FREE_PER_MINUTE=50, ZP_JOIN_WORK_BITS=6, ZP_JOIN_WORK_MAX_BITS=10)
def test_a_hall_behind_one_address_is_never_refused(client, event, clock):
    """600 phones behind one NAT address within a minute: every one joins, none is told to
    wait; past the free rate each does one request more, with its proof of work."""
    requests = 0
    for _ in range(600):
        clock.now += 0.05
        response = join(client, event)
        requests += 1
        if response.status_code == 428:
            work = response.json()["work"]
            response = join(
                client,
                event,
                {"work": {"challenge": work["challenge"], "nonce": joinguard.solve(work)}},
            )
            requests += 1
        assert response.status_code == 200
    assert requests <= 2 * 600


def test_a_join_body_that_is_not_a_json_object_is_refused_clearly(client, event):
    for body in ("[", "[" * 1500, "[]", '"x"', "{" * 3000):
        response = client.post(
            f"/api/e/{event.code}/join", data=body, content_type="application/json"
        )
        assert response.status_code == 400 and response.json()["error"]["code"] == "bad_json", body


# -- the client address behind proxies -------------------------------------------------------


def test_the_client_address_is_the_one_the_trusted_proxy_added(settings):
    settings.ZP_TRUSTED_PROXY_HOPS = 0
    assert client_address("198.51.100.9", "10.0.0.1") == "10.0.0.1"  # header ignored
    settings.ZP_TRUSTED_PROXY_HOPS = 1
    assert client_address("198.51.100.9, 203.0.113.7", "10.0.0.1") == "203.0.113.7"
    assert client_address("", "10.0.0.1") == "10.0.0.1"
    settings.ZP_TRUSTED_PROXY_HOPS = 2  # a CDN, then nginx
    assert client_address("1.2.3.4, 203.0.113.7, 10.9.9.9", "10.0.0.1") == "203.0.113.7"


@override_settings(ZP_TRUSTED_PROXY_HOPS=1, ZP_JOIN_FREE_PER_MINUTE=3)
def test_a_forged_forwarded_for_makes_no_new_limit_key(client, event, clock):
    statuses = [
        join(client, event, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, 203.0.113.7").status_code
        for n in range(5)
    ]
    assert statuses == [200, 200, 200, 428, 428]


def test_participant_ids_carry_the_join_second_and_the_address_tag(client, event, clock):
    first = join(client, event, address="203.0.113.7").json()["token"]
    second = join(client, event, address="203.0.113.7").json()["token"]
    third = join(client, event, address="198.51.100.3").json()["token"]
    origins = [
        origin_of(read_participant_token(t, event.code).participant_id)
        for t in (first, second, third)
    ]
    assert origins[0].tag == origins[1].tag != origins[2].tag
    assert "203" not in origins[0].tag and abs(origins[0].joined - time.time()) < 5


# -- tokens ----------------------------------------------------------------------------------


def test_tokens_expire(event, settings, monkeypatch):
    token = token_for(event)
    assert read_participant_token(token, event.code) is not None
    later = time.time() + settings.ZP_TOKEN_MAX_AGE + 5
    monkeypatch.setattr(signing.time, "time", lambda: later)
    assert read_participant_token(token, event.code) is None


def aged_token(event, monkeypatch, seconds: float) -> str:
    """A token issued ``seconds`` ago."""
    issued = time.time() - seconds
    with monkeypatch.context() as patch:
        patch.setattr(signing.time, "time", lambda: issued)
        return token_for(event)


@pytest.mark.usefixtures("disconnect_sockets")
async def test_a_new_tokens_first_answer_waits_out_the_warm_up(event, monkeypatch, settings):
    settings.ZP_ANSWER_WARMUP_SECONDS = 3
    question = await sync_to_async(make_open_question)(event)
    option = (await sync_to_async(option_ids)(question))[0]
    fresh = await sync_to_async(token_for)(event)
    old = await sync_to_async(aged_token)(event, monkeypatch, 10)
    acked_at = {}
    for name, token in (("fresh", fresh), ("old", old)):
        socket, connected, _code = await connect(f"/ws/e/{event.code}/?token={token}")
        assert connected
        await receive_type(socket, "state")
        await send(socket, {"type": "answer", "id": name, "question": question.id, "value": option})
        assert (await receive_type(socket, "ack", timeout=8))["id"] == name
        acked_at[name] = time.time()
    # Held until the token was old enough, then counted; an older token's is not held.
    # At least the warm-up after the moment of issue, which lies within the token's second.
    assert acked_at["fresh"] >= read_participant_token(fresh, event.code).issued_at + 1 + 3
    assert acked_at["old"] - acked_at["fresh"] < 3
    assert (await tally.read_snapshot(question.id)).total == 2


# -- bad input on the socket -------------------------------------------------------------------


@pytest.mark.usefixtures("disconnect_sockets")
async def test_deeply_nested_json_is_bad_json_and_the_socket_stays_usable(event, caplog):
    question = await sync_to_async(make_open_question)(event)
    token = await sync_to_async(token_for)(event)
    socket, connected, _code = await connect(f"/ws/e/{event.code}/?token={token}")
    assert connected
    await receive_type(socket, "state")
    await socket.send_to(text_data="[" * 1500)
    assert (await receive_type(socket, "error"))["code"] == "bad_json"
    await send(socket, {"type": "ping", "id": "p1"})
    assert (await receive_type(socket, "pong"))["id"] == "p1"
    assert (await tally.read_snapshot(question.id)).total == 0
    assert not [record for record in caplog.records if record.levelname in ("ERROR", "CRITICAL")]


# -- connection caps ---------------------------------------------------------------------------


@pytest.mark.usefixtures("disconnect_sockets")
async def test_one_token_holds_a_few_sockets_not_hundreds(event, settings):
    settings.ZP_MAX_CONNECTIONS_PER_PARTICIPANT = 4
    await sync_to_async(make_open_question)(event)
    token = await sync_to_async(token_for)(event)
    path = f"/ws/e/{event.code}/?token={token}"
    held = []
    for _ in range(4):
        socket, connected, _code = await connect(path)
        assert connected
        await receive_type(socket, "state")
        held.append(socket)
    assert [await refused_with(path) for _ in range(20)] == [4408] * 20
    await held.pop().disconnect()
    await asyncio.sleep(0.05)
    socket, connected, _code = await connect(path)
    assert connected and (await receive(socket))["type"] == "state"
    # Another phone is not affected.
    other = await sync_to_async(token_for)(event)
    socket, connected, _code = await connect(f"/ws/e/{event.code}/?token={other}")
    assert connected and (await receive(socket))["type"] == "state"


@pytest.mark.usefixtures("disconnect_sockets")
async def test_one_address_holds_at_most_its_cap(event, settings):
    settings.ZP_MAX_CONNECTIONS_PER_ADDRESS = 3
    await sync_to_async(make_open_question)(event)
    for index in range(5):
        token = await sync_to_async(token_for)(event)
        path = f"/ws/e/{event.code}/?token={token}"
        if index < 3:
            socket, connected, _code = await connect(path)
            assert connected and (await receive(socket))["type"] == "state"
        else:
            assert await refused_with(path) == 4408


# -- attendee-list events ------------------------------------------------------------------------


def test_an_attendee_list_event_admits_only_holders_of_a_code(client):
    event = make_event(code="BADGE42")
    Event.objects.filter(pk=event.pk).update(voice=Event.Voice.ATTENDEES)
    code = AttendeeCode.objects.create(event=event, code="ABCDEFGHJK", label="Ada")
    refused = join(client, event)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "attendee_code"
    assert join(client, event, {"attendee": "NOPE123456"}).status_code == 403
    phone = join(client, event, {"attendee": "abcde-fghjk"}).json()["token"]
    laptop = join(client, event, {"attendee": "ABCDEFGHJK"}).json()["token"]
    ids = {read_participant_token(t, event.code).participant_id for t in (phone, laptop)}
    assert ids == {f"a-{code.id}"}  # one code, one voice, however many devices


@pytest.mark.usefixtures("disconnect_sockets")
async def test_a_revoked_code_answers_no_more_and_cannot_connect_again():
    from polls import attendees
    from polls.tokens import attendee_participant_id, issue_participant_token

    @sync_to_async
    def setup():
        event = make_event(code="BADGE43")
        Event.objects.filter(pk=event.pk).update(voice=Event.Voice.ATTENDEES)
        code = AttendeeCode.objects.create(event=event, code="KMNPQRTUVW")
        question = make_open_question(event)
        token = issue_participant_token(
            event.id, event.code, attendee_participant_id(code.id), code.id
        )
        return event, code, question, option_ids(question), token

    event, code, question, ids, token = await setup()
    path = f"/ws/e/{event.code}/?token={token}"
    socket, connected, _code = await connect(path)
    assert connected
    await receive_type(socket, "state")
    await send(socket, {"type": "answer", "id": "a1", "question": question.id, "value": ids[0]})
    assert (await receive_type(socket, "ack"))["id"] == "a1"
    await sync_to_async(attendees.revoke)(event, [code.id])
    await send(socket, {"type": "answer", "id": "a2", "question": question.id, "value": ids[1]})
    assert (await receive_type(socket, "error"))["code"] == "revoked"
    assert await refused_with(path) == 4401
    answers = tally.read_answers_sync(question.id)
    assert answers == {f"a-{code.id}": ids[0]}


@pytest.mark.usefixtures("disconnect_sockets")
async def test_tokens_from_before_the_switch_to_an_attendee_list_answer_no_more():
    from polls import actions

    @sync_to_async
    def setup():
        event = make_event(code="SWITCH42")
        question = make_open_question(event)
        return event, question, token_for(event)

    event, question, open_token = await setup()
    socket, connected, _code = await connect(f"/ws/e/{event.code}/?token={open_token}")
    assert connected
    await receive_type(socket, "state")

    @sync_to_async
    def switch():
        Event.objects.filter(pk=event.pk).update(voice=Event.Voice.ATTENDEES)
        actions.go_live(event.id)  # as the admin's save announces it

    await switch()
    # The phone joins again and is asked for its code.
    assert await closed_with(socket, timeout=5) == 4401
    assert await refused_with(f"/ws/e/{event.code}/?token={open_token}") == 4401
    assert (await tally.read_snapshot(question.id)).total == 0


@override_settings(ZP_JOIN_WORK_MAX_BITS=10)
def test_with_redis_away_a_join_carries_the_most_work(client, event, settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path / 'no-redis-here.sock'}"  # refused at once
    asked = join(client, event)
    assert asked.status_code == 428 and asked.json()["work"]["bits"] == 10
    work = asked.json()["work"]
    solution = {"challenge": work["challenge"], "nonce": joinguard.solve(work)}
    assert join(client, event, {"work": solution}).status_code == 200
    assert join(client, event, {"work": solution}).status_code == 428  # spent, even so


@override_settings(ZP_JOIN_FREE_PER_MINUTE=100, ZP_JOIN_FREE_PER_HOUR=1000, ZP_JOIN_WORK_BITS=8)
def test_a_stock_of_free_tokens_cannot_be_built_up_just_under_the_minutes_rate(
    client, event, clock
):
    statuses = []
    for _ in range(1100):  # 98 a minute, for over eleven minutes
        clock.now += 60 / 98
        statuses.append(join(client, event).status_code)
    assert set(statuses[:990]) == {200}
    assert set(statuses[1010:]) == {428}  # past the hour's thousand, every join carries work


@override_settings(ZP_JOIN_FREE_PER_MINUTE=100, ZP_JOIN_WORK_BITS=8)
async def test_a_storm_of_joins_at_once_gets_exactly_the_free_budget(clock):
    """300 joins in one turn of the loop, sent as one pipeline: exactly the first 100 are free
    and counted, every other one is priced, and the count is the free joins'."""
    required = await asyncio.gather(*(joinguard.take_free_join("203.0.113.9") for _ in range(300)))
    assert required.count(0) == 100
    assert set(required) - {0} == {8, 9} or set(required) - {0} == {8}
    current, _previous = joinguard._window_keys("203.0.113.9", clock.now, joinguard.WINDOW_SECONDS)
    assert int(await tally.get_async_redis().get(current)) == 100

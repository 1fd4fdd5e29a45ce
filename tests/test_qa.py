"""The audience Q&A over real sockets, the HTTP fallback and real Redis: asking, voting, the
refusals (each changing nothing), moderation, the pushes, and the vote log into the database."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from polls import actions, qa, qa_tally, writer
from polls.models import QaItem, QaVote
from polls.ratelimit import MessageBudget
from polls.session import PhoneSession
from polls.tokens import read_participant_token
from polls.transport.http_stream import OneReply
from tests.factories import make_event, make_user, token_for
from tests.http_helpers import ORIGIN as HTTP_ORIGIN
from tests.http_helpers import Exchange
from tests.live_helpers import connect, follow, receive, receive_type, send

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("disconnect_sockets"),
]

host_action = database_sync_to_async(actions.do_host_action)
new_token = sync_to_async(token_for)


@pytest.fixture
def event():
    return make_event(code="QNA42")


def switch(event, action: str) -> None:
    actions.do_host_action(event, action)


async def qa_on(event, mode: str = "qa_open") -> None:
    await host_action(event, mode)


async def phone(event, token=None):
    """A phone socket past its state; with the Q&A on, its ``qa`` list is returned too."""
    token = token or await new_token(event)
    communicator, connected, code = await connect(f"/ws/e/{event.code}/?token={token}")
    assert connected, code
    assert (await receive(communicator))["type"] == "state"
    return communicator, token


async def stage(event):
    communicator, connected, code = await connect(
        f"/ws/e/{event.code}/stage/?key={event.stage_key}"
    )
    assert connected, code
    follow(communicator, stage=True)
    assert (await receive(communicator))["type"] == "state"
    return communicator


async def ask(communicator, text, message_id="q1", **extra):
    await send(communicator, {"type": "ask", "id": message_id, "text": text, **extra})
    return await receive_until(communicator, ("qa_ack", "error"))


async def vote(communicator, item_id, message_id="v1", kind="vote"):
    await send(communicator, {"type": kind, "id": message_id, "item": item_id})
    return await receive_until(communicator, ("qa_ack", "error"))


async def receive_until(communicator, kinds, timeout=3.0):
    """The next frame of one of ``kinds``, past pushes of other kinds."""
    while True:
        message = await receive(communicator, timeout)
        if message["type"] in kinds:
            return message


async def last_board(communicator, settle=0.4) -> dict:
    """The stage's newest board once pushes stop coming for ``settle`` seconds."""
    board = None
    while True:
        # Not a timed-out receive: the test communicator cancels the app on a timeout.
        if await communicator.receive_nothing(settle):
            return board
        message = await receive(communicator)
        if message["type"] == "qa_board":
            board = message


def db_state():
    items = {item.id: item.state for item in QaItem.objects.all()}
    votes = sorted(QaVote.objects.filter(active=True).values_list("item_id", "participant"))
    return items, votes


# -- pure rules ---------------------------------------------------------------------------------


def test_text_is_cleaned_and_profanity_masked_as_in_word_clouds():
    assert qa.clean_item_text("  Why   is the\u200b kut queue so long? ") == (
        "Why is the k** queue so long?"
    )
    assert qa.mask_text("Catering was fine, sh1t happens") == "Catering was fine, s*** happens"


@pytest.mark.parametrize(
    ("text", "code"),
    [("", "empty"), ("?! …", "empty"), ("a" * 281, "too_long"), (5, "bad_message")],
)
def test_bad_texts_have_their_codes(text, code):
    with pytest.raises(qa.Rejection) as refused:
        qa.clean_item_text(text, "m1")
    assert refused.value.code == code


# -- phones and the stage ----------------------------------------------------------------------


async def test_the_list_on_joining_and_changes_after(event):
    await qa_on(event)
    asker, _token = await phone(event)
    listed = await receive_type(asker, "qa")
    assert listed == {
        "type": "qa",
        "version": listed["version"],
        "mode": "open",
        "names": True,
        "items": [],
        "mine": [],
        "voted": [],
        "pending": [],
    }
    voter, _other = await phone(event)
    await receive_type(voter, "qa")
    screen = await stage(event)
    assert (await receive_type(screen, "qa_board"))["top"] == []

    ack = await ask(asker, "Will the slides be shared?", name="Anna")
    item = ack["item"]
    assert ack == {
        "type": "qa_ack",
        "id": "q1",
        "voted": False,
        "item": {
            "id": item["id"],
            "text": "Will the slides be shared?",
            "name": "Anna",
            "at": item["at"],
            "votes": 0,
            "state": "visible",
            "pinned": False,
        },
    }
    change = await receive_type(voter, "qa_changes")
    assert change["items"] == [item] and change["removed"] == [] and change["open"] == 1

    ack = await vote(voter, item["id"])
    assert ack["voted"] is True and ack["item"]["votes"] == 1
    counted = await receive_type(voter, "qa_changes")
    assert counted["votes"] == {str(item["id"]): 1} and counted["items"] == []
    board = await last_board(screen)
    assert board["top"][0]["votes"] == 1 and board["open"] == 1 and board["pending"] == 0

    # A phone joining later gets the list with its own votes marked.
    await voter.disconnect()
    again, _token = await phone(event, _other)
    listed = await receive_type(again, "qa")
    assert listed["voted"] == [item["id"]] and listed["items"][0]["votes"] == 1
    await again.disconnect()


async def test_a_vote_is_retractable_and_a_resend_counts_once(event):
    await qa_on(event)
    asker, _ = await phone(event)
    item = (await ask(asker, "What about chat bots?"))["item"]
    voter, _ = await phone(event)
    assert (await vote(voter, item["id"], "v1"))["item"]["votes"] == 1
    assert (await vote(voter, item["id"], "v1"))["item"]["votes"] == 1  # a lost ack's resend
    assert (await vote(voter, item["id"], "v2"))["item"]["votes"] == 1  # voted already
    taken = await vote(voter, item["id"], "v3", kind="unvote")
    assert taken["voted"] is False and taken["item"]["votes"] == 0
    assert qa_tally.read_votes_sync(event.id) == {item["id"]: 0}
    await sync_to_async(writer.drain_all)()
    rows = await sync_to_async(list)(QaVote.objects.values_list("active", flat=True))
    assert rows == [False]


async def test_every_refusal_has_its_code_and_changes_nothing(event, monkeypatch):
    monkeypatch.setattr(qa, "items_per_minute", lambda: 2)
    monkeypatch.setattr(qa, "votes_per_second", lambda: 2)
    asker, _ = await phone(event)
    assert (await ask(asker, "Anyone?"))["code"] == "not_open"  # the Q&A is off
    await qa_on(event)
    await receive_type(asker, "qa")
    first = (await ask(asker, "First", "q1"))["item"]
    second = (await ask(asker, "Second", "q2"))["item"]
    hidden = second["id"]
    await host_action(event, "qa_hide", item=str(hidden))
    voter, _ = await phone(event)
    before = (await sync_to_async(db_state)(), qa_tally.read_votes_sync(event.id))

    refusals = [
        (ask(asker, "", "q3"), "empty"),
        (ask(asker, "x" * 281, "q4"), "too_long"),
        (ask(asker, "Third", "q5"), "flood"),  # two a minute here
        (vote(voter, 999_999, "v1"), "unknown_item"),
        (vote(voter, hidden, "v2"), "hidden_item"),
        (vote(asker, first["id"], "v3"), "own_item"),
        (vote(voter, "7", "v4"), "bad_message"),
    ]
    for refusal, code in refusals:
        reply = await refusal
        assert reply["type"] == "error" and reply["code"] == code, (code, reply)
    after = (await sync_to_async(db_state)(), qa_tally.read_votes_sync(event.id))
    assert after == before

    # Votes per second: two here; the third in the same second is a flood and counts nothing.
    codes = []
    for n, kind in enumerate(("vote", "unvote", "vote")):
        codes.append((await vote(voter, first["id"], f"f{n}", kind))["type"])
    flood = await vote(voter, first["id"], "f9", "unvote")
    assert codes[:2] == ["qa_ack", "qa_ack"] and "error" in (codes[2], flood["type"])
    await asyncio.sleep(1.05)
    assert (await vote(voter, first["id"], "later", "vote"))["type"] == "qa_ack"


async def test_the_items_a_minute_are_any_sixty_seconds_not_a_clock_minute(event, monkeypatch):
    """Three asks just before a minute turns leave none for just after it: a window that
    slides (a clock minute's counter would allow six in a second)."""
    await qa_on(event)
    clock = {"now": 1_800_000_059.9}  # 0.1 s before a minute turns
    monkeypatch.setattr(qa_tally.time, "time", lambda: clock["now"])

    async def admit(message_id: str) -> str:
        admission = await qa_tally.admit_ask(event.id, "p-1", message_id, 3, 500)
        return admission.status

    assert [await admit(f"m{n}") for n in range(3)] == ["ok", "ok", "ok"]
    clock["now"] += 0.2  # the next clock minute
    assert await admit("m3") == "flood"
    clock["now"] += 59.7  # the three are 59.9 s old
    assert await admit("m4") == "flood"
    clock["now"] += 0.2  # more than a minute: refused asks spent nothing
    assert [await admit(f"n{n}") for n in range(4)] == ["ok", "ok", "ok", "flood"]


async def test_a_full_qa_takes_no_more_items_from_anyone(event, monkeypatch):
    """The list every phone gets on connecting stays bounded: past ZP_QA_ITEMS_PER_EVENT items
    (hidden ones count: they are kept) an ask is refused with ``full`` and changes nothing."""
    monkeypatch.setattr(qa, "items_per_event", lambda: 2)
    await qa_on(event)
    asker, _ = await phone(event)
    await receive_type(asker, "qa")
    await ask(asker, "First", "q1")
    second = (await ask(asker, "Second", "q2"))["item"]
    await host_action(event, "qa_hide", item=str(second["id"]))
    other, _ = await phone(event)
    before = (await sync_to_async(db_state)(), qa_tally.read_votes_sync(event.id))
    for _ in range(2):
        reply = await ask(other, "Third", "q3")
        assert reply["type"] == "error" and reply["code"] == "full", reply
    assert (await sync_to_async(db_state)(), qa_tally.read_votes_sync(event.id)) == before
    assert await sync_to_async(QaItem.objects.filter(event=event).count)() == 2


async def test_pre_moderated_items_wait_for_a_host(event):
    await qa_on(event, "qa_moderated")
    asker, _ = await phone(event)
    await receive_type(asker, "qa")
    other, _ = await phone(event)
    await receive_type(other, "qa")
    screen = await stage(event)
    await receive_type(screen, "qa_board")
    ack = await ask(asker, "Is there a recording?")
    item = ack["item"]
    assert item["state"] == "pending"
    # Others cannot see nor vote on it; its author's own list has it, the stage counts it.
    assert (await vote(other, item["id"]))["code"] == "unknown_item"
    board = await last_board(screen)
    assert board["top"] == [] and board["pending"] == 1
    assert await other.receive_nothing(0.3)
    own = await receive_type(asker, "qa_changes")
    assert own["items"][0]["state"] == "pending"
    again, _ = await phone(event, _token_of(asker))
    assert [i["id"] for i in (await receive_type(again, "qa"))["pending"]] == [item["id"]]

    await host_action(event, "qa_approve", item=str(item["id"]))
    shown = await receive_type(other, "qa_changes")
    assert [i["id"] for i in shown["items"]] == [item["id"]]
    assert (await vote(other, item["id"]))["item"]["votes"] == 1

    await host_action(event, "qa_pin", item=str(item["id"]))
    board = await last_board(screen)
    assert board["pinned"]["id"] == item["id"] and board["top"] == []
    await host_action(event, "qa_answered", item=str(item["id"]))
    gone = await receive_until(other, ("qa_changes",))
    while item["id"] not in gone["removed"]:
        gone = await receive_until(other, ("qa_changes",))
    board = await last_board(screen)
    assert board["pinned"] is None and board["open"] == 0
    assert (await vote(other, item["id"], "v2", "unvote"))["code"] == "hidden_item"


def _token_of(communicator) -> str:
    query = communicator.scope["query_string"].decode()
    return query.split("token=", 1)[1]


async def test_host_edits_and_sets_a_participant_aside(event):
    await qa_on(event)
    asker, _token = await phone(event)
    first = (await ask(asker, "Typo in teh title", "q1"))["item"]
    second = (await ask(asker, "Another one", "q2"))["item"]
    await host_action(event, "qa_edit", item=str(first["id"]), text="Typo in the title")
    row = await database_sync_to_async(QaItem.objects.get)(pk=first["id"])
    assert row.text == "Typo in the title" and row.edited_at is not None
    await host_action(event, "qa_set_aside", item=str(second["id"]))
    states = await sync_to_async(lambda: set(QaItem.objects.values_list("state", flat=True)))()
    assert states == {"hidden"}
    # Their next item is hidden at once, though they are told it waits.
    later = await ask(asker, "Still here", "q3")
    assert later["item"]["state"] == "pending"
    assert (await database_sync_to_async(QaItem.objects.get)(pk=later["item"]["id"])).state == (
        "hidden"
    )
    board = await qa_tally.read_board(event.id)
    assert board.visible() == []


async def test_a_host_acts_only_on_their_own_event(event, client):
    mine = await sync_to_async(make_user)("qa-host")
    await sync_to_async(event.hosts.add)(mine)
    other = await sync_to_async(make_event)(code="XYZ789")
    await sync_to_async(client.force_login)(mine)
    response = await sync_to_async(client.post)(f"/e/{event.code}/host/", {"action": "qa_open"})
    assert response.status_code == 302
    assert (await qa_tally.read_metas([event.id]))[event.id].mode == "open"
    response = await sync_to_async(client.post)(f"/e/{other.code}/host/", {"action": "qa_open"})
    assert response.status_code == 403
    # Another event's item named on one's own event's form: no such item there, nothing changes.
    theirs = await sync_to_async(QaItem.objects.create)(
        event=other, participant="p-other", message_id="m1", text="Theirs", state="visible"
    )
    for action in ("qa_hide", "qa_pin", "qa_set_aside"):
        await sync_to_async(client.post)(
            f"/e/{event.code}/host/", {"action": action, "item": str(theirs.id)}
        )
    await sync_to_async(theirs.refresh_from_db)()
    assert (theirs.state, theirs.pinned) == ("visible", False)


# -- the HTTP fallback takes the same messages ---------------------------------------------------


async def post(event, token, message):
    body = json.dumps(message).encode()
    path, query = f"/api/e/{event.code}/answer", f"token={token}"
    exchange = Exchange("POST", path, query, (HTTP_ORIGIN,), body)
    status, _headers = await exchange.start()
    reply = await exchange.reply()
    await asyncio.wait_for(exchange.task, 5)
    return status, reply


async def test_the_fallback_asks_and_votes(event):
    await qa_on(event)
    asker, voter = await new_token(event), await new_token(event)
    status, ack = await post(event, asker, {"type": "ask", "id": "q1", "text": "Over HTTP?"})
    assert status == 200 and ack["type"] == "qa_ack"
    item = ack["item"]["id"]
    assert (await post(event, asker, {"type": "vote", "id": "v1", "item": item}))[1][
        "code"
    ] == "own_item"
    status, ack = await post(event, voter, {"type": "vote", "id": "v1", "item": item})
    assert ack["item"]["votes"] == 1


async def test_the_fallback_stream_carries_the_list_and_its_changes(event):
    await qa_on(event)
    token = await new_token(event)
    sse = Exchange("GET", f"/api/e/{event.code}/events", f"token={token}")
    status, _headers = await sse.start()
    assert status == 200
    assert (await sse.message())["type"] == "state"
    assert (await sse.message_of_type("qa"))["items"] == []
    other = await new_token(event)
    _status, ack = await post(event, other, {"type": "ask", "id": "q1", "text": "Streamed?"})
    change = await sse.message_of_type("qa_changes")
    assert change["items"] == [ack["item"]]
    await sse.disconnect()


# -- 300 phones at once --------------------------------------------------------------------------


async def test_300_votes_at_once_count_once_each_everywhere(event):
    await qa_on(event)
    asker, _ = await phone(event)
    item = (await ask(asker, "Load test?"))["item"]["id"]
    screen = await stage(event)
    await receive_type(screen, "qa_board")

    def participants():
        return [read_participant_token(token_for(event), event.code) for _ in range(300)]

    people = await sync_to_async(participants)()
    sessions = [PhoneSession(OneReply(), person, "en", MessageBudget()) for person in people]

    async def one(session, n):
        frame = json.dumps({"type": "vote", "id": f"v{n}", "item": item})
        first = await session.reply(frame, None)
        again = await session.reply(frame, None)  # every phone resends once: counted once
        return first, again

    replies = await asyncio.gather(*(one(s, n) for n, s in enumerate(sessions)))
    assert all(first["type"] == again["type"] == "qa_ack" for first, again in replies)
    assert qa_tally.read_votes_sync(event.id) == {item: 300}
    await sync_to_async(writer.drain_all)()
    active = await sync_to_async(QaVote.objects.filter(item_id=item, active=True).count)()
    assert active == 300
    board = await last_board(screen)
    assert board["top"][0]["id"] == item and board["top"][0]["votes"] == 300


async def test_switching_the_qa_reaches_every_phone_and_screen(event):
    listener, _ = await phone(event)  # joined while the Q&A is off: nothing of it
    screen = await stage(event)
    assert await listener.receive_nothing(0.2)
    await qa_on(event)
    listed = await receive_type(listener, "qa")
    assert listed["mode"] == "open" and listed["names"] is True
    assert (await receive_type(screen, "qa_board"))["shown"] is False

    await host_action(event, "qa_names_off")
    assert (await receive_type(listener, "qa"))["names"] is False
    ack = await ask(listener, "Anonymous, please", name="Bram")
    assert ack["item"]["name"] == ""
    await host_action(event, "qa_stage_on")
    board = await last_board(screen)
    assert board["shown"] is True and [item["text"] for item in board["top"]] == [
        "Anonymous, please"
    ]
    listed = await receive_type(listener, "qa")
    assert listed["mine"] == [ack["item"]["id"]] and listed["items"][0]["id"] == ack["item"]["id"]

    await host_action(event, "qa_off")
    off = await receive_type(listener, "qa")
    assert off["mode"] == "off" and off["items"] == []
    off_board = await last_board(screen)
    assert off_board["mode"] == "off" and off_board["shown"] is False
    assert (await vote(listener, ack["item"]["id"]))["code"] == "not_open"
    # A phone away when it went off hears it on connecting (and hides its Q&A), a stage too.
    returning, _ = await phone(event)
    assert (await receive_type(returning, "qa"))["mode"] == "off"
    assert (await receive_type(await stage(event), "qa_board"))["mode"] == "off"
    # On again, the stage keeps the poll until the host shows the Q&A there once more.
    await qa_on(event)
    assert (await last_board(screen))["shown"] is False


async def test_the_writer_keeps_the_later_vote_whatever_order_it_writes(event, redis):
    await qa_on(event)
    asker, _ = await phone(event)
    item = (await ask(asker, "Order?"))["item"]["id"]
    voter, _ = await phone(event)
    await vote(voter, item, "v1", "vote")
    await vote(voter, item, "v2", "unvote")
    log = qa_tally.qa_keys(event.id)["log"]
    entries = [(log, entry_id, fields) for entry_id, fields in redis.xrange(log)]
    assert len(entries) == 2
    await sync_to_async(writer._write_votes)(entries[1:])
    await sync_to_async(writer._write_votes)(entries[:1])  # a slow writer's older entry
    await sync_to_async(writer.drain_all)()  # and everything once more
    rows = await sync_to_async(list)(QaVote.objects.values_list("active", flat=True))
    assert rows == [False]
    assert redis.xlen(log) == 0


async def test_redis_away_is_unavailable_and_counts_nothing(event, monkeypatch):
    await qa_on(event)
    asker, _ = await phone(event)
    item = (await ask(asker, "Still counted?"))["item"]["id"]
    voter, _ = await phone(event)

    async def away(*args, **kwargs):
        raise qa_tally.TallyUnavailable("Redis is away")

    monkeypatch.setattr(qa_tally, "vote", away)
    monkeypatch.setattr(qa_tally, "admit_ask", away)
    assert (await vote(voter, item))["code"] == "unavailable"
    assert (await ask(voter, "Lost?", "q9"))["code"] == "unavailable"
    monkeypatch.undo()
    assert qa_tally.read_votes_sync(event.id) == {item: 0}
    assert await sync_to_async(QaItem.objects.count)() == 1
    assert (await vote(voter, item))["item"]["votes"] == 1  # sent again with the same id

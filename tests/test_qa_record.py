"""The Q&A in the demo (rows and Redis, as ``dev.py serve`` finds them) and in the hourly check:
Redis's vote counts against the QaVote rows, reported and repaired."""

from __future__ import annotations

import asyncio
from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from polls import actions, consistency, demo, qa, qa_tally, writer
from polls.models import Event, QaConfig, QaItem, QaVote
from tests.factories import make_event, token_for
from tests.live_helpers import connect, profile_then_state, receive_type

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def board(event_id: int) -> qa_tally.Board:
    return asyncio.run(qa_tally.read_board(event_id))


def table_votes(event_id: int) -> dict[int, int]:
    return {
        item.id: item.votes.filter(active=True).count()
        for item in QaItem.objects.filter(event_id=event_id)
    }


def qa_rows(event_id: int) -> dict:
    """Everything of the demo's Q&A that a second seed_demo must leave as it is."""
    return {
        "config": list(QaConfig.objects.filter(event_id=event_id).values_list()),
        "items": list(QaItem.objects.filter(event_id=event_id).values_list().order_by("id")),
        "votes": sorted(QaVote.objects.values_list("item_id", "participant", "active")),
    }


# --- the demo ------------------------------------------------------------------------------


def test_the_demo_has_an_open_q_and_a_with_sample_items_in_redis_too():
    assert "created" in run("seed_demo")
    event = Event.objects.get(code=demo.DEMO_CODE)
    config = QaConfig.objects.get(event=event)
    assert (config.mode, config.names_allowed, config.on_stage) == ("open", True, False)
    items = list(QaItem.objects.filter(event=event).order_by("created_at"))
    assert 5 <= len(items) <= 7
    assert sum(1 for item in items if item.name) >= 2
    assert [item.state for item in items].count("answered") == 1
    assert {item.state for item in items} == {"visible", "answered"}
    assert all(item.answered_at for item in items if item.state == "answered")
    for item in items:
        assert qa.clean_item_text(item.text) == item.text  # as an ``ask`` would keep it
    counts = table_votes(event.id)
    assert len(set(counts.values())) >= 4 and 0 not in counts.values()  # votes spread
    # Live as the rows have it: a phone joining the demo sees these items and counts.
    live = board(event.id)
    assert (live.meta.mode, live.meta.names, live.meta.stage) == ("open", True, False)
    assert {item_id: item["votes"] for item_id, item in live.items.items()} == counts
    assert {item_id: item["state"] for item_id, item in live.items.items()} == {
        item.id: item.state for item in items
    }
    # Nothing waits in a vote log, and the hourly check finds the demo as it should be.
    assert "0 differences" in run("check_tallies", "--exit-status")

    before, version = qa_rows(event.id), live.meta.version
    assert "already present" in run("seed_demo")
    assert qa_rows(event.id) == before
    assert board(event.id).meta.version == version  # Redis left alone too


def test_a_redis_emptied_since_gets_the_demos_q_and_a_back(redis):
    run("seed_demo")
    event = Event.objects.get(code=demo.DEMO_CODE)
    counts = table_votes(event.id)
    redis.flushall()  # dev.py serve after its Redis data folder was removed
    run("seed_demo")
    live = board(event.id)
    assert live.meta.mode == "open"
    assert {item_id: item["votes"] for item_id, item in live.items.items()} == counts


def test_an_earlier_demo_gets_the_q_and_a_once_and_a_hosts_switch_stays():
    run("seed_demo")
    event = Event.objects.get(code=demo.DEMO_CODE)
    QaItem.objects.filter(event=event).delete()
    QaConfig.objects.filter(event=event).delete()  # as the previous version left it
    run("seed_demo")
    assert QaItem.objects.filter(event=event).count() == len(demo.DEMO_QA)
    assert board(event.id).meta.mode == "open"
    actions.do_host_action(event, "qa_off")  # the host's choice: no sample items come back
    QaItem.objects.filter(event=event).delete()
    run("seed_demo")
    assert not QaItem.objects.filter(event=event).exists()
    assert QaConfig.objects.get(event=event).mode == "off"
    run("seed_demo", "--reset")
    event = Event.objects.get(code=demo.DEMO_CODE)
    assert QaItem.objects.filter(event=event).count() == len(demo.DEMO_QA)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("disconnect_sockets")
async def test_a_phone_joining_the_demo_gets_its_q_and_a_list():
    await sync_to_async(run)("seed_demo")
    event = await Event.objects.aget(code=demo.DEMO_CODE)
    token = await sync_to_async(token_for)(event)
    phone, connected, code = await connect(f"/ws/e/{event.code}/?token={token}")
    assert connected, code
    await profile_then_state(lambda: phone.receive_from(timeout=3), phone)
    listed = await receive_type(phone, "qa")
    assert (listed["mode"], listed["names"], listed["mine"], listed["voted"]) == (
        "open",
        True,
        [],
        [],
    )
    visible = [item async for item in QaItem.objects.filter(event=event, state="visible")]
    assert {item["id"] for item in listed["items"]} == {item.id for item in visible}
    shown = [item["votes"] for item in listed["items"]]
    assert shown == sorted(shown, reverse=True) and shown[0] > 0
    assert {item["name"] for item in listed["items"]} > {""}


# --- the hourly check ----------------------------------------------------------------------


@pytest.fixture
def event():
    event = make_event(code="QNA42")
    actions.do_host_action(event, "qa_open")
    return event


def add_item(event, text: str, participant: str) -> QaItem:
    item = QaItem.objects.create(
        event=event, participant=participant, message_id=text[:20], text=text, state="visible"
    )
    asyncio.run(
        qa_tally.add_item(
            event.id, item.id, "visible", participant, item.message_id, qa.payload(item)
        )
    )
    return item


def cast(event, item: QaItem, *voters: str, want: bool = True) -> None:
    """Votes counted in Redis as a phone's are; they reach the rows through the vote log."""

    async def each():
        for voter in voters:
            message_id = f"{voter}-{item.id}-{want}"
            outcome = await qa_tally.vote(event.id, voter, message_id, item.id, want, 100)
            assert outcome.status == "ok", outcome

    asyncio.run(each())


def test_a_redis_count_unlike_its_rows_is_reported_and_repaired(event, redis):
    first = add_item(event, "Will the slides be shared?", "p-1")
    second = add_item(event, "What about chat bots?", "p-2")
    cast(event, first, "v-1", "v-2", "v-3")
    cast(event, second, "v-1")
    cast(event, first, "v-3", want=False)
    report = run("check_tallies")  # drains the vote log first: nothing differs
    assert "Q&A of 1 events checked: votes differ on 0 items" in report
    assert report.rstrip().endswith("0 questions checked, 0 differences")
    assert table_votes(event.id) == {first.id: 2, second.id: 1}

    votes_key = qa_tally.qa_keys(event.id)["votes"]
    redis.hincrby(votes_key, first.id, 5)  # Redis drifted
    redis.hdel(votes_key, second.id)  # and lost an item's count
    report = run("check_tallies")
    assert (
        f"Q&A of event {event.id}: votes differ on 2 items "
        f"(item {first.id} Redis 7 rows 2, item {second.id} Redis none rows 1)"
    ) in report
    assert report.rstrip().endswith("0 questions checked, 2 differences")
    with pytest.raises(SystemExit) as failed:  # what the hourly timer runs: the unit fails
        run("check_tallies", "--exit-status")
    assert failed.value.code == 1
    assert "(repaired)" in run("check_tallies", "--repair")
    assert qa_tally.read_votes_sync(event.id) == {first.id: 2, second.id: 1}
    assert "0 differences" in run("check_tallies", "--exit-status")
    # The repaired Q&A still counts: a voter's own vote is known, a new one adds.
    cast(event, first, "v-4")
    writer.drain_all()
    counted = {first.id: 3, second.id: 1}
    assert qa_tally.read_votes_sync(event.id) == table_votes(event.id) == counted


def test_a_vote_counted_between_the_drain_and_the_read_is_no_difference(event, monkeypatch):
    item = add_item(event, "Late vote?", "p-1")
    drain = writer.drain_all
    calls = []

    def drain_then_a_vote_arrives():
        drained = drain()
        calls.append(drained)
        if len(calls) == 1:
            cast(event, item, "v-late")  # counted in Redis, not yet in the rows
        return drained

    monkeypatch.setattr(writer, "drain_all", drain_then_a_vote_arrives)
    checks = consistency.check_qa()
    assert [check.differences for check in checks] == [0]
    assert len(calls) == 2  # looked at again after another drain
    assert table_votes(event.id) == {item.id: 1}

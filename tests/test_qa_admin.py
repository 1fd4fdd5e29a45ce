"""The Q&A in Django admin and on the remote page: a host sees and moderates only their own
events' items, every change reaching Redis too; the Q&A rebuilt from the database."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from polls import actions, qa, qa_tally
from polls.models import QaAside, QaConfig, QaItem
from tests.factories import grant_polls_permissions, make_event, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def host():
    user = make_user("host-a")
    grant_polls_permissions(user)
    return user


@pytest.fixture
def event(host):
    event = make_event(code="QNA42", hosts=[host])
    actions.do_host_action(event, "qa_moderated")
    return event


def add_item(event, text: str, participant: str = "p-1", state: str = "pending") -> QaItem:
    """An item as an ``ask`` leaves it: the row, then Redis (polls.qa.ask)."""
    import asyncio

    item = QaItem.objects.create(
        event=event, participant=participant, message_id=text[:20], text=text, state=state
    )
    asyncio.run(
        qa_tally.add_item(event.id, item.id, state, participant, item.message_id, qa.payload(item))
    )
    return item


def board(event) -> qa_tally.Board:
    import asyncio

    return asyncio.run(qa_tally.read_board(event.id))


def test_a_host_lists_and_moderates_only_their_own_events_items(client, host, event):
    mine = add_item(event, "Mine to moderate")
    other_event = make_event(code="XYZ789")
    theirs = QaItem.objects.create(
        event=other_event, participant="p-2", message_id="m", text="Not yours"
    )
    client.force_login(host)
    listing = client.get(reverse("admin:polls_qaitem_changelist"))
    assert listing.status_code == 200
    assert b"Mine to moderate" in listing.content and b"Not yours" not in listing.content
    assert client.get(reverse("admin:polls_qaitem_change", args=[theirs.pk])).status_code == 302

    response = client.post(
        reverse("admin:polls_qaitem_changelist"),
        {"action": "approve_items", "_selected_action": [mine.pk, theirs.pk]},
    )
    assert response.status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.state, theirs.state) == ("visible", "pending")
    assert [item["id"] for item in board(event).visible()] == [mine.pk]

    client.post(
        reverse("admin:polls_qaitem_changelist"),
        {"action": "mark_answered", "_selected_action": [mine.pk]},
    )
    mine.refresh_from_db()
    assert mine.state == "answered" and mine.answered_at is not None
    assert board(event).items[mine.pk]["state"] == "answered"


def test_the_state_filter_and_an_edit_in_admin(client, host, event):
    add_item(event, "Waiting one")
    shown = add_item(event, "Shown one with a tpyo", "p-2", "visible")
    client.force_login(host)
    waiting = client.get(reverse("admin:polls_qaitem_changelist") + "?state__exact=pending")
    assert b"Waiting one" in waiting.content and b"Shown one" not in waiting.content
    response = client.post(
        reverse("admin:polls_qaitem_change", args=[shown.pk]),
        {"text": "Shown one with a typo fixed, kut"},
    )
    assert response.status_code == 302
    shown.refresh_from_db()
    assert shown.text == "Shown one with a typo fixed, k**" and shown.edited_at is not None
    assert board(event).items[shown.pk]["text"] == shown.text


def test_the_remote_page_lists_the_items_and_takes_the_actions(client, host, event):
    item = add_item(event, "From the room")
    client.force_login(host)
    page = client.get(reverse("polls:host", args=[event.code]))
    assert page.context["qa"]["pending"] == 1
    assert page.context["qa"]["items"][0]["id"] == item.pk
    url = reverse("polls:host", args=[event.code])
    client.post(url, {"action": "qa_pin", "item": str(item.pk)})
    item.refresh_from_db()
    assert item.pinned and item.state == "visible"
    assert board(event).meta.pinned == item.pk
    other = add_item(event, "Second", "p-2", "visible")
    client.post(url, {"action": "qa_pin", "item": str(other.pk)})
    assert list(QaItem.objects.filter(pinned=True).values_list("pk", flat=True)) == [other.pk]
    assert board(event).meta.pinned == other.pk
    client.post(url, {"action": "qa_set_aside", "item": str(other.pk)})
    assert QaAside.objects.filter(event=event, participant="p-2").exists()
    assert board(event).meta.pinned is None and board(event).items[other.pk]["state"] == "hidden"
    response = client.post(url, {"action": "qa_hide", "item": "999999"}, follow=True)
    assert "There is no such Q&amp;A item." in response.content.decode()


def test_settings_in_admin_switch_redis_too(client, host, event):
    client.force_login(host)
    config = QaConfig.objects.get(event=event)
    response = client.post(
        reverse("admin:polls_qaconfig_change", args=[config.pk]),
        {"mode": "open", "names_allowed": "", "on_stage": "on"},
    )
    assert response.status_code == 302
    meta = board(event).meta
    assert (meta.mode, meta.names, meta.stage) == ("open", False, True)


def test_the_qa_is_rebuilt_from_the_database(event, redis):
    first = add_item(event, "First", "p-1", "visible")
    second = add_item(event, "Second", "p-2", "visible")
    actions.do_host_action(event, "qa_pin", item=str(second.pk))
    before = board(event)
    redis.flushdb()
    qa.rebuild_from_db(event.id)
    after = board(event)
    assert after.meta.mode == "moderated" and after.meta.pinned == second.pk
    assert after.items == before.items
    assert {first.pk, second.pk} == set(after.items)
    redis.flushdb()
    call_command("rebuild_qa", stdout=StringIO())
    assert board(event).items == before.items

"""Host actions while the live service (Redis) is away: all or nothing before the save, and a
change saved just before Redis went made live by a retry once it is back. Real Redis; the
outage is a Redis address nothing listens on, or a push that fails while ``down`` is set."""

from __future__ import annotations

import json
import time

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.urls import reverse
from redis.exceptions import ConnectionError as RedisConnectionError

from polls import actions, push, tally
from polls.models import Question
from tests.factories import admin_data, make_event, make_open_question, make_question, make_user
from tests.live_helpers import cached_event_state, published_message

pytestmark = pytest.mark.django_db(transaction=True)

NOWHERE = "unix:///nonexistent/zaalpeiling-redis.sock"


@pytest.fixture(autouse=True)
def no_retry_outlives_its_test():
    yield
    deadline = time.monotonic() + 10
    while actions._retrying and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not actions._retrying


@pytest.fixture
def event():
    return make_event(code="SHWX42")


@pytest.fixture
def first(event):
    return make_open_question(event)


@pytest.fixture
def second(event, first):
    return make_question(event, prompt="And the next one?")


def is_open(redis, question) -> bool:
    return redis.hget(tally.question_keys(question.id)["meta"], "open") == b"1"


def cached_state(redis, event) -> dict | None:
    return cached_event_state(redis.get(push.state_cache_key(event.id)) or None)


def test_with_redis_away_an_action_changes_nothing_and_says_so(redis, event, first, second):
    for action in ("next", "close"):
        with override_settings(REDIS_URL=NOWHERE), pytest.raises(ValidationError) as raised:
            actions.do_host_action(event, action)
        assert raised.value.code == "unavailable", action
        assert "nothing was changed" in raised.value.messages[0]
        event.refresh_from_db()
        first.refresh_from_db()
        assert event.current_question_id == first.id and first.state == Question.State.OPEN
    assert is_open(redis, first)  # the tally's flag untouched too


def test_a_change_saved_as_redis_went_is_made_live_once_it_is_back(
    redis, event, first, second, monkeypatch
):
    monkeypatch.setattr(actions, "RETRY_EVERY_SECONDS", 0.05)
    notify = push.notify_event_changed
    down = True

    def notify_or_fail(event_id):
        if down:
            raise RedisConnectionError("Redis went away")
        return notify(event_id)

    monkeypatch.setattr(push, "notify_event_changed", notify_or_fail)
    with pytest.raises(ValidationError) as raised:
        actions.do_host_action(event, "next")
    assert raised.value.code == "not_live_yet"
    event.refresh_from_db()
    assert event.current_question_id == second.id  # saved
    assert cached_state(redis, event)["question"]["id"] == first.id  # screens still on the old
    with pytest.raises(ValidationError):
        actions.do_host_action(event, "open")  # a second change while away: one retry serves both
    assert actions._retrying == {event.id}

    down = False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = cached_state(redis, event)
        if state["question"]["id"] == second.id and state["question"]["open"]:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the retry never made the change live: {cached_state(redis, event)}")
    assert is_open(redis, second) and not is_open(redis, first)


def test_the_remote_tells_the_host_when_nothing_changed(client, event, first, second):
    host = make_user("host-a")
    event.hosts.add(host)
    client.force_login(host)
    with override_settings(REDIS_URL=NOWHERE):
        response = client.post(f"/e/{event.code}/host/", {"action": "next"}, follow=True)
    assert "nothing was changed" in response.content.decode()
    event.refresh_from_db()
    assert event.current_question_id == first.id


def test_an_admin_save_while_redis_is_away_is_kept_and_made_live_later(
    client, redis, event, first, second, monkeypatch
):
    monkeypatch.setattr(actions, "RETRY_EVERY_SECONDS", 0.05)
    client.force_login(make_user("admin", is_superuser=True))
    url = reverse("admin:polls_event_change", args=[event.id])
    with override_settings(REDIS_URL=NOWHERE):
        response = client.post(url, admin_data(event, title="Renamed"), follow=True)
        assert response.status_code == 200
        assert "Saved, but the screens could not be told yet" in response.content.decode()
        assert actions._retrying == {event.id}
    event.refresh_from_db()
    assert event.title == "Renamed"
    deadline = time.monotonic() + 10
    while (cached_state(redis, event) or {}).get("event", {}).get("title") != "Renamed":
        assert time.monotonic() < deadline, "the retry never made the admin's change live"
        time.sleep(0.05)
    assert is_open(redis, first)


# One action: one transaction, one revision, one write of the open flags, one push after commit.


def test_an_action_moves_the_revision_once_writes_the_flags_once_and_pushes_once(
    redis, event, first, second, monkeypatch
):
    published, flag_writes = [], []
    publish, set_open_many = push.publish, tally.set_open_many
    monkeypatch.setattr(push, "publish", lambda *args: published.append(args) or publish(*args))
    monkeypatch.setattr(
        tally, "set_open_many", lambda flags: flag_writes.append(flags) or set_open_many(flags)
    )
    monkeypatch.setattr(tally, "set_open", lambda *args: pytest.fail("a flag written alone"))
    event.refresh_from_db()
    before = event.revision
    actions.do_host_action(event, "next")
    event.refresh_from_db()
    assert event.revision == before + 1
    assert flag_writes == [{first.id: False, second.id: False}]
    assert len(published) == 1
    assert published_message(published[0][1])["state"]["revision"] == event.revision
    assert cached_state(redis, event)["revision"] == event.revision
    actions.do_host_action(event, "next")  # past the last question: nothing to do, nothing sent
    event.refresh_from_db()
    assert event.revision == before + 1 and len(published) == 1 and len(flag_writes) == 1


def test_the_push_waits_for_the_commit(redis, event, first, second):
    from django.db import transaction

    with transaction.atomic():
        actions.do_host_action(event, "next")
        assert cached_state(redis, event)["question"]["id"] == first.id  # not committed yet
    assert cached_state(redis, event)["question"]["id"] == second.id


def test_a_state_of_an_older_commit_never_replaces_the_cached_newer_one(redis, event, first):
    event.refresh_from_db()
    newer = dict(cached_state(redis, event), revision=event.revision + 5)
    redis.set(push.state_cache_key(event.id), push.encode(newer))
    published = []
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(push.LIVE_CHANNEL)
    push.notify_event_changed(event.id)  # a slow process pushing what it read before
    assert cached_state(redis, event) == newer
    while (message := pubsub.get_message(timeout=0.2)) is not None:
        published.append(message)
    assert published == []  # the newer state's own push told everyone
    newer["revision"] = event.revision  # the same commit read again is stored (harmless)
    redis.set(push.state_cache_key(event.id), push.encode(newer))
    state = push.notify_event_changed(event.id)
    assert cached_state(redis, event) == state


async def test_a_state_read_from_the_database_is_cached_unless_a_newer_one_came_first(
    redis, event, first
):
    from channels.db import database_sync_to_async

    await database_sync_to_async(event.refresh_from_db)()
    redis.delete(push.state_cache_key(event.id))
    state, _text = await push.load_event_state_raw(event.id)
    assert state["revision"] == event.revision and redis.get(push.state_cache_key(event.id))
    newer = dict(state, revision=event.revision + 1, question=None)
    older_in_flight = dict(state)  # read before the newer one was cached
    redis.set(push.state_cache_key(event.id), push.encode(newer))
    stored, cached = redis.register_script(push.KEEP_NEWEST)(
        keys=[push.state_cache_key(event.id)],
        args=[older_in_flight["revision"], push.encode(older_in_flight), 60],
    )
    assert (stored, json.loads(cached)) == (0, newer)


def test_the_retry_restores_the_flags_under_the_events_lock(event, first, second, monkeypatch):
    """The retry's read of the rows and its write of the flags hold the event's row lock (on
    SQLite the database's write lock), the lock every action takes first: an action in another
    process cannot land between the two with flags of its own that these would overwrite."""
    from django.db import connection

    held = []
    set_open_many = tally.set_open_many

    def flags_under_lock(flags):
        held.append(connection.in_atomic_block)
        set_open_many(flags)

    monkeypatch.setattr(tally, "set_open_many", flags_under_lock)
    actions.restore_live_state(event.id)
    assert held == [True]

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
    text = redis.get(push.state_cache_key(event.id))
    return json.loads(text) if text else None


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

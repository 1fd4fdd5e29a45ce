"""Django admin as the cockpit: scoping by host, live actions, and invalid configuration."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from polls.models import Event, Question
from tests.factories import make_event, make_question, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def host():
    user = make_user("host-a")
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="polls"))
    return user


@pytest.fixture
def event(host):
    return make_event(code="TEST42", hosts=[host])


def question_form(event, **overrides):
    data = {
        "event": event.id,
        "order": 1,
        "kind": "single",
        "prompt": "Which?",
        "show_results": "",
        "scale_min": 1,
        "scale_max": 10,
        "scale_min_label": "",
        "scale_max_label": "",
        "min_choices": 1,
        "max_choices": "",
        "options-TOTAL_FORMS": 2,
        "options-INITIAL_FORMS": 0,
        "options-MIN_NUM_FORMS": 0,
        "options-MAX_NUM_FORMS": 1000,
        "text_max_length": 40,
        "figure_links-TOTAL_FORMS": 0,
        "figure_links-INITIAL_FORMS": 0,
        "figure_links-MIN_NUM_FORMS": 0,
        "figure_links-MAX_NUM_FORMS": 1000,
        "options-0-order": 1,
        "options-0-label": "Yes",
        "options-1-order": 2,
        "options-1-label": "No",
    }
    data.update(overrides)
    return data


def test_host_sees_only_their_events(client, host, event):
    make_event(code="EVENTB")
    client.force_login(host)
    page = client.get(reverse("admin:polls_event_changelist")).content.decode()
    assert "TEST42" in page and "EVENTB" not in page


def test_question_with_valid_options_is_saved(client, host, event):
    client.force_login(host)
    response = client.post(reverse("admin:polls_question_add"), question_form(event))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Question.objects.get(prompt="Which?").options.count() == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"kind": "scale", "scale_min": 10, "scale_max": 1, "options-TOTAL_FORMS": 0},
            "greater than the minimum",
        ),
        ({"kind": "scale"}, "no options"),
        ({"options-TOTAL_FORMS": 1}, "at least two options"),
        ({"kind": "multiple", "min_choices": 3, "max_choices": 2}, "at least the fewest"),
        ({"kind": "multiple", "max_choices": 5}, "more than the number of options"),
    ],
)
def test_invalid_configuration_is_rejected_with_a_message(client, host, event, overrides, message):
    client.force_login(host)
    response = client.post(reverse("admin:polls_question_add"), question_form(event, **overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Question.objects.filter(prompt="Which?").exists()


def test_bad_join_code_is_rejected(client, host, event):
    client.force_login(host)
    response = client.post(
        reverse("admin:polls_event_change", args=[event.id]),
        {
            "title": "X",
            "code": "OIL0",
            "language": "en",
            "hosts": [host.id],
            "questions-TOTAL_FORMS": 0,
            "questions-INITIAL_FORMS": 0,
            "questions-MIN_NUM_FORMS": 0,
            "questions-MAX_NUM_FORMS": 1000,
        },
    )
    assert response.status_code == 200
    assert "without the letters I, L and O" in response.content.decode()
    assert Event.objects.get(pk=event.pk).code == "TEST42"


def test_admin_actions_open_and_show_results(client, host, event):
    question = make_question(event)
    client.force_login(host)
    changelist = reverse("admin:polls_question_changelist")
    client.post(changelist, {"action": "open_questions", "_selected_action": [question.id]})
    question.refresh_from_db()
    event.refresh_from_db()
    assert question.state == Question.State.OPEN
    assert event.current_question == question
    client.post(changelist, {"action": "show_on_phones", "_selected_action": [question.id]})
    question.refresh_from_db()
    assert question.show_results
    client.post(changelist, {"action": "close_questions", "_selected_action": [question.id]})
    question.refresh_from_db()
    assert question.state == Question.State.CLOSED


def test_a_new_event_gets_its_creator_as_host(client, host):
    host.user_permissions.add(*Permission.objects.filter(codename="add_event"))
    client.force_login(host)
    response = client.post(
        reverse("admin:polls_event_add"),
        {
            "title": "New",
            "code": "NEWEV7",
            "language": "en",
            "questions-TOTAL_FORMS": 0,
            "questions-INITIAL_FORMS": 0,
            "questions-MIN_NUM_FORMS": 0,
            "questions-MAX_NUM_FORMS": 1000,
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Event.objects.get(code="NEWEV7").hosts.filter(pk=host.pk).exists()

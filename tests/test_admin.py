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


def figure_form(**overrides):
    data = {
        "title": "Benchmark",
        "publisher": "KIRC",
        "year": 2018,
        "url": "",
        "sample": "",
        "note": "",
        "figures-TOTAL_FORMS": 1,
        "figures-INITIAL_FORMS": 0,
        "figures-MIN_NUM_FORMS": 0,
        "figures-MAX_NUM_FORMS": 1000,
        "figures-0-label": "Self-service",
        "figures-0-metric": "split",
        "figures-0-year": 2018,
        "figures-0-value": "39",
        "figures-0-unit": "%",
        "figures-0-shares": "[]",
        "figures-0-shares_sum_to_100": "on",
        "figures-0-scale_min": "",
        "figures-0-scale_max": "",
    }
    data.update({f"figures-0-{key}": value for key, value in overrides.items()})
    return data


@pytest.fixture
def editor():
    user = make_user("editor")
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["polls", "benchmarks"])
    )
    return user


def test_a_valid_study_with_a_figure_is_saved(client, editor):
    from benchmarks.models import Figure

    client.force_login(editor)
    response = client.post(reverse("admin:benchmarks_study_add"), figure_form())
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Figure.objects.get().value == 39


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"metric": "shares", "value": "", "shares": "[60, 14, 7, 3, 12]"}, "sum to 96, not 100"),
        ({"metric": "shares", "value": "", "shares": "[63]"}, "at least two shares"),
        ({"metric": "shares", "value": "", "shares": "[120, -20]"}, "between 0 and 100"),
        ({"value": "139"}, "between 0 and 100"),
        ({"metric": "nps", "value": "-130"}, "between -100 and +100"),
        ({"metric": "mean", "value": "7.5"}, "needs its scale"),
        (
            {"metric": "mean", "value": "11", "scale_min": "1", "scale_max": "10"},
            "outside the scale",
        ),
        ({"value": ""}, "needs a value"),
    ],
)
def test_impossible_figures_are_rejected_with_a_message(client, editor, overrides, message):
    from benchmarks.models import Figure

    client.force_login(editor)
    response = client.post(reverse("admin:benchmarks_study_add"), figure_form(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Figure.objects.exists()


def test_shares_of_several_answers_need_not_sum_to_100(client, editor):
    client.force_login(editor)
    data = figure_form(metric="shares", value="", shares="[32, 31, 18, 9]")
    del data["figures-0-shares_sum_to_100"]
    assert client.post(reverse("admin:benchmarks_study_add"), data).status_code == 302


@pytest.mark.parametrize(
    ("kind", "metric", "fields", "message"),
    [
        ("single", "nps", {"value": 13}, "cannot be compared"),
        ("single", "shares", {"shares": [50, 30, 20]}, "3 shares but the question has 2"),
        ("scale", "mean", {"value": 3, "scale_min": 1, "scale_max": 5}, "Scales differ"),
        ("text", "percentage", {"value": 18}, "cannot be compared"),
    ],
)
def test_a_figure_that_cannot_compare_with_the_question_is_refused(
    client, editor, kind, metric, fields, message
):
    from benchmarks.models import Figure, Study

    event = make_event(code="TEST42", hosts=[editor])
    options = ("Yes", "No") if kind == "single" else ()
    question = make_question(event, kind=kind, options=options)
    study = Study.objects.create(title="B", publisher="P", year=2018)
    figure = Figure.objects.create(study=study, label="F", metric=metric, year=2018, **fields)
    client.force_login(editor)
    data = question_form(event, kind=kind, prompt="Which?")
    if kind != "single":
        data["options-TOTAL_FORMS"] = 0
    else:
        ids = list(question.options.values_list("id", flat=True))
        data.update(
            {
                "options-INITIAL_FORMS": 2,
                "options-0-id": ids[0],
                "options-1-id": ids[1],
                "options-0-question": question.id,
                "options-1-question": question.id,
            }
        )
    data.update(
        {
            "figure_links-TOTAL_FORMS": 1,
            "figure_links-0-figure": figure.id,
            "figure_links-0-order": 0,
        }
    )
    response = client.post(reverse("admin:polls_question_change", args=[question.id]), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not question.figure_links.exists()

"""Django admin as the cockpit: scoping by host, live actions, and invalid configuration."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from polls.models import Event, Question
from tests.factories import (
    admin_data,
    grant_polls_permissions,
    make_event,
    make_question,
    make_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def host():
    user = make_user("host-a")
    grant_polls_permissions(user)
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


# Hosts see and change only their own: research ownership, list filters, the hosts widget.
# The attacker is a second host with the Hosts group's permissions (every benchmarks one).


def make_host(username: str, **fields):
    from polls.demo import ensure_hosts_group

    user = make_user(username, **fields)
    user.groups.add(ensure_hosts_group())
    return user


@pytest.fixture
def victim():
    return make_host("host-ksf")


@pytest.fixture
def attacker():
    return make_host("host-other")


@pytest.fixture
def ksf(victim):
    return make_event(code="KSF2018", title="KSF Jaarcongres 2018", hosts=[victim])


@pytest.fixture
def attackers_event(attacker):
    return make_event(code="EVENTB", title="Other congress", hosts=[attacker])


def reveal(event, figure, prompt="Self-service or live contact?"):
    from polls.models import QuestionFigure

    question = make_question(event, kind="split", prompt=prompt, options=())
    QuestionFigure.objects.create(question=question, figure=figure)
    return question


def self_service_figure(owner=None):
    from benchmarks.models import Figure, Study

    study = Study.objects.create(title="KIRC benchmark", publisher="KIRC", year=2018, owner=owner)
    return Figure.objects.create(
        study=study, label="Self-service", metric="split", year=2018, value=39, unit="%"
    )


def figure_fields(figure, **overrides):
    data = {
        "label": figure.label,
        "metric": figure.metric,
        "year": figure.year,
        "value": str(figure.value),
        "unit": figure.unit,
        "shares": "[]",
        "shares_sum_to_100": "on",
        "scale_min": "",
        "scale_max": "",
    }
    data.update(overrides)
    return data


def study_form(study, **figure_overrides):
    """The study's change form as posted, its first figure changed by the inline."""
    data = {
        "title": study.title,
        "publisher": study.publisher,
        "year": study.year,
        "url": "",
        "sample": "",
        "note": "",
        "figures-TOTAL_FORMS": 1,
        "figures-INITIAL_FORMS": 1,
        "figures-MIN_NUM_FORMS": 0,
        "figures-MAX_NUM_FORMS": 1000,
    }
    figure = study.figures.get()
    fields = figure_fields(figure, id=figure.id, study=study.id, **figure_overrides)
    data.update({f"figures-0-{key}": value for key, value in fields.items()})
    return data


def attack_research(client, figure) -> dict[str, int]:
    """Every admin path that would rewrite or remove the figure; the status each one got."""
    study = figure.study
    figure_change = reverse("admin:benchmarks_figure_change", args=[figure.id])
    study_change = reverse("admin:benchmarks_study_change", args=[study.id])
    statuses = {
        "figure change": client.post(
            figure_change, figure_fields(figure, value="99", study=study.id)
        ).status_code,
        "study inline": client.post(study_change, study_form(study, value="99")).status_code,
        "study inline delete": client.post(
            study_change, study_form(study, DELETE="on")
        ).status_code,
        "figure delete": client.post(
            reverse("admin:benchmarks_figure_delete", args=[figure.id]), {"post": "yes"}
        ).status_code,
        "study delete": client.post(
            reverse("admin:benchmarks_study_delete", args=[study.id]), {"post": "yes"}
        ).status_code,
    }
    for model, pk in (("figure", figure.id), ("study", study.id)):
        statuses[f"{model} bulk delete"] = client.post(
            reverse(f"admin:benchmarks_{model}_changelist"),
            {"action": "delete_selected", "_selected_action": [pk], "post": "yes"},
        ).status_code
    return statuses


def assert_untouched(figure):
    from benchmarks.models import Figure

    kept = Figure.objects.get(pk=figure.pk)  # raises if deleted
    assert kept.value == 39
    assert kept.study_id == figure.study_id


def test_another_host_cannot_rewrite_the_library_figure_ksf_reveals(
    client, ksf, attacker, attackers_event
):
    figure = self_service_figure(owner=None)
    reveal(ksf, figure)
    client.force_login(attacker)
    statuses = attack_research(client, figure)
    assert statuses == dict.fromkeys(statuses, 403)
    assert_untouched(figure)
    # Reading the library and linking its figures to one's own questions keep working.
    page = client.get(reverse("admin:benchmarks_figure_change", args=[figure.id]))
    assert page.status_code == 200 and "Self-service" in page.content.decode()
    found = client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "polls",
            "model_name": "questionfigure",
            "field_name": "figure",
            "term": "Self",
        },
    )
    assert [row["id"] for row in found.json()["results"]] == [str(figure.id)]
    own = reveal(attackers_event, figure)
    assert own.figure_links.get().figure == figure


def test_owning_a_study_is_not_enough_once_another_hosts_event_reveals_it(
    client, ksf, attacker, attackers_event
):
    figure = self_service_figure(owner=attacker)
    reveal(attackers_event, figure)  # the attacker's own link does not lock it
    client.force_login(attacker)
    change = reverse("admin:benchmarks_figure_change", args=[figure.id])
    response = client.post(change, figure_fields(figure, value="40", study=figure.study_id))
    assert response.status_code == 302
    figure.refresh_from_db()
    figure.value = 39
    figure.save()

    reveal(ksf, figure)
    statuses = attack_research(client, figure)
    assert statuses == dict.fromkeys(statuses, 403)
    assert_untouched(figure)
    listing = client.get(reverse("admin:benchmarks_study_changelist")).content.decode()
    assert "read-only while another host&#x27;s event shows its figures" in listing


def test_a_hosts_own_study_is_read_only_to_other_hosts(client, victim, attacker):
    figure = self_service_figure(owner=victim)
    client.force_login(attacker)
    statuses = attack_research(client, figure)
    assert statuses == dict.fromkeys(statuses, 403)
    assert_untouched(figure)
    history = reverse("admin:benchmarks_study_history", args=[figure.study_id])
    assert client.get(history).status_code == 403  # it would name who edited it
    client.force_login(victim)
    assert client.get(history).status_code == 200


def test_figures_go_only_into_studies_the_host_may_change(client, victim, attacker):
    from benchmarks.models import Figure

    library = self_service_figure(owner=None)
    victims = self_service_figure(owner=victim)
    own = self_service_figure(owner=attacker)
    client.force_login(attacker)
    for study_id in (library.study_id, victims.study_id):
        added = client.post(
            reverse("admin:benchmarks_figure_add"), figure_fields(library, study=study_id)
        )
        assert added.status_code == 200 and "Select a valid choice" in added.content.decode()
        moved = client.post(
            reverse("admin:benchmarks_figure_change", args=[own.id]),
            figure_fields(own, study=study_id),
        )
        assert moved.status_code == 200
    assert Figure.objects.count() == 3
    own.refresh_from_db()
    assert own.study.owner == attacker
    # Through the inline of their own study, another study's figure is out of reach too.
    data = study_form(own.study, value="99")
    data["figures-0-id"] = library.id
    client.post(reverse("admin:benchmarks_study_change", args=[own.study_id]), data)
    assert_untouched(library)
    assert Figure.objects.count() == 3


def test_a_study_a_host_adds_is_theirs_and_names_no_other_account(client, victim, attacker):
    from benchmarks.models import Study

    client.force_login(attacker)
    form = client.get(reverse("admin:benchmarks_study_add")).content.decode()
    assert "host-ksf" not in form
    data = figure_form()
    data["owner"] = victim.id
    response = client.post(reverse("admin:benchmarks_study_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Study.objects.get().owner == attacker


def test_list_filters_show_only_the_hosts_events(client, ksf, attacker, attackers_event):
    from polls.models import Answer

    make_question(ksf, prompt="Secret prompt")
    mine = make_question(attackers_event)
    make_event(code="THIRD9", title="Third event", hosts=[attacker])
    Answer.objects.create(
        question=mine, participant="p1", value=1, answered_at="2025-01-01T00:00Z", log_id="1-0"
    )
    client.force_login(attacker)
    for name in ("admin:polls_question_changelist", "admin:polls_answer_changelist"):
        page = client.get(reverse(name)).content.decode()
        assert "Other congress" in page  # the filter is there, with the host's events
        assert "KSF2018" not in page and "KSF Jaarcongres" not in page, name
    filtered = client.get(
        reverse("admin:polls_question_changelist"), {"event__id__exact": ksf.id}
    ).content.decode()
    assert "KSF" not in filtered and "Secret prompt" not in filtered
    found = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "polls", "model_name": "question", "field_name": "event", "term": ""},
    ).json()
    assert {row["text"] for row in found["results"]} == {
        "Other congress (EVENTB)",
        "Third event (THIRD9)",
    }


def test_hosts_widget_lists_only_the_host_and_their_co_hosts(
    client, ksf, victim, attacker, attackers_event
):
    co_host = make_host("co-host")
    make_event(code="SHARED7", hosts=[attacker, co_host])
    client.force_login(attacker)
    change = reverse("admin:polls_event_change", args=[attackers_event.id])
    page = client.get(change).content.decode()
    assert "co-host" in page and "host-other" in page
    assert "host-ksf" not in page
    response = client.post(change, admin_data(attackers_event, hosts=[attacker.id, victim.id]))
    assert response.status_code == 200
    assert not attackers_event.hosts.filter(pk=victim.pk).exists()
    for model_name, field_name in (("event", "hosts"), ("study", "owner")):
        app_label = "polls" if model_name == "event" else "benchmarks"
        query = {"app_label": app_label, "model_name": model_name, "field_name": field_name}
        found = client.get(reverse("admin:autocomplete"), {**query, "term": "host"})
        assert found.status_code == 403  # the user list is for superusers


@pytest.mark.parametrize("by", ["username", "email"])
def test_a_co_host_is_added_by_exact_username_or_email(client, attacker, attackers_event, by):
    colleague = make_host("colleague", email="colleague@example.org")
    wanted = colleague.username if by == "username" else "Colleague@Example.org"
    client.force_login(attacker)
    response = client.post(
        reverse("admin:polls_event_change", args=[attackers_event.id]),
        admin_data(attackers_event, add_host=wanted),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert set(attackers_event.hosts.all()) == {attacker, colleague}


def test_a_co_host_must_be_an_active_staff_account_and_the_error_tells_no_more(
    client, attacker, attackers_event
):
    make_user("visitor", is_staff=False, email="visitor@example.org")
    make_host("gone", is_active=False)
    client.force_login(attacker)
    change = reverse("admin:polls_event_change", args=[attackers_event.id])
    errors = set()
    for wanted in ("visitor", "visitor@example.org", "gone", "nobody", "colleag"):
        response = client.post(change, admin_data(attackers_event, add_host=wanted))
        assert response.status_code == 200
        errors.add(
            tuple(re.findall(r'<ul class="errorlist[^>]*>(.*?)</ul>', response.content.decode()))
        )
    assert len(errors) == 1  # the same words whatever the account is, or whether there is one
    assert "No single active staff account" in str(errors)
    assert list(attackers_event.hosts.all()) == [attacker]


def test_who_may_answer_is_set_on_the_events_admin_page(client, attacker, attackers_event):
    client.force_login(attacker)
    change = reverse("admin:polls_event_change", args=[attackers_event.id])
    page = client.get(change).content.decode()
    assert page.index('name="language"') < page.index('name="voice"')
    response = client.post(change, admin_data(attackers_event, voice="attendees"))
    assert response.status_code == 302
    attackers_event.refresh_from_db()
    assert attackers_event.voice == Event.Voice.ATTENDEES
    client.post(change, admin_data(attackers_event))  # a form without it keeps it
    attackers_event.refresh_from_db()
    assert attackers_event.voice == Event.Voice.ATTENDEES


def test_the_research_figures_are_revealed_and_hidden_from_the_question_list(client, host, event):
    question = reveal(event, self_service_figure())
    client.force_login(host)
    changelist = reverse("admin:polls_question_changelist")
    offered = client.get(changelist).content.decode()
    assert 'value="reveal_research"' in offered and 'value="hide_research"' in offered
    client.post(changelist, {"action": "reveal_research", "_selected_action": [question.id]})
    question.refresh_from_db()
    assert question.revealed
    client.post(changelist, {"action": "hide_research", "_selected_action": [question.id]})
    question.refresh_from_db()
    assert not question.revealed

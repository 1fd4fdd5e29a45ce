"""Segments in admin: research figures per segment, the event's split and the privacy rule."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from benchmarks.models import Figure, Study
from polls.figures import check_figure_segment
from polls.models import Event, Question
from tests.factories import admin_data, make_event, make_question, make_user
from tests.test_admin import question_form

pytestmark = pytest.mark.django_db

GENERATIONS = ("Babyboom", "Generation X", "Generation Y", "Generation Z")


@pytest.fixture
def host():
    from polls.demo import ensure_hosts_group

    user = make_user("host-a")
    user.groups.add(ensure_hosts_group())
    return user


@pytest.fixture
def event(host):
    return make_event(code="TEST42", hosts=[host])


def make_profile(event, options=GENERATIONS, **fields) -> Question:
    return make_question(event, prompt="Which generation?", options=options, segment=True, **fields)


def make_figure(segment: str = "", value: int = 39) -> Figure:
    study = Study.objects.create(title="Benchmark", publisher="KIRC", year=2018)
    return Figure.objects.create(
        study=study,
        label="Self-service",
        metric="split",
        year=2018,
        value=Decimal(value),
        unit="%",
        segment=segment,
    )


def link_figure(client, event, figure):
    """Add a split question with ``figure`` linked, through the question admin."""
    data = question_form(
        event,
        kind="split",
        prompt="Self-service or live?",
        split_a_label="self-service",
        split_b_label="live",
        **{
            "options-TOTAL_FORMS": 0,
            "figure_links-TOTAL_FORMS": 1,
            "figure_links-0-figure": figure.id,
            "figure_links-0-order": 0,
        },
    )
    return client.post(reverse("admin:polls_question_add"), data)


# --- a figure's segment ------------------------------------------------------------------


def test_a_figure_carries_its_segment_in_its_payload_and_name():
    figure = make_figure("Generation Z", 70)
    assert figure.as_payload()["segment"] == "Generation Z"
    assert "Generation Z" in str(figure)
    whole = make_figure()
    assert whole.as_payload()["segment"] == ""
    assert str(whole) == "Self-service (2018: 39 / 61)"


def test_the_figure_list_shows_the_segment(client):
    admin = make_user("root", is_superuser=True)
    make_figure("Generation Z", 70)
    client.force_login(admin)
    page = client.get(reverse("admin:benchmarks_figure_changelist")).content.decode()
    assert "Generation Z" in page
    form = client.get(reverse("admin:benchmarks_study_add")).content.decode()
    assert 'name="figures-__prefix__-segment"' in form


def test_a_figure_for_a_segment_links_to_a_question_whose_event_offers_it(client, host, event):
    make_profile(event)
    client.force_login(host)
    response = link_figure(client, event, make_figure("generation z", 70))  # any case
    assert response.status_code == 302, response.content.decode()[:3000]
    question = Question.objects.get(prompt="Self-service or live?")
    assert question.figure_links.get().figure.segment == "generation z"


def test_a_figure_for_the_whole_population_needs_no_profile_question(client, host, event):
    client.force_login(host)
    assert link_figure(client, event, make_figure()).status_code == 302


def test_a_figure_for_a_segment_is_refused_in_an_event_without_profile_question(
    client, host, event
):
    make_question(event, prompt="Not a profile", options=GENERATIONS)  # same labels, no segment
    client.force_login(host)
    response = link_figure(client, event, make_figure("Generation Z", 70))
    assert response.status_code == 200
    page = response.content.decode()
    assert "measured for the segment &quot;Generation Z&quot;" in page
    assert "this event has no profile question" in page
    assert not Question.objects.filter(prompt="Self-service or live?").exists()


def test_a_figure_for_a_segment_the_event_lacks_is_refused_naming_its_segments(client, host, event):
    make_profile(event, options=("Babyboom", "Generation Z"))
    other = make_event(code="OTHER7", hosts=[host])
    make_profile(other, options=("Generation Y",))  # another event's segment does not count
    client.force_login(host)
    response = link_figure(client, event, make_figure("Generation Y", 45))
    assert response.status_code == 200
    page = response.content.decode()
    assert "which no profile question of this event offers" in page
    assert "This event&#x27;s segments: Babyboom, Generation Z." in page
    assert not Question.objects.filter(prompt="Self-service or live?").exists()


def test_the_segment_check_ignores_surrounding_spaces_and_names_segments_in_order(event):
    make_profile(event, options=("Babyboom", "Generation Z"))
    question = make_question(event, kind="split", options=())
    check_figure_segment(question, make_figure("  GENERATION Z "))
    with pytest.raises(Exception, match="Babyboom, Generation Z"):
        check_figure_segment(question, make_figure("Generation"))


# --- the event's split and the privacy rule ----------------------------------------------


def post_event(client, event, **overrides):
    return client.post(
        reverse("admin:polls_event_change", args=[event.id]), admin_data(event, **overrides)
    )


def test_the_event_page_shows_the_split_and_says_the_privacy_rule(client, host, event):
    client.force_login(host)
    page = client.get(reverse("admin:polls_event_change", args=[event.id])).content.decode()
    assert 'name="segment_by"' in page and 'name="segment_min_respondents"' in page
    assert "A segment with fewer respondents is never shown on its own" in page


def test_the_event_splits_by_its_own_profile_question(client, host, event):
    profile = make_profile(event)
    client.force_login(host)
    response = post_event(client, event, segment_by=profile.id, segment_min_respondents=8)
    assert response.status_code == 302, response.content.decode()[:3000]
    event.refresh_from_db()
    assert (event.segment_by, event.segment_min_respondents) == (profile, 8)


def test_a_form_that_leaves_the_split_out_keeps_it(client, host, event):
    profile = make_profile(event)
    Event.objects.filter(pk=event.pk).update(segment_by=profile, segment_min_respondents=7)
    client.force_login(host)
    assert post_event(client, event).status_code == 302
    event.refresh_from_db()
    assert (event.segment_by, event.segment_min_respondents) == (profile, 7)


@pytest.mark.parametrize("which", ["not_profile", "other_event"])
def test_the_event_refuses_to_split_by_anything_but_its_own_profile_question(
    client, host, event, which
):
    if which == "not_profile":
        chosen = make_question(event, prompt="Plain", options=GENERATIONS)
    else:
        chosen = make_profile(make_event(code="OTHER7", hosts=[host]))
    client.force_login(host)
    response = post_event(client, event, segment_by=chosen.id)
    assert response.status_code == 200
    assert "Choose a profile question of this event" in response.content.decode()
    event.refresh_from_db()
    assert event.segment_by is None


@pytest.mark.parametrize("smallest", [1, 0, 1001])
def test_the_smallest_segment_shown_stays_within_bounds(client, host, event, smallest):
    client.force_login(host)
    response = post_event(client, event, segment_min_respondents=smallest)
    assert response.status_code == 200
    event.refresh_from_db()
    assert event.segment_min_respondents == 5


# --- the question's profile fields -------------------------------------------------------


def test_the_question_admin_makes_a_profile_question(client, host, event):
    client.force_login(host)
    page = client.get(reverse("admin:polls_question_add")).content.decode()
    assert 'name="segment"' in page and 'name="ask_on_join"' in page
    assert 'counted under "other"' in page
    response = client.post(
        reverse("admin:polls_question_add"), question_form(event, segment="on", ask_on_join="")
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    question = Question.objects.get(prompt="Which?")
    assert (question.segment, question.ask_on_join) == (True, False)


def test_the_question_admin_refuses_a_profile_question_of_another_kind(client, host, event):
    client.force_login(host)
    response = client.post(
        reverse("admin:polls_question_add"),
        question_form(event, kind="multiple", segment="on", ask_on_join="on"),
    )
    assert response.status_code == 200
    assert "Only a single-choice question can be a profile question." in response.content.decode()
    assert not Question.objects.filter(prompt="Which?").exists()


def test_renaming_the_segment_a_linked_figure_names_warns_the_host(client, host, event):
    from polls.models import QuestionFigure

    profile = make_profile(event, options=("Babyboom", "Generation Z"))
    split = make_question(event, kind="split", prompt="Split?", options=(), split_a_label="a")
    QuestionFigure.objects.create(question=split, figure=make_figure("Generation Z", 70))
    client.force_login(host)
    ids = list(profile.options.values_list("id", flat=True))
    data = question_form(
        event,
        prompt="Which generation?",
        segment="on",
        ask_on_join="on",
        **{
            "options-INITIAL_FORMS": 2,
            "options-0-id": ids[0],
            "options-0-question": profile.id,
            "options-0-label": "Babyboom",
            "options-1-id": ids[1],
            "options-1-question": profile.id,
            "options-1-label": "Gen Z",
        },
    )
    url = reverse("admin:polls_question_change", args=[profile.id])
    page = client.post(url, data, follow=True).content.decode()
    assert "for a segment no profile question of the event offers now" in page
    assert "&quot;Generation Z&quot; (Split?)" in page
    assert "This event&#x27;s segments: Babyboom, Gen Z." in page
    # Named again: nothing to say.
    data["options-1-label"] = "Generation Z"
    page = client.post(url, data, follow=True).content.decode()
    assert "offers now" not in page

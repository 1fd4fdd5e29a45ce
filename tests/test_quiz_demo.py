"""The quiz demo RADEN2018: a short "guess the research" round on the congress demo's figures."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from polls import demo, quiz, quiz_checks
from polls.models import Event, Question
from polls.state import build_event_state, scoring_of

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def seeded():
    out = run("seed_demo")
    assert "demo quiz RADEN2018 created" in out
    return Event.objects.get(code=demo.QUIZ_DEMO_CODE)


def test_the_quiz_is_a_second_event_in_quiz_mode_beside_the_congress_demo(seeded):
    assert seeded.quiz and seeded.language == "nl"
    assert seeded.hosts.filter(username=demo.DEMO_HOST_USERNAME).exists()
    congress = Event.objects.get(code=demo.DEMO_CODE)
    assert not congress.quiz  # its phones join as before: no nickname asked
    assert not congress.questions.filter(scored=True).exists()
    assert congress.current_question.state == Question.State.OPEN


def test_the_round_is_four_timed_scored_questions_none_open(seeded):
    questions = list(seeded.questions.all())
    assert [q.kind for q in questions] == ["split", "single", "ces", "split"]
    assert all(q.scored and q.time_limit == 20 for q in questions)
    # The clock of a timed question starts when the host opens it, not when the demo was made.
    assert seeded.current_question == questions[0]
    assert all(q.state == Question.State.DRAFT and q.started_ms is None for q in questions)


def test_every_question_of_the_round_validates(seeded):
    for question in seeded.questions.all():
        assert quiz_checks.problems(question) == [], question.prompt
        question.full_clean()


def targets(event) -> list:
    found = []
    for question in event.questions.prefetch_related("options"):
        scoring = scoring_of(question)
        if question.kind == "single":
            found.append([o.label for o in question.options.all() if o.correct])
        else:
            found.append((scoring.target, scoring.tolerance))
    return found


def test_the_targets_are_the_seed_figures(seeded):
    """Self-service 39 / 61 in 2018, NPS +13 (2017), CES 1.6 (2017), chatbots 59% (2018): the
    posts' figures, the estimates' taken from their linked figures."""
    assert targets(seeded) == [
        (Decimal(39), Decimal(20)),
        ["+11 tot +20"],
        (Decimal("1.6"), Decimal("1.5")),
        (Decimal(59), Decimal(20)),
    ]
    assert demo.latest_value("nps") == 13
    estimates = seeded.questions.exclude(kind="single")
    assert all(q.target is None and q.figure_links.exists() for q in estimates)


def test_the_estimates_link_the_research_as_a_trend(seeded):
    split, _nps, ces, chatbot = seeded.questions.all()
    years = [(link.figure.year, link.figure.value) for link in split.figure_links.all()]
    assert years == [(2016, 50), (2017, 38), (2018, 39)]
    assert [link.figure.value for link in ces.figure_links.all()] == [
        Decimal("2.0"),
        Decimal("1.6"),
    ]
    assert (ces.scale_min, ces.scale_max, ces.lower_is_better) == (1, 5, True)
    assert [link.figure.value for link in chatbot.figure_links.all()] == [59]
    assert (chatbot.split_a_label, chatbot.split_b_label) == ("geslaagde gesprekken", "")


def test_the_nps_ranges_cover_every_score_once():
    for score in range(-100, 101):
        held = [
            label for label, low, high in demo.NPS_RANGES if demo.holds(Decimal(score), low, high)
        ]
        assert len(held) == 1, score


def test_a_guess_at_the_target_scores_full_points(seeded):
    split = seeded.questions.first()
    scoring = scoring_of(split)
    assert quiz.closeness(scoring, 39) == quiz.MAX_POINTS
    assert quiz.closeness(scoring, 53) == 300  # the room's guess at the congress: 53 / 47
    assert quiz.closeness(scoring, 59) == 0


def test_the_state_carries_the_quiz(seeded):
    state = build_event_state(seeded.id)
    assert state["event"]["quiz"] and state["spec"]["quiz"]
    block = state["question"]["quiz"]
    assert block["limit"] == 20 and block["answer"] is None  # the answer only once shown
    assert state["spec"]["current"]["quiz"]["target"] == "39.00"


def test_the_quiz_demo_is_made_once_and_reset_afresh(seeded):
    rows = list(Question.objects.filter(event=seeded).values_list("id", "prompt", "state"))
    assert "demo quiz RADEN2018 already present" in run("seed_demo")
    assert list(Question.objects.filter(event=seeded).values_list("id", "prompt", "state")) == rows
    assert "demo quiz RADEN2018 created" in run("seed_demo", "--reset")
    again = Event.objects.get(code=demo.QUIZ_DEMO_CODE)
    assert again.pk != seeded.pk and again.questions.count() == 4


def test_a_demo_of_an_earlier_version_gets_the_quiz():
    run("seed_demo")
    Event.objects.filter(code=demo.QUIZ_DEMO_CODE).delete()
    assert "demo quiz RADEN2018 created" in run("seed_demo")
    assert "demo event KSF2018 already present" in run("seed_demo")

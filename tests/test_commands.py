"""Run-time tools: the demo, the URLs, rebuilding tallies from the database."""

from __future__ import annotations

import asyncio
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from polls import tally
from polls.models import Answer, Event, Question
from tests.factories import make_event, make_open_question, option_ids

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_demo_is_created_once_with_its_first_question_open():
    assert "created" in run("seed_demo")
    assert "already present" in run("seed_demo")
    event = Event.objects.get(code="KSF2018")
    assert event.questions.count() >= 3
    first = event.questions.first()
    assert event.current_question == first
    assert first.kind == Question.Kind.SINGLE and first.state == Question.State.OPEN
    assert tally.read_snapshot_sync(first.id) is not None
    assert event.hosts.filter(username="host", is_superuser=False, is_staff=True).exists()


def test_event_urls_prints_phone_stage_with_key_and_remote():
    event = make_event(code="TEST42")
    out = run("event_urls", "test42", "--base", "https://poll.example")
    assert "phone:  https://poll.example/e/TEST42/" in out
    assert f"stage:  https://poll.example/e/TEST42/stage/?key={event.stage_key}" in out
    assert "remote: https://poll.example/e/TEST42/host/" in out
    quiz = make_event(code="RADEN1", title="Raad het onderzoek", quiz=True)
    out = run("event_urls", "TEST42", "raden1", "--base", "https://poll.example")
    assert "TEST42: Test event\nphone:  https://poll.example/e/TEST42/" in out
    assert "\n\nRADEN1: Raad het onderzoek\nphone:  https://poll.example/e/RADEN1/" in out
    assert f"stage:  https://poll.example/e/RADEN1/stage/?key={quiz.stage_key}" in out


def test_rebuild_tallies_restores_redis_from_the_answer_table(redis):
    event = make_event()
    question = make_open_question(event)
    first, second = option_ids(question)[:2]

    async def answer():
        await tally.record_answer(question.id, "single", "p1", "m", first)
        await tally.record_answer(question.id, "single", "p2", "m", second)
        await tally.record_answer(question.id, "single", "p3", "m", second)

    redis.flushall()  # Redis lost everything, including the open flags
    run("rebuild_tallies", "--flags-only")
    assert redis.hget(tally.question_keys(question.id)["meta"], "open") == b"1"
    asyncio.run(answer())
    run("rebuild_tallies")  # drains the log first, then rebuilds from rows
    assert Answer.objects.filter(question=question).count() == 3
    redis.delete(
        tally.question_keys(question.id)["counts"], tally.question_keys(question.id)["meta"]
    )
    run("rebuild_tallies")
    snapshot = tally.read_snapshot_sync(question.id)
    assert snapshot.total == 3
    assert snapshot.counts == {str(first): 1, str(second): 2}
    assert redis.hget(tally.question_keys(question.id)["meta"], "open") == b"1"


def test_host_action_command_runs_the_show():
    event = make_event()
    make_open_question(event)
    second = make_open_question(event)
    assert "current question" in run("host_action", event.code, "prev")
    event.refresh_from_db()
    assert event.current_question != second


def test_check_tallies_reports_and_repairs_differences(redis):
    event = make_event()
    question = make_open_question(event)
    first, second = option_ids(question)[:2]

    async def answer():
        for participant in range(4):
            await tally.record_answer(question.id, "single", f"p{participant}", "m", first)

    asyncio.run(answer())
    assert "0 differences" in run("check_tallies")
    Answer.objects.filter(participant="p0").delete()
    Answer.objects.filter(participant="p1").update(value=second)
    Answer.objects.create(
        question=question, participant="ghost", value=first, answered_at=timezone.now(), log_id="x"
    )
    redis.hincrby(tally.question_keys(question.id)["counts"], str(second), 5)
    report = run("check_tallies")
    assert "1 missing rows, 1 extra rows, 1 different rows, counts wrong" in report
    assert "4 differences" in report
    with pytest.raises(SystemExit) as failed:  # what the hourly timer runs: the unit fails
        run("check_tallies", "--exit-status")
    assert failed.value.code == 1
    run("check_tallies", "--repair")
    assert "0 differences" in run("check_tallies", "--exit-status")
    assert dict(Answer.objects.values_list("participant", "value")) == {
        f"p{participant}": first for participant in range(4)
    }
    assert tally.read_snapshot_sync(question.id).counts.get(str(second), 0) == 0


def demo_rows() -> dict:
    """Everything seed_demo writes that a second run must leave as it is."""
    from benchmarks.models import Figure, Study
    from polls.models import Option, QaConfig, QaItem, QaVote, QuestionFigure

    event = Event.objects.get(code="KSF2018")
    return {
        "event": (event.revision, event.segment_by_id, event.current_question_id),
        "questions": list(
            Question.objects.values_list("id", "order", "prompt", "segment", "ask_on_join", "state")
        ),
        "options": list(Option.objects.values_list("id", "question_id", "label")),
        "studies": list(Study.objects.values_list("id", "title", "year", "note")),
        "figures": list(Figure.objects.values_list("id", "label", "year", "value", "segment")),
        "links": list(QuestionFigure.objects.values_list("question_id", "figure_id")),
        "qa": list(QaConfig.objects.values_list("event_id", "mode", "names_allowed")),
        "qa_items": list(QaItem.objects.values_list("id", "text", "name", "state", "created_at")),
        "qa_votes": sorted(QaVote.objects.values_list("item_id", "participant", "active")),
    }


def test_the_demo_asks_the_generation_on_joining_and_splits_by_it():
    run("seed_demo")
    event = Event.objects.get(code="KSF2018")
    profile = event.questions.get(segment=True)
    assert profile == event.questions.last()  # the demo still opens on its first question
    assert event.current_question == event.questions.first() != profile
    assert (profile.kind, profile.ask_on_join, event.segment_by) == ("single", True, profile)
    assert [option.label for option in profile.options.all()] == [
        "Babyboom (1945\u20131960)",
        "Generatie X (1961\u20131980)",
        "Generatie Y (1981\u20131995)",
        "Generatie Z (na 1995)",
    ]
    before = demo_rows()
    assert "already present" in run("seed_demo")
    assert demo_rows() == before


def test_the_demo_research_is_what_the_seed_posts_say():
    """Each figure as the posts give it (the seeds, checked by hand): KIRC's 2018 congress
    report and the 2014 post citing the EIU study. None is per segment: the posts have none."""
    from benchmarks.models import Figure

    run("seed_demo")
    figures = {
        (figure.study.publisher, figure.label, figure.year): (
            figure.shares or float(figure.value),
            figure.segment,
        )
        for figure in Figure.objects.select_related("study")
    }
    kirc = "KIRC, SAMR en Stichting ITO"
    assert figures == {
        (kirc, "Resultaat van werk aan klantbeleving", 2018): ([63, 14, 7, 3, 12], ""),
        (kirc, "Aandeel selfservice in al het klantcontact", 2016): (50.0, ""),
        (kirc, "Aandeel selfservice in al het klantcontact", 2017): (38.0, ""),
        (kirc, "Aandeel selfservice in al het klantcontact", 2018): (39.0, ""),
        (kirc, "Klanttevredenheid (rapportcijfer)", 2016): (7.4, ""),
        (kirc, "Klanttevredenheid (rapportcijfer)", 2017): (7.5, ""),
        (kirc, "Net Promoter Score", 2016): (9.0, ""),
        (kirc, "Net Promoter Score", 2017): (13.0, ""),
        (kirc, "Customer Effort Score", 2016): (2.0, ""),
        (kirc, "Customer Effort Score", 2017): (1.6, ""),
        (kirc, "Bedrijven met mystery-contactonderzoek", 2018): (18.0, ""),
        (kirc, "Geslaagde chatbotgesprekken", 2018): (59.0, ""),
        (kirc, "Vernieuwingen die nu worden ingevoerd", 2018): ([32, 31, 18, 9], ""),
        (
            "The Economist Intelligence Unit",
            "Bedrijven die service belangrijk vinden voor hun financiële resultaat",
            2014,
        ): (84.0, ""),
    }
    eiu = Figure.objects.get(year=2014).study
    assert eiu.year == 2014 and "14 February 2014" in eiu.note and "2017" not in eiu.note


def test_a_demo_of_an_earlier_version_gets_the_generation_and_the_corrected_year_once():
    from benchmarks.models import Figure, Study

    run("seed_demo")
    event = Event.objects.get(code="KSF2018")
    # As the previous version left it: no profile question, the EIU study labelled 2017.
    Event.objects.filter(pk=event.pk).update(segment_by=None)
    event.questions.filter(segment=True).delete()
    eiu = Study.objects.get(publisher="The Economist Intelligence Unit")
    Study.objects.filter(pk=eiu.pk).update(
        year=2017, note="Year as cited in a 2017 Dutch post on customer interaction in 2020."
    )
    Figure.objects.filter(study=eiu).update(year=2017)
    revision = Event.objects.get(pk=event.pk).revision
    assert "already present" in run("seed_demo")
    event.refresh_from_db()
    profile = event.questions.get(segment=True)
    assert event.segment_by == profile and profile.options.count() == 4
    assert event.revision > revision  # the phones hear of the new question
    assert list(Figure.objects.filter(study=eiu).values_list("year", flat=True)) == [2014]
    assert Study.objects.get(pk=eiu.pk).year == 2014
    before = demo_rows()
    run("seed_demo")
    assert demo_rows() == before
    # Reset makes it afresh from the corrected library, with no second EIU figure.
    run("seed_demo", "--reset")
    assert Figure.objects.filter(study=eiu).count() == 1

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

"""The answer writer on PostgreSQL: two writers draining one log, concurrent upserts of one
answer, the migrations from nothing, and the tallies after a burst of thousands of phones."""

from __future__ import annotations

import asyncio

import pytest

from polls import consistency, tally, writer
from polls.models import Answer
from polls.redis_client import get_sync_redis
from tests.factories import make_event, make_open_question, option_ids

CODE = "KSF2018"


def log_entries(question_id: int) -> list[tuple[str, bytes, dict]]:
    """The question's answer log as the writer reads it: (stream, entry id, fields)."""
    log = tally.question_keys(question_id)["log"]
    return [(log, entry_id, fields) for entry_id, fields in get_sync_redis().xrange(log)]


@pytest.mark.django_db
def test_an_older_answer_committed_after_a_newer_one_does_not_overwrite_it():
    question = make_open_question(make_event())
    first, second = option_ids(question)[:2]

    async def answer_then_change():
        await tally.record_answer(question.id, question.kind, "p1", "m1", first)
        await tally.record_answer(question.id, question.kind, "p1", "m2", second)

    asyncio.run(answer_then_change())
    older, newer = log_entries(question.id)
    # Writer A read the first answer, writer B the change; B commits first, then A.
    writer._write([newer])
    writer._write([older])
    assert Answer.objects.get(question=question, participant="p1").value == second
    check, _counted = consistency.check_question(question)
    assert check.differences == 0

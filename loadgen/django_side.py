"""Everything the coordinator does through Django: the throwaway event, host actions, and what
the exactness check reads (the Redis tally and the Answer rows). Always called in the
coordinator's one database thread; Django is imported inside each function, so the phones'
worker processes never load it."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from typing import Any


def create_question(event, kind: str, order: int):
    from polls import kinds
    from polls.models import Option, Question

    question = Question(
        event=event, order=order, kind=kind, prompt=f"Load test question {order} ({kind})"
    )
    kinds.get(kind).prepare_load_test(question)
    question.full_clean()
    question.save()
    if question.has_options:
        for number in range(1, kinds.get(kind).load_test_options + 1):
            Option.objects.create(question=question, order=number, label=f"Option {number}")
    return question


def _forget_tallies(question_ids: list[int]) -> None:
    from polls import tally
    from polls.redis_client import get_sync_redis

    client = get_sync_redis()
    for question_id in question_ids:
        keys = tally.question_keys(question_id)
        client.delete(*keys.values())
        client.srem(tally.LOG_REGISTRY, keys["log"])


def prepare_throwaway_event(code: str, kind: str) -> dict:
    """(Re)create the event ``code``: two questions of ``kind``, the first current and open."""
    from polls import actions
    from polls.models import Event

    old = Event.objects.filter(code=code).first()
    if old is not None:
        question_ids = list(old.questions.values_list("id", flat=True))
        old.delete()
        with contextlib.suppress(Exception):
            _forget_tallies(question_ids)
    event = Event.objects.create(title=f"Load test ({kind})", code=code, language="en")
    first = create_question(event, kind, 1)
    create_question(event, kind, 2)
    actions.do_set_current(event, first, open_it=True)
    return {
        "event_id": event.id,
        "code": event.code,
        "stage_key": event.stage_key,
        "question_id": first.id,
        "kind": kind,
        "own_event": True,
    }


def existing_event(code: str) -> dict | None:
    from polls.models import Event

    event = Event.objects.filter(code=code).select_related("current_question").first()
    if event is None:
        return None
    question = event.current_question
    return {
        "event_id": event.id,
        "code": event.code,
        "stage_key": event.stage_key,
        "question_id": question.id if question else None,
        "kind": question.kind if question else None,
        "question_open": bool(question and question.state == "open"),
        "own_event": False,
    }


def run_host_action(event_id: int, action: str) -> tuple[float, float]:
    """What the remote control's button does (login and CSRF aside)."""
    from polls import actions
    from polls.models import Event

    event = Event.objects.select_related("current_question").get(pk=event_id)
    started = time.monotonic()
    actions.do_host_action(event, action)
    return started, time.monotonic()


def read_tally(question_id: int) -> dict:
    from polls import tally

    snapshot = tally.read_snapshot_sync(question_id)
    return {
        "version": snapshot.version,
        "total": snapshot.total,
        "counts": {key: count for key, count in snapshot.counts.items() if count},
    }


def read_tally_answers(question_id: int) -> dict:
    from polls import tally

    return tally.read_answers_sync(question_id)


def wait_for_rows(question_id: int, expected: int, timeout: float) -> dict:
    """The Answer rows once the writer drained the question's log (or the timeout passed)."""
    from polls import tally
    from polls.models import Answer
    from polls.redis_client import get_sync_redis

    log = tally.question_keys(question_id)["log"]
    started = time.monotonic()
    backlog = None
    while True:
        count = Answer.objects.filter(question_id=question_id).count()
        try:
            backlog = get_sync_redis().xlen(log)
        except Exception:  # then rows alone decide
            backlog = None
        drained = backlog in (0, None) and count >= expected
        if drained or time.monotonic() - started > timeout:
            break
        time.sleep(0.25)
    rows = dict(Answer.objects.filter(question_id=question_id).values_list("participant", "value"))
    return {
        "rows": rows,
        "seconds": round(time.monotonic() - started, 2),
        "log_backlog": backlog,
        "drained": backlog in (0, None) and len(rows) >= expected,
    }


def expected_counts(kind: str, answers: dict[str, Any]) -> dict[str, int]:
    from polls import tally

    counts: Counter[str] = Counter()
    for value in answers.values():
        counts.update(tally.buckets_for(kind, value))
    return {key: count for key, count in counts.items() if count}


def close_database() -> None:
    from django.db import connections

    connections.close_all()

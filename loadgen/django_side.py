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


def create_profile_question(event, options: int, order: int):
    """A profile question of ``options`` options, asked on join (``Question.segment``)."""
    from polls.models import PROFILE_KIND, Option, Question

    question = Question(
        event=event,
        order=order,
        kind=PROFILE_KIND,
        prompt=f"Load test profile ({options} segments)",
        segment=True,
        ask_on_join=True,
    )
    question.full_clean()
    question.save()
    for number in range(1, options + 1):
        Option.objects.create(question=question, order=number, label=f"Segment {number}")
    return question


def profile_questions(event) -> list[dict]:
    """The event's ask-on-join profile questions, with their options in order."""
    return [
        {"id": question.id, "options": [option.id for option in question.options.all()]}
        for question in event.questions.filter(segment=True, ask_on_join=True)
        .order_by("order", "id")
        .prefetch_related("options")
    ]


def _forget_tallies(question_ids: list[int]) -> None:
    from polls import tally
    from polls.redis_client import get_sync_redis

    client = get_sync_redis()
    for question_id in question_ids:
        keys = tally.question_keys(question_id)
        client.delete(*keys.values())
        client.srem(tally.LOG_REGISTRY, keys["log"])


def prepare_throwaway_event(
    code: str,
    kind: str,
    segments: int = 0,
    split: bool = True,
    qa: bool = False,
    quiz: dict | None = None,
) -> dict:
    """(Re)create the event ``code``: two questions of ``kind``, the first current and open;
    with ``segments``, a profile question of that many options after them (never current: the
    host actions go next, prev, next), asked on join, the stage's results split by it; with
    ``qa``, the audience Q&A open (items appear at once) and shown on the stage; with ``quiz``
    (``limit``, ``questions``), a quiz-mode event of scored timed questions instead
    (``prepare_quiz_event``)."""
    from polls import actions, qa_tally
    from polls.models import Event

    if quiz is not None:
        return prepare_quiz_event(code, quiz["limit"], quiz["questions"])

    old = Event.objects.filter(code=code).first()
    if old is not None:
        question_ids = list(old.questions.values_list("id", flat=True))
        old_id = old.id
        old.delete()
        with contextlib.suppress(Exception):
            _forget_tallies(question_ids)
        with contextlib.suppress(Exception):
            qa_tally.forget(old_id)
    event = Event.objects.create(title=f"Load test ({kind})", code=code, language="en")
    first = create_question(event, kind, 1)
    create_question(event, kind, 2)
    if segments:
        create_profile_question(event, segments, 3)
    actions.do_set_current(event, first, open_it=True)
    if segments and split:  # the remote's "by segment" button
        actions.do_host_action(event, "segments_on")
    if qa:  # the remote's Q&A switches: open, and the stage's Q&A view
        actions.do_host_action(event, "qa_open")
        actions.do_host_action(event, "qa_stage_on")
    event.refresh_from_db()
    return {
        "event_id": event.id,
        "code": event.code,
        "stage_key": event.stage_key,
        "question_id": first.id,
        "kind": kind,
        "own_event": True,
        "profile": profile_questions(event),
        "segment_by": event.segment_by_id,
        "segment_min": event.segment_min_respondents,
    }


def _forget_event(code: str) -> None:
    from polls import qa_tally, tally
    from polls.models import Event
    from polls.redis_client import get_sync_redis

    old = Event.objects.filter(code=code).first()
    if old is None:
        return
    question_ids = list(old.questions.values_list("id", flat=True))
    old_id = old.id
    old.delete()
    with contextlib.suppress(Exception):
        _forget_tallies(question_ids)
    with contextlib.suppress(Exception):
        qa_tally.forget(old_id)
    with contextlib.suppress(Exception):
        get_sync_redis().delete(*tally.quiz_keys(old_id).values())


# The quiz scenario's estimate: a split whose part A is 39 % (+- 20 points still scores).
QUIZ_SPLIT_TARGET = 39
QUIZ_SPLIT_TOLERANCE = 20


def prepare_quiz_event(code: str, limit: int, questions: int = 2) -> dict:
    """(Re)create ``code`` as a quiz-mode event: a scored single choice of 4 options (the first
    correct) and, with ``questions`` 2, a scored split (target 39, tolerance 20), both timed
    ``limit`` seconds. The first is current and *not* open: the host opens each in turn
    (``open_quiz_question``), once the phones are in."""
    from decimal import Decimal

    from polls import actions, kinds
    from polls.models import Event, Option, Question

    _forget_event(code)
    event = Event.objects.create(title="Load test (quiz)", code=code, language="en", quiz=True)
    made = []
    for order, kind in enumerate(("single", "split")[: max(1, min(2, questions))], start=1):
        question = Question(
            event=event,
            order=order,
            kind=kind,
            prompt=f"Load test quiz question {order} ({kind})",
            scored=True,
            time_limit=limit,
        )
        kinds.get(kind).prepare_load_test(question)
        if kind == "split":
            question.target = Decimal(QUIZ_SPLIT_TARGET)
            question.tolerance = Decimal(QUIZ_SPLIT_TOLERANCE)
        question.full_clean()
        question.save()
        options, correct = [], []
        if kind == "single":
            for number in range(1, 5):
                option = Option.objects.create(
                    question=question, order=number, label=f"Option {number}", correct=number == 1
                )
                options.append(option.id)
                if option.correct:
                    correct.append(option.id)
        made.append(
            {
                "id": question.id,
                "kind": kind,
                "limit": limit,
                "options": options,
                "correct": correct,
                "target": float(question.target) if question.target is not None else None,
                "tolerance": float(question.tolerance) if question.tolerance is not None else None,
            }
        )
    actions.do_set_current(event, Question.objects.get(pk=made[0]["id"]), open_it=False)
    event.refresh_from_db()
    return {
        "event_id": event.id,
        "code": event.code,
        "stage_key": event.stage_key,
        "question_id": made[0]["id"],
        "kind": "quiz",
        "own_event": True,
        "profile": [],
        "segment_by": None,
        "segment_min": event.segment_min_respondents,
        "quiz": made,
    }


def open_quiz_question(event_id: int, question_id: int) -> dict:
    """The remote's next + open on a scored question: it becomes current and open, its clock
    starts. The server's opening and deadline (ms since the epoch), and the call's own times."""
    from polls import actions
    from polls.models import Event, Question

    event = Event.objects.get(pk=event_id)
    question = Question.objects.get(pk=question_id)
    called = time.time()
    actions.do_set_current(event, question, open_it=True)
    returned = time.time()
    question.refresh_from_db()
    return {
        "called": called,
        "returned": returned,
        "started_ms": question.started_ms,
        "deadline_ms": question.deadline_ms,
    }


def read_quiz(event_id: int, question_ids: list[int]) -> dict:
    """The quiz as Redis holds it: per question the scores and answers, and the event's board
    (points and answer time per participant, the sorted set's scores)."""
    from polls import tally
    from polls.redis_client import get_sync_redis

    client = get_sync_redis()
    keys = tally.quiz_keys(event_id)
    return {
        "scores": {q: tally.read_scores_sync(q) for q in question_ids},
        "answers": {q: tally.read_answers_sync(q) for q in question_ids},
        "points": {p.decode(): int(v) for p, v in client.hgetall(keys["points"]).items()},
        "time": {p.decode(): int(v) for p, v in client.hgetall(keys["time"]).items()},
        "board": {
            p.decode(): int(score)
            for p, score in client.zrange(keys["board"], 0, -1, withscores=True)
        },
    }


def recompute_quiz(event_id: int) -> dict[int, dict[str, tuple[int, int]]]:
    """Every scored question's points per participant from the Answer rows
    (``polls.quiz_board.recompute``)."""
    from polls import quiz_board

    return quiz_board.recompute(event_id)


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
        "profile": profile_questions(event),
        "segment_by": event.segment_by_id,
        "segment_min": event.segment_min_respondents,
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
        "segments": {
            tag: {"total": total, "counts": {key: n for key, n in counts.items() if n}}
            for tag, (total, counts) in (getattr(snapshot, "segments", None) or {}).items()
        },
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


def expected_segments(
    kind: str, answers: dict[str, Any], profiles: dict[str, dict[int, Any]]
) -> dict[str, dict]:
    """Per segment tag, the respondents and counts the acknowledged answers make, each
    participant in the segments their acknowledged profile answers put them in."""
    from polls import segments, tally

    groups: dict[str, dict] = {}
    for participant, value in answers.items():
        tags = segments.tags_of(profiles.get(participant) or {})
        for tag in filter(None, tags.split(",")):
            group = groups.setdefault(tag, {"total": 0, "counts": Counter()})
            group["total"] += 1
            group["counts"].update(tally.buckets_for(kind, value))
    return {
        tag: {"total": g["total"], "counts": {k: n for k, n in g["counts"].items() if n}}
        for tag, g in groups.items()
    }


def shown_groups(
    whole: dict, by_tag: dict[str, dict], question: int, options: list[int], smallest: int
) -> list[dict]:
    """The groups a stage must show for the profile question ``question``: its options'
    segments in order, then "other", under the privacy rule (``polls.segments.fold``)."""
    from polls import segments

    groups = []
    for option in options:
        found = by_tag.get(segments.tag(question, option)) or {"total": 0, "counts": {}}
        groups.append(
            segments.Group(str(option), str(option), found["total"], dict(found["counts"]))
        )
    rest = segments.rest_of(whole["total"], whole["counts"], groups, segments.OTHER)
    shown, other = segments.fold(groups, rest, smallest)
    return [
        {"key": g.key, "total": g.total, "counts": {k: n for k, n in g.counts.items() if n}}
        for g in shown + ([other] if other else [])
    ]


def read_qa(event_id: int) -> dict:
    """The Q&A as Redis counts it: its version, each item's count and its voters."""
    from polls import qa_tally

    version, voters = qa_tally.read_voters_sync(event_id)
    return {
        "version": version,
        "votes": qa_tally.read_votes_sync(event_id),
        "voters": {item: sorted(people) for item, people in voters.items()},
    }


def read_qa_version(event_id: int) -> int:
    from polls import qa_tally

    return qa_tally.read_voters_sync(event_id)[0]


def wait_for_qa_rows(event_id: int, expected: int, timeout: float) -> dict:
    """The counted QaVote rows (item -> voters) once the writer drained the event's vote log
    and holds ``expected`` counted votes (or the timeout passed)."""
    from polls import qa_tally
    from polls.models import QaVote
    from polls.redis_client import get_sync_redis

    log = qa_tally.qa_keys(event_id)["log"]
    counted = QaVote.objects.filter(item__event_id=event_id, active=True)
    started = time.monotonic()
    backlog = None
    while True:
        count = counted.count()
        try:
            backlog = get_sync_redis().xlen(log)
        except Exception:  # then rows alone decide
            backlog = None
        drained = backlog in (0, None) and count == expected
        if drained or time.monotonic() - started > timeout:
            break
        time.sleep(0.25)
    rows: dict[int, list[str]] = {}
    for item_id, participant in counted.values_list("item_id", "participant"):
        rows.setdefault(item_id, []).append(participant)
    return {
        "rows": {item: sorted(people) for item, people in rows.items()},
        "taken_back": QaVote.objects.filter(item__event_id=event_id, active=False).count(),
        "seconds": round(time.monotonic() - started, 2),
        "log_backlog": backlog,
        "drained": drained,
    }


def close_database() -> None:
    from django.db import connections

    connections.close_all()

"""Redis (the live tally) against the database (the lasting record): find and mend differences.

Redis is the truth for what is counted; the Answer table must mirror it once the writer drained,
and each question's counts must follow from its stored answers, leaving out the participants the
host set aside (the SetAside table is the truth for who they are).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from . import tally, writer
from .models import Answer, Question, SetAside


@dataclass
class QuestionCheck:
    question_id: int
    missing_rows: list[str] = field(default_factory=list)
    extra_rows: list[str] = field(default_factory=list)
    different_rows: list[str] = field(default_factory=list)
    counts_wrong: bool = False
    aside_wrong: bool = False  # the question's aside set is not the event's set-aside list

    @property
    def differences(self) -> int:
        return (
            len(self.missing_rows)
            + len(self.extra_rows)
            + len(self.different_rows)
            + int(self.counts_wrong)
            + int(self.aside_wrong)
        )


def expected_counts(kind: str, answers: dict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in answers.values():
        for bucket in tally.buckets_for(kind, value):
            counts[bucket] = counts.get(bucket, 0) + 1
    return counts


def set_aside_of(event_id: int) -> set[str]:
    return set(SetAside.objects.filter(event_id=event_id).values_list("participant", flat=True))


def check_question(question: Question, aside: set[str] | None = None) -> tuple[QuestionCheck, dict]:
    """``aside``: the event's set-aside participants (read here when not given)."""
    if aside is None:
        aside = set_aside_of(question.event_id)
    counted = tally.read_answers_sync(question.id)
    rows = dict(Answer.objects.filter(question=question).values_list("participant", "value"))
    check = QuestionCheck(question.id)
    check.missing_rows = sorted(set(counted) - set(rows))
    check.extra_rows = sorted(set(rows) - set(counted))
    check.different_rows = sorted(p for p in set(counted) & set(rows) if counted[p] != rows[p])
    snapshot = tally.read_snapshot_sync(question.id)
    positive = {key: count for key, count in snapshot.counts.items() if count}
    voices = {p: value for p, value in counted.items() if p not in aside}
    check.counts_wrong = positive != expected_counts(
        question.kind, voices
    ) or snapshot.total != len(voices)
    check.aside_wrong = tally.aside_members(question.id) != aside
    return check, counted


def repair_question(
    question: Question, check: QuestionCheck, counted: dict, aside: set[str] | None = None
) -> None:
    """Make the table mirror Redis, and the counts follow from the stored answers."""
    with transaction.atomic():
        Answer.objects.filter(question=question, participant__in=check.extra_rows).delete()
        now = timezone.now()
        Answer.objects.bulk_create(
            [
                Answer(
                    question=question,
                    participant=participant,
                    value=counted[participant],
                    answered_at=now,
                    log_id="repair",
                )
                for participant in check.missing_rows + check.different_rows
            ],
            update_conflicts=True,
            unique_fields=["question", "participant"],
            update_fields=["value", "answered_at", "log_id"],
        )
    if check.counts_wrong or check.aside_wrong:
        if aside is None:
            aside = set_aside_of(question.event_id)
        is_open = question.state == Question.State.OPEN
        tally.rebuild(question.id, question.kind, is_open, counted, aside)


def check_all(repair: bool = False) -> list[QuestionCheck]:
    writer.drain_all()
    checks = []
    asides: dict[int, set[str]] = {}
    for question in Question.objects.order_by("id"):
        if question.event_id not in asides:
            asides[question.event_id] = set_aside_of(question.event_id)
        aside = asides[question.event_id]
        check, counted = check_question(question, aside)
        if repair and check.differences:
            repair_question(question, check, counted, aside)
        checks.append(check)
    return checks

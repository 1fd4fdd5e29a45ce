"""Redis (the live tally) against the database (the lasting record): find and mend differences.

Redis is the truth for what is counted; the Answer table must mirror it once the writer drained,
and each question's counts must follow from its stored answers, leaving out the participants the
host set aside (the SetAside table is the truth for who they are).

The audience Q&A the other way round: its items are written to the database first, and every
vote Redis counted reaches the QaVote rows through the vote log; once that is drained, each
item's count in Redis must equal its rows. A count that does not is Redis's drift, and the
repair rebuilds the event's Q&A in Redis from the rows (``qa.rebuild_from_db``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from . import qa, qa_tally, tally, writer
from .models import Answer, Event, QaItem, Question, SetAside
from .segments import tags_of


@dataclass
class QuestionCheck:
    question_id: int
    missing_rows: list[str] = field(default_factory=list)
    extra_rows: list[str] = field(default_factory=list)
    different_rows: list[str] = field(default_factory=list)
    counts_wrong: bool = False
    aside_wrong: bool = False  # the question's aside set is not the event's set-aside list
    # The per-segment counts do not follow from the answers, or a participant is counted in
    # segments their profile answers do not give.
    segments_wrong: bool = False

    @property
    def differences(self) -> int:
        return (
            len(self.missing_rows)
            + len(self.extra_rows)
            + len(self.different_rows)
            + int(self.counts_wrong)
            + int(self.aside_wrong)
            + int(self.segments_wrong)
        )


# Where a row written by a repair (no answer log id) stands: after every counted answer.
_AFTER_THE_LOG = (2**63, 0)


def _log_order(log_id: str) -> tuple[int, int]:
    """Answer log ids (``<ms>-<seq>``) in the order the tally counted them."""
    milliseconds, _dash, sequence = log_id.partition("-")
    if milliseconds.isdigit() and sequence.isdigit():
        return int(milliseconds), int(sequence)
    return _AFTER_THE_LOG


def answers_in_answered_order(question: Question, answers: dict | None = None) -> dict:
    """The question's answers (the table's, or the given ones), in the order they were counted,
    by answer log id: what ``tally.rebuild`` needs to apply a word cap as the script did."""
    log_ids: dict[str, str] = {}
    table: dict = {}
    rows = Answer.objects.filter(question=question).values_list("participant", "value", "log_id")
    for participant, value, log_id in rows:
        log_ids[participant], table[participant] = log_id, value
    chosen = table if answers is None else answers
    return {
        participant: chosen[participant]
        for participant in sorted(
            chosen, key=lambda each: (_log_order(log_ids.get(each, "")), each)
        )
    }


def _counts_follow(kind: str, counted: dict, buckets: dict[str, list[str]]) -> dict | None:
    """The counts the stored answers make, or None if an answer is counted in a bucket its
    value does not give, or a word cloud holds more distinct words than its cap."""
    counts: dict[str, int] = {}
    for participant, value in counted.items():
        kept = buckets.get(participant, [])
        if not tally.fits_answer(kind, value, kept):
            return None
        for bucket in kept:
            counts[bucket] = counts.get(bucket, 0) + 1
    cap = tally.most_buckets(kind)
    if cap and len(counts) > cap:
        return None
    return counts


def set_aside_of(event_id: int) -> set[str]:
    return set(SetAside.objects.filter(event_id=event_id).values_list("participant", flat=True))


def segments_of(event_id: int, from_tally: bool = False) -> dict[str, str]:
    """Participant -> their segments (``segments.tags_of``), from their answers to the event's
    profile questions: in the table, or (``from_tally``) as Redis counts them now."""
    profile_ids = Question.objects.filter(event_id=event_id, segment=True).values_list(
        "id", flat=True
    )
    given: dict[str, dict[int, object]] = {}
    for question_id in profile_ids:
        if from_tally:
            source = tally.read_answers_sync(question_id)
        else:
            rows = Answer.objects.filter(question_id=question_id)
            source = dict(rows.values_list("participant", "value"))
        for participant, value in source.items():
            given.setdefault(participant, {})[question_id] = value
    return {participant: tags_of(answers) for participant, answers in given.items()}


def _segments_follow(snapshot, buckets: dict, voices: dict, segof: dict, segments: dict) -> bool:
    if any(segof.get(participant, "") != segments.get(participant, "") for participant in voices):
        return False
    counted = {participant: buckets.get(participant, []) for participant in voices}
    expected = tally.segment_counts(counted, segof)
    held = {}
    for segment, (total, counts) in snapshot.segments.items():
        held[f"{segment}|"] = total
        held.update({f"{segment}|{bucket}": count for bucket, count in counts.items()})
    return held == expected


def check_question(
    question: Question, aside: set[str] | None = None, segments: dict[str, str] | None = None
) -> tuple[QuestionCheck, dict]:
    """``aside``: the event's set-aside participants; ``segments``: its participants' segments
    as the tally's profile answers give them (each read here when not given)."""
    if aside is None:
        aside = set_aside_of(question.event_id)
    if segments is None:
        segments = segments_of(question.event_id, from_tally=True)
    counted = tally.read_answers_sync(question.id)
    buckets = tally.read_counted_buckets_sync(question.id)
    rows = dict(Answer.objects.filter(question=question).values_list("participant", "value"))
    check = QuestionCheck(question.id)
    check.missing_rows = sorted(set(counted) - set(rows))
    check.extra_rows = sorted(set(rows) - set(counted))
    check.different_rows = sorted(p for p in set(counted) & set(rows) if counted[p] != rows[p])
    snapshot = tally.read_snapshot_sync(question.id)
    positive = {key: count for key, count in snapshot.counts.items() if count}
    voices = {p: value for p, value in counted.items() if p not in aside}
    check.counts_wrong = positive != _counts_follow(
        question.kind, voices, buckets
    ) or snapshot.total != len(voices)
    check.aside_wrong = tally.aside_members(question.id) != aside
    segof = tally.read_segments_sync(question.id)
    check.segments_wrong = not _segments_follow(snapshot, buckets, voices, segof, segments)
    return check, counted


def repair_question(
    question: Question,
    check: QuestionCheck,
    counted: dict,
    aside: set[str] | None = None,
    segments: dict[str, str] | None = None,
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
            # No log position: the next answer from the log replaces the repaired row.
            update_fields=["value", "answered_at", "log_id", "log_ms", "log_seq"],
        )
    if check.counts_wrong or check.aside_wrong or check.segments_wrong:
        if aside is None:
            aside = set_aside_of(question.event_id)
        if segments is None:
            segments = segments_of(question.event_id, from_tally=True)
        is_open = question.state == Question.State.OPEN
        ordered = answers_in_answered_order(question, counted)
        tally.rebuild(question.id, question.kind, is_open, ordered, aside, segments)


def check_all(repair: bool = False) -> list[QuestionCheck]:
    writer.drain_all()
    checks = []
    asides: dict[int, set[str]] = {}
    segments: dict[int, dict[str, str]] = {}
    for question in Question.objects.order_by("id"):
        if question.event_id not in asides:
            asides[question.event_id] = set_aside_of(question.event_id)
            segments[question.event_id] = segments_of(question.event_id, from_tally=True)
        aside, tags = asides[question.event_id], segments[question.event_id]
        check, counted = check_question(question, aside, tags)
        if repair and check.differences:
            repair_question(question, check, counted, aside, tags)
        checks.append(check)
    return checks


# --- the audience Q&A --------------------------------------------------------------------


@dataclass
class QaCheck:
    event_id: int
    # item -> (votes in Redis, active QaVote rows); None in Redis: the item is not there at all.
    # An item Redis counts that the table does not have shows with None rows.
    votes_wrong: dict[int, tuple[int | None, int | None]] = field(default_factory=dict)

    @property
    def differences(self) -> int:
        return len(self.votes_wrong)


def qa_events() -> list[int]:
    """The events that have a Q&A: a setting or an item."""
    events = Event.objects.filter(Q(qa_config__isnull=False) | Q(qa_items__isnull=False))
    return sorted(set(events.values_list("pk", flat=True)))


def _qa_votes_in_table(event_id: int) -> dict[int, int]:
    rows = QaItem.objects.filter(event_id=event_id).annotate(
        counted=Count("votes", filter=Q(votes__active=True))
    )
    return dict(rows.values_list("pk", "counted"))


def _compare_qa(event_id: int) -> QaCheck:
    table = _qa_votes_in_table(event_id)
    live = qa_tally.read_votes_sync(event_id)
    check = QaCheck(event_id)
    for item_id in sorted(set(table) | set(live)):
        held, rows = live.get(item_id), table.get(item_id)
        if held != rows:
            check.votes_wrong[item_id] = (held, rows)
    return check


def check_qa_event(event_id: int) -> QaCheck:
    """The event's Q&A counts in Redis against its QaVote rows, after the vote log's backlog.

    A vote counted after the drain and before the read shows as a difference; so a difference
    is looked at once more after another drain, and only one still there is reported."""
    check = _compare_qa(event_id)
    if check.differences:
        writer.drain_all()
        check = _compare_qa(event_id)
    return check


def check_qa(repair: bool = False) -> list[QaCheck]:
    """Every event's Q&A; ``repair``: an event with differences is rebuilt in Redis from its
    rows (every phone and screen then takes the whole list again)."""
    writer.drain_all()
    checks = []
    for event_id in qa_events():
        check = check_qa_event(event_id)
        if repair and check.differences:
            qa.rebuild_from_db(event_id)
        checks.append(check)
    return checks

"""Personal codes of attendee-list events: making, importing, revoking, and checking them.

A code is stored as it is typed after ``normalise_code`` (uppercase, no dashes or spaces, O/I/L
read as 0/1), so a badge's ``ABCDE-FGHJK`` typed as ``abcde fghjk`` finds the same row. The
participant id of an attendee is ``a-<row id>`` (``polls.tokens``), so one code counts once per
question however many devices use it.

Revoked codes are mirrored into one Redis set per event, so the answer path asks Redis, not the
database, whether an attendee may still answer. The set always holds a marker member once
mirrored; without it (Redis flushed, or restarted without its AOF) the database decides and the
set is mirrored again. Every failure lands on the side that refuses more: a revoke that cannot
reach Redis changes nothing, a restore that cannot reach Redis leaves the attendee refused.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import secrets
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from redis.exceptions import RedisError

from .codes import GENERATED_ALPHABET, normalise_code
from .models import AttendeeCode, Event
from .redis_client import confirm_replicated_sync, get_async_redis, get_sync_redis
from .tokens import Participant

CODE_LENGTH = 10  # 29**10, about 4e14: guessing one of 20,000 codes takes ~2e10 tries
GROUP = 5
# Imported codes (from a registration system) may be longer, never weaker than generated ones.
# After normalise_code no O, I or L remains.
IMPORTED_CODE_PATTERN = re.compile(r"^[A-HJKMNP-Z0-9]{10,16}$")
MAX_TYPED_CHARS = 64

MAX_CODES = 20_000
MAX_CSV_BYTES = 2 * 1024 * 1024
MAX_REPORTED_ERRORS = 50
LABEL_MAX_CHARS = AttendeeCode._meta.get_field("label").max_length

# Words a first row may hold to be read as a header rather than an attendee.
LABEL_HEADERS = {
    "label",
    "name",
    "attendee",
    "badge",
    "naam",
    "deelnemer",
    "badgetekst",
    "label (optional)",
}
CODE_HEADERS = {"code", "personal code", "persoonlijke code"}

# Not a number, so no attendee id is ever mistaken for it.
MIRRORED = "mirrored"
MIRROR_ATTEMPTS = 5

logger = logging.getLogger(__name__)


def revoked_key(event_id: int) -> str:
    return f"zp:event:{event_id}:revoked"


def generate_code() -> str:
    return "".join(secrets.choice(GENERATED_ALPHABET) for _ in range(CODE_LENGTH))


def display_code(code: str) -> str:
    """In groups of five, as badges show it: ``ABCDE-FGHJK``."""
    return "-".join(code[start : start + GROUP] for start in range(0, len(code), GROUP))


def is_generated_form(code: str) -> bool:
    return len(code) == CODE_LENGTH and all(char in GENERATED_ALPHABET for char in code)


def phone_link(event: Event, code: str, base: str = "") -> str:
    """The badge's link: the phone page with the code, absolute when ``base`` is given."""
    return f"{base.rstrip('/')}{reverse('polls:phone', args=[event.code])}?a={code}"


# Making and importing ----------------------------------------------------------------------


def _fresh_codes(count: int, taken: set[str]) -> list[str]:
    """``count`` new codes, none in ``taken`` nor in the database."""
    codes: set[str] = set()
    while len(codes) < count:
        wanted = count - len(codes)
        candidates = {generate_code() for _ in range(wanted)} - taken - codes
        in_use = set(
            AttendeeCode.objects.filter(code__in=candidates).values_list("code", flat=True)
        )
        codes |= candidates - in_use
    return list(codes)


def _create(event: Event, rows: list[tuple[str, str | None]]) -> list[AttendeeCode]:
    """Rows of (label, code or None), all saved or none; missing codes are generated."""
    for _attempt in range(3):
        given = {code for _label, code in rows if code}
        fresh = iter(_fresh_codes(sum(1 for _label, code in rows if not code), given))
        made = [
            AttendeeCode(event=event, label=label, code=code or next(fresh)) for label, code in rows
        ]
        try:
            with transaction.atomic():
                return AttendeeCode.objects.bulk_create(made, batch_size=1000)
        except IntegrityError:
            # A generated code taken meanwhile by another import: draw again. A given code
            # taken meanwhile fails again, and is reported below.
            if all(code for _label, code in rows):
                break
    raise ValidationError(
        _("A code was taken by another import meanwhile; nothing was saved. Try again."),
        code="code_taken",
    )


def make_codes(event: Event, count: int, labels: list[str] | None = None) -> list[AttendeeCode]:
    """``count`` new personal codes for the event, with ``labels`` (one per code) if given."""
    if not 1 <= count <= MAX_CODES:
        raise ValidationError(
            _("Make between 1 and %(max)d codes at a time.") % {"max": MAX_CODES},
            code="bad_count",
        )
    if labels is not None and len(labels) != count:
        raise ValueError("one label per code")
    labels = [label.strip()[:LABEL_MAX_CHARS] for label in labels or [""] * count]
    return _create(event, [(label, None) for label in labels])


@dataclass(frozen=True)
class _Row:
    line: int
    label: str
    code: str | None


def _error(code: str, message: str, line: int | None = None) -> ValidationError:
    if line is not None:
        message = _("Line %(line)d: %(message)s") % {"line": line, "message": message}
    return ValidationError(message, code=code, params={"line": line})


def _read_text(file) -> str:
    raw = file.read(MAX_CSV_BYTES + 1) if hasattr(file, "read") else bytes(file)
    if isinstance(raw, str):
        raw = raw.encode()
    if len(raw) > MAX_CSV_BYTES:
        raise _error(
            "too_large",
            _("The file is larger than %(max)d MB; split it.") % {"max": MAX_CSV_BYTES >> 20},
        )
    try:
        return raw.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte-order mark
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise _error(
            "bad_encoding", _("not UTF-8 text; save the file as CSV UTF-8."), line
        ) from error


def _delimiter(text: str) -> str:
    # Dutch Excel separates with semicolons (the comma is the decimal sign); a one-column file
    # whose names hold commas is read as comma-separated, and its second "column" then fails
    # as a bad code with its line number.
    sample = text[:20_000]
    return ";" if ";" in sample else "\t" if "\t" in sample else ","


def _is_header(cells: list[str]) -> bool:
    words = [cell.strip().casefold() for cell in cells]
    if not words or words[0] not in LABEL_HEADERS:
        return False
    return len(words) == 1 or words[1] in CODE_HEADERS or not words[1]


def _parse(text: str) -> tuple[list[_Row], list[ValidationError]]:
    rows: list[_Row] = []
    errors: list[ValidationError] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    line = next_line = 1
    attendees = 0
    try:
        for cells in reader:
            # A quoted cell may span lines: a row starts after the previous one ended.
            line, next_line = next_line, reader.line_num + 1
            cells = [cell.strip() for cell in cells]
            while cells and not cells[-1]:  # Excel pads short rows with empty cells
                cells.pop()
            if not cells:
                continue
            if attendees == 0 and not errors and _is_header(cells):
                continue
            attendees += 1
            if attendees > MAX_CODES:
                raise _error(
                    "too_many_rows",
                    _("More than %(max)d attendees; split the file.") % {"max": MAX_CODES},
                )
            rows_error = _row_error(cells, line)
            if rows_error is not None:
                errors.append(rows_error)
                continue
            code = normalise_code(cells[1]) if len(cells) == 2 else ""
            # A quoted label may hold line breaks and tabs; a badge shows one line.
            rows.append(_Row(line, " ".join(cells[0].split()), code or None))
    except csv.Error as error:  # a NUL byte, or a quote left open at the end
        errors.append(_error("bad_csv", _("not readable as CSV (%(why)s).") % {"why": error}, line))
    return rows, errors


def _row_error(cells: list[str], line: int) -> ValidationError | None:
    if len(cells) > 2:
        return _error("too_many_columns", _("expected a label and optionally a code."), line)
    if len(cells[0]) > LABEL_MAX_CHARS:
        return _error(
            "label_too_long",
            _("the label is longer than %(max)d characters.") % {"max": LABEL_MAX_CHARS},
            line,
        )
    if len(cells) == 2 and not IMPORTED_CODE_PATTERN.match(normalise_code(cells[1])):
        return _error(
            "bad_code",
            _("a code is 10 to 16 letters and digits (dashes and spaces allowed)."),
            line,
        )
    return None


def _duplicates(rows: list[_Row]) -> list[ValidationError]:
    errors = []
    first_seen: dict[str, int] = {}
    for row in rows:
        if row.code is None:
            continue
        if row.code in first_seen:
            errors.append(
                _error(
                    "duplicate_code",
                    _("the same code as line %(first)d.") % {"first": first_seen[row.code]},
                    row.line,
                )
            )
        else:
            first_seen[row.code] = row.line
    given = list(first_seen)
    taken: set[str] = set()
    for start in range(0, len(given), 500):
        chunk = given[start : start + 500]
        taken |= set(AttendeeCode.objects.filter(code__in=chunk).values_list("code", flat=True))
    for code in taken:
        # Codes are unique across events; which event holds it is not said.
        errors.append(_error("code_taken", _("this code is already in use."), first_seen[code]))
    return errors


def import_csv(event: Event, file) -> list[AttendeeCode]:
    """Attendees from a CSV file (label[, code] per row), all saved or, on any error, none.

    Raises ValidationError whose ``error_list`` names each bad line (``params["line"]``), at
    most ``MAX_REPORTED_ERRORS`` of them, each with a stable code.
    """
    rows, errors = _parse(_read_text(file))
    errors += _duplicates(rows)
    if errors:
        errors.sort(key=lambda error: error.params["line"] or 0)
        shown = errors[:MAX_REPORTED_ERRORS]
        if len(errors) > len(shown):
            more = len(errors) - len(shown)
            shown.append(_error("more_errors", _("… and %(count)d more errors.") % {"count": more}))
        raise ValidationError(shown)
    if not rows:
        raise _error("empty", _("The file holds no attendees."))
    return _create(event, [(row.label, row.code) for row in rows])


# Revoking -----------------------------------------------------------------------------------


def revoke(event: Event, attendee_ids) -> int:
    """Revoke these codes of the event; returns how many were active. Nothing is revoked when
    Redis cannot be told (raises ``RedisError``), so no revoked code keeps answering."""
    with transaction.atomic():
        ids = list(
            event.attendee_codes.filter(pk__in=attendee_ids, revoked_at__isnull=True)
            .select_for_update()
            .values_list("pk", flat=True)
        )
        if not ids:
            return 0
        AttendeeCode.objects.filter(pk__in=ids).update(revoked_at=timezone.now())
        # Before the commit: if Redis is away, the update is rolled back.
        client = get_sync_redis()
        client.sadd(revoked_key(event.id), *ids)
        _confirm_replicated(client)
    try:
        # Again from the database, now committed: a mirror that read just before the commit
        # may have written the set without these.
        mirror_revoked(event.id)
    except RedisError:
        logger.warning("event %s: revoked set not mirrored again after a revoke", event.id)
    return len(ids)


def restore(event: Event, attendee_ids) -> int:
    """Restore revoked codes of the event; returns how many. The database first, then the
    mirror, even when none was revoked: a restore repeated after Redis was away (``RedisError``,
    and the codes stay refused meanwhile) is how the host mends it."""
    with transaction.atomic():
        restored = event.attendee_codes.filter(
            pk__in=attendee_ids, revoked_at__isnull=False
        ).update(revoked_at=None)
    mirror_revoked(event.id)
    return restored


def _revoked_ids(event_id: int) -> set[int]:
    return set(
        AttendeeCode.objects.filter(event_id=event_id, revoked_at__isnull=False).values_list(
            "pk", flat=True
        )
    )


def _confirm_replicated(client) -> None:
    """With a standby (ZP_REDIS_WAIT_REPLICAS): a revocation the replica lacks would come back
    unrevoked after a failover, so it counts as Redis away."""
    shortfall = confirm_replicated_sync(client)
    if shortfall is not None:
        raise RedisError(f"the revoked set is not on the replicas: {shortfall}")


def mirror_revoked(event_id: int) -> int:
    """Write the event's revoked set in Redis from the database; returns how many are revoked.

    Call it wherever tallies are rebuilt. The set is replaced in one transaction, then the
    database read again: if a revoke or restore landed meanwhile, this mirror may have written
    an older list over it, so it goes again. Raises ``RedisError`` when Redis is away.
    """
    key = revoked_key(event_id)
    revoked = _revoked_ids(event_id)
    for _attempt in range(MIRROR_ATTEMPTS):
        pipe = get_sync_redis().pipeline(transaction=True)
        pipe.delete(key)
        pipe.sadd(key, MIRRORED, *revoked)
        pipe.execute()
        _confirm_replicated(get_sync_redis())
        again = _revoked_ids(event_id)
        if again == revoked:
            break
        revoked = again
    return len(revoked)


# For the lead's join and answer paths ------------------------------------------------------


@database_sync_to_async
def _find_attendee(event_id: int, code: str) -> int | None:
    # One indexed lookup by code whatever is wrong (unknown, revoked, another event's code):
    # all three take the same path and give the same None.
    return (
        AttendeeCode.objects.filter(code=code, event_id=event_id, revoked_at__isnull=True)
        .values_list("pk", flat=True)
        .first()
    )


async def attendee_for_join(event_id: int, typed: str) -> int | None:
    """The attendee id of a valid, unrevoked code of this event as typed or scanned, else None."""
    if not isinstance(typed, str) or len(typed) > MAX_TYPED_CHARS:
        return None
    code = normalise_code(typed)
    if not IMPORTED_CODE_PATTERN.match(code):  # the shape is public; no lookup needed
        return None
    return await _find_attendee(event_id, code)


@database_sync_to_async
def _revoked_in_database(event_id: int, attendee_id: int) -> bool:
    # A code deleted by other means than admin (which only revokes) is refused too.
    return not AttendeeCode.objects.filter(
        pk=attendee_id, event_id=event_id, revoked_at__isnull=True
    ).exists()


_mirroring: set[int] = set()  # events this process is mirroring again


async def is_revoked(event_id: int, attendee_id: int) -> bool:
    """Whether this attendee of the event may no longer answer: one Redis round trip.

    Without the mirror (Redis flushed or restarted without its AOF) or without Redis, the
    database answers, so a revoked code is never let through; the first such call in a process
    mirrors the set again.
    """
    try:
        # SMISMEMBER: Redis 6.2 or later, as dev.py's and Debian 12's are.
        mirrored, revoked = await get_async_redis().smismember(
            revoked_key(event_id), [MIRRORED, str(attendee_id)]
        )
    except (RedisError, OSError):
        return await _revoked_in_database(event_id, attendee_id)
    if mirrored:
        return bool(revoked)
    if event_id not in _mirroring:
        _mirroring.add(event_id)
        try:
            await database_sync_to_async(mirror_revoked)(event_id)
        except (RedisError, OSError):
            pass  # the database answers below, and the next call tries again
        finally:
            _mirroring.discard(event_id)
    return await _revoked_in_database(event_id, attendee_id)


async def revoked(participant: Participant) -> bool:
    """Whether the participant joined with a personal code that has since been revoked (one
    Redis command; nothing at all for open events)."""
    if participant.attendee_id is None:
        return False
    return await is_revoked(participant.event_id, participant.attendee_id)


def admitted(participant: Participant, event_spec: dict) -> bool:
    """Whether the event, as its state now says, takes this participant's token: an
    attendee-list event takes only tokens of a personal code (not one issued while it was open)."""
    return participant.attendee_id is not None or not event_spec.get("attendees_only")

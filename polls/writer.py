"""The stream writer: drains the Redis answer log into the Answer table.

Entries are read through a consumer group and acknowledged (then deleted) only after the
database transaction committed, so a writer killed mid-batch loses nothing: on restart it first
re-reads its own pending entries (in order), and entries left pending by another writer that
died are claimed after ``ZP_WRITER_CLAIM_SECONDS``. With a standby (``ZP_REDIS_WAIT_REPLICAS``)
a batch goes to the database only once the replicas have its entries: an entry the primary holds
alone may vanish in a failover (its phone, never acknowledged, sends the answer again to the
promoted node), and the table must not keep an answer the tally then lacks.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction
from redis.exceptions import RedisError, ResponseError

from . import metrics, qa_tally, tally
from .models import Answer, QaItem, QaVote, Question
from .redis_client import confirm_replicated_sync, get_sync_redis

logger = logging.getLogger(__name__)


def claim_idle_ms() -> int:
    """How long an entry read by a writer may wait unwritten before another writer takes it:
    its writer died (a host taken away mid-batch). A live writer commits a batch within a
    second or so; an entry taken from a slow one is written twice at most, and the upsert keeps
    the later log position, so the second write changes nothing."""
    return int(settings.ZP_WRITER_CLAIM_SECONDS * 1000)


class NotReplicated(RedisError):
    """The replicas do not have the entries read yet: nothing written, the batch read again."""


def _ensure_groups(client, streams: list[str]) -> None:
    for stream in streams:
        try:
            client.xgroup_create(stream, tally.WRITER_GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise


def _streams(client) -> list[str]:
    """The answer logs and the Q&A's vote logs (polls.qa_tally): one group read drains both."""
    answers = client.smembers(tally.LOG_REGISTRY)
    votes = client.smembers(qa_tally.QA_LOG_REGISTRY)
    return sorted(member.decode() for member in answers | votes)


def _is_vote_log(stream: str) -> bool:
    return "{qa:" in stream


def _log_position(entry_id: bytes) -> tuple[int, int]:
    milliseconds, sequence = entry_id.split(b"-")
    return int(milliseconds), int(sequence)


def _entry_order(entry: tuple[str, bytes, dict]) -> tuple[str, int, int]:
    return entry[0], *_log_position(entry[1])


_UPSERT_FIELDS = ["question", "participant", "value", "answered_at", "log_id", "log_ms", "log_seq"]
# Rows per statement where each value is a parameter (SQLite): far below its limit.
VALUES_ROWS = 500


def _upsert_sql(rows_sql: str) -> str:
    """Insert the answers; a row already there takes the entry only if the entry is later in
    the log than what the row holds (or the row holds no log position: a repair's). Two
    writers drain one log at once, and a participant's first answer and its change may go to
    different writers: whichever commits last, the row ends with the change. One statement
    (PostgreSQL's and SQLite's ON CONFLICT ... DO UPDATE ... WHERE): no lock beyond the rows',
    and no IntegrityError when writers insert the same new row at once."""
    quote = connection.ops.quote_name
    table = quote(Answer._meta.db_table)
    columns = [quote(Answer._meta.get_field(name).column) for name in _UPSERT_FIELDS]
    question, participant, *updated = columns
    log_ms, log_seq = columns[-2:]
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) {rows_sql}"
        f" ON CONFLICT ({question}, {participant}) DO UPDATE SET "
        + ", ".join(f"{column} = excluded.{column}" for column in updated)
        + f" WHERE {table}.{log_ms} IS NULL OR {table}.{log_ms} < excluded.{log_ms}"
        f" OR ({table}.{log_ms} = excluded.{log_ms} AND {table}.{log_seq} < excluded.{log_seq})"
    )


def _column_type(name: str) -> str:
    field = Answer._meta.get_field(name)
    return field.rel_db_type(connection) if field.is_relation else field.db_type(connection)


def _upsert(rows: list[tuple]) -> None:
    """``rows``: the ``_UPSERT_FIELDS`` of each answer, the value as JSON text."""
    if not rows:
        return
    adapt_time = connection.ops.adapt_datetimefield_value
    rows = [(*row[:3], adapt_time(row[3]), *row[4:]) for row in rows]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One array a column (as Django's own bulk insert there): seven parameters
            # whatever the batch, not seven a row for the driver to parse and bind.
            casts = ", ".join(f"%s::{_column_type(name)}[]" for name in _UPSERT_FIELDS)
            columns = [list(column) for column in zip(*rows, strict=True)]
            # Built from the model's names and types alone; the answers are parameters.
            sql = _upsert_sql(f"SELECT * FROM unnest({casts})")  # noqa: S608
            cursor.execute(sql, columns)
            return
        placeholders = "(" + ", ".join(["%s"] * len(_UPSERT_FIELDS)) + ")"
        for start in range(0, len(rows), VALUES_ROWS):
            chunk = rows[start : start + VALUES_ROWS]
            values = "VALUES " + ", ".join([placeholders] * len(chunk))
            cursor.execute(_upsert_sql(values), [value for row in chunk for value in row])


def _write(entries: list[tuple[str, bytes, dict]]) -> int:
    """Upsert the entries' answers (the latest per participant wins, in the batch and against
    the table); returns the answers sent to the table."""
    latest: dict[tuple[int, str], tuple] = {}
    existing = set(
        Question.objects.filter(
            pk__in={tally.question_id_from_log_key(stream) for stream, _id, _f in entries}
        ).values_list("pk", flat=True)
    )
    # Stream order decides which of a participant's answers is the latest.
    for stream, entry_id, fields in sorted(entries, key=_entry_order):
        question_id = tally.question_id_from_log_key(stream)
        if question_id not in existing:
            logger.warning("dropping answer log entry for deleted question %s", question_id)
            continue
        participant = fields[b"p"].decode()
        latest[(question_id, participant)] = (
            question_id,
            participant,
            fields[b"v"].decode(),  # JSON already, as the tally encoded it
            datetime.fromtimestamp(int(fields[b"t"]) / 1000, tz=UTC),
            entry_id.decode(),
            *_log_position(entry_id),
        )
    # In key order: two writers upserting overlapping rows take the rows' locks in one order,
    # so neither waits on the other in a circle (PostgreSQL would abort one as a deadlock).
    _upsert([latest[key] for key in sorted(latest)])
    return len(latest)


_VOTE_FIELDS = ["item", "participant", "active", "voted_at", "log_ms", "log_seq"]


def _vote_upsert_sql(rows: int) -> str:
    """As ``_upsert_sql`` for answers: a vote row takes an entry only if it is later in the log
    than what the row holds, so two writers, and an entry written twice, end the same."""
    quote = connection.ops.quote_name
    table = quote(QaVote._meta.db_table)
    columns = [quote(QaVote._meta.get_field(name).column) for name in _VOTE_FIELDS]
    item, participant, *updated = columns
    log_ms, log_seq = columns[-2:]
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    values = "VALUES " + ", ".join([row] * rows)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) {values}"
        f" ON CONFLICT ({item}, {participant}) DO UPDATE SET "
        + ", ".join(f"{column} = excluded.{column}" for column in updated)
        + f" WHERE {table}.{log_ms} IS NULL OR {table}.{log_ms} < excluded.{log_ms}"
        f" OR ({table}.{log_ms} = excluded.{log_ms} AND {table}.{log_seq} < excluded.{log_seq})"
    )


def _write_votes(entries: list[tuple[str, bytes, dict]]) -> int:
    """Upsert the entries' votes (the latest per participant and item wins); returns how many
    rows were sent to the table. Votes on items deleted meanwhile are dropped."""
    if not entries:
        return 0
    item_ids = {int(fields[b"i"]) for _stream, _id, fields in entries}
    existing = set(QaItem.objects.filter(pk__in=item_ids).values_list("pk", flat=True))
    latest: dict[tuple[int, str], tuple] = {}
    adapt_time = connection.ops.adapt_datetimefield_value
    for _stream, entry_id, fields in sorted(entries, key=_entry_order):
        item_id = int(fields[b"i"])
        if item_id not in existing:
            continue
        participant = fields[b"p"].decode()
        voted_at = datetime.fromtimestamp(int(fields[b"t"]) / 1000, tz=UTC)
        latest[(item_id, participant)] = (
            item_id,
            participant,
            fields[b"v"] == b"1",
            adapt_time(voted_at),
            *_log_position(entry_id),
        )
    rows = [latest[key] for key in sorted(latest)]
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(rows), VALUES_ROWS):
            chunk = rows[start : start + VALUES_ROWS]
            # Built from the model's names alone; the votes are parameters.
            sql = _vote_upsert_sql(len(chunk))
            cursor.execute(sql, [value for row in chunk for value in row])
    return len(rows)


def _acknowledge(client, entries: list[tuple[str, bytes, dict]]) -> None:
    by_stream: dict[str, list[bytes]] = {}
    for stream, entry_id, _fields in entries:
        by_stream.setdefault(stream, []).append(entry_id)
    pipe = client.pipeline(transaction=False)
    for stream, ids in by_stream.items():
        pipe.xack(stream, tally.WRITER_GROUP, *ids)
        pipe.xdel(stream, *ids)
    pipe.execute()


def _flatten(response) -> list[tuple[str, bytes, dict]]:
    entries = []
    for stream, items in response or []:
        name = stream.decode() if isinstance(stream, bytes) else stream
        for entry_id, fields in items:
            if fields:  # a pending entry deleted meanwhile comes back empty
                entries.append((name, entry_id, fields))
    return entries


def drain_once(consumer: str, count: int = 1000, block_ms: int | None = None) -> int:
    """One round: own pending entries, entries abandoned by dead writers, then new ones."""
    client = get_sync_redis()
    streams = _streams(client)
    if not streams:
        return 0
    _ensure_groups(client, streams)
    entries = _flatten(
        client.xreadgroup(tally.WRITER_GROUP, consumer, dict.fromkeys(streams, "0"), count=count)
    )
    for stream in streams:
        claimed = client.xautoclaim(
            stream, tally.WRITER_GROUP, consumer, claim_idle_ms(), start_id="0-0", count=count
        )
        entries += _flatten([(stream, claimed[1])])
    if not entries:
        entries = _flatten(
            client.xreadgroup(
                tally.WRITER_GROUP,
                consumer,
                dict.fromkeys(streams, ">"),
                count=count,
                block=block_ms,
            )
        )
    if not entries:
        return 0
    # The read moved the group's pending list, a write: WAIT after it covers the entries too.
    # Not written now, they stay pending, and the next round reads them again first.
    shortfall = confirm_replicated_sync(client)
    if shortfall is not None:
        raise NotReplicated(shortfall)
    started = time.perf_counter()
    votes = [entry for entry in entries if _is_vote_log(entry[0])]
    answers = [entry for entry in entries if not _is_vote_log(entry[0])]
    written = _write(answers) + _write_votes(votes)
    _acknowledge(client, entries)
    metrics.writer_batch(time.perf_counter() - started)
    return written


def drain_all(consumer: str = "writer-1") -> int:
    """Drain until the log is empty (tests, rebuilds, shutdown)."""
    total = 0
    while True:
        written = drain_once(consumer)
        if written == 0 and not _has_backlog():
            return total
        total += written


def _has_backlog() -> bool:
    client = get_sync_redis()
    return any(client.xlen(stream) for stream in _streams(client))

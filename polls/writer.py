"""The stream writer: drains the Redis answer log into the Answer table.

Entries are read through a consumer group and acknowledged (then deleted) only after the
database transaction committed, so a writer killed mid-batch loses nothing: on restart it first
re-reads its own pending entries (in order), and entries left pending by another writer that
died are claimed after ``CLAIM_IDLE_MS``.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

from django.db import transaction
from redis.exceptions import ResponseError

from . import metrics, tally
from .models import Answer, Question
from .redis_client import get_sync_redis

logger = logging.getLogger(__name__)

CLAIM_IDLE_MS = 60_000


def _ensure_groups(client, streams: list[str]) -> None:
    for stream in streams:
        try:
            client.xgroup_create(stream, tally.WRITER_GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise


def _streams(client) -> list[str]:
    return sorted(member.decode() for member in client.smembers(tally.LOG_REGISTRY))


def _entry_order(entry: tuple[str, bytes, dict]) -> tuple[str, int, int]:
    milliseconds, sequence = entry[1].split(b"-")
    return entry[0], int(milliseconds), int(sequence)


def _write(entries: list[tuple[str, bytes, dict]]) -> int:
    """Upsert the entries' answers (the latest per participant wins); returns rows written."""
    latest: dict[tuple[int, str], Answer] = {}
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
        latest[(question_id, participant)] = Answer(
            question_id=question_id,
            participant=participant,
            value=json.loads(fields[b"v"]),
            answered_at=datetime.fromtimestamp(int(fields[b"t"]) / 1000, tz=UTC),
            log_id=entry_id.decode(),
        )
    if latest:
        with transaction.atomic():
            Answer.objects.bulk_create(
                list(latest.values()),
                update_conflicts=True,
                unique_fields=["question", "participant"],
                update_fields=["value", "answered_at", "log_id"],
            )
    return len(latest)


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
            stream, tally.WRITER_GROUP, consumer, CLAIM_IDLE_MS, start_id="0-0", count=count
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
    started = time.perf_counter()
    written = _write(entries)
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

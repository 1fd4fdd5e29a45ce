"""The only module that talks to Redis about tallies: keys, the Lua script, the answer log.

Per question (hash tag ``{q:ID}`` keeps one question on one cluster slot):
- ``answers``: participant -> "bucket,bucket\\n<value json>" (their current answer)
- ``counts``:  bucket -> number of respondents in it
- ``meta``:    open (1/0), version (bumped on every counted change), total (respondents)
- ``seen``:    participant:message-id pairs already handled (a resent message counts once)
- ``log``:     the answer stream the writer drains into the database
- ``aside``:   participants the host set aside (``aside_key``): their answers are kept, not counted
- ``segof``:   participant -> their segments ("12:34,15:40", ``polls.segments.tags_of``), as their
  answer here is counted in them
- ``segcounts``: "<segment>|<bucket>" -> count and "<segment>|" -> respondents: every result per
  segment, kept by the same script call that counts the answer (no second round trip)

Answers that arrive in the same moment go to Redis in one pipeline (``_Batcher``): with
``appendfsync always`` Redis then fsyncs once per batch instead of once per answer. With a
standby (``ZP_REDIS_WAIT_REPLICAS``) the same pipeline ends in WAIT: a batch is acknowledged
only once the replicas have it, else its phones hear ``unavailable`` and send again, so a
failover to the replica loses no acknowledged answer. The host's writes here wait alike.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from . import kinds, quiz
from .redis_client import (
    confirm_replicated_sync,
    forget_demoted,
    get_async_redis,
    get_sync_redis,
    queue_replication,
    replication_shortfall,
)

LOG_REGISTRY = "zp:logs"
WRITER_GROUP = "writers"
MAX_BATCH = 256


class TallyUnavailable(Exception):
    """Redis could not be reached; nothing was counted."""


def question_keys(question_id: int) -> dict[str, str]:
    tag = f"zp:{{q:{question_id}}}"
    return {
        "answers": f"{tag}:answers",
        "counts": f"{tag}:counts",
        "meta": f"{tag}:meta",
        "seen": f"{tag}:seen",
        "hidden": f"{tag}:hidden",
        "changes": f"{tag}:changes",
        "log": f"{tag}:log",
        "segof": f"{tag}:segof",
        "segcounts": f"{tag}:segcounts",
        "score": f"{tag}:score",
    }


def quiz_keys(event_id: int) -> dict[str, str]:
    """An event's leaderboard: total points and answer time per participant, and the sorted set
    of both (``polls.quiz.board_score``). Written by the answer script with a question's keys:
    on a Redis Cluster a scored question's keys would need the event's tag (docs/quiz.md)."""
    tag = f"zp:{{e:{event_id}}}:quiz"
    return {"points": f"{tag}:points", "time": f"{tag}:time", "board": f"{tag}:board"}


# Scored questions whose deadline the keepers (polls.deadlines) watch: question id by deadline.
DEADLINES_KEY = "zp:quiz:deadlines"


def question_id_from_log_key(key: str) -> int:
    return int(key.split("{q:", 1)[1].split("}", 1)[0])


def buckets_for(kind: str, value: Any) -> list[str]:
    """The count buckets an answer falls in (each kind's ``buckets``: option ids, the number
    given, words, ``<option>@<rank>`` ...). Exact means, ranks and points follow from them."""
    return kinds.get(kind).buckets(value)


# The word cap's rule, shared by the scripts that count and uncount a stored answer's buckets:
# a word cloud (most_words > 0) counts a new word only while it has room, and drops a word
# nobody gives any more; other kinds keep their zero counts. Returns the buckets counted.
# How a question records that a participant is in no segment (said "rather not say").
NO_SEGMENTS = "-"

COUNTING = (
    """
local function count_buckets(counts, buckets, most_words)
  local counted = {}
  for bucket in string.gmatch(buckets, '[^,]+') do
    if most_words == 0 or redis.call('HEXISTS', counts, bucket) == 1
        or redis.call('HLEN', counts) < most_words then
      redis.call('HINCRBY', counts, bucket, 1)
      counted[#counted + 1] = bucket
    end
  end
  return table.concat(counted, ',')
end
local function uncount_buckets(counts, buckets, most_words)
  for bucket in string.gmatch(buckets, '[^,]+') do
    if redis.call('HINCRBY', counts, bucket, -1) <= 0 and most_words > 0 then
      redis.call('HDEL', counts, bucket)
    end
  end
end
-- A participant's segments as a question holds them: nil when it was never told, '' for none
-- (stored as NO_SEGMENTS, so a line that still believes an old segment cannot put it back).
local function held_segments(segof, participant)
  local tags = redis.call('HGET', segof, participant)
  if tags == '"""
    + NO_SEGMENTS
    + """' then
    return ''
  end
  return tags or nil
end
-- Per segment (tags "12:34,15:40"): the respondent ("<tag>|") and their counted buckets
-- ("<tag>|<bucket>") in or out; a count that reaches zero goes, so the hash holds what is there.
local function count_segments(segcounts, tags, buckets, delta)
  for segment in string.gmatch(tags, '[^,]+') do
    local prefix = segment .. '|'
    if redis.call('HINCRBY', segcounts, prefix, delta) <= 0 then
      redis.call('HDEL', segcounts, prefix)
    end
    for bucket in string.gmatch(buckets, '[^,]+') do
      if redis.call('HINCRBY', segcounts, prefix .. bucket, delta) <= 0 then
        redis.call('HDEL', segcounts, prefix .. bucket)
      end
    end
  end
end
"""
)

RECORD_ANSWER = (
    COUNTING
    + """
local answers, counts, meta, seen = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local log, changes = KEYS[5], KEYS[6]
local participant, message_id, value, buckets, at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local most_changes = tonumber(ARGV[6])
-- A word cloud's cap on distinct words; 0 for the kinds whose buckets the question itself
-- bounds (options, scale points): no cap, and their zero counts stay.
local most_words = tonumber(ARGV[7])
-- A profile question asked on join takes answers whatever its open flag (ARGV[9] = '1').
if ARGV[9] ~= '1' and redis.call('HGET', meta, 'open') ~= '1' then
  return {'not_open', 0}
end
if redis.call('SISMEMBER', seen, participant .. ':' .. message_id) == 1 then
  return {'duplicate', tonumber(redis.call('HGET', meta, 'version') or '0')}
end
-- A scored question with a time limit takes nothing the server timed after its deadline.
local deadline = tonumber(redis.call('HGET', meta, 'deadline') or '0')
if deadline > 0 and tonumber(at) > deadline then
  return {'too_late', 0}
end
if redis.call('HINCRBY', changes, participant, 1) > most_changes then
  return {'rate_limited', 0}
end
redis.call('SADD', seen, participant .. ':' .. message_id)
if redis.call('SISMEMBER', KEYS[7], participant) == 1 then
  -- Set aside by the host: kept and logged like any answer (the database has it, a restore
  -- counts what fits), counted nowhere, and acknowledged alike so a script cannot tell.
  local kept = redis.call('HGET', answers, participant)
  if kept and string.sub(kept, string.find(kept, '\\n', 1, true) + 1) == value then
    return {'unchanged', tonumber(redis.call('HGET', meta, 'version') or '0')}
  end
  redis.call('HSET', answers, participant, buckets .. '\\n' .. value)
  local version = redis.call('HINCRBY', meta, 'version', 1)
  redis.call('XADD', log, '*', 'p', participant, 'v', value, 't', at, 'm', message_id)
  return {'ok', version}
end
local old = redis.call('HGET', answers, participant)
-- Compared by value: under the word cap the stored buckets may be fewer than the value's.
if old and string.sub(old, string.find(old, '\\n', 1, true) + 1) == value then
  return {'unchanged', tonumber(redis.call('HGET', meta, 'version') or '0')}
end
-- The segments this question counts the participant in: as a profile answer last moved them
-- (MOVE_SEGMENTS), else as the server knew them (ARGV[8]), which then stay with the question.
local segof, segcounts = KEYS[8], KEYS[9]
local tags = held_segments(segof, participant)
if not tags then
  tags = ARGV[8]
  if tags ~= '' then
    redis.call('HSET', segof, participant, tags)
  end
end
if old then
  local old_buckets = string.sub(old, 1, string.find(old, '\\n', 1, true) - 1)
  uncount_buckets(counts, old_buckets, most_words)
  count_segments(segcounts, tags, old_buckets, -1)
else
  redis.call('HINCRBY', meta, 'total', 1)
end
-- Only the buckets counted are stored, so a later change takes back exactly these.
local counted = count_buckets(counts, buckets, most_words)
count_segments(segcounts, tags, counted, 1)
local stored = counted .. '\\n' .. value
redis.call('HSET', answers, participant, stored)
local version = redis.call('HINCRBY', meta, 'version', 1)
redis.call('XADD', log, '*', 'p', participant, 'v', value, 't', at, 'm', message_id)
-- A scored question (ARGV[10]: the answer's closeness in thousandths, polls.quiz): its points
-- replace the participant's earlier ones for it, in the event's totals and leaderboard.
if ARGV[10] ~= '' then
  local started = tonumber(redis.call('HGET', meta, 'started') or at)
  local window = tonumber(redis.call('HGET', meta, 'window') or '30000')
  local elapsed = math.max(0, tonumber(at) - started)
  local speed = 1000 - math.floor(500 * math.min(elapsed, window) / window)
  local points = math.floor(tonumber(ARGV[10]) * speed / 1000)
  local score, totals, times, board = KEYS[10], KEYS[11], KEYS[12], KEYS[13]
  local gained, spent = points, elapsed
  local before = redis.call('HGET', score, participant)
  if before then
    local comma = string.find(before, ',', 1, true)
    gained = points - tonumber(string.sub(before, 1, comma - 1))
    spent = elapsed - tonumber(string.sub(before, comma + 1))
  end
  redis.call('HSET', score, participant, string.format('%d,%d', points, elapsed))
  local total = redis.call('HINCRBY', totals, participant, string.format('%d', gained))
  local time = redis.call('HINCRBY', times, participant, string.format('%d', spent))
  local rank = string.format('%d', total * """
    + str(10**10)
    + """ - math.min(time, """
    + str(10**10 - 1)
    + """))
  redis.call('ZADD', board, rank, participant)
end
return {'ok', version}
"""
)


# Answers one participant may give to one question (resends excluded): changing your mind is
# fine, a script flipping an answer all the time is not.
MOST_CHANGES_PER_QUESTION = 50


@dataclass(frozen=True)
class Outcome:
    """What the tally did with one answer: ok, unchanged, duplicate, not_open or rate_limited."""

    status: str
    version: int

    @property
    def counted(self) -> bool:
        return self.status in ("ok", "unchanged", "duplicate")


@dataclass(frozen=True)
class Snapshot:
    question_id: int
    version: int
    total: int
    counts: dict[str, int]
    hidden: frozenset[str] = frozenset()
    # Per segment tag (``polls.segments.tag``): (respondents, counts) of those in it.
    segments: dict[str, tuple[int, dict[str, int]]] = field(default_factory=dict)


class _Batcher:
    """Collects the answers of one event loop and sends each batch as one pipeline."""

    def __init__(self) -> None:
        self.pending: list[tuple[list[str], list[str], asyncio.Future]] = []
        self.task: asyncio.Task | None = None
        self.script = None

    async def submit(self, keys: list[str], args: list[str]) -> Outcome:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((keys, args, future))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        client = get_async_redis()
        if self.script is None:
            self.script = client.register_script(RECORD_ANSWER)
        script = self.script
        while self.pending:
            batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
            try:
                pipe = client.pipeline(transaction=False)
                for keys, args, _future in batch:
                    await script(keys=keys, args=args, client=pipe)
                pipe.sadd(LOG_REGISTRY, *{keys[4] for keys, _args, _future in batch})
                waiting = queue_replication(pipe)
                results = await pipe.execute(raise_on_error=False)
            except (RedisError, OSError) as error:
                _refuse(batch, error)
                continue
            # Counted on the primary but not known to be on the replica: not acknowledged. The
            # phones send again with the same ids, and the script's ``seen`` set makes what
            # did count (here, or on the replica once promoted) count once.
            shortfall = replication_shortfall(results) if waiting else None
            if shortfall is not None:
                _refuse(batch, shortfall)
                continue
            for (_keys, _args, future), result in zip(batch, results, strict=False):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    await forget_demoted(client, result)
                    future.set_exception(TallyUnavailable(str(result)))
                else:
                    status, version = result
                    status = status.decode() if isinstance(status, bytes) else status
                    future.set_result(Outcome(status, int(version)))


def _refuse(batch: list, reason: object) -> None:
    for _keys, _args, future in batch:
        if not future.done():
            future.set_exception(TallyUnavailable(str(reason)))


def _replicated(client) -> None:
    """After a host's (sync) write of the tally: TallyUnavailable unless the wanted replicas
    have it. The caller's transaction then rolls back, and its retry (polls.actions) writes the
    flags from the database again, so a failover cannot bring back flags the host changed."""
    shortfall = confirm_replicated_sync(client)
    if shortfall is not None:
        raise TallyUnavailable(shortfall)


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batcher] = (
    weakref.WeakKeyDictionary()
)


def _batcher() -> _Batcher:
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = _batchers[loop] = _Batcher()
    return batcher


def most_buckets(kind: str) -> int:
    """The script's cap on distinct buckets: a word cloud's word cap, else none (0)."""
    return kinds.get(kind).most_buckets()


def encode_value(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


async def record_answer(
    question_id: int,
    kind: str,
    participant: str,
    message_id: str,
    value: Any,
    segments: str = "",
    always_open: bool = False,
    scored: tuple[int, int] | None = None,
) -> Outcome:
    """Count one answer atomically; the answer replaces the participant's previous one.

    ``segments``: the participant's segments as the server knows them (``segments.tags_of``);
    the question's own record of them wins. ``always_open``: a profile question asked on join,
    answered whatever the question's open flag. ``scored``: (event id, the answer's closeness,
    ``polls.quiz.closeness``) of a scored question, whose points the same call keeps."""
    keys = question_keys(question_id)
    board = quiz_keys(scored[0] if scored else 0)
    args = [
        participant,
        message_id,
        encode_value(value),
        ",".join(buckets_for(kind, value)),
        str(int(time.time() * 1000)),
        str(MOST_CHANGES_PER_QUESTION),
        str(most_buckets(kind)),
        segments,
        "1" if always_open else "0",
        "" if scored is None else str(scored[1]),
    ]
    return await _batcher().submit(
        [
            keys["answers"],
            keys["counts"],
            keys["meta"],
            keys["seen"],
            keys["log"],
            keys["changes"],
            aside_key(question_id),
            keys["segof"],
            keys["segcounts"],
            keys["score"],
            board["points"],
            board["time"],
            board["board"],
        ],
        args,
    )


def _decode_answer(stored: bytes | None) -> Any:
    if stored is None:
        return None
    return json.loads(stored.split(b"\n", 1)[1])


async def answer_of(question_id: int, participant: str) -> Any:
    """The participant's current answer to the question, or None."""
    try:
        stored = await get_async_redis().hget(question_keys(question_id)["answers"], participant)
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error
    return _decode_answer(stored)


async def answers_across(question_ids: list[int], participant: str) -> dict[int, Any]:
    """One participant's current answers to several questions, in one round trip."""
    try:
        async with get_async_redis().pipeline(transaction=False) as pipe:
            for question_id in question_ids:
                pipe.hget(question_keys(question_id)["answers"], participant)
            stored = await pipe.execute()
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error
    return {
        question_id: _decode_answer(raw)
        for question_id, raw in zip(question_ids, stored, strict=True)
        if raw is not None
    }


ANSWERS_PER_READ = 1000


async def answers_of(question_id: int, participants: list[str]) -> dict[str, Any]:
    """Many participants' current answers at once (a host's change reaching thousands of phones
    needs each one's own answer): HMGETs of ``ANSWERS_PER_READ`` fields in one pipeline."""
    key = question_keys(question_id)["answers"]
    try:
        async with get_async_redis().pipeline(transaction=False) as pipe:
            for start in range(0, len(participants), ANSWERS_PER_READ):
                pipe.hmget(key, participants[start : start + ANSWERS_PER_READ])
            replies = await pipe.execute()
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error
    stored = [value for reply in replies for value in reply]
    return {
        participant: _decode_answer(value)
        for participant, value in zip(participants, stored, strict=True)
        if value is not None
    }


def _segments(segcounts: dict[bytes, bytes]) -> dict[str, tuple[int, dict[str, int]]]:
    totals: dict[str, int] = {}
    counts: dict[str, dict[str, int]] = {}
    for key, count in segcounts.items():
        segment, _bar, bucket = key.decode().partition("|")
        if bucket:
            counts.setdefault(segment, {})[bucket] = int(count)
        else:
            totals[segment] = int(count)
    return {segment: (total, counts.get(segment, {})) for segment, total in totals.items()}


def _snapshot(question_id: int, meta: dict, counts: dict, hidden: set, segcounts: dict) -> Snapshot:
    return Snapshot(
        question_id=question_id,
        version=int(meta.get(b"version", 0)),
        total=int(meta.get(b"total", 0)),
        counts={key.decode(): int(count) for key, count in counts.items()},
        hidden=frozenset(word.decode() for word in hidden),
        segments=_segments(segcounts),
    )


def _queue_snapshot_reads(pipe, keys: dict[str, str]) -> None:
    pipe.hgetall(keys["meta"])
    pipe.hgetall(keys["counts"])
    pipe.smembers(keys["hidden"])
    pipe.hgetall(keys["segcounts"])


async def read_versions(question_ids: list[int]) -> dict[int, int]:
    try:
        pipe = get_async_redis().pipeline(transaction=False)
        for question_id in question_ids:
            pipe.hget(question_keys(question_id)["meta"], "version")
        values = await pipe.execute()
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error
    return {qid: int(value or 0) for qid, value in zip(question_ids, values, strict=True)}


async def read_snapshot(question_id: int) -> Snapshot:
    keys = question_keys(question_id)
    try:
        pipe = get_async_redis().pipeline(transaction=True)
        _queue_snapshot_reads(pipe, keys)
        meta, counts, hidden, segcounts = await pipe.execute()
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error
    return _snapshot(question_id, meta, counts, hidden, segcounts)


def read_snapshot_sync(question_id: int) -> Snapshot:
    keys = question_keys(question_id)
    try:
        pipe = get_sync_redis().pipeline(transaction=True)
        _queue_snapshot_reads(pipe, keys)
        meta, counts, hidden, segcounts = pipe.execute()
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error
    return _snapshot(question_id, meta, counts, hidden, segcounts)


def read_answers_sync(question_id: int) -> dict[str, Any]:
    """Every participant's current answer (for checks and exports)."""
    stored = get_sync_redis().hgetall(question_keys(question_id)["answers"])
    return {participant.decode(): _decode_answer(raw) for participant, raw in stored.items()}


def read_segments_sync(question_id: int) -> dict[str, str]:
    """Participant -> the segments this question counts their answer in."""
    stored = get_sync_redis().hgetall(question_keys(question_id)["segof"])
    return {
        participant.decode(): "" if tags.decode() == NO_SEGMENTS else tags.decode()
        for participant, tags in stored.items()
    }


def _counted_buckets(stored: bytes) -> list[str]:
    return [bucket for bucket in stored.split(b"\n", 1)[0].decode().split(",") if bucket]


def read_counted_buckets_sync(question_id: int) -> dict[str, list[str]]:
    """The buckets each participant's answer is counted in: under a word cap, fewer than its
    words when the cloud was full."""
    stored = get_sync_redis().hgetall(question_keys(question_id)["answers"])
    return {participant.decode(): _counted_buckets(raw) for participant, raw in stored.items()}


def set_open(question_id: int, is_open: bool) -> None:
    """Open or close a question for answers; the Lua script checks this flag atomically."""
    try:
        client = get_sync_redis()
        client.hset(question_keys(question_id)["meta"], "open", "1" if is_open else "0")
        _replicated(client)
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error


def set_quiz_clocks(clocks: dict[int, tuple[int, int | None, int]]) -> None:
    """Scored questions opening: (first opening ms, deadline ms or None, speed window ms) each,
    which the answer script scores and refuses late answers by, and the deadlines the keepers
    close them at. In the host's transaction, before the open flags."""
    try:
        client = get_sync_redis()
        pipe = client.pipeline(transaction=False)
        for question_id, (started, deadline, window) in clocks.items():
            meta = question_keys(question_id)["meta"]
            pipe.hset(meta, mapping={"started": started, "window": window})
            if deadline is None:
                pipe.hdel(meta, "deadline")
                pipe.zrem(DEADLINES_KEY, question_id)
            else:
                pipe.hset(meta, "deadline", deadline)
                pipe.zadd(DEADLINES_KEY, {str(question_id): deadline})
        pipe.execute()
        _replicated(client)
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error


def forget_deadlines(question_ids: list[int]) -> None:
    """Questions the host closed before their deadline: nothing left for the keepers."""
    try:
        get_sync_redis().zrem(DEADLINES_KEY, *[str(qid) for qid in question_ids])
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error


async def claim_due_deadlines(now_ms: int) -> list[int]:
    """The questions whose deadline has passed, each claimed by one caller only (ZREM)."""
    client = get_async_redis()
    try:
        due = await client.zrangebyscore(DEADLINES_KEY, "-inf", now_ms, start=0, num=20)
        claimed = []
        for raw in due:
            if await client.zrem(DEADLINES_KEY, raw):
                claimed.append(int(raw))
        return claimed
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error


def claim_overdue_deadlines(now_ms: int) -> list[int]:
    """``claim_due_deadlines`` for a process without an event loop (the answer writer)."""
    client = get_sync_redis()
    try:
        due = client.zrangebyscore(DEADLINES_KEY, "-inf", now_ms, start=0, num=20)
        return [int(raw) for raw in due if client.zrem(DEADLINES_KEY, raw)]
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error


def set_open_many(flags: dict[int, bool]) -> None:
    """Several questions' flags in one round trip (``set_open`` for each)."""
    try:
        client = get_sync_redis()
        pipe = client.pipeline(transaction=False)
        for question_id, is_open in flags.items():
            pipe.hset(question_keys(question_id)["meta"], "open", "1" if is_open else "0")
        pipe.execute()
        _replicated(client)
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error


def set_word_hidden(question_id: int, word: str, hidden: bool, also: tuple[str, ...] = ()) -> None:
    """Hide a word-cloud word from every screen (or show it again, with its ``also`` forms);
    screens get a new version."""
    keys = question_keys(question_id)
    try:
        client = get_sync_redis()
        pipe = client.pipeline(transaction=True)
        if hidden:
            pipe.sadd(keys["hidden"], word, *also)
        else:
            pipe.srem(keys["hidden"], word, *also)
        pipe.hincrby(keys["meta"], "version", 1)
        pipe.execute()
        _replicated(client)
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error


def hidden_words(question_id: int) -> list[str]:
    try:
        hidden = get_sync_redis().smembers(question_keys(question_id)["hidden"])
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error
    return sorted(word.decode() for word in hidden)


def fits_answer(kind: str, value: Any, counted: list[str]) -> bool:
    """Whether ``counted`` can be what the script counted for ``value``: all its buckets, or
    under a word cap some of its words, in order and each once, never another."""
    given = buckets_for(kind, value)
    if not most_buckets(kind):
        return counted == given
    remaining = iter(given)
    return all(bucket in remaining for bucket in counted)


def count_in_order(
    kind: str, answers: dict[str, Any], kept: dict[str, list[str]] | None = None
) -> tuple[dict[str, int], dict[str, list[str]]]:
    """(counts, each participant's counted buckets) for the answers counted one by one in the
    mapping's order, as the script does: a word cloud full to its cap counts no new word.

    ``kept``: buckets the tally already counted for some of these answers. They are counted
    first, as they stand, so what was counted live stays counted.
    """
    cap = most_buckets(kind)
    kept = kept or {}
    counts: dict[str, int] = {}
    counted: dict[str, list[str]] = {}
    first = [participant for participant in answers if participant in kept]
    then = [participant for participant in answers if participant not in kept]
    for participant in first + then:
        buckets = (
            kept[participant] if participant in kept else buckets_for(kind, answers[participant])
        )
        counted[participant] = []
        for bucket in buckets:
            if cap and bucket not in counts and len(counts) >= cap:
                continue
            counts[bucket] = counts.get(bucket, 0) + 1
            counted[participant].append(bucket)
    return counts, counted


def _still_counted(kind: str, stored: dict[bytes, bytes], answers: dict[str, Any]) -> dict:
    """The buckets the tally holds for those of ``answers`` it holds unchanged."""
    kept = {}
    for raw_participant, raw in stored.items():
        participant = raw_participant.decode()
        if participant not in answers or _decode_answer(raw) != answers[participant]:
            continue
        buckets = _counted_buckets(raw)
        if fits_answer(kind, answers[participant], buckets):
            kept[participant] = buckets
    return kept


def rebuild(
    question_id: int,
    kind: str,
    is_open: bool,
    answers: dict[str, Any],
    aside: frozenset[str] | set[str] = frozenset(),
    segments: dict[str, str] | None = None,
    clock: dict[str, int] | None = None,
) -> Snapshot:
    """Replace a question's tally with one recomputed from the given answers.

    ``clock``: a scored question's ``started``, ``window`` and ``deadline`` (ms) as the
    database keeps them (``set_quiz_clocks``); its points are ``write_scores``' to rebuild.

    ``segments``: participant -> their segments (``polls.segments.tags_of`` of their profile
    answers in the database); every answer is counted in its participant's, and later answers
    of everyone listed are too.

    Answers of participants in ``aside`` (the event's set-aside ones) are stored but not counted,
    as the live script does, and the question's aside set becomes exactly ``aside``.

    Under a word cap the result depends on order, and is made the live one as far as the
    record allows: an answer the tally still holds unchanged keeps the words the script counted
    for it; the others are counted after them in the order of ``answers``, which must be the
    answered order (``polls.consistency.answers_in_answered_order``).
    The version moves past the old one, so screens holding an older snapshot take the new one.
    The answer log is left alone: undrained entries are the writer's to finish.
    """
    keys = question_keys(question_id)
    client = get_sync_redis()
    old_version = int(client.hget(keys["meta"], "version") or 0)
    kept = (
        _still_counted(kind, client.hgetall(keys["answers"]), answers) if most_buckets(kind) else {}
    )
    voices = {p: value for p, value in answers.items() if p not in aside}
    counts, counted = count_in_order(kind, voices, kept)
    respondents = len(voices)
    stored = {
        # A set-aside answer keeps all its buckets, as the live script stores it.
        participant: ",".join(
            counted[participant] if participant in counted else buckets_for(kind, value)
        )
        + "\n"
        + encode_value(value)
        for participant, value in answers.items()
    }
    segments = segments or {}
    segcounts = segment_counts(counted, segments)
    pipe = client.pipeline(transaction=True)
    pipe.delete(
        keys["answers"],
        keys["counts"],
        keys["meta"],
        aside_key(question_id),
        keys["segof"],
        keys["segcounts"],
    )
    if stored:
        pipe.hset(keys["answers"], mapping=stored)
    if counts:
        pipe.hset(keys["counts"], mapping=counts)
    if segments:
        held = {participant: tags or NO_SEGMENTS for participant, tags in segments.items()}
        pipe.hset(keys["segof"], mapping=held)
    if segcounts:
        pipe.hset(keys["segcounts"], mapping=segcounts)
    if aside:
        pipe.sadd(aside_key(question_id), *aside)
    pipe.hset(
        keys["meta"],
        mapping={
            "open": "1" if is_open else "0",
            "version": old_version + 1,
            "total": respondents,
            **(clock or {}),
        },
    )
    pipe.execute()
    _replicated(client)
    return read_snapshot_sync(question_id)


def segment_counts(counted: dict[str, list[str]], segments: dict[str, str]) -> dict[str, int]:
    """The ``segcounts`` hash for these counted buckets (participant -> buckets, set-aside ones
    left out) and segments (participant -> tags), as the script keeps it."""
    segcounts: dict[str, int] = {}
    for participant, buckets in counted.items():
        for segment in filter(None, segments.get(participant, "").split(",")):
            for field_name in [f"{segment}|"] + [f"{segment}|{bucket}" for bucket in buckets]:
                segcounts[field_name] = segcounts.get(field_name, 0) + 1
    return segcounts


# --- segments: a profile answer moves its participant's counted answers ---------------------

# Per question, atomically: the participant's segments become ARGV[2], and the answer they gave
# here (unless set aside) leaves the old segments' counts and joins the new ones'. Only a real
# change moves anything, so running it twice changes nothing.
MOVE_SEGMENTS = (
    COUNTING
    + """
local answers, meta, aside, segof, segcounts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local participant, tags = ARGV[1], ARGV[2]
local old = held_segments(segof, participant)
if old == tags then
  return 0
end
redis.call('HSET', segof, participant, tags == '' and '"""
    + NO_SEGMENTS
    + """' or tags)
old = old or ''
local stored = redis.call('HGET', answers, participant)
if not stored or redis.call('SISMEMBER', aside, participant) == 1 then
  return 0
end
local buckets = string.sub(stored, 1, string.find(stored, '\\n', 1, true) - 1)
count_segments(segcounts, old, buckets, -1)
count_segments(segcounts, tags, buckets, 1)
redis.call('HINCRBY', meta, 'version', 1)
return 1
"""
)


async def move_segments(question_ids: list[int], participant: str, tags: str) -> int:
    """Put the participant in ``tags`` on every question listed (the event's), taking their
    counted answers along: each question in one script call, all in one round trip. Returns
    how many answers moved."""
    client = get_async_redis()
    try:
        script = client.register_script(MOVE_SEGMENTS)
        pipe = client.pipeline(transaction=False)
        for question_id in question_ids:
            keys = question_keys(question_id)
            script_keys = [
                keys["answers"],
                keys["meta"],
                aside_key(question_id),
                keys["segof"],
                keys["segcounts"],
            ]
            await script(keys=script_keys, args=[participant, tags], client=pipe)
        waiting = queue_replication(pipe)
        results = await pipe.execute()
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error
    shortfall = replication_shortfall(results) if waiting else None
    if shortfall is not None:
        raise TallyUnavailable(shortfall)
    return sum(result for result in results[: len(question_ids)])


# --- participants set aside by the host (polls.voice finds them, polls.actions decides) -------


def aside_key(question_id: int) -> str:
    return f"zp:{{q:{question_id}}}:aside"


# Per question, atomically: participants join (ARGV[1] 'aside') or leave ('restore') the aside
# set, and the answer each already gave leaves (or rejoins) the counts and the total. Only a
# real change of membership moves an answer, so running it twice changes nothing.
MOVE_ASIDE = (
    COUNTING
    + """
local answers, counts, meta, aside = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local segof, segcounts = KEYS[5], KEYS[6]
local setting = ARGV[1] == 'aside'
-- As in RECORD_ANSWER: a word cloud's cap (0 for other kinds, whose zero counts stay).
local most_words = tonumber(ARGV[2])
local moved = 0
for i = 3, #ARGV do
  local participant = ARGV[i]
  local changed
  if setting then
    changed = redis.call('SADD', aside, participant)
  else
    changed = redis.call('SREM', aside, participant)
  end
  local stored = changed == 1 and redis.call('HGET', answers, participant)
  if stored then
    local cut = string.find(stored, '\\n', 1, true)
    local buckets = string.sub(stored, 1, cut - 1)
    local tags = held_segments(segof, participant) or ''
    if setting then
      uncount_buckets(counts, buckets, most_words)
      count_segments(segcounts, tags, buckets, -1)
      redis.call('HINCRBY', meta, 'total', -1)
    else
      -- Back under the cap: only the words that fit are counted, and only those kept.
      local counted = count_buckets(counts, buckets, most_words)
      count_segments(segcounts, tags, counted, 1)
      if most_words > 0 then
        redis.call('HSET', answers, participant, counted .. string.sub(stored, cut))
      end
      redis.call('HINCRBY', meta, 'total', 1)
    end
    moved = moved + 1
  end
end
if moved > 0 then
  redis.call('HINCRBY', meta, 'version', 1)
end
return moved
"""
)

# One script call moves at most this many participants, so Redis is never held for long.
ASIDE_PER_CALL = 2000


def _queue_moves(
    pipe, script, question_id: int, kind: str, mode: str, participants: list[str]
) -> int:
    keys = question_keys(question_id)
    script_keys = [
        keys["answers"],
        keys["counts"],
        keys["meta"],
        aside_key(question_id),
        keys["segof"],
        keys["segcounts"],
    ]
    calls = 0
    for start in range(0, len(participants), ASIDE_PER_CALL):
        chunk = participants[start : start + ASIDE_PER_CALL]
        script(keys=script_keys, args=[mode, str(most_buckets(kind)), *chunk], client=pipe)
        calls += 1
    return calls


def sync_aside(questions: dict[int, str], participants: set[str] | frozenset[str]) -> int:
    """Make each question's aside set exactly ``participants`` (the database's list), moving the
    answers of those who joined or left it; returns how many answers moved. Idempotent, so the
    retry after an outage and every host action may run it. ``questions``: id -> kind."""
    question_ids = list(questions)
    client = get_sync_redis()
    try:
        pipe = client.pipeline(transaction=False)
        for question_id in question_ids:
            pipe.smembers(aside_key(question_id))
        current = pipe.execute()
        script = client.register_script(MOVE_ASIDE)
        pipe = client.pipeline(transaction=False)
        calls = 0
        for question_id, members in zip(question_ids, current, strict=True):
            members = {member.decode() for member in members}
            joining, leaving = sorted(participants - members), sorted(members - participants)
            kind = questions[question_id]
            calls += _queue_moves(pipe, script, question_id, kind, "aside", joining)
            calls += _queue_moves(pipe, script, question_id, kind, "restore", leaving)
        moved = sum(pipe.execute()) if calls else 0
        if moved:
            _replicated(client)
        return moved
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error


def aside_members(question_id: int) -> set[str]:
    try:
        members = get_sync_redis().smembers(aside_key(question_id))
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error
    return {member.decode() for member in members}


def read_answer_records_sync(question_id: int) -> dict[str, tuple[str, str]]:
    """Every participant's stored answer as (buckets, value JSON), undecoded: what the burst
    finder compares (the buckets say what an answer counts for, however it was spelt)."""
    try:
        stored = get_sync_redis().hgetall(question_keys(question_id)["answers"])
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error
    records = {}
    for participant, raw in stored.items():
        buckets, _newline, value = raw.decode().partition("\n")
        records[participant.decode()] = (buckets, value)
    return records


def write_scores(event_id: int, scores: dict[int, dict[str, tuple[int, int]]]) -> None:
    """Replace an event's quiz scores: per scored question, participant -> (points, elapsed
    ms), and the totals and leaderboard they make (``polls.quiz_board.recompute``)."""
    board = quiz_keys(event_id)
    points: dict[str, int] = {}
    spent: dict[str, int] = {}
    for per_participant in scores.values():
        for participant, (gained, elapsed) in per_participant.items():
            points[participant] = points.get(participant, 0) + gained
            spent[participant] = spent.get(participant, 0) + elapsed
    client = get_sync_redis()
    try:
        pipe = client.pipeline(transaction=True)
        pipe.delete(board["points"], board["time"], board["board"])
        for question_id, per_participant in scores.items():
            key = question_keys(question_id)["score"]
            pipe.delete(key)
            if per_participant:
                mapping = {
                    p: f"{gained},{elapsed}" for p, (gained, elapsed) in per_participant.items()
                }
                pipe.hset(key, mapping=mapping)
        if points:
            pipe.hset(board["points"], mapping=points)
            pipe.hset(board["time"], mapping=spent)
            pipe.zadd(
                board["board"],
                {p: quiz.board_score(points[p], spent[p]) for p in points},
            )
        pipe.execute()
        _replicated(client)
    except (RedisError, OSError) as error:
        raise TallyUnavailable(str(error)) from error


def read_scores_sync(question_id: int) -> dict[str, tuple[int, int]]:
    stored = get_sync_redis().hgetall(question_keys(question_id)["score"])
    return {p.decode(): _score_pair(raw) for p, raw in stored.items()}


def _score_pair(raw: bytes) -> tuple[int, int]:
    gained, elapsed = raw.decode().split(",")
    return int(gained), int(elapsed)

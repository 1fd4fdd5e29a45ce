"""The only module that talks to Redis about the audience Q&A: keys, Lua scripts, the vote log.

Per event (hash tag ``{qa:ID}`` keeps one event's Q&A on one cluster slot):
- ``meta``:    mode (off/open/moderated), names (1/0), stage (1/0), pinned (item id),
  version (bumped by every change a screen or phone may show), config (bumped when the mode,
  names or stage change: every phone then gets the whole list again)
- ``state``:   item -> pending / visible / hidden / answered
- ``author``:  item -> participant (never leaves the server)
- ``item``:    item -> its payload as JSON (id, text, name, at), as phones and screens get it
- ``votes``:   item -> votes counted
- ``voters:<item>``: who voted on it; ``pvotes:<participant>``: what they voted on, so a phone's
  own votes are one SMEMBERS; ``pitems:<participant>``: the items they asked
- ``asked``:   "participant:message id" -> item (a resent ``ask`` makes no second item)
- ``seen``:    "participant:message id" of votes handled (a resent vote counts once)
- ``changed`` / ``counted``: sorted sets item -> version of its last change of text or state /
  of its votes: what the pump sends phones as changes since the version it last sent
- ``aside``:   participants the host set aside (their items are hidden, new ones too)
- ``vrate:<participant>:<second>``: the votes' counter; ``arate:<participant>``: the times of
  the participant's asks in the last minute (a sliding window: no fresh allowance at a
  minute's turn)
- ``log``:     the vote stream the writer (polls.writer) drains into QaVote rows
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from .redis_client import (
    BatchedScript,
    confirm_replicated_sync,
    get_async_redis,
    get_sync_redis,
    queue_replication,
    replication_shortfall,
)
from .tally import TallyUnavailable

# The writer finds the vote logs here (the answer logs are in ``tally.LOG_REGISTRY``).
QA_LOG_REGISTRY = "zp:qalogs"
STATES = ("pending", "visible", "hidden", "answered")


def qa_tag(event_id: int) -> str:
    return f"zp:{{qa:{event_id}}}"


def qa_keys(event_id: int) -> dict[str, str]:
    tag = qa_tag(event_id)
    names = ("meta", "state", "author", "item", "votes", "asked", "seen", "changed", "counted")
    return {name: f"{tag}:{name}" for name in (*names, "aside", "log")}


def event_id_from_log_key(key: str) -> int:
    return int(key.split("{qa:", 1)[1].split("}", 1)[0])


def voters_key(event_id: int, item_id: int) -> str:
    return f"{qa_tag(event_id)}:voters:{item_id}"


def own_votes_key(event_id: int, participant: str) -> str:
    return f"{qa_tag(event_id)}:pvotes:{participant}"


def own_items_key(event_id: int, participant: str) -> str:
    return f"{qa_tag(event_id)}:pitems:{participant}"


# Admitting an ``ask`` before its row is written: Q&A on, not a resend (else the item it made),
# room left in the event's Q&A, within the items a participant may ask a minute (a refused ask
# spends none of them). Returns {status, item, mode, names, aside}.
ASK_ADMIT = """
local meta, asked, rate, aside, states = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local participant, message_id = ARGV[1], ARGV[2]
local per_minute, per_event, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local mode = redis.call('HGET', meta, 'mode')
if not mode or mode == 'off' then
  return {'not_open', 0, '', '', 0}
end
local names = redis.call('HGET', meta, 'names') or '1'
local known = redis.call('HGET', asked, participant .. ':' .. message_id)
if known then
  return {'duplicate', tonumber(known), mode, names, redis.call('SISMEMBER', aside, participant)}
end
if redis.call('HLEN', states) >= per_event then
  return {'full', 0, mode, names, 0}
end
redis.call('ZREMRANGEBYSCORE', rate, '-inf', now - 60000)
if redis.call('ZCARD', rate) >= per_minute then
  return {'flood', 0, mode, names, 0}
end
redis.call('ZADD', rate, now, message_id)
redis.call('PEXPIRE', rate, 60000)
return {'ok', 0, mode, names, redis.call('SISMEMBER', aside, participant)}
"""

# An item written to the database becomes live.
ADD_ITEM = """
local meta, state, author, item, votes, asked, pitems, changed =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local id, item_state, participant, message_id, payload = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
redis.call('HSET', state, id, item_state)
redis.call('HSET', author, id, participant)
redis.call('HSET', item, id, payload)
redis.call('HSETNX', votes, id, 0)
redis.call('HSET', asked, participant .. ':' .. message_id, id)
redis.call('SADD', pitems, id)
local version = redis.call('HINCRBY', meta, 'version', 1)
redis.call('ZADD', changed, version, id)
return version
"""

# One vote given (ARGV[4] = '1') or taken back ('0'), atomically: the voters' set, the count,
# the participant's own set, the version, the log. Refusals change nothing but the limit's
# counter. Returns {status, version, votes, voted, the item's payload}.
VOTE = """
local meta, state, author, votes, voters, pvotes, seen, counted, rate, log, item =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10],
  KEYS[11]
local participant, message_id, id, want, at, per_second =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1', ARGV[5], tonumber(ARGV[6])
local mode = redis.call('HGET', meta, 'mode')
if not mode or mode == 'off' then
  return {'not_open', 0, 0, 0, ''}
end
local function current(status)
  local version = tonumber(redis.call('HGET', meta, 'version') or '0')
  local count = tonumber(redis.call('HGET', votes, id) or '0')
  return {status, version, count, redis.call('SISMEMBER', voters, participant),
          redis.call('HGET', item, id) or ''}
end
if redis.call('SISMEMBER', seen, participant .. ':' .. message_id) == 1 then
  return current('duplicate')
end
local item_state = redis.call('HGET', state, id)
if not item_state then
  return {'unknown_item', 0, 0, 0, ''}
end
if redis.call('HGET', author, id) == participant then
  return {'own_item', 0, 0, 0, ''}
end
-- A pending item is seen by its author and the hosts only: to anyone else it does not exist.
if item_state == 'pending' then
  return {'unknown_item', 0, 0, 0, ''}
end
if item_state ~= 'visible' then
  return {'hidden_item', 0, 0, 0, ''}
end
local spent = redis.call('INCR', rate)
if spent == 1 then
  redis.call('PEXPIRE', rate, 2000)
end
if spent > per_second then
  return {'flood', 0, 0, 0, ''}
end
redis.call('SADD', seen, participant .. ':' .. message_id)
local moved
if want then
  moved = redis.call('SADD', voters, participant)
else
  moved = redis.call('SREM', voters, participant)
end
if moved == 0 then
  return current('unchanged')
end
local count
if want then
  redis.call('SADD', pvotes, id)
  count = redis.call('HINCRBY', votes, id, 1)
else
  redis.call('SREM', pvotes, id)
  count = redis.call('HINCRBY', votes, id, -1)
end
local version = redis.call('HINCRBY', meta, 'version', 1)
redis.call('ZADD', counted, version, id)
redis.call('XADD', log, '*', 'p', participant, 'i', id, 'v', want and '1' or '0', 't', at,
           'm', message_id)
return {'ok', version, count, want and 1 or 0, redis.call('HGET', item, id) or ''}
"""

# A host's change of items: ARGV[1] the pinned item ('' keeps it, '0' none), then per item its
# id, new state ('' keeps it) and new payload ('' keeps it). Every item touched (and an item
# that lost the pin) is marked changed at the new version.
MODERATE = """
local meta, state, item, changed = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local version = redis.call('HINCRBY', meta, 'version', 1)
if ARGV[1] ~= '' then
  local old = redis.call('HGET', meta, 'pinned')
  if ARGV[1] == '0' then
    redis.call('HDEL', meta, 'pinned')
  else
    redis.call('HSET', meta, 'pinned', ARGV[1])
    redis.call('ZADD', changed, version, ARGV[1])
  end
  if old then
    redis.call('ZADD', changed, version, old)
  end
end
for i = 2, #ARGV, 3 do
  local id, item_state, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if item_state ~= '' then
    redis.call('HSET', state, id, item_state)
  end
  if payload ~= '' then
    redis.call('HSET', item, id, payload)
  end
  redis.call('ZADD', changed, version, id)
end
return version
"""


# Votes arriving together go to Redis together: one pipeline per turn of the event loop (with
# ``appendfsync always`` one fsync per batch, not per vote), as answers do.
# Acknowledged only once a standby has it (``replicated``), as an answer is (polls.tally); the
# ``seen`` set counts a resent vote once.
_vote_script = BatchedScript(VOTE, replicated=True)
_admit_script = BatchedScript(ASK_ADMIT)


def _unavailable(error: Exception) -> TallyUnavailable:
    return TallyUnavailable(str(error))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Admission:
    status: str  # ok, duplicate, not_open, flood
    item: int  # the item a resend made
    mode: str
    names: bool
    aside: bool


async def admit_ask(
    event_id: int, participant: str, message_id: str, per_minute: int, per_event: int
) -> Admission:
    keys = qa_keys(event_id)
    rate = f"{qa_tag(event_id)}:arate:{participant}"
    try:
        result = await _admit_script(
            [keys["meta"], keys["asked"], rate, keys["aside"], keys["state"]],
            [participant, message_id, per_minute, per_event, int(time.time() * 1000)],
        )
    except (RedisError, OSError) as error:
        raise _unavailable(error) from error
    status, item, mode, names, aside = result
    return Admission(_text(status), int(item), _text(mode), _text(names) == "1", bool(aside))


def payload_json(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


async def add_item(
    event_id: int, item_id: int, state: str, participant: str, message_id: str, payload: dict
) -> int:
    keys = qa_keys(event_id)
    client = get_async_redis()
    try:
        pipe = client.pipeline(transaction=False)
        await client.register_script(ADD_ITEM)(
            keys=[
                keys["meta"],
                keys["state"],
                keys["author"],
                keys["item"],
                keys["votes"],
                keys["asked"],
                own_items_key(event_id, participant),
                keys["changed"],
            ],
            args=[item_id, state, participant, message_id, payload_json(payload)],
            client=pipe,
        )
        # Every vote is on an item added here (or by ``rebuild``): the writer finds its log.
        pipe.sadd(QA_LOG_REGISTRY, keys["log"])
        waiting = queue_replication(pipe)
        results = await pipe.execute()
    except (RedisError, OSError) as error:
        raise _unavailable(error) from error
    shortfall = replication_shortfall(results) if waiting else None
    if shortfall is not None:
        raise TallyUnavailable(shortfall)  # the phone sends the ask again: one item, see ``asked``
    return int(results[0])


def _replicated(client) -> None:
    """After a host's write: TallyUnavailable unless the wanted replicas have it (the caller's
    transaction then rolls back, and nothing changed)."""
    shortfall = confirm_replicated_sync(client)
    if shortfall is not None:
        raise TallyUnavailable(shortfall)


@dataclass(frozen=True)
class VoteOutcome:
    status: str  # ok, unchanged, duplicate, or a refusal's code
    version: int
    votes: int
    voted: bool
    payload: dict | None

    @property
    def counted(self) -> bool:
        return self.status in ("ok", "unchanged", "duplicate")


async def vote(
    event_id: int,
    participant: str,
    message_id: str,
    item_id: int,
    want: bool,
    per_second: int,
) -> VoteOutcome:
    """Count one vote (or take it back) in one script call."""
    keys = qa_keys(event_id)
    now = time.time()
    rate = f"{qa_tag(event_id)}:vrate:{participant}:{int(now)}"
    try:
        result = await _vote_script(
            [
                keys["meta"],
                keys["state"],
                keys["author"],
                keys["votes"],
                voters_key(event_id, item_id),
                own_votes_key(event_id, participant),
                keys["seen"],
                keys["counted"],
                rate,
                keys["log"],
                keys["item"],
            ],
            [participant, message_id, item_id, "1" if want else "0", int(now * 1000), per_second],
        )
    except (RedisError, OSError) as error:
        raise _unavailable(error) from error
    status, version, count, voted, raw = result
    payload = json.loads(raw) if raw else None
    return VoteOutcome(_text(status), int(version), int(count), bool(voted), payload)


def moderate(
    event_id: int, items: list[tuple[int, str, dict | None]], pinned: int | str | None = ""
) -> int:
    """Items' new states and payloads (``""`` / None keep them) and the pin (``""`` keeps it,
    None takes it away) in one script call; returns the version. Sync: the host's actions."""
    keys = qa_keys(event_id)
    pin = "" if pinned == "" else ("0" if pinned is None else str(pinned))
    args = [pin]
    for item_id, state, payload in items:
        args += [str(item_id), state, payload_json(payload) if payload else ""]
    client = get_sync_redis()
    try:
        version = int(
            client.register_script(MODERATE)(
                keys=[keys["meta"], keys["state"], keys["item"], keys["changed"]], args=args
            )
        )
        _replicated(client)
        return version
    except (RedisError, OSError) as error:
        raise _unavailable(error) from error


def set_config(event_id: int, mode: str, names: bool, stage: bool) -> None:
    keys = qa_keys(event_id)
    client = get_sync_redis()
    try:
        pipe = client.pipeline(transaction=True)
        pipe.hset(
            keys["meta"],
            mapping={"mode": mode, "names": "1" if names else "0", "stage": "1" if stage else "0"},
        )
        pipe.hincrby(keys["meta"], "config", 1)
        pipe.hincrby(keys["meta"], "version", 1)
        pipe.sadd(QA_LOG_REGISTRY, keys["log"])
        pipe.execute()
        _replicated(client)
    except (RedisError, OSError) as error:
        raise _unavailable(error) from error


def set_aside(event_id: int, participant: str) -> None:
    client = get_sync_redis()
    try:
        client.sadd(qa_keys(event_id)["aside"], participant)
        _replicated(client)
    except (RedisError, OSError) as error:
        raise _unavailable(error) from error


# -- reads ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Meta:
    version: int
    config: int
    mode: str
    names: bool
    stage: bool
    pinned: int | None


META_FIELDS = ("version", "config", "mode", "names", "stage", "pinned")


def _meta(raw: list) -> Meta:
    version, config, mode, names, stage, pinned = (_text(value) for value in raw)
    return Meta(
        int(version or 0),
        int(config or 0),
        mode or "off",
        names != "0",
        stage == "1",
        int(pinned) if pinned else None,
    )


async def read_metas(event_ids: list[int]) -> dict[int, Meta]:
    """Every event's Q&A meta in one round trip (the pump's look each tick)."""
    try:
        async with get_async_redis().pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.hmget(qa_keys(event_id)["meta"], META_FIELDS)
            raw = await pipe.execute()
    except (RedisError, OSError) as error:
        raise _unavailable(error) from error
    return {event_id: _meta(values) for event_id, values in zip(event_ids, raw, strict=True)}


@dataclass(frozen=True)
class Board:
    """Every item of an event's Q&A as Redis has it (payloads with votes and state)."""

    meta: Meta
    items: dict[int, dict] = field(default_factory=dict)

    def visible(self) -> list[dict]:
        """Visible items, most votes first, then the newest."""
        shown = [item for item in self.items.values() if item["state"] == "visible"]
        return sorted(shown, key=lambda item: (-item["votes"], -item["at"], -item["id"]))

    def count(self, state: str) -> int:
        return sum(1 for item in self.items.values() if item["state"] == state)


def _item(payload: bytes | str, state, votes, pinned: int | None) -> dict:
    item = json.loads(payload)
    item["votes"] = int(votes or 0)
    item["state"] = _text(state) or "pending"
    item["pinned"] = item["id"] == pinned
    return item


def _queue_board(pipe, keys: dict[str, str]) -> None:
    pipe.hmget(keys["meta"], META_FIELDS)
    pipe.hgetall(keys["item"])
    pipe.hgetall(keys["state"])
    pipe.hgetall(keys["votes"])


def _board(raw_meta, payloads: dict, states: dict, votes: dict) -> Board:
    meta = _meta(raw_meta)
    items = {
        int(item_id): _item(payload, states.get(item_id), votes.get(item_id), meta.pinned)
        for item_id, payload in payloads.items()
    }
    return Board(meta, items)


async def read_board(event_id: int) -> Board:
    keys = qa_keys(event_id)
    try:
        async with get_async_redis().pipeline(transaction=True) as pipe:
            _queue_board(pipe, keys)
            raw = await pipe.execute()
    except (RedisError, OSError) as error:
        raise _unavailable(error) from error
    return _board(*raw)


@dataclass(frozen=True)
class Changes:
    version: int
    items: list[dict]  # changed text or state, with their authors under "author"
    votes: dict[int, int]  # changed counts only


async def read_board_changes(event_id: int, since: int) -> tuple[Board, Changes]:
    """The board and what changed on it after version ``since``, in one round trip: one
    transaction, so the changes are the board's, at its version. (A pump whose loop is busy
    with votes waits a turn of the loop for every round trip.)"""
    keys = qa_keys(event_id)
    try:
        async with get_async_redis().pipeline(transaction=True) as pipe:
            _queue_board(pipe, keys)
            pipe.zrangebyscore(keys["changed"], f"({since}", "+inf")
            pipe.zrangebyscore(keys["counted"], f"({since}", "+inf")
            pipe.hgetall(keys["author"])
            *raw, changed, counted, authors = await pipe.execute()
    except (RedisError, OSError) as error:
        raise _unavailable(error) from error
    board = _board(*raw)
    items = []
    for member in changed:
        item = board.items.get(int(member))
        if item is not None:
            items.append({**item, "author": _text(authors.get(member))})
    moved = {int(member) for member in changed}
    votes = {
        int(member): board.items[int(member)]["votes"]
        for member in counted
        if int(member) not in moved and int(member) in board.items
    }
    return board, Changes(board.meta.version, items, votes)


async def own_of(event_id: int, participants: list[str]) -> dict[str, tuple[set[int], set[int]]]:
    """Each participant's (items asked, items voted on), all in one round trip."""
    try:
        async with get_async_redis().pipeline(transaction=False) as pipe:
            for participant in participants:
                pipe.smembers(own_items_key(event_id, participant))
                pipe.smembers(own_votes_key(event_id, participant))
            raw = await pipe.execute()
    except (RedisError, OSError) as error:
        raise _unavailable(error) from error
    return {
        participant: ({int(i) for i in raw[2 * n]}, {int(i) for i in raw[2 * n + 1]})
        for n, participant in enumerate(participants)
    }


def read_votes_sync(event_id: int) -> dict[int, int]:
    try:
        raw = get_sync_redis().hgetall(qa_keys(event_id)["votes"])
    except (RedisError, OSError) as error:
        raise _unavailable(error) from error
    return {int(item): int(count) for item, count in raw.items()}


def read_voters_sync(event_id: int) -> tuple[int, dict[int, set[str]]]:
    """The Q&A's version and who each item's counted votes are from (for checks: the load
    test's, the consistency check's), in one transaction."""
    client = get_sync_redis()
    try:
        items = [int(item) for item in client.hkeys(qa_keys(event_id)["item"])]
        pipe = client.pipeline(transaction=True)
        pipe.hget(qa_keys(event_id)["meta"], "version")
        for item_id in items:
            pipe.smembers(voters_key(event_id, item_id))
        version, *voters = pipe.execute()
    except (RedisError, OSError) as error:
        raise _unavailable(error) from error
    return int(version or 0), {
        item_id: {_text(member) for member in members}
        for item_id, members in zip(items, voters, strict=True)
    }


def forget(event_id: int) -> None:
    """Every key of an event's Q&A, its vote log and the log's registration (a deleted event)."""
    client = get_sync_redis()
    try:
        stale = list(client.scan_iter(match=f"{qa_tag(event_id)}:*", count=1000))
        if stale:
            client.delete(*stale)
        client.srem(QA_LOG_REGISTRY, qa_keys(event_id)["log"])
    except (RedisError, OSError) as error:
        raise _unavailable(error) from error


def rebuild(
    event_id: int,
    mode: str,
    names: bool,
    stage: bool,
    items: list[tuple[dict, str, str, bool]],
    votes: dict[int, set[str]],
    aside: set[str],
) -> None:
    """Replace an event's Q&A in Redis with one from the database: ``items`` as (payload,
    state, author, pinned), ``votes`` item -> voters. The version moves past the old one, so
    every phone and screen takes the new list; the vote log is left to the writer."""
    keys = qa_keys(event_id)
    client = get_sync_redis()
    try:
        old = client.hmget(keys["meta"], ["version", "config"])
        stale = list(client.scan_iter(match=f"{qa_tag(event_id)}:*"))
        stale = [key for key in stale if not _text(key).endswith((":log", ":seen", ":asked"))]
        version = int(old[0] or 0) + 1
        pipe = client.pipeline(transaction=True)
        if stale:
            pipe.delete(*stale)
        meta = {
            "mode": mode,
            "names": "1" if names else "0",
            "stage": "1" if stage else "0",
            "version": version,
            "config": int(old[1] or 0) + 1,
        }
        for payload, state, author, pinned in items:
            item_id = payload["id"]
            if pinned:
                meta["pinned"] = item_id
            pipe.hset(keys["item"], item_id, payload_json(payload))
            pipe.hset(keys["state"], item_id, state)
            pipe.hset(keys["author"], item_id, author)
            pipe.hset(keys["votes"], item_id, len(votes.get(item_id, ())))
            pipe.sadd(own_items_key(event_id, author), item_id)
            pipe.zadd(keys["changed"], {item_id: version})
            for voter in votes.get(item_id, ()):
                pipe.sadd(voters_key(event_id, item_id), voter)
                pipe.sadd(own_votes_key(event_id, voter), item_id)
        if aside:
            pipe.sadd(keys["aside"], *aside)
        pipe.sadd(QA_LOG_REGISTRY, keys["log"])
        pipe.hset(keys["meta"], mapping=meta)
        pipe.execute()
        _replicated(client)
    except (RedisError, OSError) as error:
        raise _unavailable(error) from error

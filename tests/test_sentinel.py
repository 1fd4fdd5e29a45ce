"""Redis with a standby: Sentinel, WAIT, and a primary killed mid-burst.

Real processes throughout (tests/redis_nodes.py): a primary, a replica and three sentinels on
loopback ports, Daphne and the answer writer configured with REDIS_SENTINELS. The replica is
held behind on purpose while the primary takes answers and is then killed: every answer that
was acknowledged must be counted exactly once on the promoted replica, in the database and on
the stage, and the show goes on without restarting Daphne.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from websockets.asyncio.client import connect

from devenv.processes import stop
from polls import redis_client, tally
from polls.tokens import read_participant_token
from tests.live_helpers import checked, follow
from tests.redis_nodes import SERVICE, RedisGroup, RedisNode, wait_until
from tests.servers import make_stack
from tests.test_faults import CODE, Phone, answer_rows, counted, wait_for_rows

ROOT = Path(__file__).resolve().parent.parent
WAIT_MS = 300
PHONES = 60


@pytest.fixture
def redis_group(tmp_path):
    group = RedisGroup.start(tmp_path / "redis")
    yield group
    group.stop()


def sentinel_stack(tmp_path: Path, group: RedisGroup, wait_replicas: int):
    """The demo event seeded on the primary, then two Daphne processes and the writer that
    know only the sentinels."""
    stack = make_stack(tmp_path, redis_url=group.primary.url)
    for name in ("ZP_TEST_REDIS_URL", "REDIS_URL"):
        stack.env.pop(name, None)
    stack.env.update(
        REDIS_SENTINELS=group.sentinels_env,
        REDIS_SENTINEL_SERVICE=SERVICE,
        ZP_REDIS_WAIT_REPLICAS=str(wait_replicas),
        ZP_REDIS_WAIT_MS=str(WAIT_MS),
    )
    stack.start_daphnes(2)
    stack.start_writer()
    return stack


async def stage_results(stack, version: int) -> dict:
    """The first ``results`` a new stage screen gets at ``version`` or later."""
    path = stack.urls(CODE)["stage"].removeprefix(stack.base).replace("/e/", "/ws/e/", 1)
    async with connect(f"ws://127.0.0.1:{stack.port}{path}", origin=stack.base) as stage:
        follow(stage, stage=True)  # a screen's frames: the Q&A board (the demo's Q&A is on)
        while True:
            message = checked(await asyncio.wait_for(stage.recv(), 10), stage)
            if message["type"] == "results" and message["version"] >= version:
                return message


class Hall:
    """``PHONES`` phones that each resend an answer until it is acknowledged (test_faults'
    Phone), all answering at once, each time another value than their last."""

    def __init__(self, stack, seed: int) -> None:
        self.question_id, self.options = stack.current_question(CODE)
        rng = random.Random(seed)
        self.rng = rng
        self.phones = [
            Phone([stack.port], self.question_id, self.options, random.Random(rng.random()))
            for _ in range(PHONES)
        ]

    async def join_and_answer(self) -> None:
        await asyncio.wait_for(asyncio.gather(*(p.run(answers=1) for p in self.phones)), 30)

    async def answer(self, message_id: str) -> None:
        async def one(phone):
            # Another value than the last: an answer lost would show as the old one.
            value = self.rng.choice([option for option in self.options if option != phone.final])
            await phone.deliver(message_id, value)
            phone.final = value

        await asyncio.gather(*(one(phone) for phone in self.phones))

    def participants(self) -> dict[str, int]:
        """Each phone's participant id and its last answer."""
        return {
            read_participant_token(phone.token, CODE).participant_id: phone.final
            for phone in self.phones
        }

    def rows_once_written(self, stack) -> dict[str, int]:
        rows = wait_for_rows(stack, self.question_id, self.participants())
        assert rows == self.participants()
        return rows

    def acked(self, message_id: str) -> int:
        return sum(message_id in phone.acked for phone in self.phones)

    def resends(self) -> list[int]:
        return [phone.resends for phone in self.phones]


def check_counted_once(stack, client, hall: Hall, answers: int) -> None:
    """Every phone's answers acknowledged, and its last one counted once: in the tally of the
    node ``client`` talks to, on a new stage screen, in the Answer rows."""
    question_id = hall.question_id
    participants = hall.participants()
    assert all(len(phone.acked) == answers for phone in hall.phones)
    assert counted(client, question_id) == participants
    meta = client.hgetall(tally.question_keys(question_id)["meta"])
    counts = {
        key.decode(): int(value)
        for key, value in client.hgetall(tally.question_keys(question_id)["counts"]).items()
    }
    assert int(meta[b"total"]) == len(participants) == sum(counts.values()) == PHONES
    stage = asyncio.run(stage_results(stack, int(meta[b"version"])))
    assert stage["total"] == PHONES and stage["counts"] == counts
    assert wait_for_rows(stack, question_id, participants) == participants
    assert len(answer_rows(stack, question_id)) == PHONES


@pytest.mark.e2e
def test_primary_killed_mid_burst_loses_no_acknowledged_answer(tmp_path, redis_group):
    group = redis_group
    stack = sentinel_stack(tmp_path, group, wait_replicas=1)
    hall = Hall(stack, seed=13)

    async def scenario():
        await hall.join_and_answer()
        first = await asyncio.to_thread(hall.rows_once_written, stack)
        # The replica falls behind: what the primary writes from here on it does not get.
        group.link.hold()
        assert group.replica.replicating_from() == group.link.port  # still through the link
        group.primary.client().set("zp:test:held", "1")  # acknowledged by the primary alone
        before = hall.resends()
        burst = asyncio.create_task(hall.answer("m1"))
        # Until every phone has been refused at least once (WAIT's timeout, again and again).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(
            now == then for now, then in zip(hall.resends(), before, strict=True)
        ):
            await asyncio.sleep(0.05)
        held = hall.acked("m1"), sum(hall.resends()) - sum(before)
        # Counted on the primary alone, so not in the table either (the writer waits too).
        assert await asyncio.to_thread(answer_rows, stack, hall.question_id) == first
        group.primary.kill()  # mid-burst: phones are still sending
        killed = time.monotonic()
        group.link.cut()
        promoted = await asyncio.to_thread(group.wait_for_failover, group.primary.port)
        failover = time.monotonic() - killed
        # The old primary back as the new one's replica: WAIT can be satisfied again.
        await asyncio.to_thread(group.primary.start, promoted.port)
        await asyncio.wait_for(burst, 60)
        all_acked = time.monotonic() - killed
        # The show goes on, on the same Daphne processes: one more answer each.
        await asyncio.wait_for(hall.answer("m2"), 30)
        return promoted, held, (failover, all_acked)

    try:
        promoted, (acked_while_held, resends_while_held), seconds = asyncio.run(scenario())
        print(
            f"\nprimary kill -9 with the replica held: {acked_while_held} of {PHONES} answers "
            f"acknowledged while held ({resends_while_held} resends then), "
            f"{sum(hall.resends())} resends in all; port {promoted.port} promoted "
            f"{seconds[0]:.1f} s after the kill, the burst all acked {seconds[1]:.1f} s after"
        )
        client = promoted.client()
        # The fault is real: a write the primary alone acknowledged is gone after the failover.
        assert client.get("zp:test:held") is None
        # WAIT held every acknowledgement back while the replica lacked the answer...
        assert acked_while_held == 0
        assert resends_while_held >= PHONES
        # ...and every answer acknowledged is counted once: Redis, stage, database, phones.
        check_counted_once(stack, client, hall, answers=3)
    finally:
        stack.stop()


@pytest.mark.e2e
def test_a_switchover_mid_burst_moves_every_process_to_the_new_primary(tmp_path, redis_group):
    """``SENTINEL FAILOVER``: the replica is promoted while the old primary still takes writes,
    and the old one is made its replica some seconds later (the sentinels wait 8 s before they
    reconfigure a node that still says it is a primary). Phones keep answering throughout."""
    group = redis_group
    stack = sentinel_stack(tmp_path, group, wait_replicas=1)
    hall = Hall(stack, seed=17)

    async def scenario():
        await hall.join_and_answer()
        burst = asyncio.create_task(hall.answer("m1"))
        await asyncio.sleep(0.05)
        group.sentinels[0].client().sentinel_failover(SERVICE)
        promoted = await asyncio.to_thread(group.wait_for_failover, group.primary.port)
        await asyncio.wait_for(burst, 60)
        await asyncio.wait_for(hall.answer("m2"), 30)
        return promoted

    try:
        promoted = asyncio.run(scenario())
        print(f"\nswitchover to port {promoted.port}: {sum(hall.resends())} resends")
        assert promoted is group.replica
        check_counted_once(stack, promoted.client(), hall, answers=3)
    finally:
        stack.stop()


# -- without a standby nothing changes -----------------------------------------------------


@pytest.mark.django_db
def test_the_embedded_default_has_no_sentinel_and_sends_no_wait(redis, question):
    """The test settings are the embedded default's shape: REDIS_URL, no sentinels, no WAIT;
    an answer batch is the scripts and the log registry, nothing more."""
    assert settings.REDIS_SENTINELS == [] and settings.REDIS_SENTINEL_CONNECTION is None
    assert settings.ZP_REDIS_WAIT_REPLICAS == 0
    layer = settings.CHANNEL_LAYERS["default"]
    assert layer["BACKEND"] == "polls.layers.RedisChannelLayer"
    assert layer["CONFIG"]["hosts"][0]["address"] == settings.REDIS_URL
    redis.config_resetstat()
    option = question.options.first()
    outcome = asyncio.run(tally.record_answer(question.id, question.kind, "p1", "m0", option.id))
    assert outcome.status == "ok"
    commands = redis.info("commandstats")
    assert "cmdstat_wait" not in commands
    assert not redis.exists(redis_client.REPLICATED_KEY)


@pytest.mark.django_db
def test_waiting_for_a_replica_that_is_not_there_refuses_the_answer(redis, question, settings):
    """WAIT short of its replicas: the batch is ``unavailable`` (the phone sends again), and a
    host's change is refused like a Redis away (its transaction rolls back)."""
    settings.ZP_REDIS_WAIT_REPLICAS = 1
    settings.ZP_REDIS_WAIT_MS = 20
    redis.config_resetstat()
    option = question.options.first()
    with pytest.raises(tally.TallyUnavailable, match="0 of 1 replicas"):
        asyncio.run(tally.record_answer(question.id, question.kind, "p1", "m0", option.id))
    # Counted on the primary; its resend, still unconfirmed, is refused again, not counted twice.
    with pytest.raises(tally.TallyUnavailable):
        asyncio.run(tally.record_answer(question.id, question.kind, "p1", "m0", option.id))
    assert redis.info("commandstats")["cmdstat_wait"]["calls"] == 2
    # A host closing the question: written on the primary, yet refused (the action's retry
    # writes the database's flags again).
    with pytest.raises(tally.TallyUnavailable, match="0 of 1 replicas"):
        tally.set_open(question.id, False)
    settings.ZP_REDIS_WAIT_REPLICAS = 0
    tally.set_open(question.id, True)
    again = asyncio.run(tally.record_answer(question.id, question.kind, "p1", "m0", option.id))
    assert again.status == "duplicate"
    assert tally.read_snapshot_sync(question.id).total == 1


@pytest.mark.django_db
def test_an_answer_sent_to_a_demoted_node_is_unavailable(tmp_path, question, settings):
    """A connection still open to a node that is a replica now (a demoted primary): the
    script's write is refused inside EVALSHA, which redis-py's Sentinel connection does not take
    for a demotion. The answer is ``unavailable`` and the pool's connections are dropped, so the
    next one asks the sentinels again."""
    primary = RedisNode(tmp_path / "a").start()
    replica = RedisNode(tmp_path / "b").start(replica_of=primary.port)
    try:
        keys = tally.question_keys(question.id)
        primary.client().hset(keys["meta"], "open", "1")
        wait_until(lambda: replica.client().hget(keys["meta"], "open") == b"1", 10, "replicated")
        settings.REDIS_URL = replica.url
        option = question.options.first()

        async def answer():
            with pytest.raises(tally.TallyUnavailable, match="READONLY"):
                await tally.record_answer(question.id, question.kind, "p1", "m0", option.id)
            pool = redis_client.get_async_redis().connection_pool
            return [connection.is_connected for connection in pool._available_connections]

        assert not any(asyncio.run(answer()))
        assert not replica.client().exists(keys["answers"])
    finally:
        for node in (replica, primary):
            stop(node.process, timeout=5)


# -- the settings ---------------------------------------------------------------------------

PROD = {
    "DJANGO_SETTINGS_MODULE": "config.settings.prod",
    "DJANGO_SECRET_KEY": "x7" * 30 + "-a-long-random-production-secret",
    "ALLOWED_HOSTS": "poll.example.org",
    "DATABASE_URL": "sqlite:////tmp/zaalpeiling-check.sqlite3",
}
SENTINELS = {"REDIS_SENTINELS": "10.0.0.21:26379,10.0.0.22", "REDIS_SENTINEL_SERVICE": "zp"}
SHOW = (
    "from django.conf import settings; import json; layer = settings.CHANNEL_LAYERS['default'];"
    "print(json.dumps([settings.REDIS_URL, layer['BACKEND'], layer['CONFIG']['hosts'][0]]))"
)


def production(env: dict) -> subprocess.CompletedProcess:
    names = {*PROD, *SENTINELS, "REDIS_URL", "REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD"}
    names |= {"ZP_REDIS_WAIT_REPLICAS", "ZP_REDIS_WAIT_MS"}
    clean = {key: value for key, value in os.environ.items() if key not in names}
    return subprocess.run(
        [sys.executable, "-c", SHOW],
        cwd=ROOT,
        env={**clean, **PROD, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_follows_the_sentinels_without_a_redis_url():
    result = production({**SENTINELS, "REDIS_PASSWORD": "data-pw", "REDIS_SENTINEL_PASSWORD": "s"})
    assert result.returncode == 0, result.stderr
    url, backend, host = json.loads(result.stdout)
    assert url == "redis+sentinel://10.0.0.21:26379,10.0.0.22:26379/zp"  # no password in it
    assert backend == "polls.sentinel_layer.RedisChannelLayer"
    assert host["sentinels"] == [["10.0.0.21", 26379], ["10.0.0.22", 26379]]
    assert host["master_name"] == "zp" and host["password"] == "data-pw"
    assert host["sentinel_kwargs"]["password"] == "s"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"REDIS_SENTINELS": "10.0.0.21:26379"}, "Set REDIS_SENTINELS and REDIS_SENTINEL_SERVICE"),
        ({"REDIS_SENTINEL_SERVICE": "zp"}, "Set REDIS_SENTINELS and REDIS_SENTINEL_SERVICE"),
        ({**SENTINELS, "REDIS_URL": "redis://10.0.0.20:6379/0"}, "not both"),
        ({"REDIS_SENTINELS": "10.0.0.21:port", "REDIS_SENTINEL_SERVICE": "zp"}, "host:port"),
        ({"REDIS_URL": "redis://r:6379/0", "REDIS_PASSWORD": "x"}, "put the password in the URL"),
        (
            {**SENTINELS, "ZP_REDIS_WAIT_REPLICAS": "1", "ZP_REDIS_WAIT_MS": "0"},
            "at least 1 and at most 9000",
        ),
        ({}, "Set the environment variable REDIS_URL"),
    ],
    ids=["no-service", "no-sentinels", "both", "bad-port", "password", "wait-0", "nothing"],
)
def test_production_refuses_an_unclear_redis(env, says):
    result = production(env)
    assert result.returncode != 0
    assert says in result.stderr

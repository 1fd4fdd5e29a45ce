"""Faults with real processes: Redis killed mid-burst, a Daphne process killed mid-burst, the
writer killed mid-drain. Every acknowledged answer must be counted exactly once afterwards."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time

import pytest
import redis as redis_lib
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from devenv.private_redis import start_redis
from devenv.processes import stop
from polls import tally
from polls.tokens import read_participant_token
from tests.live_helpers import checked
from tests.servers import http_post, make_stack

pytestmark = [pytest.mark.e2e]
CODE = "KSF2018"


class Phone:
    """A participant that never gives up on an answer: it resends with the same message id
    after any error or dropped connection until the answer is acknowledged."""

    def __init__(self, ports: list[int], question_id: int, options: list[int], rng):
        self.ports, self.question_id, self.options, self.rng = ports, question_id, options, rng
        self.token = None
        self.acked: dict[str, int] = {}
        self.final = None
        self.resends = 0

    async def run(self, answers: int, later: asyncio.Event | None = None) -> None:
        """Join and deliver ``answers`` answers; the ones after the first wait for ``later``
        (the fault), so some answers always meet it however fast the first ones went."""
        while self.token is None:
            try:
                port = self.rng.choice(self.ports)
                status, body = await http_post("127.0.0.1", port, f"/api/e/{CODE}/join")
                if status == 200:
                    self.token = body["token"]
            except OSError:
                await asyncio.sleep(0.2)
        for index in range(answers):
            if index and later is not None:
                await later.wait()
            value = self.rng.choice(self.options)
            await self.deliver(f"m{index}", value)
            self.final = value

    async def deliver(self, message_id: str, value: int) -> None:
        backoff = 0.1
        while True:
            port = self.rng.choice(self.ports)
            url = f"ws://127.0.0.1:{port}/ws/e/{CODE}/?token={self.token}"
            try:
                async with connect(url, origin=f"http://127.0.0.1:{port}", open_timeout=5) as ws:
                    checked(await asyncio.wait_for(ws.recv(), 5), ws)  # state
                    await ws.send(
                        json.dumps(
                            {
                                "type": "answer",
                                "id": message_id,
                                "question": self.question_id,
                                "value": value,
                            }
                        )
                    )
                    while True:
                        reply = checked(await asyncio.wait_for(ws.recv(), 5), ws)
                        if reply["type"] == "ack" and reply["id"] == message_id:
                            self.acked[message_id] = value
                            return
                        if reply["type"] == "error":
                            assert reply["code"] == "unavailable", reply
                            break
            except (OSError, WebSocketException, TimeoutError):
                pass
            self.resends += 1
            await asyncio.sleep(backoff * (0.5 + self.rng.random()))
            backoff = min(backoff * 2, 2)


def answer_rows(stack, question_id: int) -> dict[str, int]:
    rows = stack.query(
        "SELECT participant, value FROM polls_answer WHERE question_id = %s", question_id
    )
    return dict(rows)  # the JSON column arrives decoded from PostgreSQL


def counted(client, question_id: int) -> dict[str, int]:
    keys = tally.question_keys(question_id)
    return {
        participant.decode(): json.loads(raw.split(b"\n", 1)[1])
        for participant, raw in client.hgetall(keys["answers"]).items()
    }


def wait_for_rows(stack, question_id: int, expected: dict, seconds: float = 20) -> dict:
    """The rows once they equal ``expected`` (or the deadline passed): every participant's row
    may exist while the writer has yet to apply someone's last change."""
    deadline = time.monotonic() + seconds
    rows = answer_rows(stack, question_id)
    while rows != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = answer_rows(stack, question_id)
    return rows


def check_exactly_once(stack, client, question_id: int, phones: list[Phone]) -> None:
    participants = {
        read_participant_token(phone.token, CODE).participant_id: phone.final for phone in phones
    }
    tallied = counted(client, question_id)
    assert tallied == participants
    snapshot_total = int(client.hget(tally.question_keys(question_id)["meta"], "total"))
    counts = {
        key.decode(): int(value)
        for key, value in client.hgetall(tally.question_keys(question_id)["counts"]).items()
    }
    assert snapshot_total == len(participants) == sum(counts.values())
    assert wait_for_rows(stack, question_id, participants) == participants


@pytest.fixture
def private_redis(tmp_path):
    directory = tmp_path / "redis"
    url, process = start_redis(directory, fsync="always")
    yield directory, url, process
    stop(process)


def test_redis_killed_and_restarted_mid_burst_loses_no_acknowledged_answer(tmp_path, private_redis):
    directory, url, process = private_redis
    stack = make_stack(tmp_path, redis_url=url)
    stack.start_daphne()
    stack.start_writer()
    client = redis_lib.Redis.from_url(url)
    question_id, options = stack.current_question(CODE)
    rng = random.Random(5)
    phones = [
        Phone([stack.port], question_id, options, random.Random(rng.random())) for _ in range(120)
    ]

    async def scenario():
        killed = asyncio.Event()
        runs = [asyncio.create_task(phone.run(answers=2, later=killed)) for phone in phones]
        while sum(len(phone.acked) for phone in phones) < 80:
            await asyncio.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)  # no shutdown, no final fsync
        process.wait()
        killed.set()
        await asyncio.sleep(1.5)
        _url, restarted = await asyncio.to_thread(start_redis, directory, "always")
        await asyncio.wait_for(asyncio.gather(*runs), 90)
        return restarted

    try:
        restarted = asyncio.run(scenario())
        acked = sum(len(phone.acked) for phone in phones)
        resends = sum(phone.resends for phone in phones)
        print(f"\nRedis kill -9: {acked} answers acknowledged, {resends} resends")
        assert acked == 240 and resends > 0
        check_exactly_once(stack, client, question_id, phones)
    finally:
        stack.stop()
        stop(locals().get("restarted"))


def test_a_daphne_process_killed_mid_burst_loses_nothing(tmp_path, redis_server):
    stack = make_stack(tmp_path)
    first = stack.start_daphne()
    first_port = stack.port
    stack.start_daphne()
    second_port = stack.port
    stack.start_writer()
    client = redis_lib.Redis.from_url(redis_server)
    question_id, options = stack.current_question(CODE)
    rng = random.Random(7)
    phones = [
        Phone([first_port, second_port], question_id, options, random.Random(rng.random()))
        for _ in range(120)
    ]

    async def scenario():
        killed = asyncio.Event()
        runs = [asyncio.create_task(phone.run(answers=2, later=killed)) for phone in phones]
        while sum(len(phone.acked) for phone in phones) < 80:
            await asyncio.sleep(0.01)
        first.kill()
        first.wait()
        killed.set()
        await asyncio.wait_for(asyncio.gather(*runs), 90)

    try:
        asyncio.run(scenario())
        acked = sum(len(phone.acked) for phone in phones)
        print(
            f"\nDaphne kill -9: {acked} answers acknowledged, "
            f"{sum(phone.resends for phone in phones)} resends"
        )
        assert acked == 240
        check_exactly_once(stack, client, question_id, phones)
    finally:
        stack.stop()


def test_the_writer_killed_mid_drain_leaves_the_table_equal_to_the_tally(tmp_path, redis_server):
    stack = make_stack(tmp_path)
    stack.start_daphne()
    client = redis_lib.Redis.from_url(redis_server)
    question_id, options = stack.current_question(CODE)
    rng = random.Random(9)
    phones = [
        Phone([stack.port], question_id, options, random.Random(rng.random())) for _ in range(300)
    ]

    async def scenario():
        await asyncio.gather(*[phone.run(answers=1) for phone in phones])

    asyncio.run(scenario())
    writer = stack.start_writer("--batch", "10")
    deadline = time.monotonic() + 10
    while not answer_rows(stack, question_id) and time.monotonic() < deadline:
        time.sleep(0.002)
    writer.kill()  # mid-drain: some batches committed, one perhaps read and not acknowledged
    writer.wait()
    written_before_kill = len(answer_rows(stack, question_id))
    assert written_before_kill < 300
    stack.start_writer()
    try:
        check_exactly_once(stack, client, question_id, phones)
        print(f"\nwriter kill -9 after {written_before_kill} of 300 rows; all 300 after restart")
        report = stack.manage("check_tallies")
        assert "0 differences" in report
    finally:
        stack.stop()

"""`python3 dev.py serve` itself, as a host runs it, under a burst of phones that resend like the
phone page: a Daphne process, the answer writer and the private Redis are each killed (-9) and
every phone's answer is still acknowledged and counted exactly once, with serve up throughout and
saying what happened. A part that keeps dying stops serve with a clear message; SIGTERM stops
every part in order and serve exits 0.

serve runs on its own var/ folder (ZP_VAR_DIR, shared by the tests here so the second run skips
what the first set up) and its own port (ZP_PORT): never the checkout's var/ or port 8000."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis as redis_lib
from django.conf import settings
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException
from websockets.protocol import State

from devenv.daphne import accepting
from devenv.private_redis import redis_alive
from polls import tally
from polls.tokens import read_participant_token
from tests.servers import DEMO_PASSWORD, free_port, http_post
from tests.test_faults import Phone, counted

pytestmark = [pytest.mark.e2e]
ROOT = Path(__file__).resolve().parent.parent
CODE = "KSF2018"
PHONES = 300
SPREAD = 2.0  # seconds over which the hall's answers to one question arrive
START_TIMEOUT = 180  # setup and four Django starts on two busy cores
BURST_TIMEOUT = 120
# What a child's command line holds, for each kind serve starts.
KINDS = {"daphne": "polls.server", "writer": "drain_answers", "redis": "redis-server"}
STOPPED_IN_ORDER = [
    "[dev] the Daphne processes have stopped",
    "[dev] the answer writer has stopped",
    "[dev] the private Redis has stopped",
]


@pytest.fixture(scope="module")
def var_dir():
    # Short, under the system's temporary folder: Redis's socket path must stay under 108 bytes.
    directory = Path(tempfile.mkdtemp(prefix="zp-serve-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


class Serve:
    """``dev.py serve`` in a subprocess, its output (and its children's) in ``log``."""

    def __init__(self, var_dir: Path, log: Path):
        self.var_dir, self.log, self.port = var_dir, log, free_port()
        drop = {"REDIS_URL", "DATABASE_URL", "ZP_TEST_REDIS_URL", "ALLOWED_HOSTS"}
        env = {name: value for name, value in os.environ.items() if name not in drop}
        env.update(
            ZP_VAR_DIR=str(var_dir),
            ZP_HOST="127.0.0.1",
            ZP_PORT=str(self.port),
            ZP_PROCESSES="2",
            ZP_ACCESS_LOG="off",
            ZP_DEMO_PASSWORD=DEMO_PASSWORD,
            ZP_ANSWER_WARMUP_SECONDS="0",
            ZP_JOIN_FREE_PER_MINUTE="1000000",
            # This process reads the phones' tokens: it must know the key that signed them.
            DJANGO_SECRET_KEY=settings.SECRET_KEY,
        )
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "dev.py"), "serve"],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.seen: set[int] = set()  # every child's pid, to be sure none outlives the test

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def dev_lines(self) -> list[str]:
        return [line for line in self.output().splitlines() if line.startswith("[dev] ")]

    def children(self) -> dict[str, list[int]]:
        """The live children serve started, by kind (from /proc: serve prints no pids)."""
        found: dict[str, list[int]] = {kind: [] for kind in KINDS}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, ValueError):
                continue
            if int(parent) != self.process.pid or state == "Z":  # Z: dead, not yet reaped
                continue
            for kind, marker in KINDS.items():
                if marker in command:
                    found[kind].append(int(entry.name))
                    self.seen.add(int(entry.name))
        return found

    def live_pids(self) -> set[int]:
        return {pid for pids in self.children().values() for pid in pids}

    def writer_starts(self) -> int:
        return len(re.findall(r"^answer writer \S+ running$", self.output(), re.MULTILINE))

    def wait_for(self, ready, what: str, timeout: float = START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = ready()
            if result:
                return result
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"serve: no {what} (exit {self.process.poll()}):\n{self.output()}")

    def wait_started(self) -> None:
        self.wait_for(lambda: "Ctrl-C stops" in self.output(), "start")
        self.wait_for(self.all_serving, "two Daphne processes accepting")

    def listening_inode(self) -> int | None:
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{self.port:04X}") and fields[3] == "0A":  # 0A: LISTEN
                return int(fields[9])
        return None

    def all_serving(self) -> bool:
        """Two Daphne processes accepting on the shared socket, the writer and Redis up."""
        found, inode = self.children(), self.listening_inode()
        return (
            inode is not None
            and len(found["daphne"]) == 2
            and all(accepting(pid, inode) for pid in found["daphne"])
            and len(found["writer"]) == 1
            and len(found["redis"]) == 1
            and redis_alive(self.var_dir / "redis" / "redis.sock")
        )

    def terminate(self) -> None:
        """Teardown, whatever the test did: serve, then any child it left behind (only a
        process that is still the one serve started: same pid, same start time)."""
        left = {pid: start_time(pid) for pid in self.live_pids()}
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid, started in left.items():
            if started is not None and start_time(pid) == started:
                os.kill(pid, signal.SIGKILL)

    def redis(self) -> redis_lib.Redis:
        return redis_lib.Redis(unix_socket_path=str(self.var_dir / "redis" / "redis.sock"))

    def current_question(self) -> tuple[int, list[int]]:
        with sqlite3.connect(self.var_dir / "db.sqlite3") as db:
            (question_id,) = db.execute(
                "SELECT current_question_id FROM polls_event WHERE code = ?", (CODE,)
            ).fetchone()
            rows = db.execute(
                "SELECT id FROM polls_option WHERE question_id = ? ORDER BY id", (question_id,)
            )
            return question_id, [row[0] for row in rows]

    def answer_rows(self, question_id: int) -> dict[str, int]:
        with sqlite3.connect(self.var_dir / "db.sqlite3", timeout=30) as db:
            rows = db.execute(
                "SELECT participant, value FROM polls_answer WHERE question_id = ?", (question_id,)
            )
            return {participant: json.loads(value) for participant, value in rows}


def start_time(pid: int) -> int | None:
    try:
        return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


class HallPhone(Phone):
    """A phone as the phone page is: its WebSocket stays open between answers; after an error
    or a dropped connection it connects again and resends the answer with the same id."""

    ws = None

    async def join(self, port: int) -> None:
        while self.token is None:
            try:
                status, body = await http_post("127.0.0.1", port, f"/api/e/{CODE}/join")
                if status == 200:
                    self.token = body["token"]
                    continue
            except (OSError, ValueError):
                pass
            await asyncio.sleep(0.2)
        await self.connection()

    async def connection(self):
        if self.ws is None:
            port = self.rng.choice(self.ports)
            url = f"ws://127.0.0.1:{port}/ws/e/{CODE}/?token={self.token}"
            ws = await connect(url, origin=f"http://127.0.0.1:{port}", open_timeout=10)
            try:
                await asyncio.wait_for(ws.recv(), 10)  # state
            except BaseException:
                await ws.close()
                raise
            self.ws = ws
        return self.ws

    async def reconnect_if_closed(self) -> None:
        """As the page does when its socket closes (a killed server's were): before the next
        question, so that a resend counts the answers one kill disturbed, not an earlier one."""
        if self.ws is not None and self.ws.state is not State.OPEN:
            await self.drop()
        while self.ws is None:
            try:
                await self.connection()
            except (OSError, WebSocketException, TimeoutError):
                await asyncio.sleep(0.2)

    async def drop(self) -> None:
        ws, self.ws = self.ws, None
        if ws is not None:
            await ws.close()

    async def deliver(self, message_id: str, value: int) -> None:
        backoff = 0.1
        answer = {"type": "answer", "id": message_id, "question": self.question_id}
        while True:
            try:
                ws = await self.connection()
                await ws.send(json.dumps({**answer, "value": value}))
                while True:
                    reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if reply["type"] == "ack" and reply["id"] == message_id:
                        self.acked[message_id] = value
                        return
                    if reply["type"] == "error":
                        assert reply["code"] == "unavailable", reply
                        break
            except (OSError, WebSocketException, TimeoutError):
                await self.drop()
            self.resends += 1
            await asyncio.sleep(backoff * (0.5 + self.rng.random()))
            backoff = min(backoff * 2, 2)

    async def answer(self, message_id: str) -> None:
        await asyncio.sleep(self.rng.uniform(0, SPREAD))
        value = self.rng.choice(self.options)
        await self.deliver(message_id, value)
        self.final = value


def open_sockets(pid: int) -> int:
    try:
        return sum(
            os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:")
            for name in os.listdir(f"/proc/{pid}/fd")
        )
    except OSError:
        return 0


async def burst(serve: Serve, phones: list[HallPhone], phase: int, kind: str) -> dict:
    """Every phone answers anew (message ``m<phase>``), over ``SPREAD`` seconds; a quarter of
    the way in, one child of ``kind`` is killed with SIGKILL. Returns the figures once every
    answer is acknowledged."""
    message_id = f"m{phase}"
    resends_before = sum(phone.resends for phone in phones)
    # Chosen before the burst (reading /proc holds up the phones); of the Daphne processes, the
    # one holding more of the phones' connections.
    victim = max(serve.children()[kind], key=open_sockets)
    await asyncio.gather(*(phone.reconnect_if_closed() for phone in phones))
    runs = [asyncio.create_task(phone.answer(message_id)) for phone in phones]
    while sum(message_id in phone.acked for phone in phones) < len(phones) // 4:
        assert not any(run.done() and run.exception() for run in runs)
        await asyncio.sleep(0.005)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    writer_starts = serve.writer_starts()

    def recovered() -> bool:
        # A new Daphne accepts on the shared socket, a new Redis answers on the same socket, a
        # new writer has said it runs.
        if victim in serve.live_pids() or not serve.all_serving():
            return False
        return kind != "writer" or serve.writer_starts() > writer_starts

    def recover() -> float:
        serve.wait_for(recovered, "restart", timeout=BURST_TIMEOUT)
        return time.monotonic() - killed_at

    async def all_acknowledged() -> float:
        await asyncio.gather(*runs)
        return time.monotonic() - killed_at

    # Together: a serve that stopped fails the test at once, not when the phones give up.
    recovered_after, acknowledged_after = await asyncio.wait_for(
        asyncio.gather(asyncio.to_thread(recover), all_acknowledged()), BURST_TIMEOUT
    )
    return {
        "victim": victim,
        "recovered_after": recovered_after,
        "acknowledged_after": acknowledged_after,
        "acknowledged": sum(message_id in phone.acked for phone in phones),
        "resends": sum(phone.resends for phone in phones) - resends_before,
    }


def check_exactly_once(serve: Serve, question_id: int, phones: list[Phone]) -> None:
    """Stage total == Redis tally == Answer rows == distinct participants."""
    participants = {
        read_participant_token(phone.token, CODE).participant_id: phone.final for phone in phones
    }
    assert len(participants) == len(phones)
    client = serve.redis()
    try:
        assert counted(client, question_id) == participants
        keys = tally.question_keys(question_id)
        stage_total = int(client.hget(keys["meta"], "total"))
        counts = {key.decode(): int(value) for key, value in client.hgetall(keys["counts"]).items()}
    finally:
        client.close()
    assert stage_total == len(participants) == sum(counts.values())
    deadline = time.monotonic() + 60  # the writer may still be applying the last changes
    rows = serve.answer_rows(question_id)
    while rows != participants and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = serve.answer_rows(question_id)
    assert rows == participants


def test_serve_restarts_each_killed_part_and_every_answer_counts_once(var_dir, tmp_path):
    serve = Serve(var_dir, tmp_path / "serve.log")
    try:
        serve.wait_started()
        question_id, options = serve.current_question()
        rng = random.Random(18)
        phones = [
            HallPhone([serve.port], question_id, options, random.Random(rng.random()))
            for _ in range(PHONES)
        ]
        names = {"daphne": "Daphne process", "writer": "answer writer", "redis": "private Redis"}

        async def show() -> list[dict]:
            await asyncio.wait_for(
                asyncio.gather(*(phone.join(serve.port) for phone in phones)), BURST_TIMEOUT
            )
            shown = []
            for phase, kind in enumerate(names):
                shown.append(await burst(serve, phones, phase, kind))
                # Checked between bursts, with the phones' sockets open (reads of a few files).
                check_after(kind, shown[-1])
            for phone in phones:
                await phone.drop()
            return shown

        def check_after(kind: str, figures: dict) -> None:
            assert figures["acknowledged"] == PHONES
            if kind != "writer":  # phones never wait on the writer
                assert figures["resends"] > 0, figures
            check_exactly_once(serve, question_id, phones)
            assert serve.process.poll() is None, serve.output()
            assert serve.all_serving(), serve.output()
            said = [
                line
                for line in serve.dev_lines()
                if f"(pid {figures['victim']})" in line and names[kind] in line
            ]
            assert len(said) == 1, serve.output()
            assert "SIGKILL" in said[0] and "restarted" in said[0], said
            print(
                f"\n{kind} kill -9: {PHONES} phones, {figures['acknowledged']} acknowledged, "
                f"{figures['resends']} resends; restarted and serving "
                f"{figures['recovered_after']:.1f} s after the kill, every answer acknowledged "
                f"{figures['acknowledged_after']:.1f} s after it; serve said: {said[0]}"
            )

        asyncio.run(show())
        children = serve.children()
        serve.process.send_signal(signal.SIGTERM)
        assert serve.process.wait(timeout=60) == 0, serve.output()
        lines = serve.dev_lines()
        assert [line for line in lines if line in STOPPED_IN_ORDER] == STOPPED_IN_ORDER, lines
        assert all(gone(pid) for pids in children.values() for pid in pids)
    finally:
        serve.terminate()


def test_a_part_that_keeps_dying_stops_serve_with_a_clear_message(var_dir, tmp_path):
    serve = Serve(var_dir, tmp_path / "serve.log")
    try:
        serve.wait_started()
        killed: list[int] = []
        deadline = time.monotonic() + START_TIMEOUT
        while serve.process.poll() is None and time.monotonic() < deadline:
            for pid in serve.children()["writer"]:
                if pid not in killed:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.02)
        assert serve.process.wait(timeout=60) == 1, serve.output()
        assert len(killed) == 5, serve.output()
        lines = serve.dev_lines()
        gave_up = [line for line in lines if re.search(r"answer writer .*died 5 times", line)]
        assert len(gave_up) == 1, lines
        assert "stopping everything" in gave_up[0]
        assert len([line for line in lines if "restarted" in line]) == 4, lines
        assert [line for line in lines if line in STOPPED_IN_ORDER] == STOPPED_IN_ORDER, lines
        assert all(gone(pid) for pid in serve.seen)
    finally:
        serve.terminate()

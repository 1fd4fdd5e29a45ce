"""The coordinator: prepares the question, runs the phases, checks exactness, builds the report.

Phases (each marked in the report with server CPU and load-generator CPU):

1. ``join``: phones join at ``join_rate`` per second (one schedule across all worker processes),
   open their socket and wait for the first ``state``.
2. ``hold``: everybody idle for ``hold`` seconds (at least 1 s); phones ping like the phone page.
3. ``burst``: every phone answers once at a random moment within ``burst`` seconds;
   ``change_share`` of them change their answer after the ack.
4. ``settle``: wait until the stage screens show the tally's final version.
5. ``broadcast``: the host client runs each of ``host_actions``; each phone's next ``state``
   gives one broadcast latency.
6. ``close``: results are collected, then every socket closes at once.
7. ``check``: the exactness check (waits for the answer writer to drain).

Django is used only here (and only in one thread): the throwaway event, host actions, the
Redis tally and the Answer rows. The phones live in ``phones.Worker``\\s: in this process when
``processes`` is 1, else one per worker process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import platform
import socket
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from . import page, phones, procinfo, stats
from .wsclient import HandshakeError, http_request, ws_connect

DEFAULT_URL = "http://127.0.0.1:8000"
# Join codes never hold the letters I, L and O (they are read as 1 and 0).
DEFAULT_CODE = "DRUKTEST"
BASELINE_CODE = "BARE"
DEFAULT_HOST_ACTIONS = ("next", "prev", "next")
PHONES_PER_PROCESS = 2500
REPORT_VERSION = 1
MIN_PHASE_SECONDS = 0.5


class LoadTestError(Exception):
    """The load test cannot run (bad options, no server, no event)."""


@dataclass
class Options:
    urls: list[str] = field(default_factory=lambda: [DEFAULT_URL])
    phones: int = 100
    join_rate: float = 200.0
    burst: float = 5.0
    change_share: float = 0.2
    kind: str = "single"
    code: str | None = None
    hold: float = 0.0
    processes: int = 0
    baseline: bool = False
    report: str | None = None
    server_pids: list[int] = field(default_factory=list)
    stages: int = 0
    stage_key: str | None = None
    host_actions: list[str] | None = None
    ack_timeout: float = 30.0
    join_timeout: float = 60.0
    drain_timeout: float = 30.0
    settle_timeout: float = 10.0
    broadcast_timeout: float = 30.0
    ping_interval: float = 25.0
    forwarded_for: int = 0
    seed: int = 2018
    progress: bool = True


def parse_target(url: str) -> dict:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "ws"):
        raise LoadTestError(f"{url}: only http:// addresses (point it at Daphne, no TLS)")
    if not parts.hostname:
        raise LoadTestError(f"{url}: no host")
    port = parts.port or 80
    try:
        ip = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)[0][4][0]
    except OSError as error:
        raise LoadTestError(f"{url}: {error}") from error
    address = ip_address(ip)
    local = address.is_loopback or ip in _local_addresses()
    return {
        "url": f"http://{parts.netloc}",
        "ip": ip,
        "port": port,
        "host_header": parts.netloc,
        "origin": f"http://{parts.netloc}",
        "local": local,
    }


def _local_addresses() -> set[str]:
    addresses = set()
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None):
            addresses.add(info[4][0])
    return addresses


# --- Django side (always called in the one database thread) ------------------------------------


def create_question(event, kind: str, order: int):
    from polls.models import Option, Question

    question = Question(
        event=event, order=order, kind=kind, prompt=f"Load test question {order} ({kind})"
    )
    if kind == "scale":
        question.scale_min, question.scale_max = 1, 10
    elif kind == "ces":
        question.scale_min, question.scale_max, question.lower_is_better = 1, 5, True
    elif kind in ("nps", "enps"):
        question.scale_min, question.scale_max = 0, 10
        question.scale_min_label, question.scale_max_label = "Not at all", "Certainly"
    elif kind == "split":
        question.split_a_label, question.split_b_label = "Self-service", "Live contact"
    elif kind == "text":
        question.text_max_length = 40
    elif kind == "quadrant":
        question.quadrant_x_label, question.quadrant_y_label = "Satisfaction", "Impact"
    elif kind == "multiple":
        question.min_choices, question.max_choices = 1, 3
    question.full_clean()
    question.save()
    if question.has_options:
        count = 4 if kind in ("single", "quadrant") else 5
        for number in range(1, count + 1):
            Option.objects.create(question=question, order=number, label=f"Option {number}")
    return question


def _forget_tallies(question_ids: list[int]) -> None:
    from polls import tally
    from polls.redis_client import get_sync_redis

    client = get_sync_redis()
    for question_id in question_ids:
        keys = tally.question_keys(question_id)
        client.delete(*keys.values())
        client.srem(tally.LOG_REGISTRY, keys["log"])


def prepare_throwaway_event(code: str, kind: str) -> dict:
    """(Re)create the event ``code``: two questions of ``kind``, the first current and open."""
    from polls import actions
    from polls.models import Event

    old = Event.objects.filter(code=code).first()
    if old is not None:
        question_ids = list(old.questions.values_list("id", flat=True))
        old.delete()
        with contextlib.suppress(Exception):
            _forget_tallies(question_ids)
    event = Event.objects.create(title=f"Load test ({kind})", code=code, language="en")
    first = create_question(event, kind, 1)
    create_question(event, kind, 2)
    actions.do_set_current(event, first, open_it=True)
    return {
        "event_id": event.id,
        "code": event.code,
        "stage_key": event.stage_key,
        "question_id": first.id,
        "kind": kind,
        "own_event": True,
    }


def existing_event(code: str) -> dict | None:
    from polls.models import Event

    event = Event.objects.filter(code=code).select_related("current_question").first()
    if event is None:
        return None
    question = event.current_question
    return {
        "event_id": event.id,
        "code": event.code,
        "stage_key": event.stage_key,
        "question_id": question.id if question else None,
        "kind": question.kind if question else None,
        "question_open": bool(question and question.state == "open"),
        "own_event": False,
    }


def run_host_action(event_id: int, action: str) -> tuple[float, float]:
    """What the remote control's button does (login and CSRF aside)."""
    from polls import actions
    from polls.models import Event

    event = Event.objects.select_related("current_question").get(pk=event_id)
    started = time.monotonic()
    actions.do_host_action(event, action)
    return started, time.monotonic()


def read_tally(question_id: int) -> dict:
    from polls import tally

    snapshot = tally.read_snapshot_sync(question_id)
    return {
        "version": snapshot.version,
        "total": snapshot.total,
        "counts": {key: count for key, count in snapshot.counts.items() if count},
    }


def read_tally_answers(question_id: int) -> dict:
    from polls import tally

    return tally.read_answers_sync(question_id)


def wait_for_rows(question_id: int, expected: int, timeout: float) -> dict:
    """The Answer rows once the writer drained the question's log (or the timeout passed)."""
    from polls import tally
    from polls.models import Answer
    from polls.redis_client import get_sync_redis

    log = tally.question_keys(question_id)["log"]
    started = time.monotonic()
    backlog = None
    while True:
        count = Answer.objects.filter(question_id=question_id).count()
        try:
            backlog = get_sync_redis().xlen(log)
        except Exception:  # then rows alone decide
            backlog = None
        drained = backlog in (0, None) and count >= expected
        if drained or time.monotonic() - started > timeout:
            break
        time.sleep(0.25)
    rows = dict(Answer.objects.filter(question_id=question_id).values_list("participant", "value"))
    return {
        "rows": rows,
        "seconds": round(time.monotonic() - started, 2),
        "log_backlog": backlog,
        "drained": backlog in (0, None) and len(rows) >= expected,
    }


def expected_counts(kind: str, answers: dict[str, Any]) -> dict[str, int]:
    from polls import tally

    counts: Counter[str] = Counter()
    for value in answers.values():
        counts.update(tally.buckets_for(kind, value))
    return {key: count for key, count in counts.items() if count}


def close_database() -> None:
    from django.db import connections

    connections.close_all()


# --- worker handles ------------------------------------------------------------------------------


class LocalWorker:
    """Phones on the coordinator's own event loop (``--processes 1``)."""

    def __init__(self, index: int, config: dict, indexes: list[int]) -> None:
        self.worker = phones.Worker(index, config, indexes)

    async def call(self, command: str, **arguments):
        return await getattr(self.worker, command)(**arguments)

    def progress(self) -> dict:
        return self.worker.progress()

    async def stop(self) -> None:
        if self.worker.heartbeat is not None:
            self.worker.heartbeat.cancel()


class ProcessWorker:
    """Phones in a worker process, driven over a pipe."""

    def __init__(self, index: int, config: dict, indexes: list[int]) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=phones.serve,
            args=(child, index, config, indexes),
            name=f"loadtest-worker-{index}",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.pending: dict[int, asyncio.Future] = {}
        self.last: dict = {}
        self.next_id = 0
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.connection.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            message = self.connection.recv()
        except (EOFError, OSError):
            self.loop.remove_reader(self.connection.fileno())
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(LoadTestError("a load-generator process died"))
            self.pending.clear()
            return
        if message[0] == "progress":
            self.last = message[1]
            return
        request_id, status, result = message
        future = self.pending.pop(request_id, None)
        if future is None or future.done():
            return
        if status == "ok":
            future.set_result(result)
        else:
            future.set_exception(LoadTestError(f"worker: {result}"))

    async def call(self, command: str, **arguments):
        self.next_id += 1
        future = self.loop.create_future()
        self.pending[self.next_id] = future
        self.connection.send((self.next_id, command, arguments))
        return await future

    def progress(self) -> dict:
        return self.last

    async def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.loop.remove_reader(self.connection.fileno())
            self.connection.send((None, "exit", {}))
        await asyncio.to_thread(self.process.join, 10)
        if self.process.is_alive():
            self.process.kill()
        with contextlib.suppress(OSError):
            self.connection.close()


# --- stage screens -------------------------------------------------------------------------------


class StageClient:
    """A stage screen: keeps every results snapshot's receipt time and version."""

    def __init__(self, target: dict, path: str) -> None:
        self.target = target
        self.path = path
        self.ws = None
        self.series: dict[int, list[tuple[float, int]]] = defaultdict(list)
        self.latest: dict[int, dict] = {}
        self.states = 0
        self.question_id: int | None = None
        self.first_results = asyncio.get_running_loop().create_future()
        self.closed_code: int | None = None

    async def connect(self, timeout: float = 15.0) -> None:
        self.ws = await ws_connect(
            self.target["ip"],
            self.target["port"],
            self.path,
            host_header=self.target["host_header"],
            origin=self.target["origin"],
            on_text=self.on_text,
            on_close=self.on_close,
            timeout=timeout,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.first_results), timeout)

    def on_text(self, payload: bytes) -> None:
        now = time.monotonic()
        message = json.loads(payload)
        kind = message.get("type")
        if kind == "results":
            question = message["question"]
            self.series[question].append((now, message["version"]))
            latest = self.latest.get(question)
            if latest is None or message["version"] >= latest["version"]:
                self.latest[question] = message
            if not self.first_results.done():
                self.first_results.set_result(True)
        elif kind == "state":
            self.states += 1
            question = message.get("question")
            self.question_id = question["id"] if question else None

    def on_close(self, code: int, by_us: bool) -> None:
        if not by_us:
            self.closed_code = code
        if not self.first_results.done():
            self.first_results.set_result(False)

    def shown_version(self, question_id: int) -> int:
        latest = self.latest.get(question_id)
        return latest["version"] if latest else -1

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()


# --- the run -------------------------------------------------------------------------------------


class Runner:
    def __init__(self, options: Options, stream=None) -> None:
        self.options = options
        self.stream = stream if stream is not None else sys.stderr
        self.warnings: list[str] = []
        self.phases: list[dict] = []
        self.workers: list = []
        self.stages: list[StageClient] = []
        self.info: dict = {}
        self.server_pids: dict[int, dict] = {}
        self.server_peak: dict[int, int] = {}
        self.phase_name = "setup"
        self.phase_started = time.monotonic()
        self.counts_before: dict | None = None
        self.v0: int | None = None
        self.tally_after: dict | None = None
        self.broadcasts: list[dict] = []
        self.burst_window: tuple[float, float] | None = None
        self.join_window: tuple[float, float] | None = None

    # helpers

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        self._line(f"warning: {text}", final=True)

    async def db(self, function, *args):
        return await self.loop.run_in_executor(self.executor, function, *args)

    def _line(self, text: str, final: bool = False) -> None:
        if not self.options.progress and not final:
            return
        if self.stream.isatty():
            self.stream.write("\r\x1b[2K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    # main

    async def run(self) -> dict:
        options = self.options
        if options.phones < 1:
            raise LoadTestError("--phones must be at least 1")
        self.loop = asyncio.get_running_loop()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="loadtest-db")
        self.started_wall = datetime.now(UTC)
        self.started = time.monotonic()
        self.targets = [parse_target(url) for url in options.urls]
        progress = None
        try:
            await self._prepare()
            self.page = await self._measure_page()
            self._find_servers()
            sampler = self.loop.create_task(self._sample_servers())
            await self._start_workers()
            progress = self.loop.create_task(self._progress())
            await self._connect_stages()
            await self._warm_up()
            await self._mark("join")
            await self._join()
            await self._mark("hold")
            # A new token's first answer is held for the server's warm-up (docs/reliability.md);
            # a hall answers after reading the question, so the burst starts after it too.
            await asyncio.sleep(max(1.0, options.hold, settings.ZP_ANSWER_WARMUP_SECONDS))
            await self._mark("burst")
            await self._burst()
            await self._mark("settle")
            await self._settle()
            await self._mark("broadcast")
            await self._broadcast()
            await self._mark("close")
            results = await self._collect()
            held = sum(1 for phone in results["phones"] if phone["live"])
            await self._close_everything()
            await self._mark("check")
            check = await self._exactness(results)
            await self._mark("end")
            sampler.cancel()
            return self._report(results, held, check)
        finally:
            if progress is not None:
                progress.cancel()
            for stage in self.stages:
                stage.close()
            for worker in self.workers:
                with contextlib.suppress(Exception):
                    await worker.stop()
            with contextlib.suppress(Exception):
                await self.db(close_database)
            self.executor.shutdown(wait=False)

    # setup

    async def _prepare(self) -> None:
        options = self.options
        if options.baseline:
            from polls.codes import normalise_code

            code = normalise_code(options.code or BASELINE_CODE)
            self.info = {"code": code, "kind": options.kind or "single", "question_id": 1}
            self.counts_before = await self._baseline_counts()
            return
        if options.code is None:
            from polls.models import Question

            if options.kind not in Question.Kind.values:
                raise LoadTestError(f"--kind must be one of {', '.join(Question.Kind.values)}")
            try:
                self.info = await self.db(prepare_throwaway_event, DEFAULT_CODE, options.kind)
            except Exception as error:
                raise LoadTestError(
                    f"could not prepare the throwaway event {DEFAULT_CODE} through the ORM "
                    f"({type(error).__name__}: {error}); the load test needs the server's "
                    "DATABASE_URL and REDIS_URL, or --code with --stage-key"
                ) from error
        else:
            from polls.codes import normalise_code

            code = normalise_code(options.code)
            try:
                info = await self.db(existing_event, code)
            except Exception as error:  # no database: phones only
                info = None
                self.warn(f"no database access ({type(error).__name__}): no Answer-row check")
            if info is None:
                self.warn(
                    f"event {code} is not in this process's database: no host client, no "
                    "Answer-row check; the stage needs --stage-key"
                )
                info = {"code": code, "own_event": False, "question_id": None, "kind": None}
            elif not info.get("question_open"):
                self.warn(f"event {code}'s current question is not open: phones cannot answer")
            self.info = info
        if options.stage_key:
            self.info["stage_key"] = options.stage_key

    async def _measure_page(self) -> dict | None:
        if self.options.baseline:
            return None
        try:
            measured = await page.measure_phone_page(self.targets[0], self.info["code"])
        except (OSError, TimeoutError, ConnectionError) as error:
            raise LoadTestError(
                f"cannot reach {self.targets[0]['url']} ({type(error).__name__}: {error})"
            ) from error
        if measured["files"] and measured["files"][0]["status"] == 404:
            raise LoadTestError(
                f"{self.targets[0]['url']} has no event {self.info['code']}: run the load test "
                "with the server's DATABASE_URL (and REDIS_URL), or pass --code"
            )
        return measured

    def _find_servers(self) -> None:
        pids = {pid: "given" for pid in self.options.server_pids}
        ports = {target["port"] for target in self.targets if target["local"]}
        found = procinfo.listening_pids(ports) if ports else {}
        for pid, port in found.items():
            pids.setdefault(pid, f"listening on :{port}")
        for pid, how in pids.items():
            sample = procinfo.sample(pid)
            if sample is None:
                self.warn(f"server pid {pid} cannot be read from /proc")
                continue
            self.server_pids[pid] = {
                "pid": pid,
                "found": how,
                "command": procinfo.describe(pid),
                "marks": {},
            }
            self.server_peak[pid] = sample["rss_kib"]
        if not self.server_pids:
            self.warn("no server process found on this machine: no server memory or CPU figures")

    async def _sample_servers(self) -> None:
        """Peak RSS per server process."""
        while True:
            for pid in self.server_pids:
                sample = procinfo.sample(pid)
                if sample is not None:
                    self.server_peak[pid] = max(self.server_peak[pid], sample["rss_kib"])
            await asyncio.sleep(0.5)

    def _processes(self) -> int:
        options = self.options
        if options.processes > 0:
            return min(options.processes, options.phones)
        wanted = math.ceil(options.phones / PHONES_PER_PROCESS)
        return max(1, min(wanted, os.cpu_count() or 1))

    async def _start_workers(self) -> None:
        options = self.options
        config = {
            "targets": self.targets,
            "code": self.info["code"],
            "seed": options.seed,
            "ping_interval": options.ping_interval,
            "pong_timeout": 10.0,
            "ack_timeout": options.ack_timeout,
            "forwarded_for": options.forwarded_for,
            "baseline_kind": self.info["kind"] if options.baseline else None,
        }
        self.worker_config = config
        count = self._processes()
        self.process_count = count
        if count == 1:
            self.workers = [LocalWorker(0, config, list(range(options.phones)))]
            return
        self.workers = [
            ProcessWorker(index, config, list(range(index, options.phones, count)))
            for index in range(count)
        ]
        await asyncio.gather(*(worker.call("status") for worker in self.workers))

    async def _warm_up(self) -> None:
        """One phone joins, connects and leaves before the memory baseline is read, so the
        server's first-use costs (imports, pools, caches) are not charged to the phones."""
        worker = phones.Worker(-1, self.worker_config, [0])
        try:
            await worker._join_phone(worker.phones[0], 30.0)
        finally:
            await worker.close(timeout=5.0)
        phone = worker.phones[0]
        if phone.failed:
            self.warn(f"the warm-up phone could not join: {phone.failed}")
        expected = self.info.get("question_id")
        seen = (phone.question or {}).get("id")
        if not self.options.baseline and phone.ready_at and expected and seen != expected:
            raise LoadTestError(
                f"the server's event {self.info['code']} shows question {seen}, this process's "
                f"database has {expected}: run the load test with the server's DATABASE_URL "
                "and REDIS_URL"
            )
        await asyncio.sleep(0.5)

    async def _connect_stages(self) -> None:
        if self.options.baseline:
            return
        key = self.info.get("stage_key")
        if not key:
            self.warn("no stage key (pass --stage-key): no stage screen, no answer -> stage")
            return
        count = self.options.stages or len(self.targets)
        path = f"/ws/e/{self.info['code']}/stage/?key={key}"
        for number in range(count):
            stage = StageClient(self.targets[number % len(self.targets)], path)
            try:
                await stage.connect()
            except (HandshakeError, OSError, TimeoutError, ConnectionError) as error:
                self.warn(f"stage screen {number + 1} did not connect: {error}")
                continue
            self.stages.append(stage)
        if self.info.get("question_id") is None:
            for stage in self.stages:
                if stage.question_id is not None:
                    self.info["question_id"] = stage.question_id

    # phases

    async def _mark(self, name: str) -> None:
        now = time.monotonic()
        cpu = time.process_time()
        generator = [await worker.call("status") for worker in self.workers]
        if len(self.workers) > 1:
            cpu += sum(progress["cpu"] for progress in generator)
        servers = {pid: procinfo.sample(pid) for pid in self.server_pids}
        self.phases.append({"name": name, "t": now, "generator_cpu_s": cpu, "servers": servers})
        self.phase_name = name
        self.phase_started = now

    async def _all(self, command: str, **arguments) -> list:
        return await asyncio.gather(*(worker.call(command, **arguments) for worker in self.workers))

    async def _join(self) -> None:
        start = time.monotonic() + 0.2
        await self._all(
            "join",
            start_at=start,
            rate=self.options.join_rate,
            join_timeout=self.options.join_timeout,
        )
        self.join_window = (start, time.monotonic())

    async def _burst(self) -> None:
        question_id = self.info.get("question_id")
        if question_id is not None and not self.options.baseline:
            try:
                self.v0 = (await self.db(read_tally, question_id))["version"]
            except Exception as error:
                self.warn(f"cannot read the tally from Redis ({type(error).__name__})")
        if self.v0 is None and self.stages and question_id is not None:
            self.v0 = max(stage.shown_version(question_id) for stage in self.stages)
        start = time.monotonic() + 0.3
        await self._all(
            "burst",
            start_at=start,
            duration=max(0.0, self.options.burst),
            change_share=self.options.change_share,
        )
        self.burst_window = (start, time.monotonic())

    async def _settle(self) -> None:
        """Until every stage screen shows the tally's final version."""
        question_id = self.info.get("question_id")
        if self.options.baseline or question_id is None:
            return
        target = None
        with contextlib.suppress(Exception):
            self.tally_after = await self.db(read_tally, question_id)
            target = self.tally_after["version"]
        if target is None:
            acked = sum(worker.progress().get("acked", 0) for worker in self.workers)
            target = (self.v0 or 0) + acked
        deadline = time.monotonic() + self.options.settle_timeout
        while self.stages and time.monotonic() < deadline:
            if all(stage.shown_version(question_id) >= target for stage in self.stages):
                break
            await asyncio.sleep(0.05)
        self.settle_target = target

    async def _host_call(self, action: str) -> tuple[float, float]:
        if self.options.baseline:
            target = self.targets[0]
            question = 2 if len(self.broadcasts) % 2 == 0 else 1
            started = time.monotonic()
            response = await http_request(
                target["ip"],
                target["port"],
                "POST",
                f"/api/e/{self.info['code']}/broadcast?question={question}&kind={self.info['kind']}",
                host_header=target["host_header"],
            )
            if response.status != 200:
                raise LoadTestError(f"baseline broadcast: HTTP {response.status}")
            return started, time.monotonic()
        return await self.db(run_host_action, self.info["event_id"], action)

    async def _broadcast(self) -> None:
        options = self.options
        actions = options.host_actions
        if actions is None:
            actions = list(DEFAULT_HOST_ACTIONS) if self.info.get("own_event") else []
            if options.baseline:
                actions = ["broadcast"] * len(DEFAULT_HOST_ACTIONS)
        if not self.options.baseline and actions and "event_id" not in self.info:
            self.warn("no host client without database access: no broadcast latency")
            actions = []
        if not actions and not options.baseline and not self.info.get("own_event"):
            self.warn("no --host-actions for an existing event: no broadcast latency")
        for number, action in enumerate(actions, start=1):
            live = sum(await self._all("arm", round_number=number))
            try:
                t0, t1 = await self._host_call(action)
            except Exception as error:  # reported, the run goes on
                await self._all("collect", t0=time.monotonic(), timeout=0)
                self.warn(f"host action {action!r} failed: {type(error).__name__}: {error}")
                continue
            collected = await self._all("collect", t0=t0, timeout=options.broadcast_timeout)
            latencies = [value for part in collected for value in part["latencies"]]
            self.broadcasts.append(
                {
                    "action": action,
                    "phones": live,
                    "received": len(latencies),
                    "missing": sum(part["missing"] for part in collected),
                    "host_call_ms": round((t1 - t0) * 1000, 1),
                    "latencies": latencies,
                }
            )
            await asyncio.sleep(0.5)

    async def _collect(self) -> dict:
        parts = await self._all("results")
        merged: dict[str, Any] = {"phones": [], "answers": []}
        for part in parts:
            for key, value in part.items():
                if isinstance(value, list):
                    merged.setdefault(key, []).extend(value)
                elif isinstance(value, dict):
                    counter = merged.setdefault(key, Counter())
                    counter.update(value)
                else:
                    merged[key] = merged.get(key, 0) + value
        return merged

    async def _close_everything(self) -> None:
        for stage in self.stages:
            stage.close()
        await self._all("close")
        if self.options.baseline:
            self.counts_after = await self._baseline_counts()

    async def _baseline_counts(self) -> dict:
        target = self.targets[0]
        try:
            response = await http_request(
                target["ip"],
                target["port"],
                "GET",
                f"/api/e/{self.info['code']}/counts",
                host_header=target["host_header"],
            )
        except (OSError, TimeoutError, ConnectionError) as error:
            raise LoadTestError(f"cannot reach the baseline at {target['url']}: {error}") from error
        if response.status != 200:
            raise LoadTestError(
                f"{target['url']} did not answer like the baseline app (HTTP {response.status}); "
                "start it with: daphne loadgen.baseline:application"
            )
        return json.loads(response.body)["counts"]

    async def _progress(self) -> None:
        interval = 1.0 if self.stream.isatty() else 5.0
        while True:
            await asyncio.sleep(interval)
            totals: Counter[str] = Counter()
            for worker in self.workers:
                totals.update({k: v for k, v in worker.progress().items() if k != "cpu"})
            question_id = self.info.get("question_id")
            stage = ""
            if self.stages and question_id is not None:
                stage = f" | stage v{max(s.shown_version(question_id) for s in self.stages)}"
            self._line(
                f"[{self.phase_name} {time.monotonic() - self.phase_started:5.1f}s] "
                f"ready {totals['ready']}/{self.options.phones} "
                f"(joining {totals['joining']}, failed {totals['failed']}) "
                f"| answers sent {totals['sent']} acked {totals['acked']} "
                f"errors {totals['errors']} | dropped {totals['dropped']}{stage}"
            )

    # the exactness check

    async def _exactness(self, results: dict) -> dict:
        if self.options.baseline:
            return self._baseline_exactness(results)
        question_id = self.info.get("question_id")
        if question_id is None:
            return {"ok": None, "verdict": "n/a: no question id"}
        kind = self.info.get("kind")
        acked: dict[str, Any] = {}
        uncertain: dict[str, list] = {}
        for phone in results["phones"]:
            participant = phone["participant"]
            if participant is None:
                continue
            if phone["has_acked"]:
                acked[participant] = phone["acked_value"]
            if phone["uncertain"]:
                uncertain[participant] = phone["uncertain"]
        check: dict[str, Any] = {
            "question_id": question_id,
            "acked_participants": len(acked),
            "uncertain_participants": len(uncertain),
        }
        problems: list[str] = []
        notes: list[str] = []

        def allowed(participant: str) -> list:
            options = [acked[participant]] if participant in acked else [None]
            return options + uncertain.get(participant, [])

        def compare(name: str, counted: dict[str, Any]) -> None:
            wrong = []
            for participant in set(acked) | set(uncertain):
                if counted.get(participant) not in allowed(participant):
                    wrong.append(participant)
            ours = set(acked) | set(uncertain) | {p["participant"] for p in results["phones"]}
            foreign = [p for p in counted if p not in ours]
            check[f"{name}_mismatches"] = len(wrong)
            if wrong:
                sample = wrong[0]
                problems.append(
                    f"{name}: {len(wrong)} participants differ from their acknowledged answer "
                    f"(e.g. {sample}: acked {allowed(sample)!r}, {name} {counted.get(sample)!r})"
                )
            if foreign:
                notes.append(f"{name} has {len(foreign)} answers from other participants")

        # Redis
        redis_answers = None
        try:
            tally_now = await self.db(read_tally, question_id)
            redis_answers = await self.db(read_tally_answers, question_id)
        except Exception as error:
            tally_now = None
            notes.append(f"Redis not readable from here ({type(error).__name__})")
        if tally_now is not None:
            if tally_now["version"] == 0 and acked:
                notes.append("the tally is empty here: is REDIS_URL the server's?")
            check["redis_total"] = tally_now["total"]
            check["redis_version"] = tally_now["version"]
            compare("redis", redis_answers)
            if not uncertain:
                counts = expected_counts(kind, acked) if kind else None
                check["counts_expected"] = counts
                check["redis_counts_match"] = counts == tally_now["counts"]
                if counts != tally_now["counts"]:
                    problems.append("Redis counts differ from the acknowledged answers")
                if self.v0 is not None:
                    moves = tally_now["version"] - self.v0
                    acked_moves = sum(1 for a in results["answers"] if a[2] == "acked")
                    check["version_moves"] = moves
                    check["acked_answers"] = acked_moves
                    if moves != acked_moves:
                        problems.append(
                            f"the tally's version moved {moves} times for {acked_moves} "
                            "acknowledged answers (each one changes the count once)"
                        )
        # stage
        if self.stages:
            latest = [stage.latest.get(question_id) for stage in self.stages]
            shown = [message for message in latest if message is not None]
            if shown:
                last = max(shown, key=lambda message: message["version"])
                check["stage_total"] = last["total"]
                check["stage_version"] = last["version"]
                check["stage_totals"] = [message["total"] for message in shown]
                if tally_now is not None and any(
                    message["version"] != tally_now["version"] for message in shown
                ):
                    problems.append(
                        "a stage screen's last snapshot is not the tally's final version "
                        f"({[m['version'] for m in shown]} vs {tally_now['version']})"
                    )
                if kind in ("single", "multiple", "scale", "nps", "enps", "ces", "split"):
                    stage_counts = {k: v for k, v in last["counts"].items() if v}
                    if tally_now is not None:
                        check["stage_counts_match"] = stage_counts == tally_now["counts"]
                        if stage_counts != tally_now["counts"]:
                            problems.append("the stage's counts differ from Redis")
            else:
                problems.append("no stage screen received a snapshot of the question")
        # database
        expected_rows = len(redis_answers) if redis_answers is not None else len(acked)
        try:
            rows = await self.db(
                wait_for_rows, question_id, expected_rows, self.options.drain_timeout
            )
        except Exception as error:
            rows = None
            notes.append(f"Answer rows not readable from here ({type(error).__name__})")
        if rows is not None:
            check["db_rows"] = len(rows["rows"])
            check["db_wait_s"] = rows["seconds"]
            check["db_drained"] = rows["drained"]
            if not rows["drained"]:
                problems.append(
                    f"the answer writer did not drain within {self.options.drain_timeout:g} s "
                    f"(log backlog {rows['log_backlog']}; is `manage.py drain_answers` running?)"
                )
            compare("db", rows["rows"])
        # totals
        totals = {"acked": len(acked)}
        for name in ("stage_total", "redis_total", "db_rows"):
            if name in check:
                totals[name] = check[name]
        check["totals"] = totals
        if not uncertain and len(set(totals.values())) > 1:
            problems.append(f"totals differ: {totals}")
        if uncertain:
            low, high = len(acked), len(set(acked) | set(uncertain))
            for name, value in totals.items():
                if not low <= value <= high:
                    problems.append(f"{name} {value} is outside {low}..{high}")
        check["checked"] = [
            name
            for name, key in (("stage", "stage_total"), ("redis", "redis_total"), ("db", "db_rows"))
            if key in check
        ]
        check["problems"] = problems
        check["notes"] = notes
        if not acked and not uncertain:
            check["ok"] = None
            check["verdict"] = "NOTHING CHECKED: no answer was acknowledged"
            if problems:
                check["ok"] = False
                check["verdict"] = "MISMATCH: " + "; ".join(problems)
        elif problems:
            check["ok"] = False
            check["verdict"] = "MISMATCH: " + "; ".join(problems)
        elif uncertain:
            check["ok"] = True
            check["verdict"] = (
                f"consistent, but {len(uncertain)} participants had answers without an ack "
                "(counted either way is allowed)"
            )
        else:
            check["ok"] = True
            check["verdict"] = "exact: acknowledged == " + " == ".join(
                n for n in totals if n != "acked"
            )
        return check

    def _baseline_exactness(self, results: dict) -> dict:
        acked = [a for a in results["answers"] if a[2] == "acked"]
        unacked = [a for a in results["answers"] if a[2] in ("sent", "timeout", "lost")]
        before = self.counts_before or {}
        after = getattr(self, "counts_after", None) or {}
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}
        counted = sum(delta.values())
        low, high = len(acked), len(acked) + len(unacked)
        ok = low <= counted <= high
        exact = ok and not unacked
        if not acked and not unacked:
            ok, exact = None, False
        return {
            "ok": ok,
            "verdict": (
                f"exact: {counted} HINCRBYs for {len(acked)} acknowledged messages"
                if exact
                else "NOTHING CHECKED: no answer was acknowledged"
                if ok is None
                else (
                    f"consistent: {counted} counted for {len(acked)} acked + {len(unacked)} unacked"
                    if ok
                    else f"MISMATCH: {counted} counted for {len(acked)} acknowledged messages"
                )
            ),
            "acked_messages": len(acked),
            "unacked_messages": len(unacked),
            "redis_hincrby_total": counted,
            "totals": {"acked": len(acked), "redis_total": counted},
            "problems": [] if ok else ["counted != acknowledged"],
            "notes": ["the bare consumer counts messages, not participants (no replace)"],
        }

    # the report

    def _phase_figures(self) -> tuple[dict, dict]:
        generator: dict[str, float] = {}
        servers: dict[int, dict[str, float]] = defaultdict(dict)
        for start, end in zip(self.phases, self.phases[1:], strict=False):
            seconds = end["t"] - start["t"]
            if seconds < MIN_PHASE_SECONDS:
                continue  # /proc counts CPU in 10 ms ticks: a short phase's share is noise
            generator[start["name"]] = round(
                (end["generator_cpu_s"] - start["generator_cpu_s"]) / seconds * 100, 1
            )
            for pid in self.server_pids:
                a, b = start["servers"].get(pid), end["servers"].get(pid)
                if a and b:
                    servers[pid][start["name"]] = round(
                        (b["cpu_s"] - a["cpu_s"]) / seconds * 100, 1
                    )
        return generator, servers

    def _report(self, results: dict, held: int, check: dict) -> dict:
        options = self.options
        phones = results["phones"]
        ready = [p for p in phones if p["ready"]]
        answers = results["answers"]
        acked = [(a[0], a[1]) for a in answers if a[2] == "acked"]
        unacked_sends = [a[0] for a in answers if a[2] in ("sent", "timeout", "lost")]
        status_counts = Counter(a[2] for a in answers)
        generator_cpu, server_cpu = self._phase_figures()
        marks = {phase["name"]: phase for phase in self.phases}

        # answers per second: acknowledged answers over the span from the first send to the
        # last ack; the peak is the busiest whole second of acks.
        per_second = None
        peak = None
        if acked:
            first_sent = min(a[0] for a in answers)
            last_ack = max(ack for _sent, ack in acked)
            per_second = round(len(acked) / max(1e-6, last_ack - first_sent), 1)
            buckets = Counter(int(ack - first_sent) for _sent, ack in acked)
            peak = max(buckets.values())

        # answer -> stage
        question_id = self.info.get("question_id")
        stage_figures: dict[str, Any] = {
            "clients": len(self.stages),
            "dropped": sum(1 for stage in self.stages if stage.closed_code is not None),
        }
        if self.stages and question_id is not None and self.v0 is not None:
            series = [stats.StageSeries(stage.series.get(question_id, [])) for stage in self.stages]
            v_final = check.get("redis_version")
            if v_final is None:
                v_final = max(stage.shown_version(question_id) for stage in self.stages)
            bounds = stats.answer_to_stage(acked, unacked_sends, self.v0, v_final, series)
            stage_figures.update(
                {
                    "snapshots": sum(
                        len(stage.series.get(question_id, [])) for stage in self.stages
                    ),
                    "answer_to_stage_ms": stats.summary_ms(bounds["upper"]),
                    "answer_to_stage_lower_ms": stats.summary_ms(bounds["lower"]),
                    "not_seen": bounds["not_seen"],
                    "v0": self.v0,
                    "v_final": v_final,
                }
            )
        elif options.baseline:
            stage_figures["note"] = "the bare consumer has no stage"

        broadcast_all = [value for item in self.broadcasts for value in item["latencies"]]
        rounds = [
            {key: value for key, value in item.items() if key != "latencies"}
            | {"ms": stats.summary_ms(item["latencies"])}
            for item in self.broadcasts
        ]

        # server memory: RSS growth from before the join to the end of the hold (idle sockets)
        server = []
        growth = 0
        connections = len(ready) + len(self.stages)
        for pid, meta in self.server_pids.items():
            before = (marks.get("join") or {}).get("servers", {}).get(pid)
            idle = (marks.get("burst") or {}).get("servers", {}).get(pid)
            end = (marks.get("close") or {}).get("servers", {}).get(pid)
            entry = {
                "pid": pid,
                "command": meta["command"],
                "found": meta["found"],
                "rss_before_kib": before and before["rss_kib"],
                "rss_idle_kib": idle and idle["rss_kib"],
                "rss_end_kib": end and end["rss_kib"],
                "rss_peak_kib": self.server_peak.get(pid),
                "fds_idle": idle and idle["fds"],
                "threads_idle": idle and idle["threads"],
                "cpu_percent": server_cpu.get(pid, {}),
            }
            if before and idle:
                growth += idle["rss_kib"] - before["rss_kib"]
            server.append(entry)
        per_connection = round(growth / connections, 1) if server and ready else None

        join_seconds = self.join_window[1] - self.join_window[0] if self.join_window else None
        report = {
            "tool": "zaalpeiling loadtest",
            "report_version": REPORT_VERSION,
            "mode": "baseline" if options.baseline else "product",
            "started_at": self.started_wall.isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - self.started, 1),
            "options": asdict(options),
            "target": {
                "urls": [target["url"] for target in self.targets],
                "code": self.info.get("code"),
                "question_id": question_id,
                "kind": self.info.get("kind"),
                "throwaway_event": bool(self.info.get("own_event")),
            },
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "open_files_limit": procinfo.open_file_limit(),
                "generator_processes": self.process_count,
            },
            "phones": {
                "target": options.phones,
                "connected": len(ready),
                "held": held,
                "dropped": sum(1 for p in phones if p["dropped_at"] is not None),
                "drops_by_phase": self._drops_by_phase(phones),
                "close_codes": dict(results.get("close_codes", {})),
                "heartbeat_misses": results.get("pong_misses", 0),
                "pings": results.get("pings", 0),
            },
            "join": {
                "ok": len(ready),
                "failed": len(phones) - len(ready),
                "success_percent": round(100 * len(ready) / len(phones), 2),
                "failures": dict(results.get("fail_reasons", {})),
                "attempts": dict(results.get("join_status", {})),
                "post_ms": stats.summary_ms(results.get("join_post_seconds", [])),
                "socket_open_ms": stats.summary_ms(results.get("ws_open_seconds", [])),
                "ready_ms": stats.summary_ms(
                    p["ready_seconds"] for p in ready if p["ready_seconds"] is not None
                ),
                "duration_s": round(join_seconds, 2) if join_seconds else None,
                "ready_within_10s": (
                    sum(1 for p in ready if p["ready_at"] - self.join_window[0] <= 10.0)
                    if self.join_window
                    else None
                ),
                "offered_rate": options.join_rate,
            },
            "answers": {
                "sent": len(answers),
                "acked": len(acked),
                "errors": dict(results.get("errors", {})),
                "unacked": len(unacked_sends),
                "by_status": dict(status_counts),
                "changes": sum(1 for a in answers if a[4] == "change"),
                "retries": results.get("retries", 0),
                "skipped": dict(results.get("skipped", {})),
                "per_second": per_second,
                "peak_per_second": peak,
                "ack_ms": stats.summary_ms(ack - sent for sent, ack in acked),
                "burst_s": options.burst,
                "burst_wall_s": (
                    round(self.burst_window[1] - self.burst_window[0], 2)
                    if self.burst_window
                    else None
                ),
            },
            "stage": stage_figures,
            "broadcast": {"rounds": rounds, "ms": stats.summary_ms(broadcast_all)},
            "exactness": check,
            "server": {
                "processes": server,
                "rss_per_connection_kib": per_connection,
                "connections_measured": connections,
            },
            "generator": {"processes": self.process_count, "cpu_percent": generator_cpu},
            "phases": [
                {"name": start["name"], "seconds": round(end["t"] - start["t"], 2)}
                for start, end in zip(self.phases, self.phases[1:], strict=False)
            ],
            "page": self.page,
            "warnings": self.warnings,
        }
        return report

    def _drops_by_phase(self, phones: list[dict]) -> dict:
        counts: Counter[str] = Counter()
        for phone in phones:
            at = phone["dropped_at"]
            if at is None:
                continue
            name = "setup"
            for phase in self.phases:
                if phase["t"] <= at:
                    name = phase["name"]
            counts[name] += 1
        return dict(counts)


def run(options: Options, stream=None) -> dict:
    """Run the load test and return the report (a JSON-able dict)."""
    return asyncio.run(Runner(options, stream).run())

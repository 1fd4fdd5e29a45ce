"""The coordinator: prepares the question, runs the phases, then hands what it recorded to the
exactness check (``exactness``) and the report (``report``).

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

With ``qa`` (the audience Q&A) the answer burst and its settle make way for ``ask`` (phones ask
one item each), ``votes`` (the planned votes and unvotes, ``qa_plan``) and ``settle`` (until
the stage's board and the observers' lists are at the Q&A's final version); the check is the
Q&A's (``exactness.QaCheck``) and no host action runs unless asked for.

With ``quiz`` (the research quiz) they make way for ``quiz1``, ``quiz2``: for each scored
question the phones are armed with their answers (``quiz_plan``), the host opens it, each phone
answers at its moment after the server's opening, the server closes it at its deadline, and
the phase lasts until every phone has its ``score`` (and the stage its ``leaderboard``); the
check is the quiz's (``quiz_check.QuizCheck``).

Django is used only through ``django_side`` (and only in one thread): the throwaway event, host
actions, the Redis tally and the Answer rows. The phones live in ``phones.Worker``\\s: in this
process when ``processes`` is 1, else one per worker process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import signal
import sys
import time
from bisect import bisect_left
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from . import page, phones, procinfo, qa_plan, quiz_plan, report, stats
from . import profile as profiling
from .django_side import (
    close_database,
    existing_event,
    open_quiz_question,
    prepare_throwaway_event,
    read_qa_version,
    read_tally,
    run_host_action,
)
from .exactness import Check, QaCheck, baseline_exactness
from .options import (
    ARRIVALS,
    BASELINE_CODE,
    DEFAULT_CODE,
    DEFAULT_HOST_ACTIONS,
    PHONES_PER_PROCESS,
    LoadTestError,
    Options,
    parse_target,
)
from .quiz_check import QuizCheck
from .stage import StageClient
from .workers import LocalWorker, ProcessWorker
from .wsclient import HandshakeError, http_request, tls_of


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
        self.counts_after: dict | None = None
        self.v0: int | None = None
        self.tally_after: dict | None = None
        self.broadcasts: list[dict] = []
        self.burst_window: tuple[float, float] | None = None
        self.join_window: tuple[float, float] | None = None
        self.arrival = options.arrival
        self.warm_cache: dict[str, dict] = {}
        self.recorders: list[profiling.Recorder] = []
        self.profiles: dict[int, Path] = {}
        # the audience Q&A (options.qa)
        self.qa: dict[str, Any] = {}
        self.qa_window: tuple[float, float] | None = None
        self.worker_phones: list[list[int]] = []
        # the research quiz (options.quiz): per question what the phones and stages recorded
        self.quiz: dict[str, Any] = {}

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
        if options.arrival not in ARRIVALS:
            raise LoadTestError(f"--arrival must be one of {', '.join(ARRIVALS)}")
        for name in ("cached_share", "home_share"):
            if not 0.0 <= getattr(options, name) <= 1.0:
                raise LoadTestError(f"--{name.replace('_', '-')} must be between 0 and 1")
        if options.segments < 0 or options.segments == 1:
            raise LoadTestError("--segments must be 0 (none) or at least 2")
        if not 0.0 <= options.segment_none_share <= 1.0:
            raise LoadTestError("--segment-none-share must be between 0 and 1")
        if options.segments and (options.code or options.baseline):
            raise LoadTestError(
                "--segments makes the throwaway event's profile question: not with --code "
                "(whose event's own profile questions the phones answer) or --baseline"
            )
        if options.qa:
            if options.code or options.baseline:
                raise LoadTestError(
                    "--qa runs on the throwaway event: not with --code or --baseline"
                )
            if not 1 <= options.qa_items <= options.phones:
                raise LoadTestError("--qa-items must be between 1 and --phones")
            if options.qa_votes < 0 or options.qa_observers < 0:
                raise LoadTestError("--qa-votes and --qa-observers must not be negative")
            if not 0.0 <= options.qa_unvote_share <= 1.0:
                raise LoadTestError("--qa-unvote-share must be between 0 and 1")
        if options.quiz:
            if options.code or options.baseline or options.qa or options.segments:
                raise LoadTestError(
                    "--quiz runs on its own throwaway event: not with --code, --baseline, --qa "
                    "or --segments"
                )
            if options.quiz_questions not in (1, 2):
                raise LoadTestError("--quiz-questions must be 1 or 2")
            if not 5 <= options.quiz_limit <= 600:
                raise LoadTestError("--quiz-limit must be between 5 and 600 (the model's)")
            if not 0.0 <= options.quiz_spread < options.quiz_limit:
                raise LoadTestError("--quiz-spread must be between 0 and --quiz-limit")
            if not 0.0 <= options.quiz_right_share <= 1.0:
                raise LoadTestError("--quiz-right-share must be between 0 and 1")
        if options.baseline and options.arrival == "page":
            # The bare consumer serves no page: its phones start at the join POST.
            self.arrival = "api"
        self.loop = asyncio.get_running_loop()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="loadtest-db")
        self.started_wall = datetime.now(UTC)
        self.started = time.monotonic()
        self.targets = [parse_target(url, options.ca_file) for url in options.urls]
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
            await self._start_profiling()
            await self._mark("join")
            await self._join()
            stopping = self._stop_profiling()
            if self.info.get("profile"):
                # Every phone answered the profile questions on its first state: the burst
                # starts once each has its reply, so every phone's segment is settled.
                await self._mark("profile")
                await self._all("profile_wait", timeout=self.options.ack_timeout)
            await self._mark("hold")
            # A new token's first answer is held for the server's warm-up (docs/reliability.md);
            # a hall answers after reading the question, so the burst starts after it too.
            await asyncio.gather(
                asyncio.sleep(max(1.0, options.hold, settings.ZP_ANSWER_WARMUP_SECONDS)),
                stopping,
            )
            if options.quiz:
                await self._quiz()
            elif options.qa:
                await self._mark("ask")
                await self._qa_ask()
                await self._mark("votes")
                await self._qa_vote()
                await self._mark("settle")
                await self._qa_settle()
            else:
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
            if options.qa:
                await self._qa_figures()
            check = await self._exactness(results)
            await self._mark("end")
            sampler.cancel()
            return report.build(self, results, held, check)
        finally:
            if progress is not None:
                progress.cancel()
            for recorder in self.recorders:
                with contextlib.suppress(Exception):
                    recorder.process.kill()
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
                self.info = await self.db(
                    prepare_throwaway_event,
                    DEFAULT_CODE,
                    options.kind,
                    options.segments,
                    options.split,
                    options.qa,
                    {"limit": options.quiz_limit, "questions": options.quiz_questions}
                    if options.quiz
                    else None,
                )
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
        """The phone page's first visit (the page figure); for each server address, the cache a
        first visit leaves, which the phones arriving a second time start with."""
        if self.options.baseline:
            return None
        measured = None
        for target in self.targets:
            if target["url"] in self.warm_cache:
                continue
            try:
                visit, cache = await page.measure_phone_page(target, self.info["code"])
            except (OSError, TimeoutError, ConnectionError) as error:
                raise LoadTestError(
                    f"cannot reach {target['url']} ({type(error).__name__}: {error})"
                ) from error
            if visit["files"] and visit["files"][0]["status"] == 404:
                raise LoadTestError(
                    f"{target['url']} has no event {self.info['code']}: run the load test "
                    "with the server's DATABASE_URL (and REDIS_URL), or pass --code"
                )
            self.warm_cache[target["url"]] = cache
            measured = measured or visit
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
            "join_timeout": options.join_timeout,
            "reconnect": options.reconnect,
            "forwarded_for": options.forwarded_for,
            "baseline_kind": self.info["kind"] if options.baseline else None,
            "arrival": self.arrival,
            "cached_share": options.cached_share,
            "home_share": options.home_share,
            "warm_cache": self.warm_cache if options.cached_share > 0 else {},
            "profile_none_share": options.segment_none_share,
            "qa_observer_share": (
                min(1.0, options.qa_observers / options.phones) if options.qa else 0.0
            ),
        }
        self.worker_config = config
        count = self._processes()
        self.process_count = count
        if count == 1:
            self.worker_phones = [list(range(options.phones))]
            self.workers = [LocalWorker(0, config, self.worker_phones[0])]
            return
        self.worker_phones = [list(range(index, options.phones, count)) for index in range(count)]
        self.workers = [
            ProcessWorker(index, config, indexes)
            for index, indexes in enumerate(self.worker_phones)
        ]
        await asyncio.gather(*(worker.call("status") for worker in self.workers))

    async def _warm_up(self) -> None:
        """One phone joins, connects and leaves before the memory baseline is read, so the
        server's first-use costs (imports, pools, caches) are not charged to the phones."""
        worker = phones.Worker(-1, self.worker_config, [0])
        worker.answers_profile = False
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
            target = self.targets[number % len(self.targets)]
            stage = StageClient(target, path, reconnect=self.options.reconnect)
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

    # the profiler

    def _profile_pids(self) -> list[int]:
        if self.options.profile_pids:
            return list(self.options.profile_pids)
        return [pid for pid, meta in self.server_pids.items() if meta["found"] != "given"]

    async def _start_profiling(self) -> None:
        """py-spy on each server process, sampling before the join phase starts."""
        options = self.options
        if not options.profile:
            return
        directory = Path(options.profile)
        directory.mkdir(parents=True, exist_ok=True)
        pids = self._profile_pids()
        if not pids:
            self.warn("--profile: no server process to profile (pass --profile-pids)")
            return
        for pid in pids:
            try:
                recorder = profiling.Recorder(
                    pid, directory, options.profile_rate, blocking=options.profile_blocking
                )
            except OSError as error:
                self.warn(f"--profile: {error}")
                return
            self.recorders.append(recorder)
        started = await asyncio.gather(
            *(asyncio.to_thread(recorder.wait_sampling) for recorder in self.recorders)
        )
        for recorder, ok in zip(self.recorders, started, strict=True):
            if not ok:
                self.warn(f"--profile: py-spy on {recorder.pid} did not start: {recorder.error()}")

    def _stop_profiling(self):
        """Signal every py-spy now (the join is over); the returned coroutine waits for their
        files, during the hold."""
        recorders, self.recorders = self.recorders, []
        for recorder in recorders:
            if recorder.process.poll() is None:
                recorder.process.send_signal(signal.SIGINT)
        return self._collect_profiles(recorders)

    async def _collect_profiles(self, recorders: list) -> None:
        if not recorders:
            return
        written = await asyncio.gather(*(asyncio.to_thread(r.stop) for r in recorders))
        for recorder, ok in zip(recorders, written, strict=True):
            if ok:
                self.profiles[recorder.pid] = recorder.path
            else:
                self.warn(f"--profile: no profile of {recorder.pid}: {recorder.error()}")

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
                tls=tls_of(target),
            )
            if response.status != 200:
                raise LoadTestError(f"baseline broadcast: HTTP {response.status}")
            return started, time.monotonic()
        return await self.db(run_host_action, self.info["event_id"], action)

    async def _broadcast(self) -> None:
        options = self.options
        actions = options.host_actions
        if actions is None:
            own = self.info.get("own_event") and not options.qa and not options.quiz
            actions = list(DEFAULT_HOST_ACTIONS) if own else []
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
                tls=tls_of(target),
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
                f"errors {totals['errors']} | dropped {totals['dropped']}"
                + (
                    f" (reconnected {totals['reconnected']}, reconnecting {totals['reconnecting']})"
                    if self.options.reconnect
                    else ""
                )
                + stage
            )

    # the audience Q&A

    async def _qa_ask(self) -> None:
        """``qa_items`` phones (spread over the room) ask one item each."""
        options = self.options
        live = sorted(index for part in await self._all("qa_phones") for index in part)
        self.qa_rng = random.Random(options.seed)  # noqa: S311 - simulated choices
        items = min(options.qa_items, len(live))
        if items < options.qa_items:
            self.warn(f"only {len(live)} phones connected: {items} items, not {options.qa_items}")
        askers = qa_plan.askers(live, items, self.qa_rng)
        start = time.monotonic() + 0.3
        parts = await self._all(
            "qa_ask", start_at=start, duration=max(0.0, options.qa_ask_seconds), askers=askers
        )
        self.qa["live"] = live
        self.qa["items"] = [(item, phone) for part in parts for phone, item in part["items"]]
        self.qa["ask_statuses"] = dict(
            sum((Counter(part["statuses"]) for part in parts), Counter())
        )

    async def _qa_vote(self) -> None:
        """The planned votes: skewed over the items, none twice on an item or on one's own."""
        options = self.options
        items = [(item, phone) for item, phone in self.qa["items"]]
        if not items:
            self.warn("no item was acknowledged: no votes")
            return
        self.qa["v0"] = await self.db(read_qa_version, self.info["event_id"])
        voters = self.qa["live"]
        votes = min(options.qa_votes, len(items) * (len(voters) - 1))
        if votes < options.qa_votes:
            self.warn(f"{len(items)} items and {len(voters)} phones take {votes} votes at most")
        try:
            plan, planned = qa_plan.plan_votes(
                voters,
                [(item, phone) for item, phone in items],
                votes,
                max(0.0, options.qa_vote_seconds),
                options.qa_skew,
                options.qa_unvote_share,
                self.qa_rng,
            )
        except ValueError as error:
            raise LoadTestError(f"--qa: {error}") from error
        self.qa["planned"] = planned
        self.qa["planned_unvotes"] = sum(
            1 for actions in plan.values() for _t, kind, _i in actions if kind == qa_plan.UNVOTE
        )
        start = time.monotonic() + 0.5
        await asyncio.gather(
            *(
                worker.call(
                    "qa_vote",
                    start_at=start,
                    plan={index: plan[index] for index in indexes if index in plan},
                )
                for worker, indexes in zip(self.workers, self.worker_phones, strict=True)
            )
        )
        self.qa_window = (start, time.monotonic())

    async def _qa_settle(self) -> None:
        """Until the stage screens' boards and the observers' lists are at the final version."""
        final = await self.db(read_qa_version, self.info["event_id"])
        self.qa["v_final"] = final
        deadline = time.monotonic() + self.options.settle_timeout
        while time.monotonic() < deadline:
            shown = await self._all("qa_shown")
            lists = all(part["oldest"] is None or part["oldest"] >= final for part in shown)
            boards = all(stage.shown_qa_version() >= final for stage in self.stages)
            if lists and boards:
                break
            await asyncio.sleep(0.05)

    async def _qa_figures(self) -> None:
        """Every message's record; vote -> stage board and vote -> the observers' lists."""
        parts = await self._all("qa_results")
        messages = [record for part in parts for record in part["messages"]]
        self.qa["messages"] = messages
        self.qa["errors"] = dict(sum((Counter(part["errors"]) for part in parts), Counter()))
        self.qa["retries"] = sum(part["retries"] for part in parts)
        self.qa["observer_messages"] = sum(part["observer_messages"] for part in parts)
        v0, final = self.qa.get("v0"), self.qa.get("v_final")
        if v0 is None or final is None:
            return
        # A vote's version is at most v0 + the votes and unvotes sent before its ack: each one
        # counted before it was sent before it (docs/loadtest.md, "Answer -> stage").
        changes = [r for r in messages if r[2] != "ask"]
        sends = sorted(r[4] for r in changes if r[4] is not None)
        votes = [
            (sent, acked, item, count, phone, min(v0 + bisect_left(sends, acked), final))
            for phone, _p, kind, item, sent, acked, status, _v, count, _r in changes
            if kind == "vote" and status == "acked"
        ]
        stage_bins: dict[int, int] = {}
        on_board = off_board = not_seen = 0
        for stage in self.stages:
            view = stats.QaView(stage.boards)
            for sent, acked, item, count, _phone, version in votes:
                shown = view.first_showing(item, count, version, sent)
                if shown is None:
                    not_seen += 1
                elif not shown[1]:
                    off_board += 1  # the board includes the vote; the item is not in its top
                else:
                    on_board += 1
                    key = int(max(0.0, shown[0] - acked) * 1000 + 0.5)
                    stage_bins[key] = stage_bins.get(key, 0) + 1
        self.qa["stage"] = {
            "boards": sum(len(stage.boards) for stage in self.stages),
            "vote_to_board_ms": stats.summary_of_histogram(stage_bins),
            "on_board": on_board,
            "off_board": off_board,
            "not_seen": not_seen,
        }
        lists = await self._all("qa_latencies", votes=votes)
        list_bins: Counter[int] = Counter()
        for part in lists:
            list_bins.update(part["histogram"])
        self.qa["lists"] = {
            "observers": sum(part["observers"] for part in lists),
            "vote_to_list_ms": stats.summary_of_histogram(list_bins),
            "not_seen": sum(part["not_seen"] for part in lists),
        }

    # the research quiz

    async def _quiz(self) -> None:
        """Each scored question in turn: arm the phones, the host opens it, wait for the server
        to close it at its deadline and for every phone's ``score``."""
        options = self.options
        rng = random.Random(options.seed)  # noqa: S311 - simulated choices
        self.quiz["questions"] = []
        for number, spec in enumerate(self.info["quiz"], start=1):
            question = quiz_plan.QuizQuestion(
                spec["id"],
                spec["kind"],
                spec["limit"],
                tuple(spec["options"]),
                tuple(spec["correct"]),
                spec["target"],
                spec["tolerance"],
            )
            live = sorted(index for part in await self._all("qa_phones") for index in part)
            plan = quiz_plan.plan_answers(
                live, question, options.quiz_spread, options.quiz_right_share, rng
            )
            armed = await asyncio.gather(
                *(
                    worker.call(
                        "quiz_arm",
                        question=question.id,
                        plan={index: plan[index] for index in indexes if index in plan},
                    )
                    for worker, indexes in zip(self.workers, self.worker_phones, strict=True)
                )
            )
            await self._mark(f"quiz{number}")
            opened = await self.db(open_quiz_question, self.info["event_id"], question.id)
            deadline = (opened["deadline_ms"] or 0) / 1000
            parts = await self._all(
                "quiz_wait", question=question.id, until=deadline + options.quiz_results_timeout
            )
            # The stage's leaderboard may follow the last phone's score: wait for it too.
            until = deadline + options.quiz_results_timeout
            while self.stages and time.time() < until:
                if all(
                    any(m.get("question") == question.id for _t, m in stage.leaderboards)
                    for stage in self.stages
                ):
                    break
                await asyncio.sleep(0.05)
            self.quiz["questions"].append(
                {
                    "spec": spec,
                    "armed": sum(armed),
                    "opened": opened,
                    "answers": [a for part in parts for a in part["answers"]],
                    "phones": [p for part in parts for p in part["phones"]],
                    "stages": [
                        {
                            "states": [s for s in stage.quiz_states if s[1] == question.id],
                            "leaderboards": [
                                (t, m)
                                for t, m in stage.leaderboards
                                if m.get("question") == question.id
                            ],
                        }
                        for stage in self.stages
                    ],
                }
            )
            await asyncio.sleep(1.0)  # the host reads the board out before the next question

    # the exactness check

    async def _exactness(self, results: dict) -> dict:
        if self.options.quiz:
            return await QuizCheck(
                self.quiz, self.info, self.stages, self.db, self.options.drain_timeout
            ).run()
        if self.options.qa:
            return await QaCheck(
                self.qa.get("messages", []),
                self.info["event_id"],
                self.qa.get("v0"),
                self.stages,
                self.db,
                self.options.drain_timeout,
            ).run()
        if self.options.baseline:
            before = self.counts_before or {}
            return baseline_exactness(results, before, self.counts_after or {})
        question_id = self.info.get("question_id")
        if question_id is None:
            return {"ok": None, "verdict": "n/a: no question id"}
        check = Check(
            results,
            question_id,
            self.info.get("kind"),
            self.v0,
            self.stages,
            self.db,
            self.options.drain_timeout,
            profile=self.info.get("profile"),
            segment_by=self.info.get("segment_by"),
            segment_min=self.info.get("segment_min", 5),
        )
        return await check.run()


def run(options: Options, stream=None) -> dict:
    """Run the load test and return the report (a JSON-able dict)."""
    return asyncio.run(Runner(options, stream).run())

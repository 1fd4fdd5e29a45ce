"""One command that reproduces a performance figure: fresh servers, the load test, the baseline.

    .venv/bin/python -m loadgen.bench --scenario storm --server-processes 2 \\
        --layer pubsub --fanout local --out /tmp/bench/x

For each of ``--sides`` (default the product, then the bare-consumer baseline; ``ceiling``: the
product's Redis work on a minimal asyncio server, ``loadgen.ceiling``) it makes a fresh working
directory under ``--out``, starts a private Redis (``devenv.private_redis``: unix socket, AOF
with ``appendfsync always``), ``--server-processes`` server processes sharing one listening
port (``devenv.daphne``, as ``dev.py serve`` starts them), for the product the answer writer
(``manage.py drain_answers``) after ``migrate`` and ``collectstatic``, runs ``manage.py
loadtest`` with the scenario's options against that port, and stops everything again. It
prints a markdown table (a column per side, then product / bare and product / ceiling for the
join storm's figures) and writes ``<out>/summary.json`` and
``<out>/summary.md``. See docs/loadtest.md ("Reproducing a figure").

Standard library only (plus ``devenv``): the servers and the load test run as subprocesses with
their own settings.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from devenv.daphne import listening_socket, start_daphnes, wait_serving
from devenv.private_redis import start_redis
from devenv.processes import stop
from loadgen import profile as profiling
from loadgen.proxy import Nginx

ROOT = Path(__file__).resolve().parent.parent

HOST = "127.0.0.1"
# Each scenario mirrors one target of the performance issue. ``--forwarded-for`` spreads the
# joins over made-up client addresses where the join limiter (2,500 per 10 s and 6,000 per
# minute per address) would otherwise refuse phones: there joining is not what is measured.
SCENARIOS: dict[str, dict] = {
    "smoke": {
        "about": "60 phones, a quick check that everything runs",
        "phones": 60,
        "args": ["--join-rate", "200", "--burst", "1"],
    },
    "storm": {
        "about": "2,000 phones joining within 10 s (one address, as behind a venue NAT)",
        "phones": 2000,
        "args": ["--join-rate", "200", "--burst", "5"],
    },
    "burst": {
        "about": "5,000 phones answering over 5 s",
        "phones": 5000,
        "args": [
            "--join-rate",
            "250",
            "--burst",
            "5",
            "--forwarded-for",
            "100",
            "--arrival",
            "api",
        ],
    },
    "broadcast": {
        "about": "5,000 phones, host actions next, prev, next",
        "phones": 5000,
        "args": [
            "--join-rate",
            "250",
            "--burst",
            "5",
            "--host-actions",
            "next,prev,next",
            "--forwarded-for",
            "100",
            "--arrival",
            "api",
        ],
    },
    "hold": {
        "about": "10,000 phones held idle for 300 s",
        "phones": 10000,
        "hold": 300,
        "args": [
            "--join-rate",
            "250",
            "--burst",
            "5",
            "--forwarded-for",
            "100",
            "--arrival",
            "api",
        ],
    },
    "atonce": {
        "about": "10,000 phones answering at once (--burst 0: the server's ceiling)",
        "phones": 10000,
        "args": [
            "--join-rate",
            "250",
            "--burst",
            "0",
            "--forwarded-for",
            "100",
            "--arrival",
            "api",
        ],
    },
    # The audience Q&A (issue 15): the product alone, as neither the bare consumer nor the
    # ceiling has a Q&A. 300 phones ask one item each (within ZP_QA_ITEMS_PER_MINUTE), then
    # 20,000 votes over 10 s, Zipf-skewed over the items, 5 % taken back; 100 phones keep
    # their lists for the list latency.
    "qa": {
        "about": "5,000 phones in the Q&A: 300 items asked, then 20,000 votes over 10 s",
        "phones": 5000,
        "args": [
            "--join-rate",
            "250",
            "--forwarded-for",
            "100",
            "--arrival",
            "api",
            "--qa",
            "--qa-items",
            "300",
            "--qa-votes",
            "20000",
            "--qa-vote-seconds",
            "10",
        ],
        "product_only": True,
    },
    # The research quiz (issue 16): the product alone. 5,000 players in a quiz-mode event; the
    # host opens a scored single choice (10 s), every phone answers within 3 s of the opening,
    # the server closes it at its deadline and shows the leaderboard; then a scored split.
    "quiz": {
        "about": "5,000 players, two scored 10 s questions, every phone answering within 3 s",
        "phones": 5000,
        "args": [
            "--join-rate",
            "250",
            "--forwarded-for",
            "100",
            "--arrival",
            "api",
            "--quiz",
            "--quiz-limit",
            "10",
            "--quiz-spread",
            "3",
        ],
        "product_only": True,
    },
    # Not the product beside the baseline: the several-hosts layout (loadgen.hosts, network
    # namespaces, root) with one app host, then with two, behind HAProxy over TLS, every phone
    # from the hall's one address. The phones start at the join POST: over TLS a phone's page
    # and its files would be some ten handshakes each, and the generator's, not the servers'.
    "hosts": {
        "about": "2,000 phones through HAProxy (TLS) to one app host, then to two",
        "phones": 2000,
        "args": ["--join-rate", "200", "--burst", "5", "--arrival", "api", "--stages", "2"],
        "site": True,
    },
}
START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


# --- processes ----------------------------------------------------------------------------------


def stop_all(processes: list[subprocess.Popen], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM to every still-running process (they shut down in parallel), SIGKILL after."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"process {process.pid} ignored SIGTERM; killing it")
            process.kill()
            process.wait()


def stop_group(process: subprocess.Popen) -> None:
    """Stop a process started in its own session, with its children (the generator workers)."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def raise_open_files() -> int:
    """Lift this process's (and so its children's) soft open-file limit to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


SIDES = ("product", "baseline", "ceiling")
# What serves each side: (module run with --fd, the ASGI application or None).
SERVERS = {
    "product": ("polls.server", "config.asgi:application"),  # as the product is served
    "baseline": ("daphne", "loadgen.baseline:application"),  # the bare consumer, bare Daphne
    "ceiling": ("loadgen.ceiling", None),  # no Daphne: docs/loadtest.md, "The ceiling"
}


class Servers:
    """Redis, N server processes on one port and (product) the answer writer, in ``directory``.
    The server processes are Daphne's, or the ceiling's (still under ``pids["daphne"]``)."""

    def __init__(
        self,
        directory: Path,
        processes: int,
        env: dict,
        side: str,
        runner: dict,
        redis_url: str | None = None,
        proxy: str = "",
    ) -> None:
        self.directory = directory
        self.redis_url = redis_url  # a running Redis of the caller's, instead of a private one
        self.proxy_kind = proxy if side == "product" else ""  # the bare sides serve no files
        self.proxy: Nginx | None = None
        self.count = processes
        self.env = env
        self.side = side
        self.baseline = side != "product"  # the load test drives it with --baseline
        self.runner = runner  # what the load test's environment changes (its settings)
        self.redis: subprocess.Popen | None = None
        self.daphnes: list[subprocess.Popen] = []
        self.writer: subprocess.Popen | None = None
        self.port = 0
        self.logs: list[Path] = []

    def manage(self, *args: str) -> None:
        log = self.directory / f"{args[0]}.log"
        with log.open("wb") as out:
            result = subprocess.run(
                [sys.executable, "manage.py", *args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=300,
            )
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed; see {log}")

    def _log(self, name: str):
        path = self.directory / f"{name}.log"
        self.logs.append(path)
        return path.open("wb")

    def start(self, port: int = 0) -> None:
        if self.redis_url:
            url = self.redis_url  # neither started nor stopped here
        else:
            url, self.redis = start_redis(self.directory / "redis", fsync="always")
        self.env["REDIS_URL"] = url
        if self.proxy_kind:  # deploy/nginx/zaalpeiling.conf's one hop
            self.env["ZP_TRUSTED_PROXY_HOPS"] = "1"
        if not self.baseline:
            self.manage("migrate", "--noinput")
            self.manage("collectstatic", "--noinput")
        sock = listening_socket(HOST, port)
        try:
            self.port = sock.getsockname()[1]
            server, application = SERVERS[self.side]
            for index in range(self.count):
                with self._log(f"{self.side if application is None else 'daphne'}-{index}") as log:
                    popen = {
                        "stdout": log,
                        "stderr": subprocess.STDOUT,
                        "start_new_session": True,  # Ctrl-C reaches the bench; it stops them
                    }
                    if application is None:
                        self.daphnes.append(
                            subprocess.Popen(
                                [sys.executable, "-m", server, "--fd", str(sock.fileno())],
                                cwd=ROOT,
                                env=self.env,
                                pass_fds=(sock.fileno(),),
                                **popen,
                            )
                        )
                        continue
                    self.daphnes += start_daphnes(
                        sock,
                        1,
                        self.env,
                        application=application,
                        extra=("--verbosity", "0"),
                        python=sys.executable,
                        server=server,
                        **popen,
                    )
            if not self.baseline:
                with self._log("writer") as log:
                    self.writer = subprocess.Popen(
                        [sys.executable, "manage.py", "drain_answers"],
                        cwd=ROOT,
                        env=self.env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
            wait_serving(self.daphnes, sock, START_TIMEOUT)
        finally:
            sock.close()  # the servers hold it now
        if self.proxy_kind == "nginx":  # the load test talks to nginx; it serves /static/
            self.proxy = Nginx(
                self.directory / "nginx", HOST, self.port, self.directory / "staticfiles"
            )
            self.port = self.proxy.port

    @property
    def runner_env(self) -> dict:
        """The load test's environment: the servers' Redis, its own settings."""
        return dict(self.env, **self.runner)

    @property
    def pids(self) -> dict[str, list[int]]:
        return {
            "daphne": [process.pid for process in self.daphnes],
            "writer": [self.writer.pid] if self.writer else [],
            "redis": [self.redis.pid] if self.redis else [],
            "proxy": self.proxy.pids if self.proxy else [],
        }

    def stop(self) -> None:
        if self.proxy:
            self.proxy.stop()
        stop_all(self.daphnes)
        if self.writer:
            stop_all([self.writer])
        stop(self.redis)

    def log_problems(self) -> dict[str, int]:
        """Tracebacks and error lines per server log."""
        problems = {}
        for log in self.logs:
            if not log.exists():
                continue
            text = log.read_text(errors="replace")
            count = text.count("Traceback") + sum(
                1 for line in text.splitlines() if " ERROR " in line or line.startswith("ERROR")
            )
            if count:
                problems[log.name] = count
        return problems


# --- the load test ------------------------------------------------------------------------------


def effective_options(args: list[str]) -> argparse.Namespace:
    """The loadtest options that decide the timeout and the server's environment."""
    parser = argparse.ArgumentParser(add_help=False)
    for name, default in (
        ("--phones", 100),
        ("--join-rate", 200.0),
        ("--burst", 5.0),
        ("--hold", 0.0),
        ("--join-timeout", 60.0),
        ("--ack-timeout", 30.0),
        ("--drain-timeout", 30.0),
        ("--settle-timeout", 10.0),
        ("--broadcast-timeout", 30.0),
        ("--forwarded-for", 0),
        ("--qa-ask-seconds", 3.0),
        ("--qa-vote-seconds", 10.0),
        ("--quiz-questions", 2),
        ("--quiz-limit", 10),
        ("--quiz-results-timeout", 15.0),
    ):
        parser.add_argument(name, type=type(default), default=default)
    parser.add_argument("--host-actions", default="next,prev,next")
    parser.add_argument("--qa", action="store_true")
    parser.add_argument("--quiz", action="store_true")
    return parser.parse_known_args(args)[0]


def loadtest_timeout(options: argparse.Namespace) -> float:
    """Generous: every phase at its own limit, plus ten minutes."""
    actions = max(1, len([a for a in options.host_actions.split(",") if a.strip()]))
    return (
        options.phones / max(options.join_rate, 1.0)
        + options.join_timeout
        + options.hold
        + options.burst
        + ((options.qa_ask_seconds + options.qa_vote_seconds) if options.qa else 0.0)
        + (
            options.quiz_questions * (options.quiz_limit + options.quiz_results_timeout + 2)
            if options.quiz
            else 0.0
        )
        + options.ack_timeout * 2
        + options.settle_timeout
        + options.broadcast_timeout * actions
        + options.drain_timeout
        + 600
    )


def run_loadtest(
    servers: Servers, loadtest_args: list[str], report: Path, timeout: float, profile: bool = False
) -> tuple[int | None, Path]:
    pids = [pid for group in servers.pids.values() for pid in group]
    profiling = []
    if profile:  # py-spy on each Daphne process during the join phase (loadgen.profile)
        profiling = ["--profile", str(servers.directory / "profile")]
        profiling += ["--profile-pids", ",".join(map(str, servers.pids["daphne"]))]
    command = [
        sys.executable,
        "manage.py",
        "loadtest",
        "--url",
        f"http://{HOST}:{servers.port}",
        "--report",
        str(report),
        "--no-progress",
        "--server-pids",
        ",".join(map(str, pids)),
        *(["--baseline"] if servers.baseline else []),
        *profiling,
        *loadtest_args,
    ]
    log = servers.directory / "loadtest.log"
    (servers.directory / "loadtest.command").write_text(shlex.join(command) + "\n")
    say(f"{servers.side}: {shlex.join(command[2:])}")
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=servers.runner_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            return process.wait(timeout=timeout), log
        except subprocess.TimeoutExpired:
            say(f"the load test did not finish within {timeout:.0f} s; stopping it")
            return None, log
        finally:
            stop_group(process)


def probe_layer(env: dict) -> dict:
    """The channel layer and fan-out the given environment's settings select."""
    code = (
        "import json; from django.conf import settings as s; "
        "print(json.dumps({'layer': s.CHANNEL_LAYERS['default']['BACKEND'], "
        "'fanout': getattr(s, 'ZP_FANOUT', None)}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode:
        return {"error": result.stderr.strip().splitlines()[-1:]}
    return json.loads(result.stdout)


def run_side(
    name: str,
    directory: Path,
    processes: int,
    env: dict,
    loadtest_args: list[str],
    timeout: float,
    port: int,
    runner: dict,
    profile: bool = False,
    redis_url: str | None = None,
    proxy: str = "",
) -> dict:
    directory.mkdir(parents=True)
    servers = Servers(
        directory, processes, env, side=name, runner=runner, redis_url=redis_url, proxy=proxy
    )
    outcome: dict = {"directory": str(directory), "report": None}
    try:
        say(f"{name}: starting Redis, {processes} server process(es) in {directory}")
        servers.start(port)
        outcome["pids"] = servers.pids
        # The ceiling has no channel layer: one PUBLISH per broadcast, heard by every process.
        outcome["settings"] = (
            probe_layer(servers.env) if name != "ceiling" else {"layer": "none (PUBLISH)"}
        )
        say(f"{name}: serving on port {servers.port}, pids {servers.pids}")
        report_path = directory / "report.json"
        started = time.monotonic()
        code, log = run_loadtest(servers, loadtest_args, report_path, timeout, profile)
        outcome["loadtest_exit"] = code
        outcome["loadtest_seconds"] = round(time.monotonic() - started, 1)
        outcome["loadtest_log"] = str(log)
        if report_path.exists():
            outcome["report"] = str(report_path)
        else:
            say(f"{name}: no report; see {log}")
    except RuntimeError as error:
        outcome["error"] = str(error)
        say(f"{name}: {error}")
    finally:
        servers.stop()
    outcome["log_problems"] = servers.log_problems()
    if outcome["log_problems"]:
        say(f"{name}: errors in server logs: {outcome['log_problems']} (in {directory})")
    return outcome


# --- the figures --------------------------------------------------------------------------------


def _get(data, *path):
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _cpu(report: dict, pids: list[int], phase: str) -> float | None:
    values = [
        entry["cpu_percent"].get(phase)
        for entry in _get(report, "server", "processes") or []
        if entry["pid"] in pids
    ]
    values = [value for value in values if value is not None]
    return round(sum(values), 1) if values else None


def figures(report: dict | None, pids: dict[str, list[int]] | None) -> dict:
    """The key figures of one report, flat."""
    if not report:
        return {}
    pids = pids or {}
    servers = _get(report, "server", "processes") or []
    others = pids.get("writer", []) + pids.get("redis", [])
    return {
        "phones": _get(report, "phones", "target"),
        "connected": _get(report, "phones", "connected"),
        "held": _get(report, "phones", "held"),
        "dropped": _get(report, "phones", "dropped"),
        "join_ok_percent": _get(report, "join", "success_percent"),
        "join_failures": _get(report, "join", "failures"),
        "ready_within_10s": _get(report, "join", "ready_within_10s"),
        "join_duration_s": _get(report, "join", "duration_s"),
        "join_ready_ms": _get(report, "join", "ready_ms"),
        "arrival": _get(report, "arrival", "mode"),
        "page_ms": _get(report, "arrival", "page_ms"),
        "assets_ms": _get(report, "arrival", "assets_ms"),
        "join_post_ms": _get(report, "join", "post_ms"),
        "socket_open_ms": _get(report, "join", "socket_open_ms"),
        "first_state_ms": _get(report, "arrival", "first_state_ms"),
        "bytes_in_per_phone": _get(report, "arrival", "bytes_in_per_phone"),
        "profile": report.get("profile"),
        "answers_sent": _get(report, "answers", "sent"),
        "answers_acked": _get(report, "answers", "acked"),
        "answers_errors": _get(report, "answers", "errors"),
        "answers_unacked": _get(report, "answers", "unacked"),
        "answers_per_second": _get(report, "answers", "per_second"),
        "answers_peak_per_second": _get(report, "answers", "peak_per_second"),
        "ack_ms": _get(report, "answers", "ack_ms"),
        "answer_to_stage_ms": _get(report, "stage", "answer_to_stage_ms"),
        "broadcast_ms": _get(report, "broadcast", "ms"),
        "broadcast_missing": sum(
            round_.get("missing") or 0 for round_ in _get(report, "broadcast", "rounds") or []
        ),
        "exact": _get(report, "exactness", "ok"),
        "profile_answers": _get(report, "segments", "answers"),
        "segments_exact": _get(report, "segments", "exactness", "ok"),
        "segments_expected": _get(report, "segments", "exactness", "expected"),
        "verdict": _get(report, "exactness", "verdict"),
        "qa": report.get("qa"),
        "quiz": report.get("quiz"),
        "exact_totals": _get(report, "exactness", "totals"),
        "rss_per_connection_kib": _get(report, "server", "rss_per_connection_kib"),
        "server_processes_found": len(servers),
        "daphne_cpu_percent": {
            phase: _cpu(report, pids.get("daphne", []), phase)
            for phase in ("join", "burst", "votes", "quiz1", "quiz2")
        },
        "writer_redis_cpu_percent": {
            phase: _cpu(report, others, phase)
            for phase in ("join", "burst", "votes", "quiz1", "quiz2")
        },
        "proxy_cpu_percent": {
            phase: _cpu(report, pids.get("proxy", []), phase) for phase in ("join", "burst")
        },
        "daphne_fds_idle": [
            entry["fds_idle"] for entry in servers if entry["pid"] in pids.get("daphne", [])
        ],
        "daphne_rss_peak_kib": [
            entry["rss_peak_kib"] for entry in servers if entry["pid"] in pids.get("daphne", [])
        ],
        "generator_cpu_percent": _get(report, "generator", "cpu_percent"),
        "generator_processes": _get(report, "generator", "processes"),
        "page_bytes": _get(report, "page", "bytes"),
        "phases": {phase["name"]: phase["seconds"] for phase in report.get("phases") or []},
        "warnings": report.get("warnings"),
    }


def _n(value, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.1f}{suffix}"
    return f"{value:,}{suffix}"


def _ms(summary: dict | None) -> str:
    if not summary or not summary.get("n"):
        return "n/a"
    return f"{summary['p50']:,.0f} / {summary['p99']:,.0f} ms"


def _bytes(summary: dict | None) -> str:
    if not summary or not summary.get("n"):
        return "n/a"
    return f"{summary['p50']:,} / {summary['p99']:,}"


def _pair(values: dict | None) -> str:
    values = values or {}
    return f"{_n(values.get('join'))} / {_n(values.get('burst'))}"


def _verdict(f: dict) -> str:
    verdict = f.get("verdict")
    if not verdict:
        return "n/a"
    if not f.get("exact"):
        return verdict
    totals = f.get("exact_totals") or {}
    return verdict.split(":", 1)[0] + " (" + " = ".join(_n(v) for v in totals.values()) + ")"


def _segments(f: dict) -> str:
    sent = f.get("profile_answers")
    if not sent:
        return "n/a"
    p99 = (sent.get("ack_ms") or {}).get("p99")
    text = f"{_n(sent.get('acked'))} of {_n(sent.get('sent'))}, {_n(p99)} ms; "
    if f.get("segments_exact") is None:
        return text + "not checked"
    groups = " + ".join(_n(n) for n in (f.get("segments_expected") or {}).values())
    return text + ("exact" if f["segments_exact"] else "MISMATCH") + f" ({groups})"


def _short(settings: dict, key: str, given: str | None) -> str:
    value = settings.get(key)
    if value is None:
        return given or "default"
    return value.rsplit(".", 1)[-1]


def cells(f: dict) -> list[str]:
    if not f:
        return ["n/a"] * len(ROWS)
    sent = f["answers_sent"]
    unacked = f["answers_unacked"]
    errors = sum((f["answers_errors"] or {}).values())
    answers = f"{_n(sent)} / {_n(f['answers_acked'])}"
    if errors or unacked:
        answers += f" ({_n(errors)} errors, {_n(unacked)} unacked)"
    broadcast = _ms(f["broadcast_ms"])
    if f["broadcast_missing"]:
        broadcast += f" ({f['broadcast_missing']:,} missing)"
    return [
        f"{_n(f['connected'])} / {_n(f['held'])} / {_n(f['dropped'])}",
        f"{_n(f['join_ok_percent'])} %",
        f"{_n(f['ready_within_10s'])} of {_n(f['phones'])}",
        _ms(f["join_ready_ms"]),
        f"{f.get('arrival') or 'n/a'}",
        _ms(f.get("page_ms")),
        _ms(f.get("assets_ms")),
        _ms(f.get("join_post_ms")),
        _ms(f.get("socket_open_ms")),
        _ms(f.get("first_state_ms")),
        _bytes(f.get("bytes_in_per_phone")),
        answers,
        f"{_n(f['answers_per_second'])} (peak {_n(f['answers_peak_per_second'])})",
        _ms(f["ack_ms"]),
        _ms(f["answer_to_stage_ms"]),
        broadcast,
        _verdict(f),
        _segments(f),
        _n(f["rss_per_connection_kib"]),
        _pair(f["daphne_cpu_percent"]),
        _pair(f["writer_redis_cpu_percent"]),
        _pair(f.get("proxy_cpu_percent")),
        _pair(f["generator_cpu_percent"]),
        " / ".join(_n(fds) for fds in f["daphne_fds_idle"]) or "n/a",
        _n(f["page_bytes"]),
    ]


ROWS = [
    "phones connected / held / dropped",
    "join ok",
    "ready within 10 s",
    "join -> ready p50 / p99",
    "arrival (page: page, assets, join, socket; api: join, socket)",
    "page p50 / p99",
    "assets p50 / p99 (all of one phone's, wall time)",
    "join POST p50 / p99",
    "socket open p50 / p99",
    "first state p50 / p99 (after the socket opened)",
    "bytes received per phone p50 / p99",
    "answers sent / acked",
    "answers per second",
    "ack p50 / p99",
    "answer -> stage p50 / p99",
    "broadcast p50 / p99",
    "exact (verdict)",
    "profile answers acked, ack p99; exact per segment",
    "server RSS per connection KiB",
    "Daphne CPU % join / burst",
    "writer + Redis CPU % join / burst",
    "proxy (nginx) CPU % join / burst",
    "generator CPU % join / burst",
    "Daphne open fds when idle, per process",
    "page bytes",
]


# --- the limit: the product beside the bare consumer and the ceiling ---------------------------

LABELS = {
    "product": "product",
    "baseline": "bare",
    "ceiling": "ceiling",
    "one-host": "one app host",
    "two-hosts": "two app hosts",
}


def joins_per_second(f: dict) -> float | None:
    """Phones ready per second of the join phase (it cannot beat the offered --join-rate)."""
    if not f.get("connected") or not f.get("join_duration_s"):
        return None
    return f["connected"] / f["join_duration_s"]


def server_ms_per_phone(f: dict) -> float | None:
    """Server processes' CPU during the join phase, per phone that got its first state."""
    percent = (f.get("daphne_cpu_percent") or {}).get("join")
    seconds = (f.get("phases") or {}).get("join")
    if percent is None or not seconds or not f.get("connected"):
        return None
    return percent / 100 * seconds * 1000 / f["connected"]


def _ready(f: dict) -> tuple:
    summary = f.get("join_ready_ms") or {}
    return (summary.get("p50"), summary.get("p99")) if summary.get("n") else (None, None)


# The join storm's figures that get ratio columns (product / each other side): row -> numbers.
RATIO_ROWS = {
    "join -> ready p50 / p99": _ready,
    "joins per second": lambda f: (joins_per_second(f),),
    "server CPU ms per phone, join": lambda f: (server_ms_per_phone(f),),
}
LIMIT_ROWS = [
    ("joins per second", lambda f: _n(joins_per_second(f))),
    ("server CPU ms per phone, join", lambda f: _n(server_ms_per_phone(f))),
]


def _ratio(product: tuple, other: tuple) -> str:
    parts = [
        f"{mine / theirs:,.2f}" if mine is not None and theirs else "n/a"
        for mine, theirs in zip(product, other, strict=True)
    ]
    return "" if set(parts) == {"n/a"} else " / ".join(parts) + " x"


def qa_cells(f: dict) -> list[str]:
    if not f or not f.get("qa"):
        return ["n/a"] * len(QA_ROWS)
    qa = f["qa"]
    items, votes = qa["items"], qa["votes"]
    stage, lists = qa.get("stage") or {}, qa.get("lists") or {}
    errors = sum((votes.get("errors") or {}).values())
    sent = f"{_n(votes['sent'])} / {_n(votes['acked'])}"
    if errors or votes["unacked"]:
        sent += f" ({_n(errors)} errors, {_n(votes['unacked'])} unacked)"
    kinds = votes.get("by_kind") or {}
    return [
        f"{_n(f['connected'])} / {_n(f['held'])} / {_n(f['dropped'])}",
        _ms(f["join_ready_ms"]),
        f"{_n(items['asked'])} / {_n(items['acked'])}",
        _ms(items["ack_ms"]),
        f"{sent}; {_n(kinds.get('vote'))} votes, {_n(kinds.get('unvote'))} unvotes",
        f"{_n(votes['per_second'])} (peak {_n(votes['peak_per_second'])})",
        _ms(votes["ack_ms"]),
        _ms(stage.get("vote_to_board_ms"))
        + f" (n {_n(stage.get('on_board'))}, never {_n(stage.get('not_seen'))})",
        _ms(lists.get("vote_to_list_ms"))
        + f" ({_n(lists.get('observers'))} observers, never {_n(lists.get('not_seen'))})",
        _verdict(f),
        _n(f["rss_per_connection_kib"]),
        " / ".join(_n((f["daphne_cpu_percent"] or {}).get(phase)) for phase in ("join", "votes")),
        " / ".join(
            _n((f["writer_redis_cpu_percent"] or {}).get(phase)) for phase in ("join", "votes")
        ),
        " / ".join(
            _n((f["generator_cpu_percent"] or {}).get(phase)) for phase in ("join", "votes")
        ),
        " / ".join(_n(fds) for fds in f["daphne_fds_idle"]) or "n/a",
    ]


QA_ROWS = [
    "phones connected / held / dropped",
    "join -> ready p50 / p99",
    "items asked / acked",
    "ask ack p50 / p99",
    "votes sent / acked",
    "votes per second",
    "vote ack p50 / p99",
    "vote ack -> stage board p50 / p99",
    "vote ack -> other phones' lists p50 / p99",
    "exact (verdict)",
    "server RSS per connection KiB",
    "Daphne CPU % join / votes",
    "writer + Redis CPU % join / votes",
    "generator CPU % join / votes",
    "Daphne open fds when idle, per process",
]


def _quiz_question(f: dict, number: int) -> dict:
    questions = (f.get("quiz") or {}).get("questions") or []
    return questions[number - 1] if len(questions) >= number else {}


def _quiz_answers(question: dict) -> str:
    answers = question.get("answers")
    if not answers:
        return "n/a"
    text = f"{_n(answers['sent'])} / {_n(answers['acked'])} of {_n(question['armed'])}"
    others = {k: v for k, v in answers["by_status"].items() if k != "acked"}
    if others:
        text += " (" + ", ".join(f"{k} {_n(v)}" for k, v in sorted(others.items())) + ")"
    return text


def _quiz_board(question: dict) -> str:
    stages = question.get("stages") or []
    if not stages:
        return "n/a"
    return " / ".join(
        f"{_n(stage['leaderboard_ms'])} ms (closed {_n(stage['closed_ms'])} ms)" for stage in stages
    )


def _quiz_score(question: dict) -> str:
    summary = question.get("deadline_to_score_ms")
    if not summary or not summary.get("n"):
        return "n/a"
    text = f"{summary['p50']:,.0f} / {summary['p99']:,.0f} / {summary['max']:,.0f} ms"
    if question.get("no_score_live"):
        text += f" ({_n(question['no_score_live'])} live phones without)"
    return text


def _quiz_cpu(f: dict, key: str) -> str:
    values = f.get(key) or {}
    return " / ".join(_n(values.get(phase)) for phase in ("join", "quiz1", "quiz2"))


def quiz_cells(f: dict) -> list[str]:
    if not f or not f.get("quiz"):
        return ["n/a"] * len(QUIZ_ROWS)
    cells = [
        f"{_n(f['connected'])} / {_n(f['held'])} / {_n(f['dropped'])}",
        _ms(f["join_ready_ms"]),
    ]
    for number in (1, 2):
        question = _quiz_question(f, number)
        answers = question.get("answers") or {}
        cells += [
            _quiz_answers(question),
            _ms(answers.get("ack_ms")),
            _ms(question.get("opening_to_phone_ms")),
            _quiz_board(question),
            _quiz_score(question),
        ]
    return [
        *cells,
        _verdict(f),
        _n(f["rss_per_connection_kib"]),
        _quiz_cpu(f, "daphne_cpu_percent"),
        _quiz_cpu(f, "writer_redis_cpu_percent"),
        _quiz_cpu(f, "generator_cpu_percent"),
        " / ".join(_n(fds) for fds in f["daphne_fds_idle"]) or "n/a",
    ]


QUIZ_ROWS = [
    "phones connected / held / dropped",
    "join -> ready p50 / p99",
    *(
        row.format(number=number)
        for number in (1, 2)
        for row in (
            "quiz {number}: answers sent / acked",
            "quiz {number}: ack p50 / p99",
            "quiz {number}: opening -> phone p50 / p99",
            "quiz {number}: deadline -> stage leaderboard (target <= 1 s)",
            "quiz {number}: deadline -> phone score p50 / p99 / max (target max <= 2 s)",
        )
    ),
    "exact (verdict)",
    "server RSS per connection KiB",
    "Daphne CPU % join / quiz1 / quiz2",
    "writer + Redis CPU % join / quiz1 / quiz2",
    "generator CPU % join / quiz1 / quiz2",
    "Daphne open fds when idle, per process",
]


def _own_rows(title: str, by_side: dict[str, dict], rows: list[str], cells) -> str:
    columns = ["figure"] + [LABELS[side] for side in by_side]
    lines = [title, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    side_cells = {side: cells(f) for side, f in by_side.items()}
    for index, row in enumerate(rows):
        values = [side_cells[side][index] for side in by_side]
        lines.append("| " + " | ".join(v.replace("|", "/") for v in [row, *values]) + " |")
    return "\n".join(lines) + "\n"


def markdown(title: str, by_side: dict[str, dict]) -> str:
    """One column per side, then product / bare and product / ceiling for the storm's rows; the
    Q&A's or the quiz's own rows when the sides ran it."""
    if by_side and all(f and f.get("quiz") for f in by_side.values()):
        return _own_rows(title, by_side, QUIZ_ROWS, quiz_cells)
    if by_side and all(f and f.get("qa") for f in by_side.values()):
        columns = ["figure"] + [LABELS[side] for side in by_side]
        lines = [title, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        side_cells = {side: qa_cells(f) for side, f in by_side.items()}
        for index, row in enumerate(QA_ROWS):
            values = [side_cells[side][index] for side in by_side]
            lines.append("| " + " | ".join(v.replace("|", "/") for v in [row, *values]) + " |")
        return "\n".join(lines) + "\n"
    others = [side for side in by_side if side != "product"] if "product" in by_side else []
    columns = ["figure"] + [LABELS[side] for side in by_side]
    columns += [f"product / {LABELS[side]}" for side in others]
    lines = [title, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    side_cells = {side: cells(f) for side, f in by_side.items()}
    rows = [(row, [side_cells[side][index] for side in by_side]) for index, row in enumerate(ROWS)]
    rows += [(row, [cell(f) if f else "n/a" for f in by_side.values()]) for row, cell in LIMIT_ROWS]
    for row, values in rows:
        numbers = RATIO_ROWS.get(row)
        for side in others:
            ok = numbers and by_side["product"] and by_side[side]
            values.append(_ratio(numbers(by_side["product"]), numbers(by_side[side])) if ok else "")
        lines.append("| " + " | ".join(v.replace("|", "/") for v in [row, *values]) + " |")
    return "\n".join(lines) + "\n"


# --- the command --------------------------------------------------------------------------------


def git_revision() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}{'+dirty' if dirty else ''}" if head else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadgen.bench",
        description="Start fresh servers, run one load-test scenario against the product and "
        "the bare-consumer baseline, print figure | product | bare (docs/loadtest.md).",
    )
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="smoke")
    parser.add_argument("--server-processes", type=int, default=1, help="Daphne processes.")
    parser.add_argument(
        "--layer", choices=("redis", "pubsub"), help="ZP_CHANNEL_LAYER (default: the settings')."
    )
    parser.add_argument(
        "--fanout", choices=("local", "group"), help="ZP_FANOUT (default: the settings')."
    )
    parser.add_argument(
        "--out", default=str(ROOT / "var" / "bench"), help="Output directory (default var/bench)."
    )
    parser.add_argument("--phones", type=int, help="Override the scenario's phones.")
    parser.add_argument("--hold", type=float, help="Override the scenario's hold (seconds).")
    parser.add_argument(
        "--loadtest-args",
        default="",
        help='Extra loadtest options, e.g. "--kind multiple --burst 0"; they win over the '
        "scenario's.",
    )
    parser.add_argument(
        "--sides",
        default="product,baseline",
        help="Comma-separated, run in this order: product, baseline (the bare Channels "
        "consumer), ceiling (the product's Redis work on a minimal asyncio server).",
    )
    parser.add_argument("--no-baseline", action="store_true", help="Leave the baseline out.")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy each Daphne process during the join phase; per-phone server CPU per step "
        "of arriving in the summary (loadgen.profile).",
    )
    parser.add_argument(
        "--proxy",
        choices=("nginx",),
        default="",
        help="Put Debian's nginx with deploy/nginx's site (plain HTTP) in front of the product: "
        "the production layout, static files served by nginx (loadgen.proxy).",
    )
    parser.add_argument("--port", type=int, default=0, help="Listening port (default: free).")
    parser.add_argument(
        "--take-away",
        choices=("kill", "cut"),
        help="--scenario hosts: mid-burst, take the first app host of the two-host run away "
        "(kill its processes, or cut its link).",
    )
    parser.add_argument(
        "--redis-url",
        help="A running Redis to use (flushed by you between runs), e.g. a primary with its "
        "replica for ZP_REDIS_WAIT_REPLICAS; default: a private one per side.",
    )
    parser.add_argument(
        "--timeout", type=float, help="Seconds one load test may take (default: generous)."
    )
    parser.add_argument(
        "--segments",
        type=int,
        default=0,
        help="The product's throwaway event gets a profile question of this many options, "
        "asked on join and splitting the stage's results; every phone answers it before the "
        "burst, and the check is exact per segment (loadtest --segments; default 0: none).",
    )
    args = parser.parse_args(argv)
    if args.server_processes < 1:
        parser.error("--server-processes must be at least 1")
    if args.segments < 0 or args.segments == 1:
        parser.error("--segments must be 0 (none) or at least 2")
    sides = [side.strip() for side in args.sides.split(",") if side.strip()]
    unknown = sorted(set(sides) - set(SIDES))
    if unknown or not sides or len(set(sides)) != len(sides):
        parser.error(f"--sides takes each of {', '.join(SIDES)} at most once, not {args.sides!r}")
    if args.no_baseline:
        sides = [side for side in sides if side != "baseline"] or ["product"]
    args.sides = sides
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    scenario = SCENARIOS[args.scenario]
    if scenario.get("site"):
        return run_hosts_scenario(args, scenario)
    if scenario.get("product_only") and args.sides != ["product"]:
        say(f"scenario {args.scenario}: the product only (the other sides have none of it)")
        args.sides = ["product"]
    loadtest_args = ["--phones", str(args.phones or scenario["phones"])]
    hold = args.hold if args.hold is not None else scenario.get("hold")
    if hold is not None:
        loadtest_args += ["--hold", f"{hold:g}"]
    loadtest_args += scenario["args"] + shlex.split(args.loadtest_args)
    options = effective_options(loadtest_args)
    timeout = args.timeout or loadtest_timeout(options)
    open_files = raise_open_files()

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    work = Path(tempfile.mkdtemp(prefix=f"{args.scenario}-{stamp}-", dir=out))
    if len(str(work / "baseline" / "redis" / "redis.sock")) > 100:  # the longest side name
        raise SystemExit(f"--out {out} is too long for a unix socket path; use a shorter one")

    shared = {"PYTHONUNBUFFERED": "1"}
    if args.layer:
        shared["ZP_CHANNEL_LAYER"] = args.layer
    if args.fanout:
        shared["ZP_FANOUT"] = args.fanout
    product_env = dict(
        os.environ,
        **shared,
        DJANGO_SETTINGS_MODULE="config.settings.dev",
        DJANGO_DEBUG="0",
        DATABASE_URL=f"sqlite:///{work / 'product' / 'db.sqlite3'}",
        ZP_VAR_DIR=str(work / "product"),
    )
    if options.forwarded_for:
        product_env["ZP_TRUST_X_FORWARDED_FOR"] = "1"
    baseline_env = dict(
        os.environ,
        **shared,
        DJANGO_SETTINGS_MODULE="loadgen.baseline_settings",
        DATABASE_URL=f"sqlite:///{work / 'baseline' / 'db.sqlite3'}",
        ZP_VAR_DIR=str(work / "baseline"),
    )
    # The ceiling runs on the product's settings (its secret key, join guard and Redis), in its
    # own directory; nothing there touches the database.
    ceiling_env = dict(
        product_env,
        DATABASE_URL=f"sqlite:///{work / 'ceiling' / 'db.sqlite3'}",
        ZP_VAR_DIR=str(work / "ceiling"),
    )
    # The load test runs with the project's settings; against the baseline it needs only Redis.
    runner = {"DJANGO_SETTINGS_MODULE": "config.settings.dev", "DJANGO_DEBUG": "0"}
    environments = {
        "product": (product_env, {}),
        "baseline": (baseline_env, runner),
        "ceiling": (ceiling_env, {}),
    }
    sides = [(name, *environments[name]) for name in args.sides]
    # Only the product has profile questions; the bare sides run the burst as it is.
    segment_args = ["--segments", str(args.segments)] if args.segments else []

    say(f"scenario {args.scenario}: {scenario['about']}; working directory {work}")
    results: dict[str, dict] = {}
    try:
        for name, env, runner in sides:
            results[name] = run_side(
                name,
                work / name,
                args.server_processes,
                env,
                loadtest_args + (segment_args if name == "product" else []),
                timeout,
                args.port,
                runner,
                args.profile,
                args.redis_url,
                args.proxy,
            )
    except KeyboardInterrupt:
        say("interrupted; the servers are stopped")
        return 130

    reports = {
        name: json.loads(Path(result["report"]).read_text()) if result.get("report") else None
        for name, result in results.items()
    }
    figures_by_side = {name: figures(reports[name], results[name].get("pids")) for name in results}
    product_settings = results[args.sides[0]].get("settings", {})
    title = (
        f"**{args.scenario}** ({scenario['about']}): {options.phones:,} phones, "
        f"{args.server_processes} server process(es), {'/'.join(args.sides)}, layer "
        f"{_short(product_settings, 'layer', args.layer)}, fan-out "
        f"{_short(product_settings, 'fanout', args.fanout)}; "
        f"{'behind nginx (loadgen.proxy); ' if args.proxy else ''}"
        f"{f'a {args.segments}-option profile question (product); ' if args.segments else ''}"
        f"loadtest {shlex.join(loadtest_args)}"
    )
    table = markdown(title, figures_by_side)
    notes = []
    baseline_settings = (results.get("baseline") or {}).get("settings", {})
    if (
        "product" in results
        and baseline_settings
        and baseline_settings.get("layer") != product_settings.get("layer")
    ):
        notes.append(
            f"the baseline ran on {baseline_settings.get('layer')}, the product on "
            f"{product_settings.get('layer')}"
        )
    for name, result in results.items():
        if result.get("error"):
            notes.append(f"{name}: {result['error']}")
        if result.get("loadtest_exit") not in (0,):
            notes.append(
                f"{name}: loadtest exit status {result.get('loadtest_exit')} "
                f"(see {result.get('loadtest_log')})"
            )
        if result.get("log_problems"):
            notes.append(f"{name}: errors in server logs {result['log_problems']}")
        for warning in figures_by_side[name].get("warnings") or []:
            notes.append(f"{name}: {warning}")
    if notes:
        table += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
    for name, side in figures_by_side.items():
        summary_of_profile = side.get("profile")
        if summary_of_profile and summary_of_profile.get("steps"):
            table += f"\n**{name}**, py-spy during the join phase. " + profiling.markdown(
                summary_of_profile
            )
    print(table, flush=True)

    summary = {
        "scenario": args.scenario,
        "about": scenario["about"],
        "options": {
            "server_processes": args.server_processes,
            "layer": args.layer,
            "fanout": args.fanout,
            "loadtest_args": loadtest_args,
            "segments": args.segments,
            "loadtest_timeout_s": round(timeout),
            "baseline": "baseline" in args.sides,
            "sides": args.sides,
            "forwarded_for_trusted": bool(options.forwarded_for),
        },
        "revision": git_revision(),
        "machine": {"cpus": os.cpu_count(), "open_files_limit": open_files},
        "started": stamp,
        "work_dir": str(work),
        "runs": results,
        "figures": figures_by_side,
        "notes": notes,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(table)
    say(f"wrote {out / 'summary.json'} and {out / 'summary.md'}")
    ok = all(f.get("exact") for f in figures_by_side.values())
    return 0 if ok else 1


# --- several hosts --------------------------------------------------------------------------------


def run_site_side(
    name: str,
    directory: Path,
    apps: int,
    processes: int,
    loadtest_args: list[str],
    timeout: float,
    take_away: str | None = None,
) -> dict:
    """One run of the several-hosts layout (``loadgen.hosts.Site``): start it, run the load test
    from the hall, optionally take the first app host away mid-burst, stop it all."""
    from loadgen.hosts import Site

    directory.mkdir(parents=True)
    site = Site(directory, apps=apps, processes=processes)
    outcome: dict = {"directory": str(directory), "report": None, "apps": apps}
    try:
        say(f"{name}: {apps} app host(s) x {processes} Daphne process(es), HAProxy, data host")
        started = time.monotonic()
        site.start()
        outcome["start_seconds"] = round(time.monotonic() - started, 1)
        outcome["pids"] = site.pids_by_role()
        outcome["settings"] = {"layer": "default", "fanout": "default"}
        report_path = directory / "report.json"
        say(f"{name}: serving at {site.proxy_url}; the load test runs in the hall")
        started = time.monotonic()
        process = site.loadtest(*loadtest_args, report=report_path)
        if take_away:
            phones = effective_options(loadtest_args).phones
            taken = site.take_away_mid_burst(site.app_hosts[0], take_away, process, phones // 3)
            outcome["taken_away"] = f"{take_away} {site.app_hosts[0]}" if taken else None
        try:
            outcome["loadtest_exit"] = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            say(f"{name}: the load test did not finish within {timeout:.0f} s; stopping it")
            outcome["loadtest_exit"] = None
        outcome["loadtest_seconds"] = round(time.monotonic() - started, 1)
        outcome["loadtest_log"] = str(site.log("loadtest"))
        if report_path.exists():
            outcome["report"] = str(report_path)
        else:
            say(f"{name}: no report; see {site.log('loadtest')}")
    except RuntimeError as error:
        outcome["error"] = str(error)
        say(f"{name}: {error}")
    finally:
        site.stop()
    problems = {}
    for log in directory.glob("app*.log"):
        text = log.read_text(errors="replace")
        count = text.count("Traceback") + text.count(" ERROR ")
        if count:
            problems[log.name] = count
    outcome["log_problems"] = problems
    return outcome


def run_hosts_scenario(args: argparse.Namespace, scenario: dict) -> int:
    """``--scenario hosts``: the same load through HAProxy to one app host running
    2 x ``--server-processes`` Daphne processes, then to two app hosts running
    ``--server-processes`` each: as many processes on the same cores, so what differs is the
    layout."""
    from loadgen import netns

    reason = netns.unavailable()
    if reason:
        raise SystemExit(f"--scenario hosts needs network namespaces: {reason}")
    loadtest_args = ["--phones", str(args.phones or scenario["phones"])]
    if args.hold is not None:
        loadtest_args += ["--hold", f"{args.hold:g}"]
    loadtest_args += scenario["args"] + shlex.split(args.loadtest_args)
    options = effective_options(loadtest_args)
    timeout = args.timeout or loadtest_timeout(options)
    open_files = raise_open_files()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    work = Path(tempfile.mkdtemp(prefix=f"hosts-{stamp}-", dir=out))
    per_host = args.server_processes
    sides = [("one-host", 1, 2 * per_host, None), ("two-hosts", 2, per_host, args.take_away)]
    say(f"scenario {args.scenario}: {scenario['about']}; working directory {work}")
    results: dict[str, dict] = {}
    try:
        for name, apps, processes, take_away in sides:
            results[name] = run_site_side(
                name, work / name, apps, processes, loadtest_args, timeout, take_away
            )
    except KeyboardInterrupt:
        say("interrupted; the hosts are removed")
        return 130
    reports = {
        name: json.loads(Path(result["report"]).read_text()) if result.get("report") else None
        for name, result in results.items()
    }
    by_side = {name: figures(reports[name], results[name].get("pids")) for name in results}
    title = (
        f"**hosts** ({scenario['about']}): {options.phones:,} phones from one address through "
        f"HAProxy (TLS); one app host x {2 * per_host} Daphne processes, then two x {per_host}; "
        f"a data host (Redis over TCP, PostgreSQL); loadtest {shlex.join(loadtest_args)}"
        + (f"; {args.take_away} the first app host mid-burst" if args.take_away else "")
    )
    table = markdown(title, by_side)

    def proxy_cpu(name: str) -> str:
        report, pids = reports[name] or {}, (results[name].get("pids") or {}).get("proxy", [])
        return f"{_n(_cpu(report, pids, 'join'))} / {_n(_cpu(report, pids, 'burst'))}"

    extra = {
        "dropped -> back p50 / p99": lambda name: _ms(
            _get(reports[name], "phones", "reconnect_ms")
        ),
        "HAProxy CPU % join / burst": proxy_cpu,
        "the site's start-up, s": lambda name: _n(results[name].get("start_seconds")),
    }
    for row, cell in extra.items():
        table += "| " + " | ".join([row, *(cell(name) for name in results)]) + " |\n"
    notes = []
    for name, result in results.items():
        if result.get("error"):
            notes.append(f"{name}: {result['error']}")
        if result.get("loadtest_exit") not in (0,):
            notes.append(f"{name}: loadtest exit status {result.get('loadtest_exit')}")
        if result.get("log_problems"):
            notes.append(f"{name}: errors in server logs {result['log_problems']}")
        if result.get("taken_away"):
            notes.append(f"{name}: {result['taken_away']} mid-burst")
        for warning in by_side[name].get("warnings") or []:
            notes.append(f"{name}: {warning}")
    if notes:
        table += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
    print(table, flush=True)
    summary = {
        "scenario": args.scenario,
        "about": scenario["about"],
        "options": {
            "server_processes_per_host": per_host,
            "loadtest_args": loadtest_args,
            "loadtest_timeout_s": round(timeout),
            "take_away": args.take_away,
        },
        "revision": git_revision(),
        "machine": {"cpus": os.cpu_count(), "open_files_limit": open_files},
        "started": stamp,
        "work_dir": str(work),
        "runs": results,
        "figures": by_side,
        "notes": notes,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(table)
    say(f"wrote {out / 'summary.json'} and {out / 'summary.md'}")
    return 0 if all(f.get("exact") for f in by_side.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Where the server's CPU goes while a hall arrives: py-spy during the join phase, attributed.

Recording (``Recorder``, started by the load test's ``--profile DIR``): one
``py-spy record --format raw --rate 250 --pid <pid> -o DIR/profile-<pid>.txt`` per server
process, started before the ``join`` phase is marked and stopped (SIGINT: py-spy writes its file
and exits) as soon as the last phone is done joining. py-spy reads the process's memory from
outside (ptrace, which needs root or the same user with ptrace allowed).

It runs with ``--nonblocking``: it does not pause the process for a sample, so the profiler
does not slow the server, at the price of an occasional torn stack (``--profile-blocking``
pauses it).

What a sample is: with ``--gil`` py-spy takes, ``rate`` times a second, the stack of the one
thread holding the GIL, and none when no thread holds it (never ``--idle``). Without ``--gil``
it samples every thread it judges active, and it judged wrongly here: Django's per-request
threads come and go faster than its thread table, and a new one counts as running, so a
50-phone storm gave 2.5 times more samples than the process had CPU time, most of them threads
waiting in ``concurrent.futures`` for work. Holding the GIL is running Python; native code run
with the GIL released (a SQLite query, a socket call) is in the CPU seconds but not in the
samples, so it is spread over the steps in proportion. ``samples_per_cpu_second`` in the
summary checks the whole: near the rate when the samples cover the process's CPU time. The
raw format is one line per
distinct stack: ``frame;frame;...;frame <count>``, outermost frame first, each frame
``function (file:line)`` with the file shortened to its package path
(``polls/views.py``, ``twisted/web/http.py``).

Attribution (``step_of``): each stack goes to ONE step of arriving, by its frames' files and
functions: the innermost frame that one of ``RULES`` claims decides. So the phone view wins
over the Django handler around it, the consumer's connect over the Daphne code that called it.
Only when no frame matches ``RULES`` do ``GENERIC_RULES`` decide (innermost first too): the
frames every request crosses, the thread hops of ``sync_to_async`` and Twisted/asyncio (HTTP
parsing, accepting and closing connections, the reactor). A ``MiddlewareMixin`` hop counts as
the page's, though the first one (SecurityMiddleware) is crossed by static files too. Rows
that cannot be split by stack say so: Django's own handler above the static middleware (a page
and a static file both cross it), and the worker threads of ``sync_to_async`` between two jobs.
What no rule claims is "other" (its most frequent stacks are listed, so a rule can be added),
never dropped.

Per-phone CPU of a step = the process's CPU seconds in the join phase (from ``/proc``, as the
report's per-phase CPU) x the step's share of that process's samples, summed over the
processes, divided by the phones that arrived.

    python -m loadgen.profile DIR --phones N [--cpu-seconds S | --report report.json]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

PAGE = "phone page (view, its middleware)"
STATIC = "static files"
DJANGO = "Django handler (page or static, shared)"
JOIN = "join API"
HANDSHAKE = "WebSocket handshake"
CONNECT = "socket connect + first state"
ANSWERS = "answers and pings"
THREADS = "thread pool (sync_to_async), not attributable"
REACTOR = "HTTP parsing / reactor, not attributable"
OTHER = "other"
# (step, [(file pattern, function pattern), ...]): a frame matches a rule when its file matches
# one pair's first pattern and its function the second (regular expressions, searched). The
# stack's frames are asked innermost first; the first frame that matches any rule decides, and
# for that frame the first matching rule in this order. So a pass-through frame (the join fast
# path or the static middleware handing a request on to Django) decides only when nothing
# deeper did, and a frame every request shares (Twisted, asyncio) only when nothing else did.
RULES: list[tuple[str, list[tuple[str, str]]]] = [
    # An answer (or a ping) received on an open socket.
    (
        ANSWERS,
        [(r"polls/transport/websocket\.py", r"receive"), (r"polls/session\.py", r"reply|handle")],
    ),
    # The consumer's connect: token, participant, the hub, the state sent (and its close).
    (
        CONNECT,
        [
            (r"polls/transport/websocket\.py", r""),
            (r"polls/session\.py", r""),
            (r"polls/delivery\.py", r""),
            (r"channels/(consumer|generic/websocket|layers)\.py", r""),
            (r"channels_redis/", r""),
        ],
    ),
    # Below the ASGI app: Daphne's and autobahn's upgrade, the origin check and URL routing.
    (
        HANDSHAKE,
        [
            (r"autobahn/", r""),
            (r"daphne/ws_protocol\.py", r""),
            (r"polls/origin\.py", r""),
            (r"channels/(routing|security/websocket)\.py", r"URLRouter|Origin"),
        ],
    ),
    # The join: the fast path (its own frames; its hand-over to Django is deeper) and the view.
    (
        JOIN,
        [
            (r"polls/join_api\.py", r"JoinFastPath\.(?!__call__)|_send_plain"),
            (r"polls/views\.py", r"^join"),
        ],
    ),
    # Whatever serves /static/: WhiteNoise inside Django today, any static module tomorrow.
    (STATIC, [(r"whitenoise|servestatic|static", r""), (r"", r"(?i)static")]),
    # Django's request handling every Django request crosses, above the static middleware.
    (
        DJANGO,
        [
            (r"django/core/handlers/", r""),
            (r"django/middleware/security\.py", r""),
            (r"django/dispatch/", r""),  # request_started / request_finished
            (r"django/db/__init__\.py", r""),  # close_old_connections, on both signals
        ],
    ),
    # The phone page (and the join page redirecting to it): the view, what it renders, and the
    # middleware below the static one (a static file is answered before reaching them).
    (
        PAGE,
        [
            (r"polls/views\.py", r"^(phone|home|_event_or_404|kind_)"),
            (r"polls/middleware\.py", r""),
            (r"django/(middleware|template|shortcuts|urls|views|contrib|utils/translation)/", r""),
            (r"django/utils/deprecation\.py", r""),  # each MiddlewareMixin's hop
        ],
    ),
    # The JoinFastPath hand-over itself, when nothing deeper is on the stack.
    (JOIN, [(r"polls/join_api\.py", r"")]),
]
# Asked only when no frame of the stack matched ``RULES``: the plumbing every request crosses.
# A thread hop (asgiref, concurrent.futures) under the static middleware is the static file's;
# only a worker thread with nothing of a request on its stack is the thread pool's own.
GENERIC_RULES: list[tuple[str, list[tuple[str, str]]]] = [
    (THREADS, [(r"asgiref/", r""), (r"concurrent/futures/", r""), (r"^threading\.py$", r"")]),
    (
        REACTOR,
        [
            (r"twisted/", r""),
            (r"daphne/", r""),
            (r"asyncio/", r""),
            (r"selectors\.py", r""),
            (r"channels/routing\.py", r""),
            (r"polls/(health|server|logs)\.py", r""),
            (r"polls/transport/http_stream\.py", r""),
            (r"<frozen runpy>", r""),
        ],
    ),
]
STEPS = [PAGE, STATIC, DJANGO, JOIN, HANDSHAKE, CONNECT, ANSWERS, THREADS, REACTOR]
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy_binary() -> str | None:
    """py-spy next to this Python (the virtualenv's), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


class Recorder:
    """py-spy recording one process into ``directory/profile-<pid>.txt``."""

    def __init__(self, pid: int, directory: Path, rate: int, blocking: bool = False) -> None:
        self.pid = pid
        self.path = directory / f"profile-{pid}.txt"
        self.log = directory / f"profile-{pid}.log"
        binary = py_spy_binary()
        if binary is None:
            raise OSError("py-spy is not installed (pip install -r requirements-test.txt)")
        command = [binary, "record", "--format", "raw", "--rate", str(rate), "--pid", str(pid)]
        command += ["--gil", "-o", str(self.path)]
        if not blocking:
            command.append("--nonblocking")
        self.command = command
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def wait_sampling(self, timeout: float = 15.0) -> bool:
        """Whether py-spy attached and samples (its first line says so)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if b"Sampling process" in self.log.read_bytes():
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 60.0) -> bool:
        """SIGINT (py-spy writes the file), then wait; True when the file is there."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.path.exists()

    def error(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else f"py-spy exited with {self.process.returncode}"


# --- reading and attributing -----------------------------------------------------------------


def read_raw(path: Path) -> Counter[str]:
    """stack -> samples, from py-spy's raw (collapsed) output."""
    stacks: Counter[str] = Counter()
    for line in Path(path).read_text(errors="replace").splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def frames_of(stack: str) -> list[tuple[str, str]]:
    """(file, function) per frame, outermost first."""
    frames = []
    for text in stack.split(";"):
        match = FRAME.match(text)
        if match:
            frames.append((match["file"], match["function"]))
        else:
            frames.append(("", text))
    return frames


def step_of(stack: str) -> str:
    """The step one stack's samples go to (``RULES``), else ``OTHER``."""
    frames = frames_of(stack)
    for rules in (RULES, GENERIC_RULES):
        for file, function in reversed(frames):
            for step, patterns in rules:
                for file_pattern, function_pattern in patterns:
                    if re.search(file_pattern, file) and re.search(function_pattern, function):
                        return step
    return OTHER


def attribute(stacks: Counter[str]) -> tuple[Counter[str], Counter[str]]:
    """(samples per step, the unattributed stacks with their samples)."""
    per_step: Counter[str] = Counter()
    unattributed: Counter[str] = Counter()
    for stack, count in stacks.items():
        step = step_of(stack)
        per_step[step] += count
        if step == OTHER:
            unattributed[stack] += count
    return per_step, unattributed


def summarise(profiles: dict[int, Path], cpu_seconds: dict[int, float | None], phones: int) -> dict:
    """Per-phone server CPU per step over the processes profiled (see the module's doc)."""
    samples: Counter[str] = Counter()
    cpu_ms: Counter[str] = Counter()
    unattributed: Counter[str] = Counter()
    processes = []
    for pid, path in sorted(profiles.items()):
        stacks = read_raw(path)
        per_step, other = attribute(stacks)
        total = sum(per_step.values())
        seconds = cpu_seconds.get(pid)
        log = Path(path).with_suffix(".log")
        behind = log.read_text(errors="replace").count("behind in sampling") if log.exists() else 0
        processes.append(
            {
                "pid": pid,
                "file": str(path),
                "samples": total,
                "cpu_s": seconds,
                # py-spy could not keep the rate (many threads): lower --profile-rate
                "behind_warnings": behind,
            }
        )
        samples.update(per_step)
        unattributed.update(other)
        if total and seconds is not None:
            for step, count in per_step.items():
                cpu_ms[step] += seconds * 1000 * count / total
    total = sum(samples.values())
    rows = []
    for step in [*STEPS, OTHER]:
        rows.append(
            {
                "step": step,
                "samples": samples.get(step, 0),
                "share_percent": round(100 * samples.get(step, 0) / total, 1) if total else None,
                "cpu_ms_per_phone": (
                    round(cpu_ms.get(step, 0.0) / phones, 3)
                    if phones and any(p["cpu_s"] is not None for p in processes)
                    else None
                ),
            }
        )
    known = [p["cpu_s"] for p in processes if p["cpu_s"] is not None]
    return {
        "phones": phones,
        "cpu_s": round(sum(known), 2) if known else None,
        "samples": total,
        "samples_per_cpu_second": round(total / sum(known), 1) if known and sum(known) else None,
        "cpu_ms_per_phone": round(sum(known) * 1000 / phones, 3) if known and phones else None,
        "steps": rows,
        "processes": processes,
        "top_other": [
            {"samples": count, "stack": _short_stack(stack)}
            for stack, count in unattributed.most_common(5)
        ],
    }


def _short_stack(stack: str, keep: int = 6) -> str:
    frames = stack.split(";")
    return ";".join(frames[-keep:])


def markdown(summary: dict) -> str:
    lines = [
        f"Server CPU per phone during the join phase: {summary.get('cpu_ms_per_phone')} ms "
        f"({summary.get('cpu_s')} CPU s over {summary.get('phones')} phones, "
        f"{summary.get('samples')} py-spy samples)",
        "",
        "| step | samples | share | CPU ms per phone |",
        "|---|---|---|---|",
    ]
    for row in summary["steps"]:
        share = "n/a" if row["share_percent"] is None else f"{row['share_percent']:.1f} %"
        cpu = "n/a" if row["cpu_ms_per_phone"] is None else f"{row['cpu_ms_per_phone']:.3f}"
        lines.append(f"| {row['step']} | {row['samples']:,} | {share} | {cpu} |")
    return "\n".join(lines) + "\n"


def cpu_from_report(report: dict) -> dict[int, float | None]:
    return {
        entry["pid"]: (entry.get("cpu_s") or {}).get("join")
        for entry in report.get("server", {}).get("processes", [])
    }


def profiles_in(directory: Path) -> dict[int, Path]:
    found = {}
    for path in Path(directory).glob("profile-*.txt"):
        number = path.stem.split("-", 1)[1]
        if number.isdigit():
            found[int(number)] = path
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadgen.profile",
        description="Attribute py-spy raw profiles (DIR/profile-<pid>.txt) of a join storm to "
        "the steps of arriving: per-phone server CPU in ms per step.",
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--phones", type=int, help="Phones that arrived (default: the report's).")
    parser.add_argument(
        "--cpu-seconds",
        type=float,
        help="The profiled processes' CPU seconds in the join phase together (weighted by "
        "their samples); default: per process, from --report.",
    )
    parser.add_argument("--report", type=Path, help="The load test's JSON report.")
    parser.add_argument("--json", action="store_true", help="Print JSON instead of markdown.")
    args = parser.parse_args(argv)
    profiles = profiles_in(args.directory)
    if not profiles:
        parser.error(f"no profile-<pid>.txt in {args.directory}")
    report = json.loads(args.report.read_text()) if args.report else {}
    phones = args.phones or (report.get("phones") or {}).get("target")
    if not phones:
        parser.error("--phones (or --report) is needed")
    if args.cpu_seconds is not None:
        samples = {pid: sum(read_raw(path).values()) for pid, path in profiles.items()}
        everything = sum(samples.values()) or 1
        cpu = {pid: args.cpu_seconds * count / everything for pid, count in samples.items()}
    else:
        cpu = cpu_from_report(report)
    summary = summarise(profiles, cpu, phones)
    print(json.dumps(summary, indent=2) if args.json else markdown(summary), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

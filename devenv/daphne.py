"""Several Daphne processes on one listening socket, and the wait until each of them accepts."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import time
from pathlib import Path

from .shell import PYTHON, ROOT


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


def accepting(pid: int, inode: int) -> bool:
    """Whether process ``pid`` watches the listening socket ``inode`` in an epoll instance: a
    Daphne started with ``--fd`` does so once its application is loaded and it accepts. (Twisted
    adopts a duplicate of the inherited descriptor and closes the original, so the socket is
    found by its inode, not by the number passed to ``--fd``.)"""
    base = Path("/proc") / str(pid)
    try:
        names = os.listdir(base / "fd")
    except OSError:
        return False
    listening, polls = set(), []
    for name in names:
        try:
            target = os.readlink(base / "fd" / name)
        except OSError:
            continue
        if target == f"socket:[{inode}]":
            listening.add(int(name))
        elif target == "anon_inode:[eventpoll]":
            polls.append(name)
    for name in polls:
        try:
            lines = (base / "fdinfo" / name).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("tfd:") and int(line.split()[1]) in listening:
                return True
    return False


def http_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        connection = http.client.HTTPConnection(host, port, timeout=2)
        try:
            connection.request("GET", "/")
            connection.getresponse().read()
        finally:
            connection.close()
    except (OSError, http.client.HTTPException):
        return False
    return True


def wait_serving(processes: list[subprocess.Popen], sock: socket.socket, timeout: float) -> None:
    """Wait until every process accepts on the shared listening socket ``sock`` (still open
    here) and its port answers HTTP."""
    inode = os.fstat(sock.fileno()).st_ino
    port = sock.getsockname()[1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [process.pid for process in processes if process.poll() is not None]
        if dead:
            raise RuntimeError(f"server process(es) {dead} exited during start-up")
        if all(accepting(process.pid, inode) for process in processes) and http_answers(port):
            return
        time.sleep(0.1)
    waiting = [process.pid for process in processes if not accepting(process.pid, inode)]
    raise RuntimeError(
        f"the servers on port {port} did not start within {timeout:.0f} s "
        f"(not accepting: {waiting or 'none'}; HTTP answers: {http_answers(port)})"
    )

"""Real processes for end-to-end tests: Daphne and the answer writer on a private database."""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from devenv.daphne import listening_socket, start_daphnes, wait_serving

ROOT = Path(__file__).resolve().parent.parent
# The demo host's password on every stack (seed_demo reads ZP_DEMO_PASSWORD): new each session.
DEMO_PASSWORD = secrets.token_urlsafe(12)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Stack:
    directory: Path
    env: dict
    port: int = 0
    processes: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return result.stdout

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = self.directory / f"{name}.log"
        self.logs.append(log)
        process = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=log.open("wb"), stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        return process

    def start_daphne(
        self, application: str = "config.asgi:application", extra: tuple[str, ...] = ()
    ) -> subprocess.Popen:
        """A Daphne process (``polls.server``, as served) on a free port (``self.port``),
        returned once it accepts connections; ``extra``: more of Daphne's arguments."""
        self.port = free_port()
        return self._daphne_on_port(f"daphne-{self.port}", application, extra)

    def start_daphne_again(self, application: str = "config.asgi:application") -> subprocess.Popen:
        """A new Daphne on the port of the last one (``self.port``), as a server restarted after
        a crash comes back: clients that knew the old one find it at the same address. Returned
        once it accepts connections; the caller has stopped the old process."""
        return self._daphne_on_port(f"daphne-{self.port}-again-{len(self.processes)}", application)

    def _daphne_on_port(
        self, log_name: str, application: str, extra: tuple[str, ...] = ()
    ) -> subprocess.Popen:
        process = self.start(
            log_name,
            sys.executable,
            "-m",
            "polls.server",
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            *extra,
            application,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return process
            except OSError:
                if process.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"Daphne did not start on port {self.port}:\n{self.log_text()}")

    def start_daphnes(
        self, count: int, application: str = "config.asgi:application"
    ) -> list[subprocess.Popen]:
        """``count`` Daphne processes sharing one listening socket on a free port (``self.port``),
        as ``dev.py serve`` starts them; returned once every one of them accepts connections."""
        sock = listening_socket("127.0.0.1", 0)
        try:
            self.port = sock.getsockname()[1]
            started = []
            for index in range(count):
                log = self.directory / f"daphne-{self.port}-{index}.log"
                self.logs.append(log)
                with log.open("wb") as output:
                    started += start_daphnes(
                        sock,
                        1,
                        self.env,
                        application=application,
                        python=sys.executable,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
            self.processes += started
            try:
                wait_serving(started, sock, timeout=30)
            except RuntimeError as error:
                raise RuntimeError(f"{error}:\n{self.log_text()}") from error
        finally:
            sock.close()  # the servers hold it now
        return started

    def start_writer(self, *extra: str) -> subprocess.Popen:
        return self.start(
            "writer",
            sys.executable,
            "manage.py",
            "drain_answers",
            "--consumer",
            "e2e-writer",
            *extra,
        )

    def log_text(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.logs if log.exists())

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    def current_question(self, code: str) -> tuple[int, list[int]]:
        """The event's current question id and its option ids, read from the stack's database."""
        with sqlite3.connect(self.directory / "e2e.sqlite3") as db:
            (question_id,) = db.execute(
                "SELECT current_question_id FROM polls_event WHERE code = ?", (code,)
            ).fetchone()
            rows = db.execute(
                "SELECT id FROM polls_option WHERE question_id = ? ORDER BY id", (question_id,)
            )
            return question_id, [row[0] for row in rows]

    def urls(self, code: str) -> dict[str, str]:
        lines = self.manage("event_urls", code, "--base", self.base).splitlines()
        pairs = (line.split(":", 1) for line in lines)
        return {name: url.strip() for name, url in pairs}


def stack_environment(database: Path, redis_url: str | None = None) -> dict:
    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=f"sqlite:///{database}",
        ZP_TEST_REDIS_URL=redis_url or settings.REDIS_URL,
        ZP_DEMO_PASSWORD=DEMO_PASSWORD,
        PYTHONUNBUFFERED="1",
    )


_migrated: list[Path] = []


def migrated_database() -> Path:
    """One database migrated for the whole session; each stack starts from a copy of it (a
    migrate is a Django start-up and every migration, for each of some fifty stacks)."""
    if not _migrated:
        directory = Path(tempfile.mkdtemp(prefix="zp-migrated-"))
        atexit.register(shutil.rmtree, directory, True)
        template = Stack(directory=directory, env=stack_environment(directory / "db.sqlite3"))
        template.manage("migrate", "--noinput")
        _migrated.append(directory / "db.sqlite3")
    return _migrated[0]


def make_stack(directory: Path, redis_url: str | None = None) -> Stack:
    """A private database, migrated, with the demo event seeded (its tally in ``redis_url``)."""
    database = directory / "e2e.sqlite3"
    # SQLite's backup, not a file copy: it carries what the template's WAL may still hold.
    source, target = sqlite3.connect(migrated_database()), sqlite3.connect(database)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    stack = Stack(directory=directory, env=stack_environment(database, redis_url))
    stack.manage("seed_demo")
    return stack


async def http_post(host: str, port: int, path: str) -> tuple[int, dict]:
    """A bare HTTP/1.1 POST with no body (what the phone page's join call is)."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\n"
        f"Connection: close\r\n\r\n".encode()
    )
    await writer.drain()
    raw = await reader.read()
    writer.close()
    if not raw:  # the server went away before answering (a killed process)
        raise ConnectionResetError("empty HTTP response")
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body or b"{}")

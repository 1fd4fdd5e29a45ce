"""Real processes for end-to-end tests: Daphne and the answer writer on a private database
(a PostgreSQL database of its own on the test server; SQLite only where a test asks for it)."""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
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
    database: StackDatabase | None = None
    processes: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str, timeout: float = 120) -> str:
        """``manage.py`` with the stack's settings; its output, or a failure that shows it and
        the end of the stack's server logs."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args)} exited {result.returncode}:\n"
                + result.stdout
                + result.stderr
                + self.log_text()[-3000:]
            )
        return result.stdout

    def empty_qa(self, code: str) -> None:
        """The event's audience Q&A off and without items, in the database and in Redis: the
        demo comes with its Q&A open and sample items, and a test of the Q&A starts from none."""
        self.manage(
            "shell",
            "-c",
            "from polls import qa; from polls.models import Event, QaConfig; "
            f"event = Event.objects.get(code={code!r}); event.qa_items.all().delete(); "
            "QaConfig.objects.filter(event=event).delete(); qa.rebuild_from_db(event.pk)",
        )

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
        if self.database is not None:
            self.database.drop()

    def query(self, sql: str, *params) -> list[tuple]:
        """Rows of ``sql`` (``%s`` placeholders) read from the stack's own database."""
        return self.database.query(sql, *params)

    def query_one(self, sql: str, *params) -> tuple:
        rows = self.query(sql, *params)
        assert len(rows) == 1, rows
        return rows[0]

    def current_question(self, code: str) -> tuple[int, list[int]]:
        """The event's current question id and its option ids, read from the stack's database."""
        (question_id,) = self.query_one(
            "SELECT current_question_id FROM polls_event WHERE code = %s", code
        )
        rows = self.query(
            "SELECT id FROM polls_option WHERE question_id = %s ORDER BY id", question_id
        )
        return question_id, [row[0] for row in rows]

    def urls(self, code: str) -> dict[str, str]:
        lines = self.manage("event_urls", code, "--base", self.base).splitlines()
        pairs = (line.split(":", 1) for line in lines)
        return {name: url.strip() for name, url in pairs}


@dataclass
class StackDatabase:
    """One database a test made: on the test's PostgreSQL server (``url`` names it), or a
    SQLite file."""

    url: str

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite:")

    def connect(self):
        if self.is_sqlite:
            return sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30)
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def query(self, sql: str, *params) -> list[tuple]:
        if self.is_sqlite:
            sql = sql.replace("%s", "?")
        connection = self.connect()
        try:
            return list(connection.execute(sql, params).fetchall())
        finally:
            connection.close()

    def drop(self) -> None:
        if not self.is_sqlite:
            name = self.url.rsplit("/", 1)[1]
            on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_url(database: str) -> str:
    """The URL of ``database`` on the test session's PostgreSQL server."""
    base = settings.ZP_TEST_DATABASE_SERVER_URL
    if not base.startswith(("postgres://", "postgresql://")):
        raise RuntimeError(f"the tests' database server is not PostgreSQL: {base}")
    return f"{base.rsplit('/', 1)[0]}/{database}"


def on_server(sql: str) -> None:
    """A statement outside any database's transaction (CREATE / DROP DATABASE)."""
    import psycopg

    with psycopg.connect(settings.ZP_TEST_DATABASE_SERVER_URL, autocommit=True) as admin:
        admin.execute(sql)


def new_database(template: str | None = None) -> StackDatabase:
    """A new, empty PostgreSQL database (a copy of ``template`` when given), dropped when the
    session ends if its test did not drop it."""
    name = f"zp_{os.getpid()}_{secrets.token_hex(4)}"
    on_server(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    database = StackDatabase(server_url(name))
    atexit.register(database.drop)
    return database


def stack_environment(database: StackDatabase, redis_url: str | None = None) -> dict:
    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=database.url,
        ZP_TEST_REDIS_URL=redis_url or settings.REDIS_URL,
        ZP_DEMO_PASSWORD=DEMO_PASSWORD,
        PYTHONUNBUFFERED="1",
    )


_migrated: list[str] = []


def migrated_template() -> str:
    """One database migrated for the whole session; each stack starts from a copy of it
    (PostgreSQL's CREATE DATABASE ... TEMPLATE, a file copy: a migrate is a Django start-up and
    every migration, for each of some fifty stacks)."""
    if not _migrated:
        template = new_database()
        Stack(directory=Path.cwd(), env=stack_environment(template)).manage("migrate", "--noinput")
        _migrated.append(template.url.rsplit("/", 1)[1])
    return _migrated[0]


def make_stack(directory: Path, redis_url: str | None = None, sqlite: bool = False) -> Stack:
    """A private database, migrated, with the demo event seeded (its tally in ``redis_url``):
    on the test PostgreSQL server, or with ``sqlite`` a SQLite file in ``directory``, migrated
    here (the embedded default's own path)."""
    if sqlite:
        database = StackDatabase(f"sqlite:///{directory / 'e2e.sqlite3'}")
        stack = Stack(directory, stack_environment(database, redis_url), database=database)
        stack.manage("migrate", "--noinput")
    else:
        database = new_database(template=migrated_template())
        stack = Stack(directory, stack_environment(database, redis_url), database=database)
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

"""`python3 dev.py serve` with DATABASE_URL and REDIS_URL set: it uses the user's PostgreSQL and
Redis (here a fresh database on the tests' server and the session's Redis) and starts neither
embedded default: no private Redis, no SQLite file; the demo and the answers land in them."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from polls.redis_client import get_sync_redis
from tests.redis_nodes import SERVICE, RedisGroup
from tests.servers import DEMO_PASSWORD, Stack, free_port, new_database
from tests.test_faults import counted
from tests.test_postgres import answer_once
from tests.test_serve_supervisor import ROOT, START_TIMEOUT, Serve

pytestmark = [pytest.mark.e2e]
CODE = "KSF2018"


class ServeOnServices(Serve):
    """``dev.py serve`` given the user's database and Redis, one Daphne process."""

    def __init__(self, var_dir: Path, log: Path, database_url: str, **redis: str):
        """``redis``: REDIS_URL, or REDIS_SENTINELS and REDIS_SENTINEL_SERVICE."""
        self.var_dir, self.log, self.port = var_dir, log, free_port()
        drop = {"ZP_TEST_REDIS_URL", "ZP_TEST_DATABASE_URL", "ALLOWED_HOSTS", "REDIS_URL"}
        env = {name: value for name, value in os.environ.items() if name not in drop}
        env.update(
            **redis,
            DATABASE_URL=database_url,
            ZP_VAR_DIR=str(var_dir),
            ZP_HOST="127.0.0.1",
            ZP_PORT=str(self.port),
            ZP_PROCESSES="1",
            ZP_ACCESS_LOG="off",
            ZP_DEMO_PASSWORD=DEMO_PASSWORD,
            ZP_ANSWER_WARMUP_SECONDS="0",
        )
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "dev.py"), "serve"],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.seen: set[int] = set()


def started_on_services_alone(serve: ServeOnServices, var_dir: Path) -> None:
    """Serving, with a writer, and neither embedded default: no private Redis, no SQLite."""
    serve.wait_for(lambda: "Ctrl-C stops" in serve.output(), "start", START_TIMEOUT)
    serve.wait_for(lambda: len(serve.children()["daphne"]) == 1, "a Daphne process")
    children = serve.children()
    assert children["redis"] == [] and len(children["writer"]) == 1, children
    assert not (var_dir / "redis").exists(), sorted(os.listdir(var_dir))
    assert not list(var_dir.glob("*.sqlite3")), sorted(os.listdir(var_dir))
    assert "private Redis" not in serve.output()


def stopped_cleanly(serve: ServeOnServices) -> None:
    serve.process.send_signal(signal.SIGTERM)
    assert serve.process.wait(timeout=60) == 0, serve.output()
    assert "Traceback" not in serve.output()


def test_serve_uses_the_users_database_and_redis_and_starts_neither_default(tmp_path, redis_server):
    # Short, under the system's temporary folder, as the other serve tests' var folder.
    var_dir = Path(tempfile.mkdtemp(prefix="zp-serve-services-"))
    database = new_database()  # empty: serve migrates it
    serve = ServeOnServices(var_dir, tmp_path / "serve.log", database.url, REDIS_URL=redis_server)
    try:
        started_on_services_alone(serve, var_dir)
        (question_id,) = database.query(
            "SELECT current_question_id FROM polls_event WHERE code = %s", CODE
        )[0]
        options = [
            row[0]
            for row in database.query(
                "SELECT id FROM polls_option WHERE question_id = %s ORDER BY id", question_id
            )
        ]
        assert len(options) >= 2
        stack = Stack(tmp_path, {}, port=serve.port)
        asyncio.run(answer_once(stack, question_id, options[1]))
        tallied = counted(get_sync_redis(), question_id)  # the session's Redis counted it
        assert list(tallied.values()) == [options[1]]
        deadline, rows = time.monotonic() + 30, []
        while not rows and time.monotonic() < deadline:
            time.sleep(0.1)
            rows = database.query(
                "SELECT participant, value FROM polls_answer WHERE question_id = %s", question_id
            )
        assert dict(rows) == tallied
        stopped_cleanly(serve)
    finally:
        serve.terminate()
        database.drop()
        shutil.rmtree(var_dir, ignore_errors=True)


def test_serve_with_sentinels_starts_no_redis_and_counts_on_their_primary(tmp_path):
    """REDIS_SENTINELS instead of REDIS_URL: serve starts no Redis of its own, and the demo and
    an answer land on the primary the sentinels name."""
    group = RedisGroup.start(tmp_path / "redis")
    var_dir = Path(tempfile.mkdtemp(prefix="zp-serve-sentinels-"))
    database = new_database()
    serve = ServeOnServices(
        var_dir,
        tmp_path / "serve.log",
        database.url,
        REDIS_SENTINELS=group.sentinels_env,
        REDIS_SENTINEL_SERVICE=SERVICE,
    )
    try:
        started_on_services_alone(serve, var_dir)
        (question_id,) = database.query(
            "SELECT current_question_id FROM polls_event WHERE code = %s", CODE
        )[0]
        (option,) = database.query(
            "SELECT id FROM polls_option WHERE question_id = %s ORDER BY id LIMIT 1", question_id
        )[0]
        asyncio.run(answer_once(Stack(tmp_path, {}, port=serve.port), question_id, option))
        assert list(counted(group.primary.client(), question_id).values()) == [option]
        stopped_cleanly(serve)
    finally:
        serve.terminate()
        database.drop()
        group.stop()
        shutil.rmtree(var_dir, ignore_errors=True)

"""Safe defaults: no known key, no known password, no demo account on a production server."""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from devenv.serve import host_login_line, refusal_to_serve, serve_environment
from polls import tally
from polls.models import Event, Question
from tests.servers import make_stack

ROOT = Path(__file__).resolve().parent.parent
# What a shell or the test runner may have set that would change which settings run.
SETTINGS_VARIABLES = (
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "ZP_VAR_DIR",
    "ZP_DEMO_PASSWORD",
)
DEPLOY_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.prod",
    "DJANGO_SECRET_KEY": "x7" * 30 + "-a-long-random-production-secret",
    "ALLOWED_HOSTS": "poll.example.org",
    "REDIS_URL": "redis://redis.internal:6379/0",
}
EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 - the address `serve` must refuse without a password
PASSWORD_LINE = re.compile(r"demo host 'host' password: (\S+)")


def run_python(env: dict, *args: str, cwd: Path = ROOT, timeout: float = 60):
    clean = {key: value for key, value in os.environ.items() if key not in SETTINGS_VARIABLES}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def seed_demo(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def printed_password(output: str) -> str:
    match = PASSWORD_LINE.search(output)
    assert match, output
    return match.group(1)


def logs_in(password: str) -> bool:
    return Client().login(username="host", password=password)


# Settings


@pytest.mark.parametrize(
    "command", [("manage.py", "check"), ("-c", "import config.asgi")], ids=["manage", "asgi"]
)
def test_without_a_settings_module_production_settings_refuse_to_start(command):
    result = run_python({}, *command)
    assert result.returncode != 0
    assert "Set the environment variable DJANGO_SECRET_KEY" in result.stderr


def development_key(var_dir: Path, **env: str):
    return run_python(
        {"DJANGO_SETTINGS_MODULE": "config.settings.dev", "ZP_VAR_DIR": str(var_dir), **env},
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY)",
    )


def test_development_settings_make_a_random_key_once_per_var_dir(tmp_path):
    first = development_key(tmp_path / "one").stdout.strip()
    assert len(first) >= 50
    assert development_key(tmp_path / "one").stdout.strip() == first
    assert development_key(tmp_path / "two").stdout.strip() not in ("", first)
    key_file = tmp_path / "one" / "secret-key"
    assert key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert development_key(tmp_path / "one", DJANGO_SECRET_KEY="from-env").stdout == "from-env\n"


def test_processes_starting_together_share_one_development_key(tmp_path):
    command = [sys.executable, "-c", "from django.conf import settings; print(settings.SECRET_KEY)"]
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS_VARIABLES}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.dev", ZP_VAR_DIR=str(tmp_path))
    starting = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    keys = {process.communicate(timeout=60)[0].strip() for process in starting}
    assert len(keys) == 1 and "" not in keys
    assert sorted(path.name for path in tmp_path.iterdir()) == ["secret-key"]


@pytest.mark.parametrize("hosts", ["*", "poll.example.org,*"])
def test_production_settings_refuse_a_wildcard_host(hosts):
    env = {**DEPLOY_ENV, "ALLOWED_HOSTS": hosts, "DATABASE_URL": "sqlite:////nonexistent/db"}
    result = run_python(env, "manage.py", "check")
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must list this server's host names, not '*'" in result.stderr


# The demo host


def test_seed_demo_refuses_under_production_settings(tmp_path):
    database = tmp_path / "prod.sqlite3"
    env = {**DEPLOY_ENV, "DATABASE_URL": f"sqlite:///{database}"}
    result = run_python(env, "manage.py", "seed_demo")
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "--allow-production" in result.stderr
    assert not database.exists()  # refused before the database was opened


@pytest.mark.django_db
def test_the_demo_host_password_is_random_printed_once_and_logs_in(monkeypatch):
    monkeypatch.delenv("ZP_DEMO_PASSWORD", raising=False)
    first = printed_password(seed_demo())
    assert logs_in(first)
    assert "password" not in seed_demo()  # shown only when made
    assert logs_in(first)

    get_user_model().objects.all().delete()
    Event.objects.all().delete()
    second = printed_password(seed_demo())  # a fresh database
    assert second != first and len(second) >= 12
    assert logs_in(second) and not logs_in(first)

    third = printed_password(seed_demo("--new-password"))
    assert third != second
    assert logs_in(third) and not logs_in(second)


@pytest.mark.django_db
def test_the_demo_host_password_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("ZP_DEMO_PASSWORD", "a-password-of-my-own")
    assert "password" not in seed_demo()
    assert logs_in("a-password-of-my-own")
    monkeypatch.setenv("ZP_DEMO_PASSWORD", "another-password-since")
    seed_demo()  # set on every run
    assert logs_in("another-password-since") and not logs_in("a-password-of-my-own")
    monkeypatch.setenv("ZP_DEMO_PASSWORD", "short-one")
    with pytest.raises(CommandError, match="shorter than 12 characters"):
        seed_demo()
    assert logs_in("another-password-since")


@pytest.mark.django_db
def test_seed_demo_mends_a_demo_left_with_no_current_question(redis):
    seed_demo()
    event = Event.objects.get(code="KSF2018")
    event.current_question = None
    event.save()
    event.questions.update(state=Question.State.DRAFT)
    redis.flushall()
    assert "the first is open" in seed_demo()
    event.refresh_from_db()
    first = event.questions.first()
    assert event.current_question == first and first.state == Question.State.OPEN
    assert redis.hget(tally.question_keys(first.id)["meta"], "open") == b"1"


def demo_rows(stack) -> tuple:
    event = stack.query_one(
        "SELECT id, current_question_id FROM polls_event WHERE code = 'KSF2018'"
    )
    questions = stack.query(
        "SELECT id, state FROM polls_question WHERE event_id = %s ORDER BY id", event[0]
    )
    return event, questions


def test_seed_demo_reset_without_redis_says_so_in_one_line_and_keeps_the_demo(tmp_path):
    stack = make_stack(tmp_path)  # migrated, demo seeded with the test Redis
    before = demo_rows(stack)
    assert before[0][1] is not None and len(before[1]) > 3
    dead = tmp_path / "dead.sock"  # a socket file nothing listens on: a Redis that crashed
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(dead))
    result = subprocess.run(
        [sys.executable, "manage.py", "seed_demo", "--reset"],
        cwd=ROOT,
        env={**stack.env, "ZP_TEST_REDIS_URL": f"unix://{dead}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "Redis is not reachable" in result.stderr and "nothing was changed" in result.stderr
    assert demo_rows(stack) == before


# dev.py serve


@pytest.mark.parametrize("password", [None, "short"])
def test_serve_on_the_network_needs_a_demo_password_before_any_setup(tmp_path, password):
    # Its own ROOT: nothing of the checkout but the command and its package.
    shutil.copy(ROOT / "dev.py", tmp_path / "dev.py")
    shutil.copytree(
        ROOT / "devenv", tmp_path / "devenv", ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {"ZP_HOST": EVERY_INTERFACE}
    if password:
        env["ZP_DEMO_PASSWORD"] = password
    result = run_python(env, str(tmp_path / "dev.py"), "serve", cwd=tmp_path, timeout=30)
    assert result.returncode == 2
    assert "ZP_DEMO_PASSWORD" in result.stderr and result.stdout == ""
    # No .venv, no var/:
    assert sorted(path.name for path in tmp_path.iterdir()) == ["dev.py", "devenv"]


def test_serve_refuses_only_beyond_loopback_and_serves_there_without_debug():
    for loopback in ("127.0.0.1", "127.0.0.2", "localhost", "::1"):
        assert refusal_to_serve(loopback, {}) is None
        assert serve_environment(loopback, {"DJANGO_DEBUG": "1"})["DJANGO_DEBUG"] == "1"
        assert serve_environment(loopback, {})["DJANGO_DEBUG"] == "0"
    for network in (EVERY_INTERFACE, "192.168.1.20", "::", "poll.local"):
        assert "ZP_DEMO_PASSWORD" in refusal_to_serve(network, {})
        assert refusal_to_serve(network, {"ZP_DEMO_PASSWORD": "twelve-chars"}) is None
        assert serve_environment(network, {"DJANGO_DEBUG": "1"})["DJANGO_DEBUG"] == "0"


def test_serve_login_line_says_where_the_password_is():
    line = host_login_line("http://127.0.0.1:8000", {"ZP_DEMO_PASSWORD": "my-own-password"})
    assert "from ZP_DEMO_PASSWORD" in line and "my-own-password" not in line
    assert "printed above" in host_login_line("http://127.0.0.1:8000", {})

"""``dev.py test``: the test setup (requirements, Debian's Chromium and PostgreSQL server,
translations, the private PostgreSQL), then pytest with the test settings; its exit code is
pytest's."""

from __future__ import annotations

import os
import subprocess

from .install import compile_messages, ensure_test_packages, ensure_venv
from .private_postgres import start_postgres, stop_postgres
from .shell import PYTHON, ROOT, say


def run_tests(pytest_args: list[str]) -> int:
    ensure_venv(["requirements-test.txt"])
    ensure_test_packages()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.test")
    compile_messages(env)
    started = None
    if env.get("DATABASE_URL"):
        say("DATABASE_URL is set: the tests make their databases on that server")
    else:
        server, is_new = start_postgres()
        env["ZP_TEST_DATABASE_URL"] = server.url("postgres")
        started = server if is_new else None
    try:
        return subprocess.run(
            [str(PYTHON), "-m", "pytest", *pytest_args], cwd=ROOT, env=env
        ).returncode
    finally:
        if started is not None:
            stop_postgres(started)

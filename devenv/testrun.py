"""``dev.py test``: the test setup (requirements, Debian's Chromium and PostgreSQL server,
translations, the private PostgreSQL), then pytest with the test settings; its exit code is
pytest's."""

from __future__ import annotations

import os
import subprocess

from .install import compile_messages, ensure_test_packages, ensure_venv
from .private_postgres import start_postgres, stop_postgres
from .shell import PYTHON, ROOT, say


def parallel_options(pytest_args: list[str]) -> list[str]:
    """pytest-xdist across the cores unless the caller chose (``-n``, ``-p no:xdist``): most of
    the suite waits on real servers, so two workers on two cores finish it in well under the
    time one takes (docs/development.md). A module's tests stay on one worker (``loadfile``):
    they share its browser and its fixtures."""
    if any(arg == "no:xdist" or arg.startswith(("-n", "--numprocesses")) for arg in pytest_args):
        return []
    cores = len(os.sched_getaffinity(0))
    return ["-n", str(min(cores, 4)), "--dist", "loadfile"] if cores > 1 else []


def run_tests(pytest_args: list[str]) -> int:
    ensure_venv(["requirements-test.txt"])
    ensure_test_packages()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.test")
    started = None
    if env.get("DATABASE_URL"):
        say("DATABASE_URL is set: the tests make their databases on that server")
    else:
        # Before anything loads the test settings (compilemessages does): they would start
        # the server themselves, and this run would then leave it running as not its own.
        server, is_new = start_postgres()
        env["ZP_TEST_DATABASE_URL"] = server.url("postgres")
        started = server if is_new else None
    try:
        compile_messages(env)
        return subprocess.run(
            [str(PYTHON), "-m", "pytest", *parallel_options(pytest_args), *pytest_args],
            cwd=ROOT,
            env=env,
        ).returncode
    finally:
        if started is not None:
            stop_postgres(started)

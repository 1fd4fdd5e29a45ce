"""``dev.py test``: the test setup (requirements, Debian's Chromium, translations), then pytest
with the test settings; its exit code is pytest's."""

from __future__ import annotations

import os
import subprocess

from .install import compile_messages, ensure_chromium, ensure_venv
from .shell import PYTHON, ROOT


def run_tests(pytest_args: list[str]) -> int:
    ensure_venv(["requirements-test.txt"])
    ensure_chromium()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.test")
    compile_messages(env)
    return subprocess.run([str(PYTHON), "-m", "pytest", *pytest_args], cwd=ROOT, env=env).returncode

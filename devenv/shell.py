"""Where things are, and how a setup step runs a command."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
VAR = Path(os.environ.get("ZP_VAR_DIR") or ROOT / "var")
PYTHON = VENV / "bin" / "python"
HOST, PORT = os.environ.get("ZP_HOST", "127.0.0.1"), int(os.environ.get("ZP_PORT", "8000"))
# Daphne processes sharing the port, by default one per core (at most 4 unless asked): on the
# 2-core machine the performance targets are met with two (docs/performance.md), not with one.
PROCESSES = int(os.environ.get("ZP_PROCESSES") or min(len(os.sched_getaffinity(0)), 4))


def say(text: str) -> None:
    print(f"[dev] {text}", flush=True)


def run(*args: str, env: dict | None = None, quiet: bool = False) -> None:
    output = subprocess.DEVNULL if quiet else None
    subprocess.run(args, cwd=ROOT, env=env, check=True, stdout=output)


def manage(env: dict, *args: str, quiet: bool = False) -> None:
    run(str(PYTHON), "manage.py", *args, env=env, quiet=quiet)

"""Stopping what was started: SIGTERM first, SIGKILL after a deadline."""

from __future__ import annotations

import signal
import subprocess
import time


def stop(process: subprocess.Popen | None, timeout: float = 10) -> None:
    stop_all([process] if process else [], timeout)


def stop_all(processes: list[subprocess.Popen], timeout: float = 10) -> None:
    """SIGTERM to every one at once, then each gets until ``timeout`` before SIGKILL."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

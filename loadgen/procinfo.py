"""Server processes on this machine: find them by their listening port, read RSS and CPU."""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
LISTEN = "0A"


def _listening_inodes(ports: set[int]) -> dict[str, int]:
    """socket inode -> port for sockets listening on one of ``ports``."""
    found = {}
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != LISTEN:
                continue
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if port in ports:
                found[fields[9]] = port
    return found


def listening_pids(ports: set[int]) -> dict[int, int]:
    """pid -> port of the processes listening on ``ports`` (needs the same user, or root)."""
    inodes = _listening_inodes(ports)
    if not inodes:
        return {}
    wanted = {f"socket:[{inode}]": port for inode, port in inodes.items()}
    pids = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target in wanted:
                    pids[int(entry.name)] = wanted[target]
                    break
        except OSError:
            continue
    return pids


def describe(pid: int) -> str:
    try:
        args = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [arg.decode(errors="replace") for arg in args if arg]
    return " ".join(words)[:120]


def sample(pid: int) -> dict | None:
    """RSS (KiB), CPU seconds (user + system, all threads) and open file descriptors."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    rss = 0
    threads = 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    try:
        fds = len(os.listdir(PROC / str(pid) / "fd"))
    except OSError:
        fds = None
    return {"rss_kib": rss, "cpu_s": cpu, "threads": threads, "fds": fds}


def open_file_limit() -> int | None:
    try:
        import resource

        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return None

"""A private PostgreSQL server for the test session: Debian's server binaries, ``initdb`` into a
git-ignored folder, ``pg_ctl start`` on a free loopback port, a password made for it.

PostgreSQL refuses to run as root; as root (CI) the server runs as Debian's ``postgres`` user,
which owns the data folder. When that user cannot reach the checkout (a clone under a private
home), the folder is made under the system's temporary folder instead, and the setup says so.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .shell import ROOT, VAR, say

SERVER_USER = "postgres"  # made by Debian's postgresql package
ROLE = "zaalpeiling"
# A test server: losing it in a power cut loses nothing. Durability is PostgreSQL's own and is
# not under test; what is under test (constraints, locks, concurrent upserts) is unaffected.
TEST_SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "500",
    "shared_buffers": "128MB",
    "unix_socket_directories": "''",
    "listen_addresses": "'127.0.0.1'",
    "log_min_messages": "warning",
}


def server_binaries() -> Path | None:
    """The newest of Debian's PostgreSQL server versions installed, else one on the PATH."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("postgres")
    return Path(found).parent if found else None


@dataclass(frozen=True)
class PrivatePostgres:
    directory: Path

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def url_file(self) -> Path:
        return self.directory / "url"

    def url(self, database: str = ROLE) -> str:
        base = self.url_file.read_text().strip()
        return f"{base}/{database}"

    def answering(self) -> bool:
        if not self.url_file.exists():
            return False
        port = int(self.url_file.read_text().rsplit(":", 1)[1])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return (self.data / "postmaster.pid").exists()
        except OSError:
            return False


def _as_server_user(server: PrivatePostgres) -> dict:
    """Popen arguments that run a server command as the user allowed to own the data, in its
    folder (the caller's may be closed to that user)."""
    if os.geteuid() != 0:
        return {"cwd": server.directory}
    user = pwd.getpwnam(SERVER_USER)
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "cwd": server.directory}


def _reachable_by_server_user(path: Path) -> bool:
    """Whether the server's user may pass through every folder above ``path`` (which it owns)."""
    if os.geteuid() != 0:
        return True
    user = pwd.getpwnam(SERVER_USER)
    groups = {user.pw_gid} | {
        group.gr_gid for group in grp.getgrall() if user.pw_name in group.gr_mem
    }
    for folder in path.resolve().parents:
        status = folder.stat()
        if status.st_uid == user.pw_uid:
            allowed = status.st_mode & stat.S_IXUSR
        elif status.st_gid in groups:
            allowed = status.st_mode & stat.S_IXGRP
        else:
            allowed = status.st_mode & stat.S_IXOTH
        if not allowed:
            return False
    return True


def place(directory: Path | None = None) -> PrivatePostgres:
    """Where the private server lives: ``var/test-postgres`` unless the server's user cannot
    write there."""
    wanted = directory or VAR / "test-postgres"
    wanted.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVER_USER)
        os.chown(wanted, user.pw_uid, user.pw_gid)
        if not _reachable_by_server_user(wanted):
            tag = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
            elsewhere = Path(tempfile.gettempdir()) / f"zaalpeiling-test-postgres-{tag}"
            elsewhere.mkdir(mode=0o700, exist_ok=True)
            os.chown(elsewhere, user.pw_uid, user.pw_gid)
            say(
                f"the '{SERVER_USER}' user cannot reach {wanted}: the private PostgreSQL "
                f"lives in {elsewhere}"
            )
            return PrivatePostgres(elsewhere)
    return PrivatePostgres(wanted)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _initdb(server: PrivatePostgres, binaries: Path) -> str:
    password = secrets.token_urlsafe(24)
    with tempfile.NamedTemporaryFile("w", dir=server.directory, delete=False) as pwfile:
        pwfile.write(password)
    try:
        os.chmod(pwfile.name, 0o600)
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(pwfile.name, user.pw_uid, user.pw_gid)
        subprocess.run(
            initdb_command(binaries, server.data, Path(pwfile.name)),
            check=True,
            stdout=subprocess.DEVNULL,
            **_as_server_user(server),
        )
    finally:
        os.unlink(pwfile.name)
    return password


def initdb_command(binaries: Path, data: Path, password_file: Path) -> list[str]:
    """initdb for a private server: the project's role with the password in ``password_file``,
    scram-sha-256, UTF-8, no locale, no fsync (a test server: a power cut loses nothing)."""
    return [
        str(binaries / "initdb"),
        "--pgdata",
        str(data),
        "--username",
        ROLE,
        "--pwfile",
        str(password_file),
        "--auth",
        "scram-sha-256",
        "--encoding",
        "UTF8",
        "--no-locale",
        "--no-sync",
    ]


def start_postgres(directory: Path | None = None) -> tuple[PrivatePostgres, bool]:
    """The private server, started unless one from an earlier run still answers; with whether
    this call started it (the caller then stops it)."""
    server = place(directory)
    if server.answering():
        return server, False
    binaries = server_binaries()
    if binaries is None:
        raise SystemExit(
            "PostgreSQL's server is missing: run `python3 dev.py test`, which installs Debian's "
            "'postgresql' package, or set DATABASE_URL to a PostgreSQL database of your own."
        )
    if not (server.data / "PG_VERSION").exists():
        shutil.rmtree(server.data, ignore_errors=True)
        server.url_file.unlink(missing_ok=True)
        say(f"making the private PostgreSQL in {server.directory}")
        password = _initdb(server, binaries)
        server.url_file.write_text(f"postgres://{ROLE}:{password}@127.0.0.1:0")
        server.url_file.chmod(0o600)
    base = server.url_file.read_text().strip().rsplit(":", 1)[0]
    port = _free_port()
    server.url_file.write_text(f"{base}:{port}")
    options = " ".join(f"-c {name}={value}" for name, value in TEST_SERVER_SETTINGS.items())
    log = server.directory / "postgres.log"
    subprocess.run(
        [
            str(binaries / "pg_ctl"),
            "--pgdata",
            str(server.data),
            "--log",
            str(log),
            "--options",
            f"-p {port} {options}",
            "--wait",
            "--timeout",
            "60",
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
        **_as_server_user(server),
    )
    deadline = time.monotonic() + 30
    while not server.answering():
        if time.monotonic() > deadline:
            raise SystemExit(f"the private PostgreSQL did not start; see {log}")
        time.sleep(0.05)
    return server, True


def stop_postgres(server: PrivatePostgres) -> None:
    binaries = server_binaries()
    if binaries is None or not (server.data / "postmaster.pid").exists():
        return
    subprocess.run(
        [str(binaries / "pg_ctl"), "--pgdata", str(server.data), "--mode", "fast", "stop"],
        check=False,
        stdout=subprocess.DEVNULL,
        **_as_server_user(server),
    )

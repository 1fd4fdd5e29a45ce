"""Setup steps: the virtualenv, Debian's Chromium, translations, database and static files."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .shell import PYTHON, ROOT, VAR, VENV, manage, run, say


def ensure_venv(requirement_files: list[str]) -> None:
    if not PYTHON.exists():
        say("creating the virtualenv in .venv")
        run(sys.executable, "-m", "venv", str(VENV))
    digest = hashlib.sha256()
    for name in ["requirements.txt", *requirement_files]:
        digest.update((ROOT / name).read_bytes())
    stamp = VENV / f".installed-{requirement_files[-1] if requirement_files else 'base'}"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    say("installing requirements")
    requirement = requirement_files[-1] if requirement_files else "requirements.txt"
    run(str(PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", requirement)
    stamp.write_text(digest.hexdigest())


CHROMIUM = Path("/usr/lib/chromium/chromium")  # the binary behind Debian's launcher script


def ensure_debian_packages(wanted: dict[str, str]) -> None:
    """Install those of Debian's packages (name -> what they are for) that are missing, in one
    apt-get run, saying which and why."""
    if not wanted:
        return
    if shutil.which("apt-get") is None:
        listed = ", ".join(f"'{name}' ({why})" for name, why in wanted.items())
        raise SystemExit(f"The tests need Debian's packages {listed}: install them.")
    for name, why in wanted.items():
        say(f"installing Debian's {name} {why}")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=False, env=env)
    run(*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *wanted, env=env)


def ensure_test_packages() -> None:
    """Debian's Chromium (driven by Playwright, never its own download), PostgreSQL's server,
    nginx and HAProxy, when absent."""
    from .private_postgres import server_binaries

    wanted = {}
    if not CHROMIUM.exists():
        wanted["chromium"] = "for the browser tests"
    if server_binaries() is None:
        wanted["postgresql"] = "for the tests' private PostgreSQL server"
    # tests/test_deploy.py runs the binaries as its own processes; Debian's packages also
    # enable their services, which start where a service manager runs.
    if not Path("/usr/sbin/nginx").exists():
        wanted["nginx"] = "for the test of deploy/nginx/ in front of a real server"
    if not Path("/usr/sbin/haproxy").exists():
        wanted["haproxy"] = "for the check of deploy/haproxy/ (haproxy -c)"
    ensure_debian_packages(wanted)


def compile_messages(env: dict) -> None:
    # The command's own test (a .mo no older than its .po), without starting Django for it.
    def compiled(po: Path) -> bool:
        mo = po.with_suffix(".mo")
        return mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime

    if all(compiled(po) for po in (ROOT / "locale").glob("*/LC_MESSAGES/*.po")):
        return
    manage(env, "compile_catalogues", quiet=True)


def files_digest(*places: Path) -> str:
    """One digest of the names and contents of the files at ``places`` (files or folders)."""
    digest = hashlib.sha256()
    for place in places:
        for path in sorted([place] if place.is_file() else place.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def unless_done(step: str, digest: str, made: Path, action: Callable[[], None]) -> None:
    """``action`` unless it last ran to the end on the same inputs (``digest``) and what it
    makes (``made``) is still there: each skipped step saves a Django start, seconds on a small
    machine, from every run of ``serve``."""
    stamp = VAR / f".done-{step}"
    if made.exists() and stamp.exists() and stamp.read_text() == digest:
        return
    stamp.unlink(missing_ok=True)
    action()
    stamp.write_text(digest)


def set_up_database_and_static_files(env: dict) -> None:
    # The installed Django (requirements.txt) brings migrations and admin files of its own.
    requirements = ROOT / "requirements.txt"
    migrate = functools.partial(manage, env, "migrate", "--noinput", quiet=True)
    if env.get("DATABASE_URL"):
        migrate()  # a database serve did not make may be anywhere in its history
    else:
        migrations = [path for path in ROOT.glob("*/migrations") if path.is_dir()]
        digest = files_digest(requirements, *migrations)
        unless_done("migrate", digest, VAR / "db.sqlite3", migrate)
    settings = ROOT / "config" / "settings" / "base.py"
    unless_done(
        "collectstatic",
        files_digest(requirements, settings, ROOT / "static"),
        VAR / "staticfiles",
        functools.partial(manage, env, "collectstatic", "--noinput", quiet=True),
    )

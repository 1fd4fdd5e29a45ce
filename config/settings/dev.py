"""Development settings: DEVELOPMENT DEFAULTS ONLY, never use these in production."""

import os
import secrets
from pathlib import Path

from .base import *  # noqa: F403
from .base import VAR_DIR, env_list


def development_secret_key(var_dir: Path) -> str:
    """DJANGO_SECRET_KEY, else a random key made once for this checkout and kept in
    ``var/secret-key``. Never a key written in the repository: tokens minted offline with a
    published key would otherwise be accepted by every development server."""
    from_env = os.environ.get("DJANGO_SECRET_KEY", "")
    if from_env:
        return from_env
    path = var_dir / "secret-key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        # Written whole under another name, then linked in place: the several processes that
        # `dev.py serve` starts at once all end up with the first key, never a half-written one.
        draft = var_dir / f".secret-key.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as output:
            output.write(secrets.token_urlsafe(50))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process was first; its key is the one
        finally:
            draft.unlink()
    return path.read_text().strip()


DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
SECRET_KEY = development_secret_key(VAR_DIR)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
# The demo host account may be made here (seed_demo); production settings refuse it.
ZP_DEMO_ALLOWED = True

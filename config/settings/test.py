"""Test settings: PostgreSQL (the private server the test setup starts, or the user's
DATABASE_URL), a private Redis started by the test setup, plain static storage."""

import os

import dj_database_url

from .base import *  # noqa: F403
from .base import REDIS_SENTINEL_CONNECTION, VAR_DIR, ZP_CHANNEL_LAYER, channel_layer_settings


def test_database_server_url() -> str:
    """DATABASE_URL set by the user wins; else the private PostgreSQL the test setup started
    (``ZP_TEST_DATABASE_URL``), started here when pytest runs on its own. Never SQLite: the
    tests that claim the production path run on the production database."""
    url = os.environ.get("DATABASE_URL") or os.environ.get("ZP_TEST_DATABASE_URL")
    if not url:
        from devenv.private_postgres import start_postgres

        server, _ = start_postgres()
        url = server.url("postgres")
        os.environ["ZP_TEST_DATABASE_URL"] = url  # the processes tests start inherit it
    return url


ZP_TEST_DATABASE_SERVER_URL = test_database_server_url()
DATABASES = {"default": dj_database_url.parse(ZP_TEST_DATABASE_SERVER_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # pytest-django's own database on the server (``_gw<n>`` added per xdist worker).
    DATABASES["default"]["TEST"] = {"NAME": "zp_test"}

SECRET_KEY = "test-only-key"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
ZP_DEMO_ALLOWED = True  # seed_demo makes the demo host here too
# One private Redis per pytest-xdist worker (each flushes its own before every test).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if REDIS_SENTINEL_CONNECTION is None:
    # With REDIS_SENTINELS (a test's server processes, tests/test_sentinel.py) base's stands.
    REDIS_URL = os.environ.get(
        "ZP_TEST_REDIS_URL",
        f"unix://{VAR_DIR / ('test-redis-' + _WORKER if _WORKER else 'test-redis') / 'redis.sock'}",
    )
CHANNEL_LAYERS = {
    "default": channel_layer_settings(REDIS_URL, ZP_CHANNEL_LAYER, REDIS_SENTINEL_CONNECTION)
}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Static files straight from the source folders: no collectstatic before tests.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# No warm-up for a new token's first answer (tests answer the moment they join); the tests of
# the warm-up itself set it.
ZP_ANSWER_WARMUP_SECONDS = float(os.environ.get("ZP_ANSWER_WARMUP_SECONDS", "0"))
# Joins free however many come from 127.0.0.1 (tests join hundreds of phones to test other
# things); the join guard's own tests set the real figures.
ZP_JOIN_FREE_PER_MINUTE = int(os.environ.get("ZP_JOIN_FREE_PER_MINUTE", "1000000"))
ZP_JOIN_FREE_PER_HOUR = int(os.environ.get("ZP_JOIN_FREE_PER_HOUR", "100000000"))

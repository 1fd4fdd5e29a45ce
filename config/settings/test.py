"""Test settings: a private Redis started by the test setup, plain static storage."""

import os

from .base import *  # noqa: F403
from .base import VAR_DIR, ZP_CHANNEL_LAYER, channel_layer_settings

SECRET_KEY = "test-only-key"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
ZP_DEMO_ALLOWED = True  # seed_demo makes the demo host here too
REDIS_URL = os.environ.get("ZP_TEST_REDIS_URL", f"unix://{VAR_DIR / 'test-redis' / 'redis.sock'}")
CHANNEL_LAYERS = {"default": channel_layer_settings(REDIS_URL, ZP_CHANNEL_LAYER)}
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

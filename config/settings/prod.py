"""Production settings: refuse to start without the deploy values."""

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import (
    REDIS_SENTINEL_CONNECTION,
    ZP_CHANNEL_LAYER,
    channel_layer_settings,
    env_list,
)


def mandatory(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ImproperlyConfigured(f"Set the environment variable {name} for production.")
    return value


DEBUG = False
SECRET_KEY = mandatory("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS") or mandatory("ALLOWED_HOSTS").split(",")
if any("*" in host for host in ALLOWED_HOSTS):
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS must list this server's host names, not '*': a wildcard accepts any "
        "Host header and switches the WebSocket Origin check off."
    )
mandatory("DATABASE_URL")
if REDIS_SENTINEL_CONNECTION is None:
    REDIS_URL = mandatory("REDIS_URL")
# else the sentinels name the primary (base: REDIS_SENTINELS with REDIS_SENTINEL_SERVICE)
CHANNEL_LAYERS = {
    "default": channel_layer_settings(REDIS_URL, ZP_CHANNEL_LAYER, REDIS_SENTINEL_CONNECTION)
}
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = os.environ.get("ZP_SSL_REDIRECT", "1") == "1"
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = int(os.environ.get("ZP_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True

"""Settings of the bare-consumer baseline (``loadgen.baseline``): just Channels and Redis.

The channel layer is the product's own configuration (``channel_layer_settings``: the blocking
pool and the timeouts that survive idle sockets and mass disconnects) under its own prefix, so
the comparison measures the consumer, not a layer misconfiguration. ``ZP_BASELINE_LAYER=stock``
uses channels_redis' ``RedisChannelLayer`` at its defaults instead (the trap issue 4 describes).
"""

import os

from config.settings.base import REDIS_URL, channel_layer_settings

SECRET_KEY = "baseline-only"  # noqa: S105 - signs nothing
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
USE_TZ = True
ASGI_APPLICATION = "loadgen.baseline.application"

if os.environ.get("ZP_BASELINE_LAYER", "") == "stock":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "zp:baseline"},
        }
    }
else:
    # The same layer as the product under test (ZP_CHANNEL_LAYER: redis | pubsub).
    CHANNEL_LAYERS = {
        "default": channel_layer_settings(REDIS_URL, os.environ.get("ZP_CHANNEL_LAYER", "redis"))
    }
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = "zp:baseline"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}

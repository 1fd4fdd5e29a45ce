"""Redis clients for the app's own keys (tallies, state cache, rate limits).

Asyncio connections belong to one event loop, so the async client is kept per loop.
"""

import asyncio
import weakref

import redis
from django.conf import settings
from redis import asyncio as aioredis
from redis.driver_info import DriverInfo

# Per event loop: the URL it was made for, and the client.
_async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_sync_client: redis.Redis | None = None
_sync_url: str | None = None

CLIENT_OPTIONS = {
    "socket_timeout": 10,
    "socket_connect_timeout": 3,
    "health_check_interval": 15,
    # Made once: left to each connection, redis-py reads its own version from the installed
    # package metadata per connection, the dearest part of opening one in a join storm.
    "driver_info": DriverInfo(),
}


def get_async_redis() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    url, client = _async_clients.get(loop, (None, None))
    if client is None or url != settings.REDIS_URL:  # as the sync client: the URL may change
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL, max_connections=64, timeout=10, **CLIENT_OPTIONS
        )
        client = aioredis.Redis(connection_pool=pool)
        _async_clients[loop] = (settings.REDIS_URL, client)
    return client


def get_sync_redis() -> redis.Redis:
    global _sync_client, _sync_url
    if _sync_client is None or _sync_url != settings.REDIS_URL:
        _sync_client = redis.Redis.from_url(settings.REDIS_URL, **CLIENT_OPTIONS)
        _sync_url = settings.REDIS_URL
    return _sync_client

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


class BatchedScript:
    """A Lua script that many coroutines call at once, sent as one pipeline per turn of the loop.

    A join storm asks the join guard a thousand times a second; one connection each would drain
    the pool while the loop is busy parsing requests, and a wait for a free connection past the
    pool's timeout looks like Redis being away. Batched, the calls of a turn share one round
    trip and one connection.
    """

    MAX_BATCH = 500

    def __init__(self, source: str) -> None:
        self.source = source
        self._per_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    async def __call__(self, keys: list[str], args: list[str]):
        """The script's result for these keys and arguments; RedisError (or OSError) as a
        single call would raise it."""
        loop = asyncio.get_running_loop()
        state = self._per_loop.get(loop)
        if state is None:
            state = self._per_loop[loop] = {"pending": [], "task": None, "script": None}
        future = loop.create_future()
        state["pending"].append((keys, args, future))
        if state["task"] is None or state["task"].done():
            state["task"] = loop.create_task(self._flush(state))
        return await future

    async def _flush(self, state: dict) -> None:
        client = get_async_redis()
        if state["script"] is None:
            state["script"] = client.register_script(self.source)
        script = state["script"]
        while state["pending"]:
            batch = state["pending"][: self.MAX_BATCH]
            state["pending"] = state["pending"][self.MAX_BATCH :]
            try:
                pipe = client.pipeline(transaction=False)
                for keys, args, _future in batch:
                    await script(keys=keys, args=args, client=pipe)
                results = await pipe.execute(raise_on_error=False)
            except (redis.RedisError, OSError) as error:
                results = [error] * len(batch)
            for (_keys, _args, future), result in zip(batch, results, strict=False):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

"""Redis clients for the app's own keys (tallies, state cache, rate limits).

Asyncio connections belong to one event loop, so the async client is kept per loop.

Which Redis: ``REDIS_URL``, or with ``REDIS_SENTINELS`` whichever node the sentinels name primary
of ``REDIS_SENTINEL_SERVICE``. Every client made here (``sync_client``, ``async_client`` and the
cached ones) then follows a failover by itself, through redis-py's Sentinel pools: each new
connection asks the sentinels where the primary is; one to a dead or demoted primary fails
with ConnectionError (callers already turn that into ``unavailable``) and its pool replaces it
with one to the promoted replica on the next call. No retry inside the client: the caller's
answer is "not now", the phone sends again, and the tally's ``seen`` set makes a resend count
once.
"""

import asyncio
import weakref

import redis
from django.conf import settings
from redis import asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.backoff import NoBackoff
from redis.driver_info import DriverInfo
from redis.retry import Retry
from redis.sentinel import Sentinel

# Per event loop: the configuration it was made for, and the client.
_async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_sync_client: redis.Redis | None = None
_sync_config: tuple | None = None

CLIENT_OPTIONS = {
    "socket_timeout": 10,
    "socket_connect_timeout": 3,
    "health_check_interval": 15,
    # Made once: left to each connection, redis-py reads its own version from the installed
    # package metadata per connection, the dearest part of opening one in a join storm.
    "driver_info": DriverInfo(),
}


def config_key() -> tuple:
    """What the clients are made for: when it changes (a test's override), new ones are made."""
    return (
        settings.REDIS_URL,
        tuple(getattr(settings, "REDIS_SENTINELS", ())),
        getattr(settings, "REDIS_SENTINEL_SERVICE", ""),
        getattr(settings, "REDIS_PASSWORD", ""),
        getattr(settings, "REDIS_SENTINEL_PASSWORD", ""),
    )


def sentinel_connection() -> dict | None:
    """``REDIS_SENTINEL_CONNECTION`` (config.settings.base), None without sentinels."""
    return getattr(settings, "REDIS_SENTINEL_CONNECTION", None)


def sentinel_options(connection: dict) -> tuple[list, dict, dict]:
    """(sentinels, the options of a connection to a sentinel, the data nodes' options)."""
    asking = {
        **connection.get("sentinel_kwargs", {}),
        # redis-py's default for a client of its own is ten retries with backoff: a sentinel
        # that is down would hold every new connection for seconds. Ask the next one instead.
        "retry": Retry(NoBackoff(), 0),
    }
    data = {"password": connection.get("password")}
    return list(connection["sentinels"]), asking, data


def sync_client(**options) -> redis.Redis:
    """A new client of the configured Redis, following its primary."""
    connection = sentinel_connection()
    if connection is None:
        return redis.Redis.from_url(settings.REDIS_URL, **options)
    sentinels, asking, data = sentinel_options(connection)
    manager = Sentinel(sentinels, sentinel_kwargs=asking)
    return manager.master_for(connection["master_name"], **data, **options)


class BlockingSentinelPool(AsyncSentinelPool, aioredis.BlockingConnectionPool):
    """The Sentinel pool that waits for a free connection (up to ``timeout`` seconds) instead
    of raising MaxConnectionsError, as aioredis.BlockingConnectionPool does for one address."""


def async_pool(
    connection: dict | None = None, blocking: bool = True, **options
) -> aioredis.ConnectionPool:
    """An asyncio pool of the configured Redis (or of ``connection``, a
    ``REDIS_SENTINEL_CONNECTION``), blocking unless asked: ``max_connections`` and ``timeout``
    (seconds a caller waits for a free connection) among ``options``."""
    connection = connection if connection is not None else sentinel_connection()
    if not blocking:
        options.pop("timeout", None)
    if connection is None:
        kind = aioredis.BlockingConnectionPool if blocking else aioredis.ConnectionPool
        return kind.from_url(settings.REDIS_URL, **options)
    sentinels, asking, data = sentinel_options(connection)
    # Its sentinel clients are asyncio connections too: one manager per pool, on its loop.
    manager = AsyncSentinel(sentinels, sentinel_kwargs=asking)
    kind = BlockingSentinelPool if blocking else AsyncSentinelPool
    return kind(connection["master_name"], manager, **data, **options)


def async_client(blocking: bool = True, **options) -> aioredis.Redis:
    """A new asyncio client of the configured Redis, following its primary (see async_pool)."""
    return aioredis.Redis(connection_pool=async_pool(blocking=blocking, **options))


def get_async_redis() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    made_for, client = _async_clients.get(loop, (None, None))
    if client is None or made_for != config_key():  # as the sync client: settings may change
        client = async_client(max_connections=64, timeout=10, **CLIENT_OPTIONS)
        _async_clients[loop] = (config_key(), client)
    return client


def get_sync_redis() -> redis.Redis:
    global _sync_client, _sync_config
    if _sync_client is None or _sync_config != config_key():
        _sync_client = sync_client(**CLIENT_OPTIONS)
        _sync_config = config_key()
    return _sync_client


# -- acknowledged by the replicas too (ZP_REDIS_WAIT_REPLICAS) ---------------------------------

# A key of its own that each confirmation writes: see queue_replication.
REPLICATED_KEY = "zp:replicated"


def replicas_wanted() -> int:
    return getattr(settings, "ZP_REDIS_WAIT_REPLICAS", 0)


def queue_replication(pipe) -> bool:
    """Add ``WAIT <replicas> <ZP_REDIS_WAIT_MS>`` to a pipeline (not a MULTI one: WAIT does not
    block inside a transaction) when replicas are wanted; whether it did.

    Preceded by a write of its own: WAIT waits for the replication of the connection's last
    write, and since Redis 7 a connection that wrote nothing (a batch of resends, counted by
    another connection's batch whose WAIT timed out) would be confirmed at once. After the
    write, WAIT covers everything any connection wrote before it."""
    wanted = replicas_wanted()
    if not wanted:
        return False
    pipe.incr(REPLICATED_KEY)
    pipe.wait(wanted, settings.ZP_REDIS_WAIT_MS)
    return True


def replication_shortfall(results: list) -> str | None:
    """After a pipeline ``queue_replication`` added to (its replies last): why the writes before
    it are not known to be on enough replicas, or None when they are."""
    confirmed, wanted = results[-1], replicas_wanted()
    if isinstance(confirmed, BaseException):
        return f"no replication confirmed: {confirmed}"
    if confirmed < wanted:
        return f"{confirmed} of {wanted} replicas confirmed within {settings.ZP_REDIS_WAIT_MS} ms"
    return None


def confirm_replicated_sync(client: redis.Redis) -> str | None:
    """After a sync write (a MULTI pipeline too): None once the wanted replicas have every
    write made so far, else why not. One round trip; nothing when no replica is wanted."""
    pipe = client.pipeline(transaction=False)
    if not queue_replication(pipe):
        return None
    return replication_shortfall(pipe.execute(raise_on_error=False))


async def forget_demoted(client: aioredis.Redis, error: BaseException) -> None:
    """A script's write refused by a read-only node (READONLY inside an EVALSHA error, which
    redis-py's Sentinel connection does not recognise as a demotion): drop the pool's
    connections, so the next call asks the sentinels where the primary is now."""
    if "READONLY" in str(error):
        await client.connection_pool.disconnect()


class NotReplicated(redis.RedisError):
    """A batch the primary counted but the wanted replicas do not have yet (see ``replicated``)."""


class BatchedScript:
    """A Lua script that many coroutines call at once, sent as one pipeline per turn of the loop.

    A join storm asks the join guard a thousand times a second; one connection each would drain
    the pool while the loop is busy parsing requests, and a wait for a free connection past the
    pool's timeout looks like Redis being away. Batched, the calls of a turn share one round
    trip and one connection.

    ``replicated``: with a standby (``ZP_REDIS_WAIT_REPLICAS``) the batch ends in WAIT, and its
    calls raise ``NotReplicated`` unless the replicas have it, so what the caller acknowledges
    survives a failover (its client sends again; the script must count a resend once).
    """

    MAX_BATCH = 500

    def __init__(self, source: str, replicated: bool = False) -> None:
        self.source = source
        self.replicated = replicated
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
                waiting = self.replicated and queue_replication(pipe)
                results = await pipe.execute(raise_on_error=False)
                shortfall = replication_shortfall(results) if waiting else None
            except (redis.RedisError, OSError) as error:
                results, shortfall = [error] * len(batch), None
            for (_keys, _args, future), result in zip(batch, results, strict=False):
                if future.done():
                    continue
                if shortfall is not None:
                    future.set_exception(NotReplicated(shortfall))
                elif isinstance(result, BaseException):
                    if self.replicated:
                        await forget_demoted(client, result)
                    future.set_exception(result)
                else:
                    future.set_result(result)

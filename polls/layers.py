"""The channel layer used in settings: channels_redis with a pool that waits instead of failing."""

from channels_redis.core import RedisChannelLayer as BaseRedisChannelLayer
from redis import asyncio as aioredis


class RedisChannelLayer(BaseRedisChannelLayer):
    """channels_redis' layer on a bounded, blocking connection pool.

    The stock pool raises MaxConnectionsError once its limit is reached, which is what a
    thousand phones leaving at once (a group_discard each) did. A BlockingConnectionPool makes
    the burst queue for a connection instead; ``pool_timeout`` bounds that wait.
    """

    def create_pool(self, index):
        host = dict(self.hosts[index])
        address = host.pop("address")
        timeout = host.pop("pool_timeout", 30)
        return aioredis.BlockingConnectionPool.from_url(address, timeout=timeout, **host)

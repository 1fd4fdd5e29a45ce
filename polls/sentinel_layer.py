"""The channel layer under Redis Sentinel: polls.layers' layer on a blocking Sentinel pool.

channels_redis reads a host of the form ``{"sentinels": [...], "master_name": ...,
"sentinel_kwargs": {...}}`` (its ``create_pool``) but gives it the stock Sentinel pool, which
raises MaxConnectionsError at its limit: the very failure polls.layers' blocking pool exists to
avoid. Here the same host gets polls.redis_client's blocking Sentinel pool, which follows the
promoted primary after a failover as the app's own clients do.
"""

from . import layers, redis_client


class RedisChannelLayer(layers.RedisChannelLayer):
    def create_pool(self, index):
        host = dict(self.hosts[index])
        if "master_name" not in host:
            return super().create_pool(index)
        connection = {
            name: host.pop(name)
            for name in ("sentinels", "master_name", "sentinel_kwargs", "password")
            if name in host
        }
        return redis_client.async_pool(connection, timeout=host.pop("pool_timeout", 30), **host)

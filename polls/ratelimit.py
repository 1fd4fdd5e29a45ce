"""Rate limits: joins per client address (shared in Redis) and messages per connection."""

from __future__ import annotations

import time

from django.conf import settings
from redis.exceptions import RedisError

from .redis_client import get_async_redis, get_sync_redis


def _join_windows(address: str, now: int) -> list[tuple[str, int, int]]:
    """(key, span, limit) of each fixed window this moment falls in."""
    return [
        (f"zp:join:{address}:{span}:{now // span}", span, limit)
        for span, limit in settings.ZP_JOIN_LIMITS
    ]


def _verdict(windows: list[tuple[str, int, int]], results: list, now: int) -> tuple[bool, int]:
    for index, (_key, span, limit) in enumerate(windows):
        if results[index * 2] > limit:
            return False, span - now % span
    return True, 0


def _queue(pipe, windows: list[tuple[str, int, int]]) -> None:
    for key, span, _limit in windows:
        pipe.incr(key)
        pipe.expire(key, span + 1)


def join_allowed(address: str) -> tuple[bool, int]:
    """Count one join from an address; (allowed, seconds to wait when not).

    Fixed windows per configured span. Limits are set far above what a whole hall behind one
    venue NAT address does, so only a script hammering the endpoint is slowed. If Redis is down
    joins are let through: a join alone changes no tally.
    """
    now = int(time.time())
    windows = _join_windows(address, now)
    try:
        pipe = get_sync_redis().pipeline(transaction=False)
        _queue(pipe, windows)
        results = pipe.execute()
    except (RedisError, OSError):
        return True, 0
    return _verdict(windows, results, now)


async def join_allowed_async(address: str) -> tuple[bool, int]:
    """``join_allowed`` for the async join view (no thread hop on the join storm's path)."""
    now = int(time.time())
    windows = _join_windows(address, now)
    try:
        pipe = get_async_redis().pipeline(transaction=False)
        _queue(pipe, windows)
        results = await pipe.execute()
    except (RedisError, OSError):
        return True, 0
    return _verdict(windows, results, now)


class TokenBucket:
    """Process-local message budget of one connection: ``rate`` per second, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

"""Rate limits: joins per client address (shared in Redis) and messages per connection."""

from __future__ import annotations

import time

from django.conf import settings
from redis.exceptions import RedisError

from .redis_client import get_sync_redis


def join_allowed(address: str) -> tuple[bool, int]:
    """Count one join from an address; (allowed, seconds to wait when not).

    Fixed windows per configured span. Limits are set far above what a whole hall behind one
    venue NAT address does, so only a script hammering the endpoint is slowed. If Redis is down
    joins are let through: a join alone changes no tally.
    """
    now = int(time.time())
    try:
        pipe = get_sync_redis().pipeline(transaction=False)
        for span, _limit in settings.ZP_JOIN_LIMITS:
            key = f"zp:join:{address}:{span}:{now // span}"
            pipe.incr(key)
            pipe.expire(key, span + 1)
        results = pipe.execute()
    except (RedisError, OSError):
        return True, 0
    for index, (span, limit) in enumerate(settings.ZP_JOIN_LIMITS):
        if results[index * 2] > limit:
            return False, span - now % span
    return True, 0


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

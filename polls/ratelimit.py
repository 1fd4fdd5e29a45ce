"""Message budgets of phones and screens (joins are guarded by ``polls.joinguard``)."""

from __future__ import annotations

import time
from collections import OrderedDict

from .limits import MESSAGE_BURST, MESSAGES_PER_SECOND, MOST_KEPT_BUDGETS, MOST_STRIKES

# The budgets' clock, one name for all of them (a test stops it to count a burst exactly).
clock = time.monotonic


class TokenBucket:
    """Process-local message budget of one connection: ``rate`` per second, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = clock()

    def take(self) -> bool:
        now = clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


# What ``MessageBudget.spend`` says of a message past the budget: refused (the error code), or
# from a sender past its strikes.
REFUSED = "rate_limited"
ABUSIVE = "abusive"


class MessageBudget:
    """One phone's or screen's message budget, the same on every transport: MESSAGES_PER_SECOND
    with MESSAGE_BURST at once; past it each message is refused, and a sender refused more than
    MOST_STRIKES times counts as abusive."""

    def __init__(self) -> None:
        self.bucket = TokenBucket(rate=MESSAGES_PER_SECOND, burst=MESSAGE_BURST)
        self.strikes = 0

    def spend(self) -> str | None:
        """None when the message may go on, else ``REFUSED`` or ``ABUSIVE``."""
        if self.bucket.take():
            return None
        self.strikes += 1
        return ABUSIVE if self.strikes > MOST_STRIKES else REFUSED


class KeptBudgets:
    """Budgets by key for senders that hold no line here (the HTTP fallback's POSTs), least
    recently used first, bounded so made-up keys cannot grow it without limit."""

    def __init__(self, most: int = MOST_KEPT_BUDGETS) -> None:
        self.most = most
        self.budgets: OrderedDict[str, MessageBudget] = OrderedDict()

    def of(self, key: str) -> MessageBudget:
        budget = self.budgets.get(key)
        if budget is None:
            budget = self.budgets[key] = MessageBudget()
            if len(self.budgets) > self.most:
                self.budgets.popitem(last=False)
        else:
            self.budgets.move_to_end(key)
        return budget

"""The join guard of open events: a join that costs a script in series what a hall pays in
parallel (docs/reliability.md, "One person, one voice").

A venue NAT puts a whole hall behind one address, so no per-address limit may refuse joins. An
address's tokens are counted in a sliding minute instead; below ``ZP_JOIN_FREE_PER_MINUTE`` a join
is free, above it the join must carry a proof of work: a nonce that gives
``sha256("<challenge>:<nonce>")`` a number of leading zero bits growing with log2 of the rate.
Each phone solves its own in a fraction of a second, all phones at once; a script minting tokens
on one core solves them one after another, each dearer than the last. Challenges are signed
(nothing is stored until one is spent), bound to the address, short-lived and single-use.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings
from redis.exceptions import RedisError

from .redis_client import BatchedScript, get_async_redis
from .tokens import address_tag

CHALLENGE_SECONDS = 120
# A challenge issued by one host may be checked by another whose clock is a little behind:
# its age may come out slightly negative (seconds are whole, so even a few milliseconds of
# difference does it now and then).
CLOCK_SLACK_SECONDS = 5
WINDOW_SECONDS = 60
HOUR_SECONDS = 3600
NONCE_PATTERN = re.compile(r"[0-9]{1,20}")
# Challenges spent while Redis was away, oldest first (bounded: they expire anyway).
_spent_here: OrderedDict[str, None] = OrderedDict()
MAX_SPENT_HERE = 50_000


@dataclass(frozen=True)
class Work:
    """A challenge to solve: find a nonce giving ``bits`` leading zero bits."""

    challenge: str
    bits: int

    def payload(self) -> dict:
        return {"challenge": self.challenge, "bits": self.bits}


# The windows an address's tokens are counted in: (span in seconds, its free tokens). The hour
# keeps a script from minting a free token stock at just under the minute's rate for the hour
# before a session; a hall arriving over an hour pays, past its first thousand, little.
def _windows() -> list[tuple[int, int]]:
    return [
        (WINDOW_SECONDS, settings.ZP_JOIN_FREE_PER_MINUTE),
        (HOUR_SECONDS, settings.ZP_JOIN_FREE_PER_HOUR),
    ]


def _window_keys(address: str, now: float, span: int) -> tuple[str, str]:
    slot = int(now // span)
    tag = address_tag(address)
    return f"zp:joins:{tag}:{span}:{slot}", f"zp:joins:{tag}:{span}:{slot - 1}"


def sliding_rate(current: int, previous: int, now: float, span: int = WINDOW_SECONDS) -> float:
    """Joins in the last ``span`` seconds, the previous fixed window weighted by how much of it
    is still inside the sliding one (no boundary a script can straddle for twice the budget)."""
    elapsed = (now % span) / span
    return current + previous * (1 - elapsed)


def bits_for(rate: float, free: int | None = None) -> int:
    """The work for a join when ``rate`` tokens came in the window whose free budget is
    ``free`` (the minute's by default)."""
    free = settings.ZP_JOIN_FREE_PER_MINUTE if free is None else free
    if rate < free:
        return 0
    bits = settings.ZP_JOIN_WORK_BITS + int(math.log2(max(rate, 1) / max(free, 1)))
    return min(bits, settings.ZP_JOIN_WORK_MAX_BITS)


# One round trip for a join: the sliding rates of every window and, when each is below its free
# budget, the count of this join. KEYS: per window its current and previous slot. ARGV: per
# window the previous slot's weight, its free budget and its keys' lifetime.
_TAKE_FREE_JOIN_SOURCE = """
local counts, free = {}, true
for i = 1, #KEYS do counts[i] = tonumber(redis.call('GET', KEYS[i]) or '0') end
for w = 0, #KEYS / 2 - 1 do
  local rate = counts[2 * w + 1] + counts[2 * w + 2] * tonumber(ARGV[3 * w + 1])
  if rate >= tonumber(ARGV[3 * w + 2]) then free = false end
end
if not free then return counts end
for w = 0, #KEYS / 2 - 1 do
  redis.call('INCR', KEYS[2 * w + 1])
  redis.call('EXPIRE', KEYS[2 * w + 1], ARGV[3 * w + 3])
end
return {}
"""
_take_free_join = BatchedScript(_TAKE_FREE_JOIN_SOURCE)


def _bits_of_counts(counts: list[int], now: float, windows: list[tuple[int, int]]) -> int:
    return max(
        bits_for(sliding_rate(counts[2 * i], counts[2 * i + 1], now, span), free)
        for i, (span, free) in enumerate(windows)
    )


async def take_free_join(address: str) -> int:
    """0 when a join from this address is free now, and then it is counted already; else the
    work it must carry (and ``count_join`` counts it once the work is accepted).

    With Redis away the rate is unknown: the most work, since a token minted in an outage
    outlives it (phones that hold a token, nearly all of them by then, do not join again)."""
    now = time.time()
    windows = _windows()
    keys, args = [], []
    for span, free in windows:
        keys.extend(_window_keys(address, now, span))
        args.extend([repr(1 - (now % span) / span), str(free), str(2 * span + 5)])
    try:
        counts = await _take_free_join(keys, args)
    except (RedisError, OSError):
        return settings.ZP_JOIN_WORK_MAX_BITS
    if not counts:
        return 0
    return max(1, _bits_of_counts([int(count) for count in counts], now, windows))


async def work_for_join(address: str, solution: object) -> Work | None:
    """None when a join from this address may have its token now (it is counted then); else
    the work it must carry first (``solution`` is the join's ``work`` field)."""
    required = await take_free_join(address)
    if not required:
        return None
    if not await accepts(address, solution, required):
        return new_work(address, required)
    await count_join(address)  # after the work: only tokens and code guesses heat it
    return None


async def count_join(address: str) -> None:
    now = time.time()
    try:
        pipe = get_async_redis().pipeline(transaction=False)
        for span, _free in _windows():
            current, _previous = _window_keys(address, now, span)
            pipe.incr(current)
            pipe.expire(current, 2 * span + 5)
        await pipe.execute()
    except (RedisError, OSError):
        pass


def _signature(body: str, address: str) -> str:
    key = settings.SECRET_KEY.encode()
    message = f"joinwork:{body}:{address_tag(address)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:16]


def new_work(address: str, bits: int) -> Work:
    body = f"{secrets.token_hex(8)}.{bits}.{int(time.time())}"
    return Work(f"{body}.{_signature(body, address)}", bits)


def leading_zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def _solution_bits(challenge: str, nonce: str) -> int:
    return leading_zero_bits(hashlib.sha256(f"{challenge}:{nonce}".encode()).digest())


async def accepts(address: str, solution: object, required: int) -> bool:
    """Whether a join's ``work`` field (``{"challenge": ..., "nonce": ...}``) is a fresh,
    unspent solution of a challenge this server gave this address, hard enough for now.

    One bit of slack: the rate may have risen while the phone worked."""
    if not isinstance(solution, dict):
        return False
    challenge, nonce = solution.get("challenge"), solution.get("nonce")
    if not isinstance(challenge, str) or not isinstance(nonce, str) or len(challenge) > 80:
        return False
    if not NONCE_PATTERN.fullmatch(nonce):
        return False
    parts = challenge.split(".")
    if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit():
        return False
    body, signature = challenge.rsplit(".", 1)
    if not hmac.compare_digest(signature, _signature(body, address)):
        return False
    bits, issued = int(parts[1]), int(parts[2])
    age = time.time() - issued
    if not -CLOCK_SLACK_SECONDS <= age <= CHALLENGE_SECONDS or bits < required - 1:
        return False
    if _solution_bits(challenge, nonce) < bits:
        return False
    try:  # spent once: a solved challenge must not mint a token per request
        return bool(
            await get_async_redis().set(
                f"zp:work:{parts[0]}", 1, nx=True, ex=CHALLENGE_SECONDS + 60
            )
        )
    except (RedisError, OSError):
        # Redis cannot mark it spent: only a solution of the most work (what the outage asks)
        # is taken, spent in this process's memory (another process may take it once more).
        if bits < settings.ZP_JOIN_WORK_MAX_BITS or parts[0] in _spent_here:
            return False
        _spent_here[parts[0]] = None
        if len(_spent_here) > MAX_SPENT_HERE:
            _spent_here.popitem(last=False)
        return True


def solve(work: dict) -> str:
    """A nonce for a challenge, as the phone page finds one (for the load test and tests)."""
    prefix = hashlib.sha256(f"{work['challenge']}:".encode())
    bits = int(work["bits"])
    nonce = 0
    while True:
        attempt = prefix.copy()
        attempt.update(str(nonce).encode())
        if leading_zero_bits(attempt.digest()) >= bits:
            return str(nonce)
        nonce += 1

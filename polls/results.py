"""Pure arithmetic from counts to the figures screens show; no I/O, no question kinds.

The kinds (``polls.kinds``) call these for their summaries. Rounding is half away from zero
(7.25 -> 7.3, an NPS of -12.5 -> -13), on exact counts.
"""

from __future__ import annotations

from decimal import Decimal

from benchmarks.numbers import round_half_up


def largest_remainder_percentages(counts: dict[str, int], total: int) -> dict[str, int]:
    """Whole percentages that sum to exactly 100 (for answers that exclude each other)."""
    if total <= 0:
        return dict.fromkeys(counts, 0)
    exact = {key: Decimal(count) * 100 / total for key, count in counts.items()}
    floors = {key: int(value) for key, value in exact.items()}
    shortfall = 100 - sum(floors.values())
    # Ties go to the larger count, then to the earlier key, so the result is stable.
    order = sorted(exact, key=lambda key: (-(exact[key] - floors[key]), -counts[key]))
    for key in order[: max(shortfall, 0)]:
        floors[key] += 1
    return floors


def percentages(counts: dict[str, int], total: int) -> dict[str, int]:
    """Each count as a whole share of respondents, rounded half up (need not sum to 100)."""
    if total <= 0:
        return dict.fromkeys(counts, 0)
    return {key: int(round_half_up(Decimal(count) * 100 / total)) for key, count in counts.items()}


def difference_percent(more: int, less: int, total: int) -> int | None:
    """(more - less) as whole percent of ``total``, from the exact counts; None without any."""
    if not total:
        return None
    return int(round_half_up(Decimal(more - less) * 100 / total))


def mean(pairs: list[tuple[int, int]], places: int) -> float | None:
    """Mean of (value, count) pairs, rounded half up; None without any count."""
    respondents = sum(count for _value, count in pairs)
    if respondents == 0:
        return None
    total = sum(value * count for value, count in pairs)
    return float(round_half_up(Decimal(total) / respondents, places))


def scale_mean(counts: dict[str, int]) -> float | None:
    """Mean of counts keyed by the value given, to one decimal; None without answers."""
    return mean([(int(value), count) for value, count in counts.items()], 1)

"""Pure arithmetic from tally counts to what screens show; no I/O."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def round_half_up(value: Decimal | float, places: int = 0) -> Decimal:
    quantum = Decimal(1).scaleb(-places)
    return Decimal(str(value)).quantize(quantum, rounding=ROUND_HALF_UP)


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


def scale_mean(counts: dict[str, int]) -> float | None:
    """Mean of a scale to one decimal, rounded half up; None without answers."""
    respondents = sum(counts.values())
    if respondents == 0:
        return None
    total = sum(int(value) * count for value, count in counts.items())
    return float(round_half_up(Decimal(total) / respondents, 1))


def result_keys(spec: dict) -> list[str]:
    if spec["kind"] == "scale":
        return [str(v) for v in range(spec["scale"]["min"], spec["scale"]["max"] + 1)]
    return [str(option) for option in spec["options"]]


def results_message(spec: dict, version: int, total: int, raw_counts: dict[str, int]) -> dict:
    """The whole snapshot a screen needs: every key present, shares and the summary figure."""
    counts = {key: max(raw_counts.get(key, 0), 0) for key in result_keys(spec)}
    summary: dict = {}
    if spec["kind"] == "single":
        summary["percent"] = largest_remainder_percentages(counts, total)
    elif spec["kind"] == "multiple":
        summary["percent"] = percentages(counts, total)
    elif spec["kind"] == "scale":
        summary["percent"] = largest_remainder_percentages(counts, total)
        summary["mean"] = scale_mean(counts)
    return {
        "type": "results",
        "question": spec["id"],
        "version": version,
        "total": total,
        "counts": counts,
        "summary": summary,
    }

"""Pure arithmetic from tally counts to what screens show; no I/O.

Rounding is half away from zero (7.25 -> 7.3, an NPS of -12.5 -> -13), on exact counts.
"""

from __future__ import annotations

import heapq
from decimal import Decimal

from benchmarks.numbers import round_half_up

from .text import mask, word_key

TOP_WORDS = 60
# (lowest promoter score, lowest passive score) on the 0-10 scale.
NPS_THRESHOLDS = {"nps": (9, 7), "enps": (8, 6)}


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


def _mean(pairs: list[tuple[int, int]], places: int) -> float | None:
    """Mean of (value, count) pairs, rounded half up; None without any count."""
    respondents = sum(count for _value, count in pairs)
    if respondents == 0:
        return None
    total = sum(value * count for value, count in pairs)
    return float(round_half_up(Decimal(total) / respondents, places))


def scale_mean(counts: dict[str, int]) -> float | None:
    """Mean of a scale to one decimal, rounded half up; None without answers."""
    return _mean([(int(value), count) for value, count in counts.items()], 1)


def nps_summary(kind: str, counts: dict[str, int]) -> dict:
    promoter_from, passive_from = NPS_THRESHOLDS[kind]
    groups = {"promoters": 0, "passives": 0, "detractors": 0}
    for value, count in counts.items():
        score = int(value)
        group = (
            "promoters"
            if score >= promoter_from
            else "passives"
            if score >= passive_from
            else "detractors"
        )
        groups[group] += count
    respondents = sum(groups.values())
    # Each share rounded on its own (not forced to sum to 100), so that the shares on screen
    # agree with the score: 43% promoters - 29% detractors reads as +14.
    shares = percentages(groups, respondents)
    score = None
    if respondents:
        exact = Decimal(groups["promoters"] - groups["detractors"]) * 100 / respondents
        score = int(round_half_up(exact))
    return {"score": score, **shares, "groups": groups}


def split_summary(counts: dict[str, int]) -> dict:
    mean = _mean([(int(value), count) for value, count in counts.items()], 0)
    bins = {str(start): 0 for start in range(0, 100, 10)}
    for value, count in counts.items():
        bins[str(min(int(value) // 10 * 10, 90))] += count
    return {
        "mean_a": None if mean is None else int(mean),
        "mean_b": None if mean is None else 100 - int(mean),
        "bins": bins,
    }


def text_summary(counts: dict[str, int], hidden: frozenset[str]) -> dict:
    # A word hidden before words were normalised is stored as typed: it hides its normal form.
    hidden = frozenset(word_key(word) or word for word in hidden)
    words = [(word, count) for word, count in counts.items() if count > 0 and word not in hidden]
    # Only the top ones go to screens, so a cloud of thousands of words costs no full sort.
    top = heapq.nsmallest(TOP_WORDS, words, key=lambda pair: (-pair[1], pair[0]))
    # "key" is the word as counted: what the host's hide button posts back.
    return {"words": [{"word": mask(word), "key": word, "count": count} for word, count in top]}


def ranking_summary(options: list[int], counts: dict[str, int]) -> dict:
    size = len(options)
    items = []
    for position, option in enumerate(options):
        pairs = [(rank, counts.get(f"{option}@{rank}", 0)) for rank in range(1, size + 1)]
        points = sum((size - rank + 1) * count for rank, count in pairs)
        items.append(
            {"id": option, "mean_rank": _mean(pairs, 1), "points": points, "_position": position}
        )
    items.sort(key=lambda item: (-item["points"], item["_position"]))
    for item in items:
        del item["_position"]
    return {"items": items}


def quadrant_summary(options: list[int], counts: dict[str, int]) -> dict:
    items = []
    for option in options:

        def axis(name: str, option: int = option) -> float | None:
            return _mean(
                [(value, counts.get(f"{option}:{name}:{value}", 0)) for value in range(101)], 1
            )

        quadrants = {
            corner: counts.get(f"{option}:q:{corner}", 0) for corner in ("tl", "tr", "bl", "br")
        }
        items.append({"id": option, "x": axis("x"), "y": axis("y"), "quadrants": quadrants})
    return {"items": items}


def result_keys(spec: dict) -> list[str]:
    if spec["kind"] in ("scale", "ces", "nps", "enps"):
        return [str(v) for v in range(spec["scale"]["min"], spec["scale"]["max"] + 1)]
    return [str(option) for option in spec["options"]]


def summarise(spec: dict, total: int, raw: dict[str, int], hidden: frozenset[str]) -> tuple:
    """(counts to publish, summary) for one question kind."""
    kind = spec["kind"]
    positive = {key: count for key, count in raw.items() if count > 0}
    if kind == "text":
        return {}, text_summary(positive, hidden)
    if kind == "ranking":
        return {}, ranking_summary(spec["options"], positive)
    if kind == "quadrant":
        return {}, quadrant_summary(spec["options"], positive)
    if kind == "split":
        return positive, split_summary(positive)
    counts = {key: positive.get(key, 0) for key in result_keys(spec)}
    if kind == "single":
        return counts, {"percent": largest_remainder_percentages(counts, total)}
    if kind == "multiple":
        return counts, {"percent": percentages(counts, total)}
    if kind in ("nps", "enps"):
        return counts, nps_summary(kind, counts)
    return counts, {
        "percent": largest_remainder_percentages(counts, total),
        "mean": scale_mean(counts),
    }


def results_message(
    spec: dict,
    version: int,
    total: int,
    raw_counts: dict[str, int],
    hidden: frozenset[str] = frozenset(),
) -> dict:
    """The whole snapshot a screen needs: counts, shares and the kind's summary."""
    counts, summary = summarise(spec, total, raw_counts, hidden)
    return {
        "type": "results",
        "question": spec["id"],
        "version": version,
        "total": total,
        "counts": counts,
        "summary": summary,
    }

"""Percentiles and the answer -> stage latency bounds (pure functions)."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable


def percentile(ordered: list[float], share: float) -> float | None:
    """Nearest-rank percentile of an ascending list (``share`` in 0..1)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(seconds: Iterable[float]) -> dict:
    """n, p50, p90, p99, max and mean in milliseconds (None when there are no samples)."""
    ordered = sorted(seconds)
    if not ordered:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}

    def ms(value):
        return round(value * 1000, 1)

    return {
        "n": len(ordered),
        "p50": ms(percentile(ordered, 0.50)),
        "p90": ms(percentile(ordered, 0.90)),
        "p99": ms(percentile(ordered, 0.99)),
        "max": ms(ordered[-1]),
        "mean": ms(sum(ordered) / len(ordered)),
    }


class StageSeries:
    """One stage screen's snapshots of one question: receipt time and version, in order."""

    def __init__(self, points: list[tuple[float, int]]) -> None:
        points = sorted(points)
        self.times = [t for t, _v in points]
        # Snapshots are whole and versioned; a screen keeps the newest it has seen, so what the
        # screen shows at a moment is the running maximum.
        self.shown: list[int] = []
        best = -1
        for _t, version in points:
            best = max(best, version)
            self.shown.append(best)

    def first_at_least(self, version: int, after: float) -> float | None:
        """When the screen first showed ``version`` or newer, at ``after`` or later."""
        index = max(bisect_left(self.shown, version), bisect_right(self.times, after))
        return self.times[index] if index < len(self.times) else None


def answer_to_stage(
    acked: list[tuple[float, float]],
    unacked_sends: list[float],
    v0: int,
    v_final: int,
    stages: list[StageSeries],
) -> dict:
    """Bounds on "answer sent -> a stage snapshot includes it", for every acknowledged answer
    that moved the tally (every answer the load test sends does: first answers and changes).

    The tally bumps the question's version once per counted change, atomically with the count,
    and a snapshot includes an answer exactly when its version >= the answer's version V. V is
    not sent back (the ack has no version), but it is bounded from the clients' own clocks:

    - upper: every answer counted before (or as) X was sent before X's ack arrived, so
      V <= v0 + #(answers sent before X's ack), capped at the final version. The first snapshot
      at or above that provably includes X: its time is an upper bound (the reported figure).
    - lower: every answer acked before X was sent was counted before X, so
      V >= v0 + 1 + #(acks received before X was sent). No snapshot below that can include X:
      the first snapshot at or above it is a lower bound.

    ``acked`` are (sent, acked) pairs; ``unacked_sends`` are answers that may have been counted
    without an ack reaching us (they can only raise the upper bound).
    """
    sends = sorted([sent for sent, _ack in acked] + list(unacked_sends))
    acks = sorted(ack for _sent, ack in acked)
    upper: list[float] = []
    lower: list[float] = []
    not_seen = 0
    for sent, ack in acked:
        v_upper = min(v0 + bisect_left(sends, ack), v_final)
        v_lower = min(v0 + 1 + bisect_left(acks, sent), v_upper)
        for stage in stages:
            shown = stage.first_at_least(v_upper, sent)
            if shown is None:
                not_seen += 1
                continue
            upper.append(shown - sent)
            early = stage.first_at_least(v_lower, sent)
            lower.append((early if early is not None else shown) - sent)
    return {"upper": upper, "lower": lower, "not_seen": not_seen}


class QaView:
    """What one stage screen or phone showed of the Q&A over time: per message its receipt time,
    its version and the counts it carried; ``whole`` messages (a board's top items, a phone's
    whole list) show those items and no other, the others (a phone's changes) change the counts
    they name and leave the rest as they were."""

    def __init__(self, messages: list[tuple[float, int, dict[int, int], bool]]) -> None:
        messages = sorted(messages, key=lambda message: message[0])
        self.times = [message[0] for message in messages]
        self.versions: list[int] = []  # the running maximum: a client keeps the newest
        # item -> (indexes of the messages that changed what it shows, the count shown then;
        # -1: not shown)
        self.changes: dict[int, tuple[list[int], list[int]]] = {}
        best = -1
        shown: set[int] = set()
        for index, (_time, version, counts, whole) in enumerate(messages):
            best = max(best, version)
            self.versions.append(best)
            if whole:
                for item in shown - counts.keys():
                    self._record(item, index, -1)
                shown = set(counts)
            else:
                shown |= counts.keys()
            for item, count in counts.items():
                self._record(item, index, count)

    def _record(self, item: int, index: int, count: int) -> None:
        indexes, counts = self.changes.setdefault(item, ([], []))
        indexes.append(index)
        counts.append(count)

    def first_showing(
        self, item: int, count: int, version: int, after: float
    ) -> tuple[float, bool] | None:
        """The first message at ``after`` or later that shows ``item`` with ``count`` votes or
        more, or that is at ``version`` or newer (so it includes the vote, whatever the count
        after votes taken back): its time, and whether the item was shown (a board shows only
        its top items). None: no such message."""
        start = bisect_left(self.times, after)
        end = len(self.times)
        if start >= end:
            return None
        found = bisect_left(self.versions, version, lo=start)
        indexes, counts = self.changes.get(item, ([], []))
        at = bisect_right(indexes, start) - 1
        if at >= 0 and counts[at] >= count:
            found = start
        else:
            for index, shown in zip(indexes[at + 1 :], counts[at + 1 :], strict=True):
                if index >= found:
                    break
                if shown >= count:
                    found = index
                    break
        if found >= end:
            return None
        at = bisect_right(indexes, found) - 1
        return self.times[found], at >= 0 and counts[at] >= 0


def histogram_ms(seconds: Iterable[float]) -> dict[int, int]:
    """Latencies binned to whole milliseconds (for figures merged across processes)."""
    bins: dict[int, int] = {}
    for value in seconds:
        key = int(value * 1000 + 0.5)
        bins[key] = bins.get(key, 0) + 1
    return bins


def summary_of_histogram(bins: dict[int, int]) -> dict:
    """``summary_ms`` of binned latencies, to the millisecond."""
    n = sum(bins.values())
    if not n:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    ordered = sorted((int(key), count) for key, count in bins.items())

    def rank(share: float) -> int:
        wanted = max(1, math.ceil(share * n))
        seen = 0
        for key, count in ordered:
            seen += count
            if seen >= wanted:
                return key
        return ordered[-1][0]

    return {
        "n": n,
        "p50": float(rank(0.50)),
        "p90": float(rank(0.90)),
        "p99": float(rank(0.99)),
        "max": float(ordered[-1][0]),
        "mean": round(sum(key * count for key, count in ordered) / n, 1),
    }

"""The research quiz's rules: what scores, the points formula, and what a scored question asks
of the tally. Pure: no database, no Redis (``polls.quiz_board`` reads the leaderboard).

The formula (docs/quiz.md), in integers so the tally's Lua and this module agree to the point:

- **closeness** in thousandths: a choice question 1000 when the answer is right (single: one of
  the correct options; multiple: exactly the correct options), else 0; an estimate
  ``floor(1000 * (tolerance - |guess - target|) / tolerance)`` while the guess is nearer than
  the tolerance, else 0 (full points at the target, none at the tolerance's edge);
- **speed** in thousandths: ``1000 - floor(500 * min(elapsed, window) / window)``, where
  ``elapsed`` is the server's time of the answer minus the question's first opening (ms) and
  ``window`` the time limit (``UNTIMED_WINDOW_MS`` without one): half the points for an answer
  at the deadline;
- **points** ``floor(closeness * speed / 1000)``, at most ``MAX_POINTS`` per question.

A changed answer replaces the earlier one's points and time. Ties on points are broken by the
total answer time (the sum of ``elapsed`` over the scored questions answered): less is better.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

MAX_POINTS = 1000
# The speed part of an untimed scored question counts over this long.
UNTIMED_WINDOW_MS = 30_000
# The keeper closes a question this long after its deadline: an answer the server timed before
# the deadline may still be on its way to Redis, and the leaderboard is read after the close.
DEADLINE_GRACE_MS = 300
# Total answer time stays below this (115 days), so points and time share one sorted-set score.
TIME_SPAN_MS = 10**10

CHOICE_KINDS = frozenset({"single", "multiple"})
ESTIMATE_KINDS = frozenset({"scale", "ces", "split"})
SCORED_KINDS = CHOICE_KINDS | ESTIMATE_KINDS

NICKNAME_CHARS = 24


@dataclass(frozen=True)
class Scoring:
    """What the tally needs to score a question's answers (the server's spec only: phones
    learn the right answer when the host shows the results)."""

    kind: str
    correct: frozenset[int]
    target: Decimal | None
    tolerance: Decimal | None
    window_ms: int

    def as_spec(self) -> dict:
        return {
            "correct": sorted(self.correct),
            "target": None if self.target is None else str(self.target),
            "tolerance": None if self.tolerance is None else str(self.tolerance),
            "window": self.window_ms,
        }

    @classmethod
    def from_spec(cls, kind: str, block: dict) -> Scoring:
        return cls(
            kind,
            frozenset(block["correct"]),
            None if block["target"] is None else Decimal(block["target"]),
            None if block["tolerance"] is None else Decimal(block["tolerance"]),
            block["window"],
        )


def window_ms(time_limit: int | None) -> int:
    return time_limit * 1000 if time_limit else UNTIMED_WINDOW_MS


def closeness(scoring: Scoring, value: Any) -> int:
    """Thousandths of the points this answer earns before speed (see the module's formula)."""
    if scoring.kind in CHOICE_KINDS:
        if scoring.kind == "single":
            return MAX_POINTS if value in scoring.correct else 0
        return MAX_POINTS if isinstance(value, list) and set(value) == scoring.correct else 0
    if scoring.target is None or not scoring.tolerance or isinstance(value, (list, bool)):
        return 0
    distance = abs(Decimal(value) - scoring.target)
    if distance >= scoring.tolerance:
        return 0
    share = Decimal(MAX_POINTS) * (scoring.tolerance - distance) / scoring.tolerance
    return int(share.to_integral_value(rounding=ROUND_FLOOR))


def speed(elapsed_ms: int, window: int) -> int:
    """Thousandths: 1000 at the opening, 500 at the end of the window and after it."""
    return MAX_POINTS - (500 * min(max(elapsed_ms, 0), window)) // window


def points(closeness_milli: int, elapsed_ms: int, window: int) -> int:
    return (closeness_milli * speed(elapsed_ms, window)) // MAX_POINTS


def board_score(total_points: int, total_ms: int) -> int:
    """One sorted-set score: more points first, then less total answer time."""
    return total_points * TIME_SPAN_MS - min(total_ms, TIME_SPAN_MS - 1)


def nickname_key(nickname: str) -> str:
    """A nickname folded for uniqueness: "Anne-Marie", "anne marie" and "Anné Marie" clash."""
    decomposed = unicodedata.normalize("NFKD", nickname.casefold())
    letters = "".join(c for c in decomposed if c.isalnum())
    return letters[:NICKNAME_CHARS]

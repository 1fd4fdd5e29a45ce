"""The quiz scenario's plan and its arithmetic (pure functions): what each phone answers and
when, and what the leaderboard, each phone's ``score`` and the stage's ``leaderboard`` must say
given the points the database recomputes (``polls.quiz_board.recompute``).

The expected board is computed here on its own (competition places, places moved, the top ten),
not with ``polls.quiz_board.build``, so the check does not compare the server with itself.

A phone answers each scored question once, at a random moment within ``spread`` seconds of the
question's opening by the server's clock (``quiz.deadline - quiz.limit``); a phone whose
``state`` arrives later than its moment answers on arrival, as a person taps once the question
shows. A choice question gets a correct option from ``right_share`` of the phones, a wrong one
from the rest; an estimate a guess spread around the target (a normal of ``tolerance / 2``),
so the points vary and the places move between questions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

# The points formula's sorted-set score (polls.quiz.board_score), restated: points first, then
# less total answer time.
TIME_SPAN_MS = 10**10
TOP = 10


@dataclass(frozen=True)
class QuizQuestion:
    """One scored question of the throwaway quiz event, as the coordinator knows it."""

    id: int
    kind: str
    limit: int
    options: tuple[int, ...] = ()
    correct: tuple[int, ...] = ()
    target: float | None = None
    tolerance: float | None = None


def plan_answers(
    phones: list[int], question: QuizQuestion, spread: float, right_share: float, rng: random.Random
) -> dict[int, tuple[float, Any]]:
    """Each phone's (seconds after the opening, value)."""
    plan: dict[int, tuple[float, Any]] = {}
    for phone in phones:
        plan[phone] = (rng.random() * spread, draw_value(question, right_share, rng))
    return plan


def draw_value(question: QuizQuestion, right_share: float, rng: random.Random) -> Any:
    if question.kind == "single":
        wrong = [option for option in question.options if option not in question.correct]
        if question.correct and (not wrong or rng.random() < right_share):
            return rng.choice(question.correct)
        return rng.choice(wrong)
    if question.kind == "split":
        centre = question.target if question.target is not None else 50.0
        width = (question.tolerance or 20.0) / 2
        return max(0, min(100, round(rng.gauss(centre, width))))
    raise ValueError(f"the quiz scenario does not answer {question.kind!r} questions")


def board_score(points: int, spent_ms: int) -> int:
    return points * TIME_SPAN_MS - min(spent_ms, TIME_SPAN_MS - 1)


def places(scores: dict[str, int]) -> dict[str, int]:
    """Competition places (equal scores share one) of participant -> board score."""
    ranked = sorted(scores.items(), key=lambda pair: -pair[1])
    result: dict[str, int] = {}
    previous = None
    place = 0
    for index, (participant, score) in enumerate(ranked, start=1):
        if score != previous:
            place, previous = index, score
        result[participant] = place
    return result


@dataclass
class Standing:
    """The board after one question: what each participant's ``score`` and the stage's
    ``leaderboard`` must say."""

    question: int
    totals: dict[str, tuple[int, int]]  # participant -> (points, answer time ms) so far
    scores: dict[str, int]  # participant -> board score
    places: dict[str, int]
    moved: dict[str, int | None]
    gained: dict[str, int]  # this question's points (answered it)
    answered: int
    right: int

    def own(self, participant: str) -> tuple[int, int, int | None, int | None]:
        """(points, total, place, moved) as the phone's ``score`` says them."""
        total = self.totals.get(participant, (0, 0))[0]
        return (
            self.gained.get(participant, 0),
            total,
            self.places.get(participant),
            self.moved.get(participant),
        )

    def top(self, count: int = TOP) -> list[tuple[int, int]]:
        """(place, points) of the first ``count`` rows, best first: what any order of equal
        scores shows alike."""
        ranked = sorted(self.scores.items(), key=lambda pair: -pair[1])[:count]
        return [(self.places[p], self.totals[p][0]) for p, _score in ranked]


def standings(
    order: list[int], recomputed: dict[int, dict[str, tuple[int, int]]]
) -> dict[int, Standing]:
    """The board after each question of ``order`` from the recomputed (points, elapsed) per
    participant per question: totals, places, places moved (None: new on the board)."""
    totals: dict[str, tuple[int, int]] = {}
    before: dict[str, int] = {}
    result: dict[int, Standing] = {}
    for question in order:
        scored = recomputed.get(question, {})
        for participant, (points, elapsed) in scored.items():
            got, spent = totals.get(participant, (0, 0))
            totals[participant] = (got + points, spent + elapsed)
        scores = {p: board_score(*total) for p, total in totals.items()}
        now, then = places(scores), places(before)
        moved = {p: (then[p] - now[p]) if p in then else None for p in now}
        result[question] = Standing(
            question,
            dict(totals),
            scores,
            now,
            moved,
            {p: points for p, (points, _e) in scored.items()},
            len(scored),
            sum(1 for points, _e in scored.values() if points > 0),
        )
        before = scores
    return result

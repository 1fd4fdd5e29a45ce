"""Valid answer values for every question kind, drawn from what the ``state`` message says.

Each kind draws its own (``polls.kinds``: ``draw`` and ``same_answer``); see docs/protocol.md,
"Question kinds and their answer values". A changed answer is drawn until it differs from the
previous one as the server will count it (a multiple choice is a set, a text is compared by its
words), so every change moves the tally's version.
"""

from __future__ import annotations

import random
from typing import Any

from polls import kinds

KINDS = kinds.names()

# The question cannot be answered by the load generator (unknown kind, no options).
UnsupportedQuestion = kinds.Unanswerable


def _kind(name: Any) -> kinds.QuestionKind:
    kind = kinds.find(name)
    if kind is None:
        raise UnsupportedQuestion(f"unknown question kind {name!r}")
    return kind


def draw(question: dict, rng: random.Random) -> Any:
    """One valid value for the question."""
    return _kind(question["kind"]).draw(question, rng)


def same_answer(kind: str, first: Any, second: Any) -> bool:
    """Would the server count these two values as the same answer?"""
    if first is None or second is None:
        return first is second
    return _kind(kind).same_answer(first, second)


def draw_change(question: dict, rng: random.Random, previous: Any) -> Any:
    """A value the server will count as a different answer than ``previous`` (when possible)."""
    value = draw(question, rng)
    for _ in range(20):
        if not same_answer(question["kind"], value, previous):
            return value
        value = draw(question, rng)
    return value

"""Valid answer values for every question kind, drawn from what the ``state`` message says.

See docs/protocol.md, "Question kinds and their answer values". A changed answer is drawn until
it differs from the previous one as the server will count it (a multiple choice is a set, a text
is compared by its words), so every change moves the tally's version.
"""

from __future__ import annotations

import random
from typing import Any

KINDS = (
    "single",
    "multiple",
    "scale",
    "nps",
    "enps",
    "ces",
    "split",
    "text",
    "ranking",
    "quadrant",
)

# Counted words: no stop word (polls/text.py), nothing masked, distinct once lowercased.
WORDS = (
    "snel",
    "vriendelijk",
    "eerlijk",
    "duidelijk",
    "persoonlijk",
    "betrouwbaar",
    "bereikbaar",
    "oplossing",
    "empathie",
    "geduld",
    "helpful",
    "friendly",
    "quick",
    "honest",
    "clear",
    "personal",
    "reliable",
    "patient",
    "kind",
    "warm",
)


class UnsupportedQuestion(Exception):
    """The question cannot be answered by the load generator (unknown kind, no options)."""


def _options(question: dict) -> list[int]:
    options = [option["id"] for option in question.get("options") or []]
    if not options:
        raise UnsupportedQuestion("the question has no options")
    return options


def draw(question: dict, rng: random.Random) -> Any:
    """One valid value for the question."""
    kind = question["kind"]
    if kind == "single":
        return rng.choice(_options(question))
    if kind == "multiple":
        options = _options(question)
        choices = question.get("choices") or {}
        low = max(1, int(choices.get("min") or 1))
        high = min(len(options), int(choices.get("max") or len(options)))
        return sorted(rng.sample(options, rng.randint(low, max(low, high))))
    if kind in ("scale", "nps", "enps", "ces"):
        scale = question.get("scale") or {"min": 0, "max": 10}
        return rng.randint(int(scale["min"]), int(scale["max"]))
    if kind == "split":
        return rng.randint(0, 100)
    if kind == "text":
        limit = int((question.get("text") or {}).get("max_length") or 40)
        words = rng.sample(WORDS, rng.randint(1, 2))
        text = " ".join(words)
        if len(text) > limit:
            text = words[0][:limit]
        return text
    if kind == "ranking":
        options = _options(question)
        rng.shuffle(options)
        return options
    if kind == "quadrant":
        return {
            str(option): {"x": rng.randint(0, 100), "y": rng.randint(0, 100)}
            for option in _options(question)
        }
    raise UnsupportedQuestion(f"unknown question kind {kind!r}")


def same_answer(kind: str, first: Any, second: Any) -> bool:
    """Would the server count these two values as the same answer?"""
    if first is None or second is None:
        return first is second
    if kind == "multiple":
        return sorted(first) == sorted(second)
    if kind == "text":
        return first.casefold().split() == second.casefold().split()
    return first == second


def draw_change(question: dict, rng: random.Random, previous: Any) -> Any:
    """A value the server will count as a different answer than ``previous`` (when possible)."""
    value = draw(question, rng)
    for _ in range(20):
        if not same_answer(question["kind"], value, previous):
            return value
        value = draw(question, rng)
    return value

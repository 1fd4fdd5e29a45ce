"""Random answer streams (with changed and resent answers) through the real Redis tally,
compared with a straightforward recomputation from the final raw answers."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polls import tally
from polls.kinds import results_message
from polls.text import mask, words_of

OPTIONS = [11, 12, 13, 14]
SPECS = {
    "single": {"kind": "single", "options": OPTIONS},
    "multiple": {"kind": "multiple", "options": OPTIONS, "choices": {"min": 1, "max": 4}},
    "scale": {"kind": "scale", "options": [], "scale": {"min": 1, "max": 10}},
    "nps": {"kind": "nps", "options": [], "scale": {"min": 0, "max": 10}},
    "enps": {"kind": "enps", "options": [], "scale": {"min": 0, "max": 10}},
    "ces": {"kind": "ces", "options": [], "scale": {"min": 1, "max": 7}},
    "split": {"kind": "split", "options": []},
    "text": {"kind": "text", "options": []},
    "ranking": {"kind": "ranking", "options": OPTIONS},
    "quadrant": {"kind": "quadrant", "options": OPTIONS},
}
point = st.fixed_dictionaries({"x": st.integers(0, 100), "y": st.integers(0, 100)})
VALUES = {
    "single": st.sampled_from(OPTIONS),
    "multiple": st.lists(st.sampled_from(OPTIONS), min_size=1, max_size=4, unique=True).map(sorted),
    "scale": st.integers(1, 10),
    "nps": st.integers(0, 10),
    "enps": st.integers(0, 10),
    "ces": st.integers(1, 7),
    "split": st.integers(0, 100),
    "text": st.lists(
        st.sampled_from(["service", "snel", "de", "Snel!", "vriendelijk", "kut", "chat"]),
        min_size=1,
        max_size=4,
    )
    .map(" ".join)
    .filter(words_of),
    "ranking": st.permutations(OPTIONS).map(list),
    "quadrant": st.fixed_dictionaries({str(option): point for option in OPTIONS}),
}
question_ids = itertools.count(1000)


def half_up(value, places=0):
    return float(Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def recompute(kind: str, finals: dict) -> dict:
    """What the room answered, computed the obvious way from each participant's final answer."""
    answers = list(finals.values())
    n = len(answers)
    if kind in ("single", "multiple"):
        chosen = Counter(
            option
            for answer in answers
            for option in (answer if isinstance(answer, list) else [answer])
        )
        return {"counts": {str(o): chosen[o] for o in OPTIONS}}
    if kind in ("scale", "ces"):
        return {"mean": half_up(Decimal(sum(answers)) / n, 1) if n else None}
    if kind in ("nps", "enps"):
        top, middle = (9, 7) if kind == "nps" else (8, 6)
        promoters = sum(a >= top for a in answers)
        detractors = sum(a < middle for a in answers)
        score = int(half_up(Decimal(promoters - detractors) * 100 / n)) if n else None
        return {
            "score": score,
            "groups": {
                "promoters": promoters,
                "passives": n - promoters - detractors,
                "detractors": detractors,
            },
        }
    if kind == "split":
        return {"mean_a": int(half_up(Decimal(sum(answers)) / n)) if n else None}
    if kind == "text":
        words = Counter(word for answer in answers for word in words_of(answer))
        return {
            "words": sorted(
                ((mask(w), c) for w, c in words.items()), key=lambda pair: (-pair[1], pair[0])
            )
        }
    if kind == "ranking":
        points = {o: sum(len(OPTIONS) - answer.index(o) for answer in answers) for o in OPTIONS}
        return {"points": points}
    means = {}
    for option in OPTIONS:
        xs = [answer[str(option)]["x"] for answer in answers]
        ys = [answer[str(option)]["y"] for answer in answers]
        means[option] = (
            half_up(Decimal(sum(xs)) / n, 1) if n else None,
            half_up(Decimal(sum(ys)) / n, 1) if n else None,
        )
    return {"means": means}


def from_tally(kind: str, message: dict) -> dict:
    summary = message["summary"]
    if kind in ("single", "multiple"):
        return {"counts": message["counts"]}
    if kind in ("scale", "ces"):
        return {"mean": summary["mean"]}
    if kind in ("nps", "enps"):
        return {"score": summary["score"], "groups": summary["groups"]}
    if kind == "split":
        return {"mean_a": summary["mean_a"]}
    if kind == "text":
        return {"words": [(entry["word"], entry["count"]) for entry in summary["words"]]}
    if kind == "ranking":
        return {"points": {item["id"]: item["points"] for item in summary["items"]}}
    return {"means": {item["id"]: (item["x"], item["y"]) for item in summary["items"]}}


def streams(kind: str):
    # (participant, value, resend?) events: participants answer, change and resend.
    return st.lists(
        st.tuples(st.integers(0, 7), VALUES[kind], st.booleans()), min_size=0, max_size=25
    )


@pytest.mark.parametrize("kind", sorted(SPECS))
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_answer_streams_match_a_recomputation(redis_server, kind, data):
    events = data.draw(streams(kind))
    question_id = next(question_ids)
    spec = {"id": question_id, **SPECS[kind]}
    tally.set_open(question_id, True)
    finals: dict[str, object] = {}

    async def play():
        for index, (participant, value, resend) in enumerate(events):
            outcome = await tally.record_answer(
                question_id, kind, f"p{participant}", f"m{index}", value
            )
            assert outcome.counted
            if resend:  # the same message again counts once, whatever value it claims
                again = await tally.record_answer(
                    question_id, kind, f"p{participant}", f"m{index}", value
                )
                assert again.status in ("duplicate", "ok", "unchanged")
            finals[f"p{participant}"] = value

    asyncio.run(play())
    snapshot = tally.read_snapshot_sync(question_id)
    message = results_message(spec, snapshot.version, snapshot.total, snapshot.counts)
    assert snapshot.total == len(finals)
    assert from_tally(kind, message) == recompute(kind, finals)
    assert tally.read_answers_sync(question_id) == finals

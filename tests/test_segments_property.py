"""Random streams of answers, changed answers, resends and profile answers (given, changed,
withdrawn with "rather not say", and answers sent with stale knowledge of the segments) through
the real Redis tally: every segment's result equals a recomputation from the raw answers of
its members, and the segments with the rest sum to the whole."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polls import tally
from polls.kinds import results_message
from polls.segments import RATHER_NOT_SAY, tag, tags_of
from tests.test_tally_property import SPECS, VALUES, from_tally, recompute

PROFILE_OPTIONS = [71, 72, 73]
question_ids = itertools.count(5000, 2)


def events(kind: str):
    answer = st.tuples(st.just("answer"), st.integers(0, 6), VALUES[kind], st.booleans())
    profile = st.tuples(
        st.just("profile"),
        st.integers(0, 6),
        st.sampled_from([*PROFILE_OPTIONS, RATHER_NOT_SAY]),
        st.booleans(),  # True: the line answers later with what it knew before (stale)
    )
    return st.lists(st.one_of(answer, profile), min_size=0, max_size=30)


@pytest.mark.parametrize("kind", sorted(SPECS))
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_segment_matches_a_recomputation(redis_server, kind, data):
    stream = data.draw(events(kind))
    question_id = next(question_ids)
    profile_id = question_id + 1
    spec = {"id": question_id, **SPECS[kind]}
    tally.set_open(question_id, True)
    finals: dict[str, object] = {}
    profiles: dict[str, int] = {}
    # What each participant's line believes their segments are (stale after a change elsewhere).
    believed: dict[str, str] = {}

    async def play():
        for index, (what, number, value, flag) in enumerate(stream):
            participant = f"p{number}"
            if what == "profile":
                outcome = await tally.record_answer(
                    profile_id, "single", participant, f"m{index}", value, always_open=True
                )
                assert outcome.counted
                profiles[participant] = value
                tags = tags_of({profile_id: value})
                await tally.move_segments([question_id, profile_id], participant, tags)
                if not flag:
                    believed[participant] = tags
                continue
            known = believed.get(participant, "")
            outcome = await tally.record_answer(
                question_id, kind, participant, f"m{index}", value, known
            )
            assert outcome.counted
            if flag:  # resent: counts once
                await tally.record_answer(question_id, kind, participant, f"m{index}", value, known)
            finals[participant] = value

    asyncio.run(play())
    snapshot = tally.read_snapshot_sync(question_id)
    in_segments = 0
    for option in PROFILE_OPTIONS:
        members = {p: v for p, v in finals.items() if profiles.get(p) == option}
        total, counts = snapshot.segments.get(tag(profile_id, option), (0, {}))
        assert total == len(members)
        message = results_message(spec, snapshot.version, total, counts, snapshot.hidden)
        assert from_tally(kind, message) == recompute(kind, members)
        in_segments += total
    outside = [p for p in finals if profiles.get(p, RATHER_NOT_SAY) == RATHER_NOT_SAY]
    assert in_segments + len(outside) == snapshot.total == len(finals)

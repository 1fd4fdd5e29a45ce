"""The Redis tally: atomic counting, one answer per participant, the answer log and rebuilds."""

from __future__ import annotations

import asyncio

import pytest

from polls import consistency, tally, writer
from polls.models import Answer, Question
from tests.factories import make_event, make_open_question, option_ids

pytestmark = pytest.mark.django_db(transaction=True)


def open_flag(question_id: int, is_open: bool = True) -> None:
    tally.set_open(question_id, is_open)


async def test_answer_counts_once_and_bumps_version():
    open_flag(1)
    outcome = await tally.record_answer(1, "single", "p1", "m1", 11)
    assert outcome == tally.Outcome("ok", 1)
    snapshot = await tally.read_snapshot(1)
    assert (snapshot.version, snapshot.total, snapshot.counts) == (1, 1, {"11": 1})


async def test_same_message_id_counts_once():
    open_flag(1)
    await tally.record_answer(1, "single", "p1", "m1", 11)
    again = await tally.record_answer(1, "single", "p1", "m1", 11)
    assert again.status == "duplicate"
    snapshot = await tally.read_snapshot(1)
    assert (snapshot.total, snapshot.counts, snapshot.version) == (1, {"11": 1}, 1)


async def test_a_resent_old_message_does_not_undo_a_newer_answer():
    open_flag(1)
    await tally.record_answer(1, "single", "p1", "m1", 11)
    await tally.record_answer(1, "single", "p1", "m2", 12)
    await tally.record_answer(1, "single", "p1", "m1", 11)
    assert await tally.answer_of(1, "p1") == 12
    assert (await tally.read_snapshot(1)).counts == {"11": 0, "12": 1}


async def test_changed_answer_moves_the_count():
    open_flag(1)
    await tally.record_answer(1, "multiple", "p1", "m1", [11, 12])
    await tally.record_answer(1, "multiple", "p1", "m2", [12, 13])
    snapshot = await tally.read_snapshot(1)
    assert snapshot.total == 1
    assert snapshot.counts == {"11": 0, "12": 1, "13": 1}


async def test_unchanged_answer_keeps_the_version():
    open_flag(1)
    await tally.record_answer(1, "scale", "p1", "m1", 7)
    outcome = await tally.record_answer(1, "scale", "p1", "m2", 7)
    assert outcome.status == "unchanged"
    assert (await tally.read_snapshot(1)).version == 1


async def test_closed_question_counts_nothing():
    open_flag(1, False)
    outcome = await tally.record_answer(1, "single", "p1", "m1", 11)
    assert outcome.status == "not_open"
    assert not outcome.counted
    snapshot = await tally.read_snapshot(1)
    assert (snapshot.total, snapshot.counts) == (0, {})


async def test_concurrent_answers_and_changes_add_up():
    open_flag(1)
    calls = []
    for participant in range(200):
        for change in range(3):
            value = 10 + (participant + change) % 4
            calls.append(tally.record_answer(1, "single", f"p{participant}", f"m{change}", value))
    await asyncio.gather(*calls)
    snapshot = await tally.read_snapshot(1)
    finals = {f"p{p}": 10 + (p + 2) % 4 for p in range(200)}
    expected: dict[str, int] = {}
    for value in finals.values():
        expected[str(value)] = expected.get(str(value), 0) + 1
    assert snapshot.total == 200
    assert snapshot.counts == expected


async def test_every_recorded_change_reaches_the_log(redis):
    open_flag(5)
    await tally.record_answer(5, "single", "p1", "m1", 1)
    await tally.record_answer(5, "single", "p1", "m2", 2)
    await tally.record_answer(5, "single", "p1", "m2", 2)
    assert redis.xlen(tally.question_keys(5)["log"]) == 2
    assert redis.sismember(tally.LOG_REGISTRY, tally.question_keys(5)["log"])


def test_writer_drains_the_log_into_answer_rows():
    event = make_event()
    question = make_open_question(event)
    first, second = option_ids(question)[:2]

    async def answer():
        await tally.record_answer(question.id, "single", "p1", "m1", first)
        await tally.record_answer(question.id, "single", "p2", "m1", first)
        await tally.record_answer(question.id, "single", "p1", "m2", second)

    asyncio.run(answer())
    assert writer.drain_all() == 2
    rows = dict(Answer.objects.values_list("participant", "value"))
    assert rows == {"p1": second, "p2": first}


def test_writer_killed_before_commit_loses_nothing(redis, monkeypatch):
    event = make_event()
    question = make_open_question(event)
    first = option_ids(question)[0]

    async def answer():
        for participant in range(10):
            await tally.record_answer(question.id, "single", f"p{participant}", "m", first)

    asyncio.run(answer())

    def crash(entries):
        raise RuntimeError("writer died mid-batch")

    monkeypatch.setattr(writer, "_write", crash)
    with pytest.raises(RuntimeError):
        writer.drain_once("writer-a")
    monkeypatch.undo()
    assert Answer.objects.count() == 0
    # The same writer restarting re-reads its pending entries before anything new.
    assert writer.drain_once("writer-a") == 10
    assert Answer.objects.count() == 10
    assert redis.xlen(tally.question_keys(question.id)["log"]) == 0


def test_rebuild_restores_tallies_from_the_database(redis):
    event = make_event()
    question = make_open_question(event, kind=Question.Kind.SCALE, options=())

    async def answer():
        for participant, mark in enumerate([6, 7, 8, 8]):
            await tally.record_answer(question.id, "scale", f"p{participant}", "m", mark)

    asyncio.run(answer())
    writer.drain_all()
    before = tally.read_snapshot_sync(question.id)
    redis.delete(*[key for name, key in tally.question_keys(question.id).items() if name != "log"])
    rebuilt = tally.rebuild(
        question.id, question.kind, True, dict(Answer.objects.values_list("participant", "value"))
    )
    assert rebuilt.counts == {"6": 1, "7": 1, "8": 2}
    assert rebuilt.total == before.total == 4
    assert rebuilt.version > 0


async def test_a_participant_flipping_an_answer_endlessly_is_rate_limited():
    open_flag(1)
    for change in range(tally.MOST_CHANGES_PER_QUESTION):
        assert (await tally.record_answer(1, "single", "p1", f"m{change}", 11 + change % 2)).counted
    refused = await tally.record_answer(1, "single", "p1", "over", 13)
    assert refused.status == "rate_limited" and not refused.counted
    assert await tally.answer_of(1, "p1") != 13
    # A resend of an answer already counted is still acknowledged, and others are unaffected.
    assert (await tally.record_answer(1, "single", "p1", "m0", 11)).status == "duplicate"
    assert (await tally.record_answer(1, "single", "p2", "m0", 13)).status == "ok"


async def test_a_word_nobody_gives_any_more_leaves_the_cloud():
    open_flag(1)
    await tally.record_answer(1, "text", "p1", "m1", "snel service")
    await tally.record_answer(1, "text", "p2", "m1", "service")
    await tally.record_answer(1, "text", "p1", "m2", "chat")
    assert (await tally.read_snapshot(1)).counts == {"service": 1, "chat": 1}


async def test_a_full_word_cloud_counts_no_new_word_but_counts_the_answer(settings):
    settings.ZP_MAX_WORDS_PER_QUESTION = 3
    open_flag(1)
    await tally.record_answer(1, "text", "p1", "m1", "alpha beta")
    await tally.record_answer(1, "text", "p2", "m1", "gamma delta epsilon")
    await tally.record_answer(1, "text", "p3", "m1", "alpha zeta")
    snapshot = await tally.read_snapshot(1)
    assert snapshot.total == 3
    assert snapshot.counts == {"alpha": 2, "beta": 1, "gamma": 1}
    stored = tally.read_counted_buckets_sync(1)
    assert stored == {"p1": ["alpha", "beta"], "p2": ["gamma"], "p3": ["alpha"]}
    # The same answer sent again is unchanged, though fewer words of it were counted.
    assert (await tally.record_answer(1, "text", "p2", "m2", "gamma delta epsilon")).status == (
        "unchanged"
    )
    # A change takes back exactly what was counted, and the freed place goes to a new word.
    await tally.record_answer(1, "text", "p2", "m3", "beta eta")
    assert (await tally.read_snapshot(1)).counts == {"alpha": 2, "beta": 2, "eta": 1}
    assert await tally.answer_of(1, "p2") == "beta eta"


def capped_cloud(answers: list[tuple[str, str]]) -> Question:
    """A word cloud answered in this order, the log drained into the table."""
    event = make_event()
    question = make_open_question(event, kind=Question.Kind.TEXT, options=())

    async def play():
        for number, (participant, text) in enumerate(answers):
            assert (
                await tally.record_answer(question.id, "text", participant, f"m{number}", text)
            ).counted

    asyncio.run(play())
    writer.drain_all()
    return question


def test_a_capped_cloud_checks_clean_and_rebuilds_in_answered_order(redis, settings):
    settings.ZP_MAX_WORDS_PER_QUESTION = 2
    # p-a answers first (its table row comes first), yet its last change is the later one:
    # only the answered order gives back what the script counted.
    question = capped_cloud(
        [("p-a", "zeta"), ("p-b", "alpha"), ("p-b", "beta"), ("p-a", "gamma delta")]
    )
    live = tally.read_snapshot_sync(question.id)
    assert live.counts == {"beta": 1, "gamma": 1}
    assert [check.differences for check in consistency.check_all()] == [0]

    redis.delete(*[key for name, key in tally.question_keys(question.id).items() if name != "log"])
    table_order = dict(Answer.objects.order_by("pk").values_list("participant", "value"))
    assert list(table_order) == ["p-a", "p-b"]
    answered = consistency.answers_in_answered_order(question)
    assert list(answered) == ["p-b", "p-a"]
    rebuilt = tally.rebuild(question.id, question.kind, True, answered)
    assert (rebuilt.counts, rebuilt.total) == (live.counts, live.total)
    assert [check.differences for check in consistency.check_all()] == [0]


def test_a_repair_keeps_the_words_the_script_counted(redis, settings):
    settings.ZP_MAX_WORDS_PER_QUESTION = 2
    # gamma was refused for p-a while the cloud was full; p-b's change then freed a place.
    # Counting the final answers afresh would give gamma to p-a as well: the repair must not.
    question = capped_cloud([("p-b", "alpha"), ("p-a", "beta gamma"), ("p-b", "gamma")])
    live = tally.read_snapshot_sync(question.id)
    assert live.counts == {"beta": 1, "gamma": 1}
    assert [check.differences for check in consistency.check_all()] == [0]
    redis.hincrby(tally.question_keys(question.id)["counts"], "beta", 5)
    assert [check.counts_wrong for check in consistency.check_all(repair=True)] == [True]
    assert tally.read_snapshot_sync(question.id).counts == live.counts
    assert [check.differences for check in consistency.check_all()] == [0]

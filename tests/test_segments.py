"""Results by segment: the privacy fold, profile answers over the real sockets, the stage's
split result, a profile answer moving counted answers, and the tally check and rebuild."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from polls import actions, consistency, tally
from polls.models import Event, Question
from polls.segments import OTHER, Group, fold, rest_of, tag, tags_of
from tests.factories import make_event, make_open_question, make_question, option_ids, token_for
from tests.live_helpers import connect, receive, receive_type, send

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("disconnect_sockets"),
]

GENERATIONS = ("Babyboom", "Generation X", "Generation Y", "Generation Z")


# -- the privacy rule --------------------------------------------------------------------------


def groups(*totals: int) -> list[Group]:
    return [Group(str(i), f"s{i}", total, {"a": total}) for i, total in enumerate(totals)]


def test_a_segment_below_the_minimum_is_only_in_other():
    shown, other = fold(groups(10, 4, 8), Group(OTHER, "Other", 3, {"a": 3}), 5)
    assert [group.key for group in shown] == ["0", "2"]
    assert (other.total, other.counts) == (7, {"a": 7})


def test_other_too_small_takes_the_smallest_segment_along():
    # 10 + 8 shown and 2 in no segment: the whole minus the shown ones would single the 2 out.
    shown, other = fold(groups(10, 8), Group(OTHER, "Other", 2, {"a": 2}), 5)
    assert [group.key for group in shown] == ["0"]
    assert other.total == 10


def test_nothing_is_shown_when_only_a_few_answered():
    shown, other = fold(groups(3, 1), Group(OTHER, "Other", 0, {}), 5)
    assert shown == [] and other is None


def test_an_empty_rest_hides_nothing():
    shown, other = fold(groups(6, 7), Group(OTHER, "Other", 0, {}), 5)
    assert [group.total for group in shown] == [6, 7] and other is None


def test_the_rest_is_the_whole_minus_the_segments():
    rest = rest_of(
        20, {"a": 12, "b": 8}, [Group("1", "x", 5, {"a": 5}), Group("2", "y", 6, {"b": 6})], "Other"
    )
    assert (rest.total, rest.counts) == (9, {"a": 7, "b": 2})


def test_tags_leave_out_rather_not_say():
    assert tags_of({15: 40, 12: 34, 13: 0, 14: None}) == "12:34,15:40"


# -- over the real sockets -----------------------------------------------------------------------


@database_sync_to_async
def profiled_event(minimum: int = 5, ask_on_join: bool = True):
    event = make_event(code="SEGM01", segment_min_respondents=minimum)
    profile = make_question(
        event,
        prompt="Which generation?",
        options=GENERATIONS,
        segment=True,
        ask_on_join=ask_on_join,
    )
    question = make_open_question(event, prompt="Self-service or not?", options=("Self", "Human"))
    return event, profile, question, option_ids(profile), option_ids(question)


async def phone(event):
    token = await sync_to_async(token_for)(event)
    communicator, connected, code = await connect(f"/ws/e/{event.code}/?token={token}")
    assert connected, code
    first = await receive(communicator)
    return communicator, first


async def answer(communicator, question_id, value, message_id):
    await send(
        communicator, {"type": "answer", "id": message_id, "question": question_id, "value": value}
    )
    reply = await receive_type(communicator, "ack")
    assert reply["answer"] == value, reply
    return reply


async def stage(event):
    communicator, connected, code = await connect(
        f"/ws/e/{event.code}/stage/?key={event.stage_key}"
    )
    assert connected, code
    assert (await receive(communicator))["type"] == "state"
    return communicator


async def results_with(screen, check, tries: int = 40):
    """The first snapshot on the stage that ``check`` accepts."""
    seen = None
    for _attempt in range(tries):
        seen = await receive_type(screen, "results")
        if check(seen):
            return seen
    raise AssertionError(f"no such snapshot; the last: {seen}")


async def phones_answering(event, profile, question, plan) -> list:
    """A phone per (profile answer, answer) of ``plan``, each answered and acknowledged."""
    phones = []
    for index, (generation, choice) in enumerate(plan):
        communicator, _first = await phone(event)
        await receive(communicator)
        await answer(communicator, profile.id, generation, f"p{index}")
        await answer(communicator, question.id, choice, f"a{index}")
        phones.append(communicator)
    return phones


split_on = database_sync_to_async(
    lambda event, profile="": actions.do_host_action(
        Event.objects.get(pk=event.id), "segments_on", word=profile
    )
)


async def test_a_phone_gets_its_profile_answers_first_and_answers_on_join():
    event, profile, _question, generations, _choices = await profiled_event()
    communicator, first = await phone(event)
    assert first == {"type": "profile", "answers": {str(profile.id): None}}
    state = await receive(communicator)
    assert state["type"] == "state"
    assert state["profile"] == [
        {
            "id": profile.id,
            "prompt": "Which generation?",
            "options": [
                {"id": i, "label": label} for i, label in zip(generations, GENERATIONS, strict=True)
            ],
        }
    ]
    # Not the current question, yet taken: it is asked on joining.
    await answer(communicator, profile.id, generations[3], "p1")
    await send(communicator, {"type": "answer", "id": "p2", "question": profile.id, "value": 99})
    assert (await receive_type(communicator, "error"))["code"] == "bad_value"
    await answer(communicator, profile.id, 0, "p3")  # rather not say
    await communicator.disconnect()


async def test_a_reconnecting_phone_hears_what_it_answered():
    event, profile, _question, generations, _choices = await profiled_event()
    token = await sync_to_async(token_for)(event)
    path = f"/ws/e/{event.code}/?token={token}"
    communicator, _connected, _code = await connect(path)
    await receive(communicator)
    await answer(communicator, profile.id, generations[1], "p1")
    await communicator.disconnect()
    again, _connected, _code = await connect(path)
    assert await receive(again) == {
        "type": "profile",
        "answers": {str(profile.id): generations[1]},
    }
    await again.disconnect()


async def test_a_profile_question_not_asked_on_join_waits_for_the_host():
    event, profile, _question, generations, _choices = await profiled_event(ask_on_join=False)
    communicator, _first = await phone(event)
    await receive(communicator)
    await send(
        communicator,
        {"type": "answer", "id": "p1", "question": profile.id, "value": generations[0]},
    )
    assert (await receive_type(communicator, "error"))["code"] == "not_open"
    assert tally.read_snapshot_sync(profile.id).total == 0
    await communicator.disconnect()


async def test_the_stage_shows_each_segment_and_folds_the_small_one():
    event, profile, question, generations, (self_service, human) = await profiled_event()
    screen = await stage(event)
    await split_on(event)
    # Generation Z: 6 phones, 5 of them self-service; babyboom 5, 1; generation X only 2.
    plan = (
        [(generations[3], self_service)] * 5
        + [(generations[3], human)]
        + [(generations[0], self_service)]
        + [(generations[0], human)] * 4
        + [(generations[1], human)] * 2
    )
    phones = await phones_answering(event, profile, question, plan)
    snapshot = await results_with(screen, lambda message: message["total"] == len(plan))
    split = snapshot["segments"]
    assert split["question"] == profile.id and split["min"] == 5
    # Generation X (2) goes into other, and other (2) takes the smallest shown one (babyboom, 5).
    by_key = {group["key"]: group for group in split["groups"]}
    assert list(by_key) == [str(generations[3]), OTHER]
    assert by_key[str(generations[3])]["summary"]["percent"] == {
        str(self_service): 83,
        str(human): 17,
    }
    assert by_key[OTHER]["total"] == 7
    assert by_key[OTHER]["counts"] == {str(self_service): 1, str(human): 6}
    assert sum(group["total"] for group in split["groups"]) == snapshot["total"]
    assert split["words"] is None  # one segment shown: nothing to compare it with
    for communicator in [*phones, screen]:
        await communicator.disconnect()


async def test_the_widest_gap_is_said_in_words():
    event, profile, question, generations, (self_service, human) = await profiled_event(minimum=2)
    screen = await stage(event)
    await split_on(event, str(profile.id))
    plan = [(generations[3], self_service)] * 3 + [(generations[0], human)] * 2
    phones = await phones_answering(event, profile, question, plan)
    snapshot = await results_with(screen, lambda message: message["total"] == len(plan))
    assert snapshot["segments"]["words"]["en"] == (
        "Generation Z chose Self 100 points more often than Babyboom."
    )
    assert snapshot["segments"]["words"]["nl"].startswith("Generation Z")
    for communicator in [*phones, screen]:
        await communicator.disconnect()


async def test_a_changed_profile_answer_moves_the_counted_answers():
    event, profile, question, generations, (self_service, _human) = await profiled_event()
    communicator, _first = await phone(event)
    await receive(communicator)
    # Answered before the profile: in no segment, then moved in by the profile answer.
    await answer(communicator, question.id, self_service, "a1")
    assert tally.read_snapshot_sync(question.id).segments == {}
    await answer(communicator, profile.id, generations[0], "p1")
    z, boom = tag(profile.id, generations[3]), tag(profile.id, generations[0])
    assert tally.read_snapshot_sync(question.id).segments == {boom: (1, {str(self_service): 1})}
    await answer(communicator, profile.id, generations[3], "p2")
    assert tally.read_snapshot_sync(question.id).segments == {z: (1, {str(self_service): 1})}
    await answer(communicator, profile.id, 0, "p3")
    assert tally.read_snapshot_sync(question.id).segments == {}
    await communicator.disconnect()


async def test_a_question_added_later_counts_in_the_known_segment():
    event, profile, _question, generations, _choices = await profiled_event()
    communicator, _first = await phone(event)
    await receive(communicator)
    await answer(communicator, profile.id, generations[2], "p1")
    later = await database_sync_to_async(make_open_question)(
        event, prompt="Later?", options=("Yes", "No")
    )
    yes = (await database_sync_to_async(option_ids)(later))[0]
    await receive_type(communicator, "state")
    await answer(communicator, later.id, yes, "a1")
    assert tally.read_snapshot_sync(later.id).segments == {
        tag(profile.id, generations[2]): (1, {str(yes): 1})
    }
    await communicator.disconnect()


async def test_the_tally_check_finds_and_mends_a_wrong_segment_count(redis):
    event, profile, question, generations, (self_service, human) = await profiled_event()
    communicator, _first = await phone(event)
    await receive(communicator)
    await answer(communicator, profile.id, generations[1], "p1")
    await answer(communicator, question.id, human, "a1")
    await communicator.disconnect()
    check_all = database_sync_to_async(consistency.check_all)
    assert [check.differences for check in await check_all()] == [0, 0]
    segment = tag(profile.id, generations[1])
    redis.hincrby(tally.question_keys(question.id)["segcounts"], f"{segment}|{self_service}", 3)
    checks = {check.question_id: check for check in await check_all(repair=True)}
    assert checks[question.id].segments_wrong
    assert [check.differences for check in await check_all()] == [0, 0]
    assert tally.read_snapshot_sync(question.id).segments == {segment: (1, {str(human): 1})}


async def test_a_rebuilt_tally_keeps_its_segments(redis):
    event, profile, question, generations, (self_service, _human) = await profiled_event()
    communicator, _first = await phone(event)
    await receive(communicator)
    await answer(communicator, profile.id, generations[0], "p1")
    await answer(communicator, question.id, self_service, "a1")
    await communicator.disconnect()
    before = tally.read_snapshot_sync(question.id).segments
    await database_sync_to_async(consistency.check_all)()  # drains the log into the table
    for key in ("segof", "segcounts"):
        redis.delete(tally.question_keys(question.id)[key])
    from django.core.management import call_command

    await database_sync_to_async(call_command)("rebuild_tallies")
    assert tally.read_snapshot_sync(question.id).segments == before
    assert before == {tag(profile.id, generations[0]): (1, {str(self_service): 1})}


async def test_setting_a_participant_aside_takes_their_answer_out_of_their_segment():
    event, profile, question, generations, (self_service, _human) = await profiled_event()
    communicator, _first = await phone(event)
    await receive(communicator)
    await answer(communicator, profile.id, generations[0], "p1")
    await answer(communicator, question.id, self_service, "a1")
    participant = tally.read_answers_sync(question.id).popitem()[0]
    kinds = {question.id: question.kind, profile.id: profile.kind}
    tally.sync_aside(kinds, {participant})
    assert tally.read_snapshot_sync(question.id).segments == {}
    tally.sync_aside(kinds, set())
    assert tally.read_snapshot_sync(question.id).segments == {
        tag(profile.id, generations[0]): (1, {str(self_service): 1})
    }
    await communicator.disconnect()


@pytest.mark.django_db
def test_only_a_single_choice_question_can_be_a_profile_question():
    from django.core.exceptions import ValidationError

    event = make_event(code="SEGM02")
    question = make_question(event, kind=Question.Kind.MULTIPLE, segment=True)
    with pytest.raises(ValidationError) as refused:
        question.full_clean()
    assert "segment" in refused.value.message_dict


async def test_segments_off_and_a_foreign_profile_are_refused_or_undone():
    event, profile, _question, _generations, _choices = await profiled_event()
    other = await database_sync_to_async(make_event)(code="SEGM03")
    foreign = await database_sync_to_async(make_question)(other, segment=True)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        await split_on(event, str(foreign.id))
    await split_on(event)
    assert (
        await database_sync_to_async(Event.objects.get)(pk=event.id)
    ).segment_by_id == profile.id
    await database_sync_to_async(actions.do_host_action)(event, "segments_off")
    assert (await database_sync_to_async(Event.objects.get)(pk=event.id)).segment_by_id is None


# -- the widest gap in words, for every kind that one figure sums up -----------------------------


def split_spec(kind: str, **blocks) -> dict:
    return {
        "id": 1,
        "kind": kind,
        "options": blocks.pop("options", []),
        "labels": blocks.pop("labels", {}),
        "figures": [],
        "segments": {
            "question": 9,
            "prompt": "Which generation?",
            "options": [{"id": 1, "label": "Babyboom"}, {"id": 2, "label": "Generation Z"}],
            "min": 2,
            "other": "Other",
        },
        **blocks,
    }


def two_segments(first: dict[str, int], second: dict[str, int], respondents=(2, 2)):
    whole = dict(first)
    for bucket, count in second.items():
        whole[bucket] = whole.get(bucket, 0) + count
    return tally.Snapshot(
        1,
        1,
        sum(respondents),
        whole,
        segments={"9:1": (respondents[0], first), "9:2": (respondents[1], second)},
    )


@pytest.mark.parametrize(
    ("spec", "snapshot", "words"),
    [
        (
            split_spec("scale", scale={"min": 1, "max": 10}),
            two_segments({"6": 1, "7": 1}, {"9": 2}),
            "Generation Z gave 2.5 more on average than Babyboom.",
        ),
        (
            split_spec("nps", scale={"min": 0, "max": 10}),
            two_segments({"3": 2}, {"10": 1, "8": 1}),
            "The NPS of Generation Z is 150 points higher than that of Babyboom.",
        ),
        (
            split_spec("split", split={"a": "self-service", "b": "live contact"}),
            two_segments({"40": 2}, {"71": 2}),
            "Generation Z put self-service 31 points higher than Babyboom.",
        ),
        (
            split_spec("ranking", options=[5, 6], labels={"5": "Chat", "6": "Phone"}),
            two_segments({"5@1": 2, "6@2": 2}, {"5@2": 2, "6@1": 2}),
            "Babyboom ranked Chat 1.0 places higher on average than Generation Z.",
        ),
        (
            split_spec("text", text={"max_length": 40}),
            two_segments({"snel": 2, "chat": 1}, {"chat": 1}),
            "Babyboom gave \u201csnel\u201d 100 points more often than Generation Z.",
        ),
    ],
    ids=["scale", "nps", "split", "ranking", "text"],
)
def test_the_widest_gap_in_words(spec, snapshot, words):
    from polls.by_segment import segments_message

    message = segments_message(spec, snapshot)
    assert [group["label"] for group in message["groups"]] == ["Babyboom", "Generation Z"]
    assert message["words"]["en"] == words
    assert message["words"]["nl"] != words


@pytest.mark.django_db
def test_every_demo_question_splits_by_generation_and_sums_to_the_whole():
    """The demo's stage is split by generation: every kind's split result is computed from a
    real tally (random answers from every generation) and its groups sum to the whole."""
    import asyncio
    import random

    from polls import demo, state
    from polls.delivery import snapshot_message
    from polls.kinds import get as kind_of

    event, _created = demo.ensure_demo()
    profile = event.segment_by
    assert profile is not None and profile.segment and profile.ask_on_join
    generations = option_ids(profile)
    rng = random.Random(14)
    questions = list(event.questions.exclude(pk=profile.pk))
    everyone = [f"p{n}" for n in range(60)]

    async def answer_all(question_id, kind, values):
        for participant, value in values.items():
            await tally.record_answer(question_id, kind, participant, "m1", value, always_open=True)

    profiles = {p: rng.choice([*generations, 0]) for p in everyone}
    asyncio.run(answer_all(profile.id, "single", profiles))
    ids = [question.id for question in event.questions.all()]
    for participant, value in profiles.items():
        asyncio.run(tally.move_segments(ids, participant, tags_of({profile.id: value})))
    for question in questions:
        actions.do_set_current(event, question)
        current = state.build_event_state(event.id)
        spec = current["spec"]["current"]
        assert spec["segments"]["question"] == profile.id
        values = {p: kind_of(question.kind).draw(current["question"], rng) for p in everyone}
        asyncio.run(answer_all(question.id, question.kind, values))
        message = snapshot_message(spec, tally.read_snapshot_sync(question.id))
        groups = message["segments"]["groups"]
        assert sum(group["total"] for group in groups) == message["total"] == len(everyone)
        assert {group["key"] for group in groups} <= {*map(str, generations), OTHER}


# -- a stranger's attempts -----------------------------------------------------------------------


async def test_impossible_profile_answers_are_refused_and_change_nothing():
    event, profile, question, generations, (self_service, _human) = await profiled_event()
    communicator, _first = await phone(event)
    await receive(communicator)
    await answer(communicator, profile.id, generations[0], "p0")
    await answer(communicator, question.id, self_service, "a0")
    before = tally.read_snapshot_sync(question.id).segments
    for index, value in enumerate(
        [True, -1, "24", [generations[1]], None, 1.0, generations[0] + 99]
    ):
        await send(
            communicator,
            {"type": "answer", "id": f"x{index}", "question": profile.id, "value": value},
        )
        assert (await receive_type(communicator, "error"))["code"] == "bad_value", value
    # A profile flipped without end stops at the tally's limit on changes, its segments intact.
    codes = []
    for index in range(tally.MOST_CHANGES_PER_QUESTION + 2):
        value = generations[index % 2]
        await send(
            communicator,
            {"type": "answer", "id": f"f{index}", "question": profile.id, "value": value},
        )
        reply = await receive(communicator)
        codes.append(reply.get("code", reply["type"]))
    assert codes[-1] == "rate_limited"
    after = tally.read_snapshot_sync(question.id).segments
    assert sum(total for total, _counts in after.values()) == 1 == len(before)
    await communicator.disconnect()


@pytest.mark.django_db
def test_another_host_cannot_split_an_event_they_do_not_host(client):
    from tests.factories import make_user

    owner, stranger = make_user("host-a"), make_user("host-b")
    event = make_event(code="SEGM04", hosts=[owner])
    make_question(event, segment=True)
    client.force_login(stranger)
    response = client.post(f"/e/{event.code}/host/", {"action": "segments_on"})
    assert response.status_code == 403
    assert Event.objects.get(pk=event.pk).segment_by_id is None

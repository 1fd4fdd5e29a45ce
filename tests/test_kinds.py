"""Every question kind over the real socket: good answers counted, bad ones refused with a code,
and the research reveal with its comparison."""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from benchmarks.models import Figure, Study
from polls import actions, tally
from polls.models import Question, QuestionFigure
from tests.factories import make_event, make_open_question, option_ids, token_for
from tests.live_helpers import connect, receive, receive_type, send

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("disconnect_sockets"),
]

ITEMS = ("Phone", "Chat", "E-mail")


def kind_question(event, kind):
    extra = {
        "scale": {"options": ()},
        "nps": {"options": ()},
        "enps": {"options": ()},
        "ces": {"options": (), "scale_min": 1, "scale_max": 5, "lower_is_better": True},
        "split": {"options": (), "split_a_label": "self-service", "split_b_label": "live"},
        "text": {"options": (), "text_max_length": 30},
        "ranking": {"options": ITEMS},
        "quadrant": {"options": ITEMS, "quadrant_x_label": "x", "quadrant_y_label": "y"},
    }[kind]
    return make_open_question(event, kind=kind, **extra)


async def phone(event):
    token = await sync_to_async(token_for)(event)
    communicator, connected, _code = await connect(f"/ws/e/{event.code}/?token={token}")
    assert connected
    state = await receive(communicator)
    return communicator, state


async def answer(communicator, question_id, value, message_id):
    await send(
        communicator, {"type": "answer", "id": message_id, "question": question_id, "value": value}
    )
    return await receive(communicator)


def good_and_bad(kind, ids):
    first, second, third = ids[:3] if ids else (0, 0, 0)
    point = {"x": 10, "y": 90}
    full = {str(i): point for i in ids}
    return {
        "scale": (7, [0, 11, 7.5, "7", None, True]),
        "nps": (0, [-1, 11, "9", 9.0]),
        "enps": (10, [11, -1, [9]]),
        "ces": (2, [0, 6, 1.5]),
        "split": (53, [-1, 101, 53.5, "53", {"a": 53}]),
        "text": ("Snelle service!", [12, ["a"], {"t": "x"}]),
        "ranking": (
            [third, first, second],
            [
                [first, second],
                [first, first, second],
                [first, second, 999999],
                [first, second, third, third],
                "1,2,3",
                [str(first), second, third],
            ],
        ),
        "quadrant": (
            full,
            [
                {str(first): point, str(second): point},
                {**full, "999999": point},
                {**full, str(first): {"x": 101, "y": 5}},
                {**full, str(first): {"x": 5}},
                {**full, str(first): [5, 5]},
                {**full, str(first): {"x": "5", "y": 5}},
                [point, point, point],
            ],
        ),
    }[kind]


@pytest.mark.parametrize(
    "kind", ["scale", "nps", "enps", "ces", "split", "text", "ranking", "quadrant"]
)
async def test_each_kind_counts_good_answers_and_refuses_bad_ones(event, kind):
    question = await database_sync_to_async(kind_question)(event, kind)
    ids = await database_sync_to_async(option_ids)(question)
    good, bad = good_and_bad(kind, ids)
    communicator, state = await phone(event)
    assert state["question"]["kind"] == kind
    for index, value in enumerate(bad):
        reply = await answer(communicator, question.id, value, f"bad{index}")
        assert (reply["type"], reply["code"]) == ("error", "bad_value"), value
    assert (await tally.read_snapshot(question.id)).version == 0
    reply = await answer(communicator, question.id, good, "good")
    assert reply["type"] == "ack", reply
    snapshot = await tally.read_snapshot(question.id)
    assert (snapshot.total, snapshot.version) == (1, 1)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("x" * 31, "too_long"),
        ("   ", "empty"),
        ("?!...", "empty"),
        ("de het een", "empty"),
        ("<b></b>", "empty"),
    ],
)
async def test_text_that_is_too_long_or_empty_after_normalising(event, value, code):
    question = await database_sync_to_async(kind_question)(event, "text")
    communicator, _state = await phone(event)
    reply = await answer(communicator, question.id, value, "t1")
    assert (reply["type"], reply["code"]) == ("error", code)
    assert (await tally.read_snapshot(question.id)).total == 0


async def test_markup_in_text_is_counted_as_words_and_never_as_html(event):
    question = await database_sync_to_async(kind_question)(event, "text")
    communicator, _state = await phone(event)
    reply = await answer(communicator, question.id, "<script>alert(1)</script> snel", "t1")
    assert reply["type"] == "ack"
    assert reply["answer"] == "<script>alert(1)</script> snel"  # kept as text, shown as text
    counts = (await tally.read_snapshot(question.id)).counts
    assert "snel" in counts and not any("<" in word for word in counts)


def link(question, metric, year, **fields):
    study, _ = Study.objects.get_or_create(title="Benchmark", publisher="KIRC", year=2018)
    figure = Figure.objects.create(
        study=study, label="Self-service share", metric=metric, year=year, **fields
    )
    QuestionFigure.objects.create(question=question, figure=figure)
    return figure


async def test_reveal_adds_figures_and_the_comparison_in_words(event):
    question = await database_sync_to_async(kind_question)(event, "split")
    for year, value in ((2016, 50), (2017, 38), (2018, 39)):
        await database_sync_to_async(link)(question, "split", year, value=Decimal(value))
    screen, connected, _code = await connect(f"/ws/e/{event.code}/stage/?key={event.stage_key}")
    assert connected
    state = await receive_type(screen, "state")
    assert state["question"]["figures"] == [] and state["question"]["revealed"] is False
    for index, value in enumerate((50, 56, 53)):
        other, _ = await phone(event)
        assert (await answer(other, question.id, value, f"a{index}"))["type"] == "ack"
    results = await receive_type(screen, "results")
    while results["total"] < 3:
        results = await receive_type(screen, "results")
    assert "comparison" not in results
    await database_sync_to_async(actions.do_reveal)(question, True)
    state = await receive_type(screen, "state")
    assert [figure["year"] for figure in state["question"]["figures"]] == [2016, 2017, 2018]
    assert state["question"]["figures"][-1]["study"]["publisher"] == "KIRC"
    results = await receive_type(screen, "results")
    latest = results["comparison"][-1]
    assert latest["room"] == 53.0 and latest["measured"] == 39.0 and latest["difference"] == 14.0
    assert latest["words"]["en"] == "The room guessed 14 points more self-service than measured."
    assert latest["words"]["nl"] == (
        "De zaal schatte 14 procentpunt meer self-service dan gemeten."
    )
    assert len(results["comparison"]) == 3


async def test_reveal_without_a_figure_is_refused(event):
    from django.core.exceptions import ValidationError

    question = await database_sync_to_async(kind_question)(event, "text")
    with pytest.raises(ValidationError):
        await database_sync_to_async(actions.do_reveal)(question, True)


async def test_hidden_words_leave_every_screen(event):
    question = await database_sync_to_async(kind_question)(event, "text")
    communicator, _state = await phone(event)
    await answer(communicator, question.id, "snel vriendelijk", "t1")
    await sync_to_async(tally.set_word_hidden)(question.id, "snel", True)
    screen, _connected, _code = await connect(f"/ws/e/{event.code}/stage/?key={event.stage_key}")
    results = await receive_type(screen, "results")
    assert [entry["word"] for entry in results["summary"]["words"]] == ["vriendelijk"]


async def test_one_hide_covers_every_variant_of_a_word(event):
    question = await database_sync_to_async(kind_question)(event, "text")
    cyrillic_dze_hit, full_width_shit = "\u0455hit", "\uff53\uff48\uff49\uff54"
    for number, typed in enumerate([f"{cyrillic_dze_hit} snel", full_width_shit, "Shit!"]):
        communicator, _state = await phone(event)
        assert (await answer(communicator, question.id, typed, f"t{number}"))["type"] == "ack"
    screen, _connected, _code = await connect(f"/ws/e/{event.code}/stage/?key={event.stage_key}")
    results = await receive_type(screen, "results")
    assert results["summary"]["words"][0] == {"word": "s***", "key": "shit", "count": 3}
    # The host hides the word as shown, in capitals: stored (and matched) as it is counted.
    await database_sync_to_async(actions.do_hide_word)(question, "SHIT", True)
    assert await sync_to_async(tally.hidden_words)(question.id) == ["shit"]
    results = await receive_type(screen, "results")
    assert [entry["word"] for entry in results["summary"]["words"]] == ["snel"]


async def test_shares_comparison_names_the_biggest_gap(event):
    question = await database_sync_to_async(make_open_question)(event, options=("A", "B"))
    await database_sync_to_async(link)(question, "shares", 2018, shares=[30, 70])
    await database_sync_to_async(actions.do_reveal)(question, True)
    ids = await database_sync_to_async(option_ids)(question)
    communicator, _state = await phone(event)
    await answer(communicator, question.id, ids[0], "s1")
    screen, _connected, _code = await connect(f"/ws/e/{event.code}/stage/?key={event.stage_key}")
    results = await receive_type(screen, "results")
    comparison = results["comparison"][0]
    assert comparison["option"] == ids[0]
    assert comparison["options"] == [
        {"id": ids[0], "room": 100.0, "measured": 30.0, "difference": 70.0},
        {"id": ids[1], "room": 0.0, "measured": 70.0, "difference": -70.0},
    ]
    assert comparison["words"]["en"] == (
        "Biggest gap: A, chosen 70 points more often than measured."
    )


def test_question_kinds_reject_impossible_configuration():
    from django.core.exceptions import ValidationError

    event = make_event()
    cases = [
        {"kind": Question.Kind.CES, "scale_min": 1, "scale_max": 10},
        {"kind": Question.Kind.SPLIT},
        {"kind": Question.Kind.TEXT, "text_max_length": 0},
        {"kind": Question.Kind.QUADRANT},
    ]
    for fields in cases:
        with pytest.raises(ValidationError):
            Question(event=event, prompt="?", **fields).full_clean()


async def test_editing_a_revealed_figure_reaches_the_stage(event):
    question = await database_sync_to_async(kind_question)(event, "split")
    figure = await database_sync_to_async(link)(question, "split", 2018, value=Decimal(39))
    await database_sync_to_async(actions.do_reveal)(question, True)
    screen, _connected, _code = await connect(f"/ws/e/{event.code}/stage/?key={event.stage_key}")
    await receive_type(screen, "state")
    figure.value = Decimal(40)
    await database_sync_to_async(figure.save)()
    state = await receive_type(screen, "state")
    assert state["question"]["figures"][0]["value"] == 40.0

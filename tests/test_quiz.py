"""The research quiz on the live path: the points formula, scoring in the answer script, the
server's deadline, players' nicknames, and the leaderboard screens and phones get.

Real Redis, the real ASGI app and the real answer script; the clock is the server's."""

from __future__ import annotations

import asyncio
import io
import json
import time
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polls import actions, deadlines, quiz, quiz_board, tally, writer
from polls.models import Event, Player, Question
from polls.state import build_event_state
from tests.factories import make_event, make_open_question, make_question, option_ids, token_for
from tests.http_helpers import ORIGIN, Exchange
from tests.live_helpers import connect, receive, receive_type, send

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("disconnect_sockets"),
]


# -- the formula ----------------------------------------------------------------------------


def scoring(kind="split", correct=(), target="39", tolerance="20", window=20_000):
    return quiz.Scoring(
        kind,
        frozenset(correct),
        None if target is None else Decimal(target),
        None if tolerance is None else Decimal(tolerance),
        window,
    )


def test_an_estimate_earns_everything_at_the_target_and_nothing_at_the_tolerances_edge():
    split = scoring()
    assert quiz.closeness(split, 39) == 1000
    assert quiz.closeness(split, 49) == 500
    assert quiz.closeness(split, 29) == 500
    assert quiz.closeness(split, 58) == 50
    assert quiz.closeness(split, 59) == 0  # the edge itself
    assert quiz.closeness(split, 19) == 0
    assert quiz.closeness(split, 100) == 0
    ces = scoring("ces", target="1.6", tolerance="1.5")
    assert quiz.closeness(ces, 2) == 733  # floor(1000 * 1.1 / 1.5)
    assert quiz.closeness(ces, 1) == 600


def test_a_choice_is_right_or_wrong():
    single = scoring("single", correct=(5, 7), target=None, tolerance=None)
    assert quiz.closeness(single, 5) == quiz.closeness(single, 7) == 1000
    assert quiz.closeness(single, 6) == 0
    multiple = scoring("multiple", correct=(5, 7), target=None, tolerance=None)
    assert quiz.closeness(multiple, [7, 5]) == 1000
    assert quiz.closeness(multiple, [5]) == 0
    assert quiz.closeness(multiple, [5, 6, 7]) == 0


def test_speed_halves_the_points_over_the_window_and_no_further():
    assert quiz.points(1000, 0, 20_000) == 1000
    assert quiz.points(1000, 10_000, 20_000) == 750
    assert quiz.points(1000, 20_000, 20_000) == 500
    assert quiz.points(1000, 60_000, 20_000) == 500
    assert quiz.points(500, 10_000, 20_000) == 375
    assert quiz.points(0, 0, 20_000) == 0


def test_more_points_rank_first_then_less_answer_time():
    assert quiz.board_score(1000, 9_000) > quiz.board_score(1000, 9_001)
    assert quiz.board_score(1001, 900_000) > quiz.board_score(1000, 0)
    for points, spent in ((0, 0), (1, 1), (2710, 41_234), (100_000, 10**10 - 1)):
        assert quiz_board.total_of(quiz.board_score(points, spent)) == (points, spent)


def test_places_are_shared_by_equal_scores_and_removed_players_have_none():
    ranked = [("a", 50), ("b", 40), ("c", 40), ("d", 30)]
    assert quiz_board.places(ranked) == {"a": 1, "b": 2, "c": 2, "d": 4}
    score = quiz.board_score
    board = quiz_board.build(
        1,
        9,
        False,
        [
            ("a", score(1900, 9000)),
            ("x", score(1800, 1)),
            ("b", score(1500, 7000)),
            ("c", score(900, 4000)),
        ],
        {"a": (1000, 3000), "b": (1000, 2000), "c": (900, 4000)},
        {"a": 1, "b": 1, "c": 2, "x": 2},
        {"x"},
        {"a": "Anna", "b": "Bram"},
    )
    # Before the question: a 900/6000, b 500/5000, c not on the board.
    assert board.own["a"] == (1000, 1900, 1, 0)
    assert board.own["b"] == (1000, 1500, 2, 0)
    assert board.own["c"] == (900, 900, 3, None)
    assert "x" not in board.own and board.players == 3
    assert board.score_text("x") is not None  # a removed player hears they have no place


# -- the live path ----------------------------------------------------------------------------


@pytest.fixture
def event(db):
    return make_event(quiz=True)


def scored_single(event, limit=None):
    question = make_question(event, scored=True, time_limit=limit)
    first = question.options.first()
    first.correct = True
    first.save()
    return question


async def phone(event, token=None):
    token = token or await sync_to_async(token_for)(event)
    communicator, connected, code = await connect(f"/ws/e/{event.code}/?token={token}")
    assert connected, code
    player = await receive(communicator)
    assert player["type"] == "player"
    state = await receive_type(communicator, "state")
    return communicator, player, state


async def stage(event):
    communicator, connected, code = await connect(
        f"/ws/e/{event.code}/stage/?key={event.stage_key}"
    )
    assert connected, code
    return communicator


async def reply(communicator, message, *types):
    await send(communicator, message)
    while True:
        got = await receive(communicator)
        if got["type"] in types:
            return got


@database_sync_to_async
def open_question(event, question):
    actions.do_set_current(event, question, open_it=True)
    question.refresh_from_db()
    return question


@database_sync_to_async
def press(event, action):
    event.refresh_from_db()
    actions.do_host_action(event, action)


async def test_a_phone_in_a_quiz_event_is_a_numbered_player_and_may_choose_a_unique_nickname(event):
    await database_sync_to_async(make_open_question)(event)
    first, player, _state = await phone(event)
    assert player["name"] == f"Player {player['number']}" and player["nickname"] == ""
    second, other, _state = await phone(event)
    assert other["number"] == player["number"] + 1
    chosen = await reply(
        first, {"type": "nickname", "id": "n1", "name": "  Anne-Marie "}, "player", "error"
    )
    assert chosen == {**player, "id": "n1", "name": "Anne-Marie", "nickname": "Anne-Marie"}
    for name, code in (
        ("anne marie", "taken"),
        ("Anné_Marie!", "taken"),
        ("x" * 25, "too_long"),
        ("?!", "empty"),
    ):
        refused = await reply(
            second, {"type": "nickname", "id": "n2", "name": name}, "player", "error"
        )
        assert refused["code"] == code, name
    masked = await reply(
        second, {"type": "nickname", "id": "n3", "name": "fuck"}, "player", "error"
    )
    assert masked["name"] == "f***"
    back = await reply(first, {"type": "nickname", "id": "n4", "name": ""}, "player", "error")
    assert back["name"] == f"Player {player['number']}"
    # The same participant on a second phone is the same player.
    token = await sync_to_async(token_for)(event)
    _third, again, _state = await phone(event, token)
    _fourth, same, _state = await phone(event, token)
    assert same["number"] == again["number"]


async def test_outside_quiz_mode_there_are_no_players_and_no_nicknames(db):
    plain = await database_sync_to_async(make_event)(code="PLAIN1")
    await database_sync_to_async(make_open_question)(plain)
    token = await sync_to_async(token_for)(plain)
    communicator, connected, _code = await connect(f"/ws/e/{plain.code}/?token={token}")
    assert connected
    assert (await receive(communicator))["type"] == "state"
    refused = await reply(
        communicator, {"type": "nickname", "id": "n1", "name": "Anna"}, "player", "error"
    )
    assert refused["code"] == "not_allowed"
    assert not await database_sync_to_async(Player.objects.exists)()


async def test_answers_score_in_the_same_step_and_a_changed_answer_replaces_its_points(event):
    question = await database_sync_to_async(scored_single)(event)
    ids = await database_sync_to_async(option_ids)(question)
    right, wrong = ids[0], ids[1]
    question = await open_question(event, question)
    first, _p, _s = await phone(event)
    second, _p, _s = await phone(event)
    assert await reply(
        first, {"type": "answer", "id": "a1", "question": question.id, "value": wrong}, "ack"
    )
    assert await reply(
        second, {"type": "answer", "id": "b1", "question": question.id, "value": right}, "ack"
    )
    scores = tally.read_scores_sync(question.id)
    assert sorted(points for points, _elapsed in scores.values())[0] == 0
    assert 500 <= max(points for points, _elapsed in scores.values()) <= 1000
    await reply(
        first, {"type": "answer", "id": "a2", "question": question.id, "value": right}, "ack"
    )
    await reply(
        first, {"type": "answer", "id": "a2", "question": question.id, "value": right}, "ack"
    )  # resent
    scores = tally.read_scores_sync(question.id)
    assert all(500 <= points <= 1000 for points, _elapsed in scores.values())
    board = tally.quiz_keys(event.id)
    client = tally.get_sync_redis()
    totals = {p.decode(): int(v) for p, v in client.hgetall(board["points"]).items()}
    assert totals == {p: points for p, (points, _e) in scores.items()}
    ranked = client.zrevrange(board["board"], 0, -1, withscores=True)
    assert [quiz_board.total_of(score)[0] for _p, score in ranked] == sorted(
        totals.values(), reverse=True
    )


async def test_the_server_closes_a_timed_question_at_its_deadline_and_refuses_later_answers(
    event, settings
):
    question = await database_sync_to_async(scored_single)(event, limit=5)
    ids = await database_sync_to_async(option_ids)(question)
    screen = await stage(event)
    question = await open_question(event, question)
    early, _p, state = await phone(event)
    late, _p, _s = await phone(event)
    assert state["question"]["quiz"]["limit"] == 5
    deadline = state["question"]["quiz"]["deadline"]
    assert abs(deadline - (question.started_ms + 5000)) == 0
    assert state["question"]["quiz"]["answer"] is None  # phones never see it while open
    ack = await reply(
        early, {"type": "answer", "id": "e1", "question": question.id, "value": ids[0]}, "ack"
    )
    assert ack["answer"] == ids[0]
    # Past the deadline by the server's clock, before the keeper acts: the script refuses.
    # (Time passes: the deadline moved to a moment ago, where the database and Redis keep it.)
    passed = int(time.time() * 1000) - 1
    await database_sync_to_async(Question.objects.filter(pk=question.id).update)(deadline_ms=passed)
    client = tally.get_sync_redis()
    client.hset(tally.question_keys(question.id)["meta"], "deadline", passed)
    refused = await reply(
        late,
        {"type": "answer", "id": "l1", "question": question.id, "value": ids[0]},
        "ack",
        "error",
    )
    assert refused["code"] == "too_late"
    again = await reply(
        early,
        {"type": "answer", "id": "e1", "question": question.id, "value": ids[0]},
        "ack",
        "error",
    )
    assert again["type"] == "ack", "a resend of an answer counted in time is acknowledged"
    # The keeper: due once the grace is past; it closes the question and shows its results.
    client.zadd(tally.DEADLINES_KEY, {str(question.id): passed})
    closed = await receive_type(early, "state", timeout=5)
    while closed["question"]["open"]:
        closed = await receive_type(early, "state", timeout=5)
    assert closed["question"]["show_results"]
    assert closed["question"]["quiz"]["answer"] == {
        "correct": [ids[0]],
        "target": None,
        "tolerance": None,
    }
    score = await receive_type(early, "score", timeout=5)
    assert score["place"] == 1 and score["players"] == 1 and score["answer"] == ids[0]
    assert score["points"] == score["total"] >= 500
    mine = await receive_type(late, "score", timeout=5)
    assert mine["place"] is None and mine["points"] == 0 and mine["answer"] is None
    board = await receive_type(screen, "leaderboard", timeout=5)
    assert board["answered"] == 1 and board["right"] == 1 and board["players"] == 1
    assert board["top"][0]["place"] == 1 and board["top"][0]["gained"] == score["points"]
    assert board["top"][0]["moved"] is None
    assert tally.get_sync_redis().zcard(tally.DEADLINES_KEY) == 0
    question = await database_sync_to_async(Question.objects.get)(pk=question.id)
    assert question.state == Question.State.CLOSED
    with pytest.raises(ValidationError):
        await open_question(event, question)


def test_the_answer_writer_closes_a_timed_question_no_keeper_claimed(event):
    # Every phone and screen left during the countdown: no process keeps deadlines.
    question = scored_single(event, limit=5)
    actions.do_set_current(event, question, open_it=True)
    client = tally.get_sync_redis()
    passed = int(time.time() * 1000) - 1
    Question.objects.filter(pk=question.id).update(deadline_ms=passed)
    # A keeper would have had it by now; the writer leaves it to them a little longer.
    client.zadd(tally.DEADLINES_KEY, {str(question.id): passed - quiz.DEADLINE_GRACE_MS})
    assert deadlines.close_overdue() == 0
    assert client.zscore(tally.DEADLINES_KEY, str(question.id)) is not None
    question.refresh_from_db()
    assert question.state == Question.State.OPEN
    overdue = passed - quiz.DEADLINE_GRACE_MS - deadlines.WRITER_LAG_MS
    client.zadd(tally.DEADLINES_KEY, {str(question.id): overdue})
    assert deadlines.close_overdue() == 1
    question.refresh_from_db()
    assert question.state == Question.State.CLOSED and question.show_results
    assert client.zcard(tally.DEADLINES_KEY) == 0
    assert deadlines.close_overdue() == 0


def test_a_scored_question_does_not_open_once_its_event_left_quiz_mode(event):
    question = scored_single(event)
    Event.objects.filter(pk=event.pk).update(quiz=False)  # behind admin's back
    event.refresh_from_db()
    with pytest.raises(ValidationError, match="Only a quiz event scores its questions"):
        actions.do_set_current(event, question, open_it=True)
    question.refresh_from_db()
    assert question.state == Question.State.DRAFT and question.started_ms is None


@pytest.mark.e2e
def test_the_running_writer_closes_the_demo_quizs_question_with_nobody_connected(
    tmp_path, redis_server
):
    """``manage.py drain_answers`` as served, and no Daphne at all: the question still closes."""
    from tests.servers import make_stack

    stack = make_stack(tmp_path)
    try:
        stack.start_writer()
        stack.manage(
            "shell",
            "-c",
            "from polls.models import Question; "
            "Question.objects.filter(event__code='RADEN2018').update(time_limit=2)",
        )
        stack.manage("host_action", "RADEN2018", "open")
        (question_id,) = stack.query_one(
            "SELECT current_question_id FROM polls_event WHERE code = %s", "RADEN2018"
        )
        began = time.monotonic()
        while time.monotonic() - began < 30:
            (state, shown) = stack.query_one(
                "SELECT state, show_results FROM polls_question WHERE id = %s", question_id
            )
            if state == Question.State.CLOSED:
                break
            time.sleep(0.1)
        waited = time.monotonic() - began
        assert state == Question.State.CLOSED and shown, f"still {state} after {waited:.1f} s"
        assert "Traceback" not in stack.log_text()
    finally:
        stack.stop()


async def test_the_podium_shows_the_whole_quiz_on_the_stage(event):
    question = await database_sync_to_async(scored_single)(event)
    ids = await database_sync_to_async(option_ids)(question)
    question = await open_question(event, question)
    phones = [await phone(event) for _ in range(3)]
    for index, (communicator, _p, _s) in enumerate(phones):
        value = ids[0] if index < 2 else ids[1]
        await reply(
            communicator,
            {"type": "answer", "id": f"a{index}", "question": question.id, "value": value},
            "ack",
        )
        # Two right answers in the same millisecond would share first place.
        await asyncio.sleep(0.005)
    screen = await stage(event)
    await press(event, "podium_on")
    board = await receive_type(screen, "leaderboard", timeout=5)
    assert board["podium"] and board["players"] == 3
    assert [row["place"] for row in board["top"]][:2] == [1, 2]
    assert board["top"][2]["points"] == 0
    state = await receive_type(phones[0][0], "state")
    assert state["event"]["podium"]
    await press(event, "podium_off")
    state = await receive_type(phones[0][0], "state")
    assert not state["event"]["podium"]


# -- every score recomputes from the database -------------------------------------------------


@database_sync_to_async
def quiz_round(event):
    """A scored split (target 39 +- 20) and a scored multiple choice, both open in turn."""
    split = make_question(
        event, kind="split", options=(), scored=True, target=Decimal(39), tolerance=Decimal(20)
    )
    choice = make_question(event, kind="multiple", scored=True, options=("A", "B", "C", "D"))
    for option in list(choice.options.all())[:2]:
        option.correct = True
        option.save()
    return split, choice


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.booleans(), st.integers(0, 100), st.integers(0, 7)),
        min_size=1,
        max_size=40,
    )
)
def test_every_live_score_recomputes_exactly_from_the_database(redis, steps):
    """Random answers and changes of mind, through the real script with the server's clock:
    the points the live tally holds are those the database's rows give, and so is the board."""
    Event.objects.all().delete()
    redis.flushdb()
    event = make_event(quiz=True)
    split, choice = asyncio.run(quiz_round(event))
    ids = option_ids(choice)
    for question, is_split in ((split, True), (choice, False)):
        actions.do_set_current(event, question, open_it=True)
        spec = build_event_state(event.id)["spec"]["current"]
        given = [step for step in steps if step[1] == is_split]
        asyncio.run(play(event, question, spec, given, ids))
    writer.drain_all()
    recomputed = quiz_board.recompute(event.id)
    for question in (split, choice):
        assert recomputed.get(question.id, {}) == tally.read_scores_sync(question.id)
    board = tally.quiz_keys(event.id)
    totals = {p.decode(): int(v) for p, v in redis.hgetall(board["points"]).items()}
    expected: dict[str, int] = {}
    for per_participant in recomputed.values():
        for participant, (points, _elapsed) in per_participant.items():
            expected[participant] = expected.get(participant, 0) + points
    assert totals == expected
    # Written back (after a loss of Redis), the leaderboard is the same to the score.
    before = redis.zrevrange(board["board"], 0, -1, withscores=True)
    tally.write_scores(event.id, recomputed)
    assert redis.zrevrange(board["board"], 0, -1, withscores=True) == before


async def play(event, question, spec, steps, ids):
    scoring = quiz.Scoring.from_spec(spec["kind"], spec["quiz"])
    for number, (participant, _on_split, guess, pick) in enumerate(steps):
        value = guess if spec["kind"] == "split" else sorted({ids[pick % 4], ids[pick // 2 % 4]})
        outcome = await tally.record_answer(
            question.id,
            spec["kind"],
            f"p{participant}",
            f"m{number}",
            value,
            scored=(event.id, quiz.closeness(scoring, value)),
        )
        assert outcome.counted
        await asyncio.sleep(0.002 * (number % 3))  # answers a few ms apart: speed differs


async def test_recompute_scores_agrees_and_rebuild_tallies_brings_the_leaderboard_back(event):
    question = await database_sync_to_async(scored_single)(event, limit=30)
    ids = await database_sync_to_async(option_ids)(question)
    question = await open_question(event, question)
    for index in range(4):
        communicator, _p, _s = await phone(event)
        value = ids[index % 2]
        message = {"type": "answer", "id": f"a{index}", "question": question.id, "value": value}
        await reply(communicator, message, "ack")
    client = tally.get_sync_redis()
    board_key = tally.quiz_keys(event.id)["board"]
    before = client.zrevrange(board_key, 0, -1, withscores=True)
    assert len(before) == 4
    out = await sync_to_async(run_command)("recompute_scores", "--exit-status")
    assert "1 quiz events checked, 0 differences" in out
    client.flushdb()  # Redis lost everything
    out = await sync_to_async(run_command)("rebuild_tallies")
    assert f"event {event.id}: 1 scored questions rescored" in out
    assert client.zrevrange(board_key, 0, -1, withscores=True) == before
    meta = tally.question_keys(question.id)["meta"]
    assert int(client.hget(meta, "started")) == question.started_ms
    assert int(client.hget(meta, "deadline")) == question.deadline_ms
    # A live score that went wrong is found, and rewritten.
    some = before[0][0].decode()
    client.hset(tally.question_keys(question.id)["score"], some, "999,1")
    with pytest.raises(SystemExit):
        await sync_to_async(run_command)("recompute_scores", "--exit-status")
    out = await sync_to_async(run_command)("recompute_scores", "--write")
    assert "1 scores differ (rewritten)" in out
    assert "0 differences" in await sync_to_async(run_command)("recompute_scores")


def run_command(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


async def test_over_the_http_fallback_a_player_chooses_a_nickname_and_hears_their_score(event):
    question = await database_sync_to_async(scored_single)(event)
    ids = await database_sync_to_async(option_ids)(question)
    question = await open_question(event, question)
    token = await sync_to_async(token_for)(event)
    sse = Exchange("GET", f"/api/e/{event.code}/events", f"token={token}", ())
    await sse.start()
    assert (await sse.message())["type"] == "player"
    status, chosen = await post(event, token, {"type": "nickname", "id": "n1", "name": "Bram"})
    assert status == 200 and chosen["type"] == "player" and chosen["name"] == "Bram"
    status, ack = await post(
        event, token, {"type": "answer", "id": "a1", "question": question.id, "value": ids[0]}
    )
    assert status == 200 and ack["type"] == "ack"
    await database_sync_to_async(actions.do_set_state)(question, Question.State.CLOSED)
    await press(event, "show_results")
    score = await sse.message_of_type("score")
    assert score["place"] == 1 and score["answer"] == ids[0] and score["points"] >= 500
    await sse.disconnect()


async def post(event, token, message):
    body = json.dumps(message).encode()
    exchange = Exchange("POST", f"/api/e/{event.code}/answer", f"token={token}", (ORIGIN,), body)
    status, _headers = await exchange.start()
    reply = await exchange.reply()
    await asyncio.wait_for(exchange.task, 5)
    return status, reply


async def test_a_hall_joining_at_once_gets_one_number_each(event):
    await database_sync_to_async(make_open_question)(event)
    tokens = [await sync_to_async(token_for)(event) for _ in range(40)]
    joined = await asyncio.gather(*(phone(event, token) for token in tokens))
    numbers = sorted(player["number"] for _c, player, _s in joined)
    assert numbers == list(range(1, 41))
    again = await asyncio.gather(*(phone(event, token) for token in tokens[:5]))
    assert sorted(p["number"] for _c, p, _s in again) == sorted(
        player["number"] for (_c, player, _s) in joined[:5]
    )
    assert await database_sync_to_async(Player.objects.filter(event=event).count)() == 40


async def test_the_leaderboard_names_players_in_the_events_language(db):
    dutch = await database_sync_to_async(make_event)(code="RADEN1", quiz=True, language="nl")
    question = await database_sync_to_async(scored_single)(dutch)
    ids = await database_sync_to_async(option_ids)(question)
    question = await open_question(dutch, question)
    token = await sync_to_async(token_for)(dutch)
    path = f"/ws/e/{dutch.code}/?token={token}&lang=en"  # an English phone asks first
    communicator, connected, _code = await connect(path)
    assert connected
    player = await receive(communicator)
    assert player["name"] == f"Player {player['number']}"  # to the phone: its own language
    message = {"type": "answer", "id": "a1", "question": question.id, "value": ids[0]}
    await reply(communicator, message, "ack")
    await database_sync_to_async(actions.do_set_state)(question, Question.State.CLOSED)
    await press(dutch, "show_results")
    await receive_type(communicator, "score", timeout=5)
    screen = await stage(dutch)
    board = await receive_type(screen, "leaderboard", timeout=5)
    assert board["top"][0]["name"] == f"Speler {player['number']}"

"""The quiz's leaderboard as screens and phones see it, and its recomputation from the database.

When a state shows a scored question's results (closed, results shown) or the podium, every
process reads its event's board once for that state (``boards().of``): the sorted set, the
question's scores and answers, the names of the top ten. Screens get ``leaderboard``, each phone
its own ``score``. Places are competition places (equal scores share one); a removed player
has none and is skipped.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from django.utils import translation
from redis.exceptions import RedisError

from . import protocol, quiz, tally
from .consistency import set_aside_of
from .models import Answer, Player, Question, default_player_name
from .push import encode
from .redis_client import get_async_redis
from .state import scoring_of

TOP = 10
PODIUM_TOP = 10


def shows_board(state: protocol.EventState) -> tuple[int | None, bool] | None:
    """(the scored question whose results are shown, or None for the podium; podium?) when a
    state shows the leaderboard, else None."""
    if state["event"].get("podium"):
        question = state["question"]
        shown = question and question.get("quiz") and question["quiz"]["answer"] is not None
        return (question["id"] if shown else None, True)
    question = state["question"]
    if question and question.get("quiz") and question["quiz"]["answer"] is not None:
        return (question["id"], False)
    return None


def total_of(score: float) -> tuple[int, int]:
    """(points, answer time ms) from a sorted-set score (``quiz.board_score``)."""
    rank = int(score)
    points = -(-rank // quiz.TIME_SPAN_MS)  # ceil
    return points, points * quiz.TIME_SPAN_MS - rank


def places(ranked: list[tuple[str, int]]) -> dict[str, int]:
    """Competition places of (participant, score) best first: equal scores share a place."""
    result: dict[str, int] = {}
    previous = None
    for index, (participant, score) in enumerate(ranked, start=1):
        if score != previous:
            place, previous = index, score
        result[participant] = place
    return result


@dataclass
class Board:
    event_id: int
    question_id: int | None
    podium: bool
    leaderboard: str = ""  # the encoded stage message
    # participant -> (points gained, total, place, moved); answers for their ``score``.
    own: dict[str, tuple[int, int, int | None, int | None]] = field(default_factory=dict)
    answers: dict[str, object] = field(default_factory=dict)
    players: int = 0

    def score_text(self, participant: str) -> str | None:
        if self.question_id is None:
            return None
        gained, total, place, moved = self.own.get(participant, (0, 0, None, None))
        message: protocol.ScoreMessage = {
            "type": "score",
            "question": self.question_id,
            "answer": self.answers.get(participant),
            "points": gained,
            "total": total,
            "place": place,
            "moved": moved,
            "players": self.players,
        }
        return encode(message)


async def read_board(
    event_id: int, question_id: int | None, podium: bool, language: str = "en"
) -> Board:
    """The board as the event's screens show it: names in the event's ``language``."""
    keys = tally.quiz_keys(event_id)
    try:
        pipe = get_async_redis().pipeline(transaction=True)
        pipe.zrevrange(keys["board"], 0, -1, withscores=True)
        if question_id is not None:
            qkeys = tally.question_keys(question_id)
            pipe.hgetall(qkeys["score"])
            pipe.hgetall(qkeys["answers"])
        replies = await pipe.execute()
    except (RedisError, OSError) as error:
        raise tally.TallyUnavailable(str(error)) from error
    ranked_raw = [(p.decode(), int(score)) for p, score in replies[0]]
    scores = {}
    stored_answers = {}
    if question_id is not None:
        scores = {p.decode(): tally._score_pair(raw) for p, raw in replies[1].items()}
        stored_answers = {p.decode(): tally._decode_answer(raw) for p, raw in replies[2].items()}
    leading = [p for p, _s in ranked_raw[: TOP + 50]]
    removed, names = await _players(event_id, leading, language)
    return build(event_id, question_id, podium, ranked_raw, scores, stored_answers, removed, names)


def build(
    event_id: int,
    question_id: int | None,
    podium: bool,
    ranked_raw: list[tuple[str, int]],
    scores: dict[str, tuple[int, int]],
    stored_answers: dict[str, object],
    removed: set[str],
    names: dict[str, str],
) -> Board:
    ranked = [(p, score) for p, score in ranked_raw if p not in removed]
    now = places(ranked)
    before: list[tuple[str, int]] = []
    for participant, score in ranked:
        total, spent = total_of(score)
        gained, elapsed = scores.get(participant, (0, 0))
        if participant in scores and total - gained == 0 and spent - elapsed == 0:
            continue  # this question was their first: new on the board
        before.append((participant, quiz.board_score(total - gained, spent - elapsed)))
    before.sort(key=lambda pair: -pair[1])
    then = places(before)
    board = Board(event_id, question_id, podium, players=len(ranked))
    for participant, score in ranked:
        total, _spent = total_of(score)
        gained = scores.get(participant, (0, 0))[0]
        was = then.get(participant)
        moved = None if was is None else was - now[participant]
        board.own[participant] = (gained, total, now[participant], moved)
    board.answers = {p: a for p, a in stored_answers.items() if p not in removed}
    answered = [p for p in scores if p not in removed and p in stored_answers]
    top: list[protocol.LeaderboardRow] = []
    for participant, _score in ranked[: PODIUM_TOP if podium else TOP]:
        gained, total, place, moved = board.own[participant]
        name = names.get(participant) or default_player_name(0)
        top.append(
            {"place": place, "name": name, "points": total, "gained": gained, "moved": moved}
        )
    message: protocol.LeaderboardMessage = {
        "type": "leaderboard",
        "question": question_id,
        "podium": podium,
        "players": len(ranked),
        "answered": len(answered),
        "right": sum(1 for p in answered if scores[p][0] > 0),
        "top": top,
    }
    board.leaderboard = encode(message)
    return board


@database_sync_to_async
def _players(
    event_id: int, leading: list[str], language: str = "en"
) -> tuple[set[str], dict[str, str]]:
    removed = set(
        Player.objects.filter(event_id=event_id, removed=True).values_list("participant", flat=True)
    )
    # Set aside by the host (polls.voice): counted nowhere, so placed nowhere either, even with
    # points scored before (``recompute_scores --write`` takes those off the totals too).
    removed |= set_aside_of(event_id)
    with translation.override(language):
        names = {
            player.participant: player.shown_name
            for player in Player.objects.filter(event_id=event_id, participant__in=leading)
        }
    return removed, names


class Boards:
    """Per event loop: the board of each event's latest state that shows one, read once."""

    def __init__(self) -> None:
        self.reads: dict[tuple, asyncio.Future] = {}

    async def of(self, state: protocol.EventState) -> Board | None:
        shown = shows_board(state)
        if shown is None:
            return None
        event_id = state["event"]["id"]
        key = (event_id, state.get("revision", 0), *shown)
        read = self.reads.get(key)
        if read is None:
            for old in [k for k in self.reads if k[0] == event_id]:
                del self.reads[old]
            language = state["event"].get("language", "en")
            read = self.reads[key] = asyncio.ensure_future(read_board(event_id, *shown, language))
            read.add_done_callback(lambda done, key=key: self._forget_failed(key, done))
        return await asyncio.shield(read)

    def _forget_failed(self, key: tuple, done: asyncio.Future) -> None:
        if done.cancelled() or done.exception() is not None:
            self.reads.pop(key, None)


_boards: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Boards] = weakref.WeakKeyDictionary()


def boards() -> Boards:
    loop = asyncio.get_running_loop()
    found = _boards.get(loop)
    if found is None:
        found = _boards[loop] = Boards()
    return found


# -- recomputation from the database ----------------------------------------------------------


def recompute(event_id: int) -> dict[int, dict[str, tuple[int, int]]]:
    """Every scored question's points per participant from the Answer rows (each one's last
    answer, with the server's time of it) and the questions' clocks: what the live tally holds
    when nothing was lost (``manage.py recompute_scores``, the property test)."""
    aside = set_aside_of(event_id)
    result: dict[int, dict[str, tuple[int, int]]] = {}
    questions = Question.objects.filter(event_id=event_id, scored=True).prefetch_related("options")
    for question in questions:
        scoring = scoring_of(question)
        if scoring is None or question.started_ms is None:
            continue
        per_participant: dict[str, tuple[int, int]] = {}
        for participant, value, at_ms in _last_answers(question):
            if participant in aside:
                continue
            elapsed = max(0, at_ms - question.started_ms)
            gained = quiz.points(quiz.closeness(scoring, value), elapsed, scoring.window_ms)
            per_participant[participant] = (gained, elapsed)
        result[question.id] = per_participant
    return result


def clock_of(question: Question) -> dict[str, int] | None:
    """A scored question's clock in the tally's terms (``tally.set_quiz_clocks``), from its row."""
    if not question.scored or question.started_ms is None:
        return None
    clock = {"started": question.started_ms, "window": quiz.window_ms(question.time_limit)}
    if question.time_limit and question.deadline_ms is not None:
        clock["deadline"] = question.deadline_ms
    return clock


def _last_answers(question: Question):
    """(participant, value, server ms) of each participant's last answer (the row the writer
    keeps: one per participant, its latest)."""
    rows = Answer.objects.filter(question=question).values_list(
        "participant", "value", "answered_at"
    )
    for participant, value, answered_at in rows:
        yield participant, value, round(answered_at.timestamp() * 1000)

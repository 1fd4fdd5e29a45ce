"""The players of a quiz-mode event: a number on joining, a nickname if they choose one.

A phone of a quiz-mode event gets its ``player`` message as it connects (the row is made then,
before any question is scored: a join storm's phones in one query and one insert per turn of
the loop) and may send ``nickname``. Nicknames
are unique in the event by their folded form (``polls.quiz.nickname_key``), masked as word
clouds mask profanity; a host renames or removes a player in admin (``PlayerAdmin``).
"""

from __future__ import annotations

import asyncio
import weakref

from channels.db import database_sync_to_async
from django.db import IntegrityError, transaction
from django.db.models import Max

from . import protocol, quiz
from .answers import Rejection
from .models import Event, Player
from .qa import mask_text
from .text import clean_text


def player_of(event_id: int, participant: str) -> Player:
    """The participant's player row, made with the next free number on first sight."""
    return players_of(event_id, [participant])[participant]


def players_of(event_id: int, participants: list[str]) -> dict[str, Player]:
    """Each participant's player row; the missing ones made in one insert, numbered after the
    event's highest under the event's row lock (another process numbering at the same moment
    waits for it)."""
    found = {
        player.participant: player
        for player in Player.objects.filter(event_id=event_id, participant__in=participants)
    }
    if len(found) == len(set(participants)):
        return found
    for attempt in range(NUMBERING_ATTEMPTS):
        try:
            with transaction.atomic():
                list(Event.objects.select_for_update().filter(pk=event_id).values_list("pk"))
                found.update(
                    (player.participant, player)
                    for player in Player.objects.filter(
                        event_id=event_id, participant__in=participants
                    )
                )
                missing = [p for p in dict.fromkeys(participants) if p not in found]
                highest = Player.objects.filter(event_id=event_id).aggregate(n=Max("number"))
                made = Player.objects.bulk_create(
                    Player(event_id=event_id, participant=participant, number=number)
                    for number, participant in enumerate(missing, start=(highest["n"] or 0) + 1)
                )
            found.update((player.participant, player) for player in made)
            return found
        except IntegrityError:
            # SQLite has no row lock: another process numbered meanwhile. Read again.
            if attempt == NUMBERING_ATTEMPTS - 1:
                raise
    return found


NUMBERING_ATTEMPTS = 5


class _Joining:
    """Per event loop: the phones of a join storm that wait for their player rows, fetched
    (and made) in one database call per event and turn instead of one each."""

    def __init__(self) -> None:
        self.waiting: dict[int, dict[str, list[asyncio.Future]]] = {}
        self.task: asyncio.Task | None = None

    async def player(self, event_id: int, participant: str) -> Player:
        future = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(event_id, {}).setdefault(participant, []).append(future)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._fetch())
        return await future

    async def _fetch(self) -> None:
        await asyncio.sleep(0)  # the joins of this turn of the loop come along
        while self.waiting:
            event_id, waiting = next(iter(self.waiting.items()))
            batch = list(waiting)[:JOINS_PER_CALL]
            futures = {participant: waiting.pop(participant) for participant in batch}
            if not waiting:
                del self.waiting[event_id]
            try:
                rows = await database_sync_to_async(players_of)(event_id, batch)
            except Exception as error:  # the database away: these phones hear nothing of it
                for participant_futures in futures.values():
                    for future in participant_futures:
                        if not future.done():
                            future.set_exception(error)
                continue
            for participant, participant_futures in futures.items():
                for future in participant_futures:
                    if not future.done():
                        future.set_result(rows[participant])


JOINS_PER_CALL = 500
_joining: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Joining] = (
    weakref.WeakKeyDictionary()
)


def clean_nickname(raw: object, message_id: str | None = None) -> str:
    """The nickname as it is kept ("" takes it back), else a Rejection with its code."""
    if not isinstance(raw, str):
        raise Rejection("bad_message", message_id, detail="name")
    name = clean_text(raw)
    if len(name) > quiz.NICKNAME_CHARS:
        raise Rejection("too_long", message_id)
    if name and not quiz.nickname_key(name):
        raise Rejection("empty", message_id)
    return mask_text(name)


def rename(player: Player, nickname: str, message_id: str | None = None) -> Player:
    """Give ``player`` this (cleaned) nickname; Rejection ``taken`` when another has it."""
    player.nickname = nickname
    player.key = quiz.nickname_key(nickname) if nickname else ""
    try:
        with transaction.atomic():
            player.save(update_fields=["nickname", "key"])
    except IntegrityError:
        player.refresh_from_db()
        raise Rejection("taken", message_id) from None
    return player


def message(player: Player, message_id: str | None = None) -> protocol.PlayerMessage:
    text: protocol.PlayerMessage = {
        "type": "player",
        "number": player.number,
        "name": player.shown_name,
        "nickname": player.nickname,
        "removed": player.removed,
    }
    if message_id is not None:
        text["id"] = message_id
    return text


async def joined(event_id: int, participant: str) -> protocol.PlayerMessage:
    """The ``player`` message of a phone connecting (its row made on first sight)."""
    loop = asyncio.get_running_loop()
    joining = _joining.get(loop)
    if joining is None:
        joining = _joining[loop] = _Joining()
    return message(await joining.player(event_id, participant))


@database_sync_to_async
def choose(
    event_id: int, participant: str, raw: object, message_id: str | None
) -> protocol.PlayerMessage:
    nickname = clean_nickname(raw, message_id)
    player = player_of(event_id, participant)
    if player.removed:
        raise Rejection("not_allowed", message_id)
    if player.nickname != nickname:
        rename(player, nickname, message_id)
    return message(player, message_id)

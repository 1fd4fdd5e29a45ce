"""The players of a quiz-mode event: a number on joining, a nickname if they choose one.

A phone of a quiz-mode event gets its ``player`` message as it connects (the row is made then:
one insert per attendee, before any question is scored) and may send ``nickname``. Nicknames
are unique in the event by their folded form (``polls.quiz.nickname_key``), masked as word
clouds mask profanity; a host renames or removes a player in admin (``PlayerAdmin``).
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.db import IntegrityError, transaction
from django.db.models import Max

from . import protocol, quiz
from .answers import Rejection
from .models import Player
from .qa import mask_text
from .text import clean_text

# Numbers taken at once by phones joining together: a clash retries with the next free one.
NUMBER_ATTEMPTS = 20


def player_of(event_id: int, participant: str) -> Player:
    """The participant's player row, made with the next free number on first sight."""
    player = Player.objects.filter(event_id=event_id, participant=participant).first()
    if player is not None:
        return player
    for _attempt in range(NUMBER_ATTEMPTS):
        highest = Player.objects.filter(event_id=event_id).aggregate(n=Max("number"))["n"] or 0
        try:
            with transaction.atomic():
                return Player.objects.create(
                    event_id=event_id, participant=participant, number=highest + 1
                )
        except IntegrityError:
            existing = Player.objects.filter(event_id=event_id, participant=participant).first()
            if existing is not None:
                return existing  # this participant's other phone was quicker
    raise RuntimeError("no free player number")  # twenty joins at the same instant, twice


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


@database_sync_to_async
def joined(event_id: int, participant: str) -> protocol.PlayerMessage:
    return message(player_of(event_id, participant))


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

"""The rules of the audience Q&A: what an ``ask``, ``vote`` or ``unvote`` may be, and what a host
may do with items. Counting is polls.qa_tally's; pushing is polls.delivery's (``QaPump``).

An item is written to the database first (it must outlast Redis) and then made live in Redis;
a vote is counted in Redis first (one script call) and reaches the database through the vote
log, as answers do. Every refusal has a stable code and changes nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import attendees, protocol, qa_tally, tally
from .answers import Rejection
from .models import Event, QaAside, QaConfig, QaItem, QaVote
from .push import encode
from .text import clean_text, mask, word_key
from .tokens import Participant

MAX_TEXT = 280
MAX_NAME = 40
# How many of the top items the stage gets (the pinned one comes on its own).
STAGE_TOP = 10
# Appended to ``not_open`` in the phone's language (a lazy text: translated as it is sent).
QA_OFF = gettext_lazy("The Q&A is off.")
_WORD = re.compile(r"[^\W_]+(?:['\-][^\W_]+)*")

QA_HOST_ACTIONS = (
    "qa_off",
    "qa_open",
    "qa_moderated",
    "qa_names_on",
    "qa_names_off",
    "qa_stage_on",
    "qa_stage_off",
    "qa_approve",
    "qa_hide",
    "qa_answered",
    "qa_pin",
    "qa_unpin",
    "qa_edit",
    "qa_set_aside",
)


def items_per_minute() -> int:
    return settings.ZP_QA_ITEMS_PER_MINUTE


def votes_per_second() -> int:
    return settings.ZP_QA_VOTES_PER_SECOND


def items_per_event() -> int:
    return settings.ZP_QA_ITEMS_PER_EVENT


# -- text -------------------------------------------------------------------------------------


def mask_text(text: str) -> str:
    """Profane words masked as a word cloud masks them (``f***``), the rest as typed."""

    def masked(match: re.Match) -> str:
        word = match[0]
        key = word_key(word)
        if key is not None and mask(key) != key:
            return word[0] + "*" * (len(word) - 1)
        return word

    return _WORD.sub(masked, text)


def clean_item_text(raw: object, message_id: str | None = None) -> str:
    if not isinstance(raw, str):
        raise Rejection("bad_message", message_id, detail="text")
    text = clean_text(raw)
    if not _WORD.search(text):
        raise Rejection("empty", message_id)
    if len(text) > MAX_TEXT:
        raise Rejection("too_long", message_id)
    return mask_text(text)


def clean_name(raw: object, message_id: str | None = None) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise Rejection("bad_message", message_id, detail="name")
    name = clean_text(raw)
    if len(name) > MAX_NAME:
        raise Rejection("too_long", message_id, detail="name")
    return mask_text(name)


def payload(item: QaItem) -> dict:
    """An item as Redis keeps it for phones and screens (never its author's id)."""
    at = item.created_at or timezone.now()
    return {"id": item.id, "text": item.text, "name": item.name, "at": int(at.timestamp() * 1000)}


def public(item: dict) -> protocol.QaItem:
    """A board's item as the wire carries it."""
    return {key: item[key] for key in ("id", "text", "name", "at", "votes", "state", "pinned")}


# -- the phone's messages ---------------------------------------------------------------------


def _message_id(message: dict) -> str:
    message_id = message.get("id")
    if message_id is None:
        raise Rejection("bad_message", detail="id")
    return message_id


@database_sync_to_async
def _create_item(
    event_id: int, participant: str, message_id: str, text: str, name: str, state: str
) -> QaItem:
    try:
        with transaction.atomic():
            return QaItem.objects.create(
                event_id=event_id,
                participant=participant,
                message_id=message_id,
                text=text,
                name=name,
                state=state,
            )
    except IntegrityError:  # the same ask on two lines at once: one item
        return QaItem.objects.get(event_id=event_id, participant=participant, message_id=message_id)


def _ack(message_id: str, item: dict, voted: bool) -> protocol.QaAckMessage:
    return {"type": "qa_ack", "id": message_id, "item": public(item), "voted": voted}


async def handle(
    message: dict, participant: Participant, event_spec: dict
) -> protocol.QaAckMessage:
    """One ``ask``, ``vote`` or ``unvote`` of a phone: its ``qa_ack``, else Rejection."""
    message_id = _message_id(message)
    if not attendees.admitted(participant, event_spec) or await attendees.revoked(participant):
        raise Rejection("revoked", message_id)
    try:
        if message["type"] == "ask":
            return await ask(message, message_id, participant)
        return await vote(message, message_id, participant)
    except tally.TallyUnavailable:
        raise Rejection("unavailable", message_id) from None


async def ask(message: dict, message_id: str, participant: Participant) -> protocol.QaAckMessage:
    text = clean_item_text(message.get("text"), message_id)
    name = clean_name(message.get("name"), message_id)
    event_id, participant_id = participant.event_id, participant.participant_id
    admission = await qa_tally.admit_ask(
        event_id, participant_id, message_id, items_per_minute(), items_per_event()
    )
    if admission.status == "not_open":
        raise Rejection("not_open", message_id, detail=QA_OFF)
    if admission.status in ("flood", "full"):
        raise Rejection(admission.status, message_id)
    if admission.status == "duplicate":
        board = await qa_tally.read_board(event_id)
        item = board.items.get(admission.item)
        if item is not None:
            # As the first ack said: a set-aside author's hidden item "waits for a host".
            aside = item["state"] == "hidden" and admission.aside
            return _ack(message_id, {**item, "state": "pending"} if aside else item, False)
    # The set-aside participant's item is hidden at once; they are told it waits for a host.
    state = "visible" if admission.mode == "open" else "pending"
    if admission.aside:
        state = "hidden"
    row = await _create_item(
        event_id, participant_id, message_id, text, name if admission.names else "", state
    )
    item = payload(row)
    await qa_tally.add_item(event_id, row.id, row.state, participant_id, message_id, item)
    shown = "pending" if row.state == "hidden" else row.state
    return _ack(message_id, {**item, "votes": 0, "state": shown, "pinned": False}, False)


async def vote(message: dict, message_id: str, participant: Participant) -> protocol.QaAckMessage:
    item_id = message.get("item")
    if not isinstance(item_id, int) or isinstance(item_id, bool) or item_id <= 0:
        raise Rejection("bad_message", message_id, detail="item")
    outcome = await qa_tally.vote(
        participant.event_id,
        participant.participant_id,
        message_id,
        item_id,
        message["type"] == "vote",
        votes_per_second(),
    )
    if not outcome.counted:
        detail = _("The Q&A is off.") if outcome.status == "not_open" else None
        raise Rejection(outcome.status, message_id, detail=detail)
    item = {**(outcome.payload or {"id": item_id, "text": "", "name": "", "at": 0})}
    item.update(votes=outcome.votes, state="visible", pinned=False)
    return _ack(message_id, item, outcome.voted)


# -- messages to phones and screens -----------------------------------------------------------


def board_message(board: qa_tally.Board) -> protocol.QaBoardMessage:
    """What the stage shows: the pinned item, the top items by votes, how many are open."""
    pinned = board.items.get(board.meta.pinned) if board.meta.pinned else None
    top = [item for item in board.visible() if not item["pinned"]][:STAGE_TOP]
    return {
        "type": "qa_board",
        "version": board.meta.version,
        "mode": board.meta.mode,
        "shown": board.meta.stage and board.meta.mode != "off",
        "pinned": public(pinned) if pinned is not None else None,
        "top": [public(item) for item in top],
        "open": board.count("visible"),
        "pending": board.count("pending"),
    }


def list_head(board: qa_tally.Board) -> str:
    """A phone's ``qa`` message without its own part (``mine``, ``voted``, ``pending``), encoded
    once for every phone: each phone's text is this with its own part spliced on."""
    message = {
        "type": "qa",
        "version": board.meta.version,
        "mode": board.meta.mode,
        "names": board.meta.names,
        "items": [public(item) for item in board.visible()] if board.meta.mode != "off" else [],
    }
    return encode(message)[:-1]


def list_text(head: str, board: qa_tally.Board, mine: set[int], voted: set[int]) -> str:
    pending = [
        public(board.items[item_id])
        for item_id in sorted(mine)
        if item_id in board.items and board.items[item_id]["state"] == "pending"
    ]
    own = {"mine": sorted(mine), "voted": sorted(voted), "pending": pending}
    return head + "," + encode(own)[1:]


def changes_messages(
    changes: qa_tally.Changes, open_count: int
) -> tuple[protocol.QaChangesMessage, dict[str, protocol.QaChangesMessage]]:
    """(the message every phone gets, the messages only an author gets: their pending items)."""
    shared: protocol.QaChangesMessage = {
        "type": "qa_changes",
        "version": changes.version,
        "items": [],
        "removed": [],
        "votes": {str(item): count for item, count in sorted(changes.votes.items())},
        "open": open_count,
    }
    authors: dict[str, protocol.QaChangesMessage] = {}
    for item in changes.items:
        if item["state"] == "visible":
            shared["items"].append(public(item))
        elif item["state"] == "pending":
            own = authors.setdefault(
                item["author"],
                {**shared, "items": [], "removed": [], "votes": {}},
            )
            own["items"].append(public(item))
        else:
            shared["removed"].append(item["id"])
    return shared, authors


# -- the host's actions (polls.actions.do_host_action hands them over) ------------------------


def config_of(event: Event) -> QaConfig:
    return QaConfig.objects.get_or_create(event=event)[0]


def do_qa_config(
    event: Event, mode: str | None = None, names: bool | None = None, stage: bool | None = None
) -> None:
    """Switch the event's Q&A (or its names, or the stage's Q&A view): under the event's row
    lock, the row and Redis together; every phone gets the list again (the config moved)."""
    with transaction.atomic():
        Event.objects.select_for_update().filter(pk=event.pk).first()
        config = config_of(event)
        if mode is not None:
            config.mode = mode
        if names is not None:
            config.names_allowed = names
        if stage is not None:
            config.on_stage = stage
        if config.mode == "off":
            # Off takes the Q&A off the stage too: switched on later, it waits for the host's
            # "show on stage" instead of taking the poll's place at once.
            config.on_stage = False
        config.save()
        _live(
            lambda: qa_tally.set_config(
                event.id, config.mode, config.names_allowed, config.on_stage
            )
        )


def _live(write) -> None:
    try:
        write()
    except tally.TallyUnavailable as error:
        from .actions import nothing_changed

        raise nothing_changed() from error


def _item_of(event: Event, item: str | int) -> QaItem:
    item_id = int(item) if str(item).isdigit() else 0
    row = QaItem.objects.select_for_update().filter(event=event, pk=item_id).first()
    if row is None:
        raise ValidationError(_("There is no such Q&A item."), code="no_item")
    return row


def do_qa_item(event: Event, action: str, item: str | int, text: str = "") -> None:
    """approve, hide, answered, pin, unpin, edit or set_aside (the item's author: all their
    items hidden, and later ones too), under the event's row lock, the rows and Redis in one
    transaction: with Redis away nothing changes."""
    now = timezone.now()
    with transaction.atomic():
        Event.objects.select_for_update().filter(pk=event.pk).first()
        row = _item_of(event, item)
        changed: list[QaItem] = [row]
        if action == "approve":
            row.state = QaItem.State.VISIBLE
        elif action == "hide":
            row.state, row.pinned = QaItem.State.HIDDEN, False
        elif action == "answered":
            row.state, row.pinned, row.answered_at = QaItem.State.ANSWERED, False, now
        elif action == "pin":
            QaItem.objects.filter(event=event, pinned=True).exclude(pk=row.pk).update(pinned=False)
            row.pinned = True
            if row.state != QaItem.State.ANSWERED:
                row.state = QaItem.State.VISIBLE  # on the stage: approved
        elif action == "unpin":
            row.pinned = False
        elif action == "edit":
            row.text = clean_edit(text)
            row.edited_at = now
        elif action == "set_aside":
            QaAside.objects.get_or_create(event=event, participant=row.participant)
            others = QaItem.objects.select_for_update().filter(
                event=event, participant=row.participant
            )
            changed = [row, *others.exclude(pk=row.pk)]
            for other in changed:
                other.state, other.pinned = QaItem.State.HIDDEN, False
        else:
            raise ValidationError(_("Unknown action."), code="unknown_action")
        for other in changed:
            other.save()
        updates = [(other.id, other.state, payload(other)) for other in changed]
        # The pin as the rows now have it: at most one, and never a hidden or answered item.
        pinned = QaItem.objects.filter(event=event, pinned=True).values_list("pk", flat=True)
        pinned = pinned.first()

        def write() -> None:
            if action == "set_aside":
                qa_tally.set_aside(event.id, row.participant)
            qa_tally.moderate(event.id, updates, pinned)

        _live(write)


def clean_edit(raw: str) -> str:
    try:
        return clean_item_text(raw)
    except Rejection as rejection:
        if rejection.code == "too_long":
            raise ValidationError(
                _("An item has at most %(most)d characters.") % {"most": MAX_TEXT}
            ) from None
        raise ValidationError(_("An item needs some words.")) from None


def rebuild_from_db(event_id: int) -> None:
    """The event's Q&A in Redis as the database has it (after a Redis loss; tests)."""
    config = QaConfig.objects.filter(event_id=event_id).first()
    rows = list(QaItem.objects.filter(event_id=event_id))
    votes: dict[int, set[str]] = {}
    for item_id, participant in QaVote.objects.filter(
        item__event_id=event_id, active=True
    ).values_list("item_id", "participant"):
        votes.setdefault(item_id, set()).add(participant)
    aside = set(QaAside.objects.filter(event_id=event_id).values_list("participant", flat=True))
    qa_tally.rebuild(
        event_id,
        config.mode if config else "off",
        config.names_allowed if config else True,
        config.on_stage if config else False,
        [(payload(row), row.state, row.participant, row.pinned) for row in rows],
        votes,
        aside,
    )


def vote_time(milliseconds: int) -> datetime:
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


def host_overview(event: Event) -> dict:
    """The remote page's Q&A: its switches and every item (waiting ones first, then by votes),
    with the counts live from Redis (else as the writer wrote them)."""
    config = QaConfig.objects.filter(event=event).first() or QaConfig(event=event)
    rows = list(QaItem.objects.filter(event=event))
    try:
        votes = qa_tally.read_votes_sync(event.id)
    except tally.TallyUnavailable:
        votes = {}
    order = {"pending": 0, "visible": 1, "answered": 2, "hidden": 3}
    items = [
        {
            "id": row.id,
            "text": row.text,
            "name": row.name,
            "state": row.state,
            "state_label": row.get_state_display(),
            "pinned": row.pinned,
            "votes": votes.get(row.id, 0),
            "created_at": row.created_at,
        }
        for row in rows
    ]
    items.sort(key=lambda item: (order[item["state"]], -item["votes"], -item["id"]))
    return {
        "mode": config.mode,
        "names": config.names_allowed,
        "on_stage": config.on_stage,
        "items": items,
        "pending": sum(1 for item in items if item["state"] == "pending"),
    }

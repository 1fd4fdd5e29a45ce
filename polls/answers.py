"""Validation of one client message: the parsed answer, or a rejection with a stable code.

Every message from a phone passes through here before anything is counted. The question spec
used for validation comes from the event state the server last broadcast (no database read on
the answer path); whether the question is open is decided atomically by the tally itself.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from . import attendees, kinds, protocol, quiz, tally
from .kinds.base import is_int
from .segments import tags_of
from .tokens import Participant

MESSAGE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
CLIENT_TYPES = ("answer", "ping", "ask", "vote", "unvote", "nickname")

ERROR_MESSAGES: dict[protocol.ErrorCode, Promise] = {
    "bad_json": _("The message is not valid JSON."),
    "bad_message": _("The message is missing a field or has one of the wrong type."),
    "too_large": _("The message is too large."),
    "unknown_type": _("Unknown message type."),
    "unknown_question": _("This question does not belong to this event."),
    "not_open": _("This question is not open for answers."),
    "bad_value": _("That answer is not possible for this question."),
    "too_long": _("That answer is too long."),
    "empty": _("That answer has no words we can count; try other words."),
    "rate_limited": _("Too many messages; slow down a little."),
    "not_allowed": _("You are not allowed to do that."),
    "unavailable": _("Answers cannot be counted right now; yours will be sent again."),
    "revoked": _("Your personal code has been withdrawn; ask the organiser."),
    "unknown_item": _("There is no such item in the Q&A."),
    "hidden_item": _("This item is no longer in the Q&A."),
    "own_item": _("You cannot vote on your own item."),
    "flood": _("Too many items or votes at once; wait a moment."),
    "full": _("The Q&A holds as many questions as it can take; no more can be added."),
    "too_late": _("Time is up: this question no longer takes answers."),
    "taken": _("Another player has that nickname; choose another."),
}


class Rejection(Exception):
    """A client message refused with a stable code; nothing was counted."""

    def __init__(
        self, code: protocol.ErrorCode, message_id: str | None = None, detail: str | None = None
    ):
        super().__init__(code)
        self.code = code
        self.message_id = message_id
        self.detail = detail

    def payload(self) -> protocol.ErrorMessage:
        text = str(ERROR_MESSAGES[self.code])
        if self.detail:
            text = f"{text} {self.detail}"
        return {"type": "error", "id": self.message_id, "code": self.code, "message": text}


@dataclass(frozen=True)
class ValidAnswer:
    message_id: str
    question_id: int
    kind: protocol.Kind
    value: protocol.AnswerValue
    # A profile question's answer: it moves the participant's segments.
    profile: bool = False
    # Asked on joining: taken whatever the question's open flag.
    always_open: bool = False
    # A scored question: (event id, the answer's closeness, ``polls.quiz.closeness``).
    scored: tuple[int, int] | None = None


class SegmentMemory:
    """A line's knowledge of its participant's segments, so an answer costs no read for them.
    Stale knowledge is harmless: the tally keeps each question's own record of them."""

    def __init__(self, known: str | None = None) -> None:
        self.known = known

    async def tags(self, event_spec: protocol.EventSpec, participant_id: str) -> str:
        if self.known is None:
            self.known = await segments_of(event_spec, participant_id)
        return self.known


def parse_message(text: str | None, data: bytes | None) -> protocol.ClientMessage:
    """Decode a raw frame into a JSON object with a known type (and a well-formed id, if any);
    an answer's other members are checked by ``validate_answer``."""
    raw = text if text is not None else (data or b"")
    size = len(raw.encode()) if isinstance(raw, str) else len(raw)
    if size > settings.ZP_MAX_MESSAGE_BYTES:
        raise Rejection("too_large")
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: a few KB of nested brackets outrun the parser's stack.
        raise Rejection("bad_json") from None
    if not isinstance(message, dict):
        raise Rejection("bad_message")
    message_id = message.get("id")
    if message_id is not None and not (
        isinstance(message_id, str) and MESSAGE_ID_PATTERN.match(message_id)
    ):
        raise Rejection("bad_message", detail="id")
    if message.get("type") not in CLIENT_TYPES:
        raise Rejection("unknown_type", message_id)
    return message


def validate_value(spec: protocol.QuestionSpec, value: Any) -> protocol.AnswerValue:
    """Check a value against the question spec; return it in its canonical form."""
    kind = kinds.find(spec["kind"])
    if kind is None:
        raise Rejection("bad_value")
    try:
        return kind.validate(spec, value)
    except kinds.Refused as refused:
        raise Rejection(refused.code) from None


def validate_answer(message: protocol.ClientMessage, event_spec: protocol.EventSpec) -> ValidAnswer:
    """Check an ``answer`` message against the event's current question."""
    message_id = message.get("id")
    if message_id is None:
        raise Rejection("bad_message", detail="id")
    question_id = message.get("question")
    if not is_int(question_id):
        raise Rejection("bad_message", message_id, detail="question")
    if "value" not in message:
        raise Rejection("bad_message", message_id, detail="value")
    if question_id not in event_spec["question_ids"]:
        raise Rejection("unknown_question", message_id)
    profile = profile_spec(event_spec, question_id)
    if profile is not None and profile["ask_on_join"]:
        if not (is_int(message["value"]) and message["value"] in profile["options"]):
            raise Rejection("bad_value", message_id)
        return ValidAnswer(message_id, question_id, "single", message["value"], True, True)
    current = event_spec["current"]
    if current is None or current["id"] != question_id or not current["open"]:
        raise Rejection("not_open", message_id)
    try:
        value = validate_value(current, message["value"])
    except Rejection as rejection:
        rejection.message_id = message_id
        raise
    scored = None
    if current.get("quiz"):
        block = current["quiz"]
        scored = (
            block["event"],
            quiz.closeness(quiz.Scoring.from_spec(current["kind"], block), value),
        )
    return ValidAnswer(
        message_id, question_id, current["kind"], value, profile is not None, scored=scored
    )


def profile_spec(event_spec: protocol.EventSpec, question_id: int) -> protocol.ProfileSpec | None:
    for profile in event_spec.get("profiles", ()):
        if profile["id"] == question_id:
            return profile
    return None


async def segments_of(event_spec: protocol.EventSpec, participant_id: str) -> str:
    """The participant's segments (``segments.tags_of``) from their profile answers in the
    tally: one read, and none in an event without profile questions."""
    profiles = [profile["id"] for profile in event_spec.get("profiles", ())]
    if not profiles:
        return ""
    given = await tally.answers_across(profiles, participant_id)
    return tags_of(given)


async def count_answer(
    message: protocol.ClientMessage,
    event_spec: protocol.EventSpec,
    participant: Participant,
    memory: SegmentMemory | None = None,
) -> protocol.AckMessage:
    """Validate and count one ``answer`` message; the ``ack`` to send back, else Rejection.

    ``memory``: the participant's segments as their line knows them (else read once here).
    A profile answer moves the participant's answers on every question of the event to their
    new segments before it is acknowledged.

    Every transport a phone has (the socket, the HTTP fallback) answers through this. A token
    younger than ``ZP_ANSWER_WARMUP_SECONDS`` has its answer held until it is that old: nobody
    reads a question and taps within seconds of joining, but a loop of join + answer does.
    """
    valid = validate_answer(message, event_spec)
    if not attendees.admitted(participant, event_spec) or await attendees.revoked(participant):
        raise Rejection("revoked", valid.message_id)
    participant_id = participant.participant_id
    # The token's time is a whole second: it was issued somewhere in the second after it, so
    # the hold runs from its end (at least the warm-up, at most a second more).
    warm_up = settings.ZP_ANSWER_WARMUP_SECONDS
    wait = participant.issued_at + 1 + warm_up - time.time() if warm_up else 0
    if wait > 0:
        await asyncio.sleep(min(wait, warm_up + 1))
    memory = memory or SegmentMemory()
    try:
        tags = await memory.tags(event_spec, participant_id)
        outcome = await tally.record_answer(
            valid.question_id,
            valid.kind,
            participant_id,
            valid.message_id,
            valid.value,
            tags,
            valid.always_open,
            valid.scored,
        )
        if outcome.counted and valid.profile:
            # Also for a resend: the move before its first ack may have failed.
            memory.known = await segments_of(event_spec, participant_id)
            await tally.move_segments(event_spec["question_ids"], participant_id, memory.known)
    except tally.TallyUnavailable:
        raise Rejection("unavailable", valid.message_id) from None
    if not outcome.counted:
        raise Rejection(outcome.status, valid.message_id)  # not_open, too_late, rate_limited
    answer = valid.value
    if outcome.status == "duplicate":
        # A resend of a message already counted: report what is counted now.
        try:
            answer = await tally.answer_of(valid.question_id, participant_id)
        except tally.TallyUnavailable:
            raise Rejection("unavailable", valid.message_id) from None
    return {"type": "ack", "id": valid.message_id, "question": valid.question_id, "answer": answer}

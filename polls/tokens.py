"""Signed participant tokens, each bound to one event."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.core import signing

SALT = "zaalpeiling.participant"


@dataclass(frozen=True)
class Participant:
    event_id: int
    event_code: str
    participant_id: str


def issue_participant_token(event_id: int, event_code: str) -> str:
    payload = {"e": event_id, "c": event_code, "p": uuid.uuid4().hex}
    return signing.dumps(payload, salt=SALT, compress=False)


def read_participant_token(token: str | None, event_code: str) -> Participant | None:
    """The participant a token names, or None when it is missing, forged or for another event."""
    if not token or len(token) > 300:
        return None
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("c") != event_code:
        return None
    event_id, participant_id = payload.get("e"), payload.get("p")
    if not isinstance(event_id, int) or not isinstance(participant_id, str):
        return None
    return Participant(event_id, event_code, participant_id)


def participant_cookie_name(event_code: str) -> str:
    return f"zp_p_{event_code}"

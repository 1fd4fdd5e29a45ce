"""Signed participant tokens, each bound to one event, with an expiry.

A participant id says, without any lookup, when its token was issued and from which network
(a keyed digest of the client address, never the address itself): ``<joined hex>-<tag>-<random>``.
That is what lets the host's abuse view (``polls.voice``) find a burst of young tokens from one
address answering alike from the answers alone. Attendee-list events use ``a-<attendee id>``
instead, so a personal code counts once however many devices use it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

SALT = "zaalpeiling.participant"
MAX_TOKEN_CHARS = 300


@dataclass(frozen=True)
class Participant:
    event_id: int
    event_code: str
    participant_id: str
    issued_at: int  # unix seconds, from the signed token
    attendee_id: int | None = None  # attendee-list events: whose personal code


@dataclass(frozen=True)
class Origin:
    """Where an open participant came from, as its id tells: join second and address tag."""

    joined: int
    tag: str


def address_tag(address: str) -> str:
    """Eight hex digits keyed by the secret key: equal for one address, useless to reverse."""
    return _address_tag(settings.SECRET_KEY, address)


# A hall behind one address asks for the same tag thousands of times a second (the join guard's
# keys, each participant id); the key is part of the cache's key, so a new key gives new tags.
@functools.lru_cache(maxsize=4096)
def _address_tag(secret_key: str, address: str) -> str:
    key = secret_key.encode()
    return hmac.new(key, f"addr:{address}".encode(), hashlib.sha256).hexdigest()[:8]


def new_participant_id(address: str, now: float | None = None) -> str:
    joined = int(time.time() if now is None else now)
    return f"{joined:x}-{address_tag(address)}-{secrets.token_hex(8)}"


def attendee_participant_id(attendee_id: int) -> str:
    return f"a-{attendee_id}"


def origin_of(participant_id: str) -> Origin | None:
    """Join second and address tag of an open participant id; None for any other kind."""
    parts = participant_id.split("-")
    if len(parts) != 3 or len(parts[1]) != 8:
        return None
    try:
        return Origin(int(parts[0], 16), parts[1])
    except ValueError:
        return None


def issue_participant_token(
    event_id: int, event_code: str, participant_id: str, attendee_id: int | None = None
) -> str:
    payload = {"e": event_id, "c": event_code, "p": participant_id}
    if attendee_id is not None:
        payload["a"] = attendee_id
    return signing.dumps(payload, salt=SALT, compress=False)


def read_participant_token(token: str | None, event_code: str) -> Participant | None:
    """The participant a token names, or None when it is missing, forged, expired (older than
    ``ZP_TOKEN_MAX_AGE`` seconds) or for another event."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    try:
        payload = signing.loads(token, salt=SALT, max_age=settings.ZP_TOKEN_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is one
        return None
    if not isinstance(payload, dict) or payload.get("c") != event_code:
        return None
    event_id, participant_id = payload.get("e"), payload.get("p")
    if not isinstance(event_id, int) or not isinstance(participant_id, str):
        return None
    attendee_id = payload.get("a")
    if attendee_id is not None and not isinstance(attendee_id, int):
        return None
    return Participant(event_id, event_code, participant_id, _issued_at(token), attendee_id)


def _issued_at(token: str) -> int:
    # The token's own timestamp (base62 before the signature), checked by the signer above.
    return signing.b62_decode(token.rsplit(":", 2)[-2])


def participant_cookie_name(event_code: str) -> str:
    return f"zp_p_{event_code}"

"""A stage screen's key: whether a key opens the screen, and the digest a state carries of it."""

from __future__ import annotations

import hashlib
import hmac

from .models import Event


def stage_key_matches(event: Event, key: str) -> bool:
    """Whether ``key`` opens the event's stage screen (compared in constant time)."""
    return bool(key) and hmac.compare_digest(key.encode(), event.stage_key.encode())


def stage_key_digest(stage_key: str) -> str:
    """Travels in the state, so a rotated key closes old screens even if a message was lost."""
    return hashlib.sha256(stage_key.encode()).hexdigest()[:16]

"""Personal codes of attendee-list events (the join path's part; the rest arrives with the
attendee-list work)."""

from __future__ import annotations

from channels.db import database_sync_to_async

from .codes import normalise_code
from .models import AttendeeCode


@database_sync_to_async
def attendee_for_join(event_id: int, typed: str) -> int | None:
    code = normalise_code(typed)[:16]
    found = AttendeeCode.objects.filter(event_id=event_id, code=code, revoked_at__isnull=True)
    return found.values_list("id", flat=True).first()


@database_sync_to_async
def _is_revoked(attendee_id: int) -> bool:
    return AttendeeCode.objects.filter(pk=attendee_id, revoked_at__isnull=False).exists()


async def revoked(participant) -> bool:
    """Whether the participant joined with a personal code that has since been revoked."""
    if participant.attendee_id is None:
        return False
    return await _is_revoked(participant.attendee_id)

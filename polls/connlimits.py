"""Caps on the sockets and event streams one participant and one address hold open, per server
process (limits on everything a stranger can make grow).

A phone needs one connection, two while a reconnect overlaps the old one, a few with a second
tab; a token opening hundreds is a script holding memory and file descriptors. A hall behind one
venue NAT shares an address, so that cap is only a ceiling below the process's file limit.
Counted per process, with no Redis round trip on connect: with P processes on one listening
socket a participant can hold at most P times its cap (docs/reliability.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from . import metrics


class _Counts:
    def __init__(self) -> None:
        self.open: dict[str, int] = {}

    def take(self, key: str, limit: int) -> bool:
        held = self.open.get(key, 0)
        if held >= limit:
            return False
        self.open[key] = held + 1
        return True

    def give_back(self, key: str) -> None:
        held = self.open.get(key, 0) - 1
        if held > 0:
            self.open[key] = held
        else:
            self.open.pop(key, None)


_participants = _Counts()
_addresses = _Counts()


@dataclass
class Admission:
    """One admitted connection; ``release`` once, when it ends."""

    participant_id: str
    address: str
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            _participants.give_back(self.participant_id)
            _addresses.give_back(self.address)


def admit(participant_id: str, address: str) -> Admission | None:
    """A place for one more connection of this participant from this address, or None."""
    if not _addresses.take(address, settings.ZP_MAX_CONNECTIONS_PER_ADDRESS):
        metrics.connection_refused("address")
        return None
    if not _participants.take(participant_id, settings.ZP_MAX_CONNECTIONS_PER_PARTICIPANT):
        _addresses.give_back(address)
        metrics.connection_refused("participant")
        return None
    return Admission(participant_id, address)

"""Rounding the product shows everywhere: half away from zero on exact decimals (7.25 -> 7.3,
an NPS of -12.5 -> -13), never the float's binary rounding."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def round_half_up(value: Decimal | float, places: int = 0) -> Decimal:
    quantum = Decimal(1).scaleb(-places)
    return Decimal(str(value)).quantize(quantum, rounding=ROUND_HALF_UP)

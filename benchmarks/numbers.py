"""Numbers for people, written once for every Python face (exports, the comparison's words).

Rounding the product shows everywhere: half away from zero on exact decimals (7.25 -> 7.3,
an NPS of -12.5 -> -13), never the float's binary rounding. The browser's twin is
static/polls/format.js; tests/test_browser_format.py holds the two to the same strings.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.utils.formats import number_format

# Figure.Metric values (benchmarks.models), by value: this module needs no app loaded.
PERCENT_METRICS = ("split", "percentage", "shares")
MEAN_METRICS = ("mean", "ces")


def round_half_up(value: Decimal | float, places: int = 0) -> Decimal:
    quantum = Decimal(1).scaleb(-places)
    return Decimal(str(value)).quantize(quantum, rounding=ROUND_HALF_UP)


def number(value: Decimal | float, places: int = 0, signed: bool = False) -> str:
    """A number in the active language (7,5 in Dutch), rounded half up, never "-0"; signed
    puts a "+" before a positive one."""
    rounded = round_half_up(value, places)
    if rounded == 0:
        rounded = abs(rounded)
    text = number_format(rounded, decimal_pos=places, use_l10n=True)
    return f"+{text}" if signed and rounded > 0 else text


def places(value: Decimal | float) -> int:
    """A whole number reads whole (39%), anything else to one decimal (39,5%)."""
    return 0 if float(value).is_integer() else 1


def show_metric(metric: str, value: Decimal | float | None, spec: dict) -> str:
    """A research figure's value as the stage writes it: 39 / 61, 63%, +13, 7,5. ``spec`` is
    the question's (a split with a part B reads as both parts)."""
    if value is None:
        return "-"
    if metric == "split" and (spec.get("split") or {}).get("b"):
        return f"{number(value, places(value))} / {number(100 - value, places(value))}"
    if metric in PERCENT_METRICS:
        return f"{number(value, places(value))}%"
    if metric == "nps":
        return number(value, signed=True)
    return number(value, 1)


def show_difference(metric: str, difference: Decimal | float | None) -> str:
    """The room minus the research, signed: +0,4 for means, +13 for points."""
    if difference is None:
        return ""
    return number(difference, 1 if metric in MEAN_METRICS else 0, signed=True)

"""Room versus research: the difference in numbers and in words, from plain numbers.

Knows nothing of polls: callers pass the room's figure in the research's metric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .numbers import number, round_half_up


@dataclass(frozen=True)
class OptionGap:
    key: str
    label: str
    room: float
    measured: float

    @property
    def difference(self) -> float:
        return _round(self.room - self.measured)


def _round(value: float, places: int = 1) -> float:
    return float(round_half_up(value, places))


def in_every_language(say: Callable[[], str]) -> dict[str, str]:
    words = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            words[code] = say()
    return words


def _value_words(metric: str, room: float, measured: float, subject: str, lower_is_better: bool):
    difference = room - measured
    places = 1 if metric in ("mean", "ces") else 0
    gap = number(abs(difference), places)
    count = int(round_half_up(abs(difference)))  # chooses "point" or "points"
    if Decimal(gap.replace(",", ".")) == 0:
        return _("The room's answer matches what was measured.")
    more = difference > 0
    values = {"gap": gap, "subject": subject}
    if metric == "split":
        if more:
            return (
                ngettext(
                    "The room guessed %(gap)s point more %(subject)s than measured.",
                    "The room guessed %(gap)s points more %(subject)s than measured.",
                    count,
                )
                % values
            )
        return (
            ngettext(
                "The room guessed %(gap)s point less %(subject)s than measured.",
                "The room guessed %(gap)s points less %(subject)s than measured.",
                count,
            )
            % values
        )
    if metric == "percentage":
        if more:
            return (
                ngettext(
                    "The room guessed %(gap)s point higher than measured.",
                    "The room guessed %(gap)s points higher than measured.",
                    count,
                )
                % values
            )
        return (
            ngettext(
                "The room guessed %(gap)s point lower than measured.",
                "The room guessed %(gap)s points lower than measured.",
                count,
            )
            % values
        )
    if metric == "nps":
        if more:
            return (
                ngettext(
                    "The room's NPS is %(gap)s point above the research.",
                    "The room's NPS is %(gap)s points above the research.",
                    count,
                )
                % values
            )
        return (
            ngettext(
                "The room's NPS is %(gap)s point below the research.",
                "The room's NPS is %(gap)s points below the research.",
                count,
            )
            % values
        )
    if metric == "ces":
        less_effort = (not more) if lower_is_better else more
        if less_effort:
            return _("The room reports %(gap)s less effort than measured.") % values
        return _("The room reports %(gap)s more effort than measured.") % values
    if more:
        return _("The room's average is %(gap)s higher than measured.") % values
    return _("The room's average is %(gap)s lower than measured.") % values


def compare_value(
    metric: str,
    measured: float,
    room: float | None,
    subject: str = "",
    lower_is_better: bool = False,
) -> dict:
    """One figure (split, percentage, NPS, mean, CES) against the room's value."""
    if room is None:
        return {
            "room": None,
            "measured": measured,
            "difference": None,
            "words": in_every_language(lambda: _("No answers from the room yet.")),
        }
    return {
        "room": _round(room),
        "measured": measured,
        "difference": _round(room - measured),
        "words": in_every_language(
            lambda: _value_words(metric, room, measured, subject, lower_is_better)
        ),
    }


def compare_shares(gaps: list[OptionGap], respondents: int) -> dict:
    """Shares per option: every option's gap, and the largest one in words."""
    options = [
        {
            "id": int(gap.key) if gap.key.isdigit() else gap.key,
            "room": gap.room,
            "measured": gap.measured,
            "difference": gap.difference,
        }
        for gap in gaps
    ]
    if respondents == 0 or not gaps:
        return {
            "option": None,
            "room": None,
            "measured": None,
            "difference": None,
            "options": options,
            "words": in_every_language(lambda: _("No answers from the room yet.")),
        }
    widest = max(gaps, key=lambda gap: abs(gap.difference))

    def say() -> str:
        gap = number(abs(widest.difference))
        if Decimal(gap.replace(",", ".")) == 0:
            return _("The room's answers match what was measured.")
        values = {"label": widest.label, "gap": gap}
        count = int(round_half_up(abs(widest.difference)))
        if widest.difference > 0:
            return (
                ngettext(
                    "Biggest gap: %(label)s, chosen %(gap)s point more often than measured.",
                    "Biggest gap: %(label)s, chosen %(gap)s points more often than measured.",
                    count,
                )
                % values
            )
        return (
            ngettext(
                "Biggest gap: %(label)s, chosen %(gap)s point less often than measured.",
                "Biggest gap: %(label)s, chosen %(gap)s points less often than measured.",
                count,
            )
            % values
        )

    return {
        "option": options[gaps.index(widest)]["id"],
        "room": widest.room,
        "measured": widest.measured,
        "difference": widest.difference,
        "options": options,
        "words": in_every_language(say),
    }

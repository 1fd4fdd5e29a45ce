"""How the record reads for people: numbers in the event's language, research figures with
their displays, and result lines (which each kind fills, see ``ResultTable``).

Numbers are written by ``benchmarks.numbers``, the formatter the stage's format.js mirrors:
39 / 61, 63%, +13, 7,5 in Dutch.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils import translation

from benchmarks.models import Figure
from benchmarks.numbers import number, show_difference
from benchmarks.numbers import show_metric as show

# Ranges take an en dash: Excel opens a CSV cell "10-19" as a date.
EN_DASH = "\u2013"


def tidy(value: float | Decimal | None) -> float | int | None:
    """39.0 -> 39: whole numbers read as whole numbers in every file."""
    if value is None:
        return None
    as_float = float(value)
    return int(as_float) if as_float.is_integer() else as_float


def research(figure: dict, compared: dict | None, spec: dict) -> dict:
    study = figure["study"]
    metric = figure["metric"]
    shares = [tidy(share) for share in figure["shares"] or []]
    measured = tidy(figure["value"])
    entry = {
        "figure": figure["id"],
        "label": figure["label"],
        "metric": metric,
        "year": figure["year"],
        "segment": figure.get("segment") or "",
        "measured": measured,
        "shares": shares,
        "measured_display": (
            " / ".join(show(metric, share, spec) for share in shares)
            if metric == Figure.Metric.SHARES
            else show(metric, measured, spec)
        ),
        "study": study["title"],
        "publisher": study["publisher"],
        "study_year": study["year"],
        "url": study["url"],
        "source": f"{study['title']} ({study['publisher']}, {study['year']})",
        "compared": compared is not None,
        "room": None,
        "room_display": "",
        "difference": None,
        "difference_display": "",
        "words": "",
        "option": None,
        "options": {},
    }
    if compared is None:
        return entry
    language = translation.get_language()
    entry["room"] = tidy(compared["room"])
    entry["difference"] = tidy(compared["difference"])
    entry["difference_display"] = show_difference(metric, compared["difference"])
    entry["words"] = compared["words"].get(language) or compared["words"].get("en", "")
    if metric == Figure.Metric.SHARES:
        entry["option"] = compared["option"]
        entry["options"] = {
            str(option["id"]): {
                "measured": tidy(option["measured"]),
                "difference": tidy(option["difference"]),
            }
            for option in compared["options"]
        }
    elif compared["room"] is not None:
        entry["room_display"] = show(metric, compared["room"], spec)
    return entry


def beside(entry: dict, measured, difference, words: str, spec: dict) -> dict:
    """One figure as it stands beside one result line."""
    metric = entry["metric"]
    return {
        "figure": entry["figure"],
        "label": entry["label"],
        "metric": metric,
        "year": entry["year"],
        "study": entry["study"],
        "publisher": entry["publisher"],
        "source": entry["source"],
        "measured": tidy(measured),
        "measured_display": show(metric, measured, spec),
        "difference": tidy(difference),
        "difference_display": show_difference(metric, difference),
        "words": words,
        # Where the measured share lies on the option's 0-100 bar (the printable page marks it).
        "mark": (
            f"{min(max(float(measured), 0), 100):g}"
            if measured is not None and metric == Figure.Metric.SHARES
            else None
        ),
    }


def line(
    label: str,
    measure: str = "",
    count: int | None = None,
    percent: int | None = None,
    value: float | int | None = None,
    key: str | None = None,
    display: str = "",
) -> dict:
    return {
        "key": key,
        "label": label,
        "measure": measure,
        "count": count,
        "percent": percent,
        # Bar widths on the printable page: a plain number, never localised ("7,5" is no width).
        "bar": str(percent) if percent is not None else None,
        "value": tidy(value),
        "display": display,
        "research": [],
    }


class ResultTable:
    """A question's result as table lines, filled by its kind (``export_lines``): ``lines``
    (what was counted), ``summary_lines`` (mean, NPS groups, the split), ``items`` (the
    printable page's own figure) and ``headline``, the line value figures stand beside."""

    def __init__(
        self, spec: dict, payload: dict, total: int, raw: dict, message: dict, screen: bool
    ):
        self.spec = spec
        self.payload = payload
        self.total = total
        self.raw = raw
        self.counts = message["counts"]
        self.summary = message["summary"]
        self.screen = screen
        self.lines: list[dict] = []
        self.summary_lines: list[dict] = []
        self.items: list[dict] = []
        self.headline: dict | None = None

    def label(self, option_id) -> str:
        return self.spec["labels"].get(str(option_id), f"#{option_id}")

    line = staticmethod(line)
    number = staticmethod(number)

    @staticmethod
    def span(low: int, high: int) -> str:
        return f"{low}{EN_DASH}{high}"

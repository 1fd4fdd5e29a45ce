"""2x2 quadrant: a point (x, y in 0..100) for each listed item; per item the mean point and how
many placed it in each quadrant."""

from __future__ import annotations

from typing import TypedDict

from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import results
from .base import QuestionFields, QuestionKind, Refused, Section, in_range, option_ids


class QuadrantFields(QuestionFields):
    quadrant_x_label = models.CharField(_("horizontal axis"), max_length=60, blank=True)
    quadrant_x_low = models.CharField(_("left end"), max_length=40, blank=True)
    quadrant_x_high = models.CharField(_("right end"), max_length=40, blank=True)
    quadrant_y_label = models.CharField(_("vertical axis"), max_length=60, blank=True)
    quadrant_y_low = models.CharField(_("bottom end"), max_length=40, blank=True)
    quadrant_y_high = models.CharField(_("top end"), max_length=40, blank=True)


class Axes(TypedDict):
    """``state.question.quadrant``: the axes' names and the names of their ends."""

    x: str
    x_low: str
    x_high: str
    y: str
    y_low: str
    y_high: str


class Point(TypedDict):
    x: int
    y: int


PlacedValue = dict[str, Point]  # a point per option id


class Quadrants(TypedDict):
    tl: int
    tr: int
    bl: int
    br: int


class PlacedItem(TypedDict):
    id: int
    x: float | None
    y: float | None
    quadrants: Quadrants


class QuadrantSummary(TypedDict):
    items: list[PlacedItem]


QUADRANT = Section(
    "quadrant",
    5,
    _("2x2 quadrant"),
    Axes,
    QuadrantFields,
    in_spec=False,  # the axes' labels are for people; validating a point needs none
)
CORNERS = ("tl", "tr", "bl", "br")
POINTS = range(101)


def quadrant_of(x: int, y: int) -> str:
    return ("t" if y >= 50 else "b") + ("r" if x >= 50 else "l")


class Quadrant(QuestionKind):
    name = "quadrant"
    label = _("2x2 quadrant")
    position = 10
    has_options = True
    section = QUADRANT
    publishes_counts = False
    print_template = "polls/kinds/quadrant/print.html"
    load_test_options = 4
    value_schema = PlacedValue
    summary_schema = QuadrantSummary
    sample_fields = {"quadrant_x_label": "x", "quadrant_y_label": "y"}

    def validate(self, spec, value):
        """A point for every item, keyed by option id."""
        if not isinstance(value, dict) or set(value) != {str(item) for item in spec["options"]}:
            raise Refused()
        points = {}
        for key in sorted(value, key=int):
            point = value[key]
            if not isinstance(point, dict) or set(point) != {"x", "y"}:
                raise Refused()
            if not (in_range(point["x"], 0, 100) and in_range(point["y"], 0, 100)):
                raise Refused()
            points[key] = {"x": point["x"], "y": point["y"]}
        return points

    def buckets(self, value):
        """``<item>:x:<x>``, ``<item>:y:<y>`` and ``<item>:q:<tl|tr|bl|br>`` per item."""
        buckets = []
        for item, point in value.items():
            buckets += [
                f"{item}:x:{point['x']}",
                f"{item}:y:{point['y']}",
                f"{item}:q:{quadrant_of(point['x'], point['y'])}",
            ]
        return buckets

    def quadrant_summary(self, options: list[int], counts: dict[str, int]) -> dict:
        items = []
        for option in options:

            def axis(name: str, option: int = option) -> float | None:
                return results.mean(
                    [(value, counts.get(f"{option}:{name}:{value}", 0)) for value in POINTS], 1
                )

            quadrants = {corner: counts.get(f"{option}:q:{corner}", 0) for corner in CORNERS}
            items.append({"id": option, "x": axis("x"), "y": axis("y"), "quadrants": quadrants})
        return {"items": items}

    def summarise(self, spec, total, counts, hidden):
        return {}, self.quadrant_summary(spec["options"], counts)

    def payload_block(self, question) -> dict:
        return {
            "x": question.quadrant_x_label,
            "x_low": question.quadrant_x_low,
            "x_high": question.quadrant_x_high,
            "y": question.quadrant_y_label,
            "y_low": question.quadrant_y_low,
            "y_high": question.quadrant_y_high,
        }

    def check(self, question) -> dict:
        if not (question.quadrant_x_label and question.quadrant_y_label):
            return {"quadrant_y_label": _("Name both axes of the 2x2.")}
        return {}

    def export_lines(self, table) -> None:
        axes = table.payload[QUADRANT.key] or {}
        x_axis, y_axis = axes.get("x", ""), axes.get("y", "")
        corners = {
            "tr": (gettext("top right"), axes.get("x_high"), axes.get("y_high")),
            "tl": (gettext("top left"), axes.get("x_low"), axes.get("y_high")),
            "br": (gettext("bottom right"), axes.get("x_high"), axes.get("y_low")),
            "bl": (gettext("bottom left"), axes.get("x_low"), axes.get("y_low")),
        }
        for number, item in enumerate(table.summary["items"], start=1):
            label = table.label(item["id"])
            key = str(item["id"])
            for axis, mean in ((x_axis, item["x"]), (y_axis, item["y"])):
                table.lines.append(
                    table.line(
                        label,
                        measure=gettext("Average %(axis)s") % {"axis": axis},
                        value=mean,
                        key=key,
                        display="-" if mean is None else table.number(mean, 1),
                    )
                )
            quadrants = item["quadrants"]
            percent = results.largest_remainder_percentages(quadrants, sum(quadrants.values()))
            for corner, (name, x_end, y_end) in corners.items():
                measure = name
                if x_end and y_end:
                    measure = f"{name}: {x_axis} {x_end}, {y_axis} {y_end}"
                table.lines.append(
                    table.line(
                        label,
                        measure=measure,
                        count=quadrants[corner],
                        percent=percent[corner],
                        key=key,
                    )
                )
            placed = item["x"] is not None and item["y"] is not None
            table.items.append(
                {
                    "number": number,
                    "label": label,
                    "x_display": "-" if item["x"] is None else table.number(item["x"], 1),
                    "y_display": "-" if item["y"] is None else table.number(item["y"], 1),
                    # SVG coordinates (y grows downwards): plain numbers, never localised.
                    "cx": f"{item['x']:g}" if placed else None,
                    "cy": f"{100 - item['y']:g}" if placed else None,
                }
            )

    def readable_answer(self, question, value, label):
        return "; ".join(
            f"{label(item)}: x {point['x']}, y {point['y']}" for item, point in value.items()
        )

    def brief_answer(self, value, labels) -> str:
        if not isinstance(value, dict):
            return super().brief_answer(value, labels)
        return "; ".join(
            f"{labels.get(int(item), item)} ({point.get('x')}, {point.get('y')})"
            for item, point in value.items()
            if str(item).isdigit() and isinstance(point, dict)
        )

    def prepare_load_test(self, question) -> None:
        question.quadrant_x_label, question.quadrant_y_label = "Satisfaction", "Impact"

    def draw(self, question, rng):
        return {
            str(option): {"x": rng.randint(0, 100), "y": rng.randint(0, 100)}
            for option in option_ids(question)
        }


KIND = Quadrant()

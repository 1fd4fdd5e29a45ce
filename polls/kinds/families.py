"""Bases shared by kinds of one family: choosing options, and numbers on a scale; with the
shapes and the question fields the kinds of a family share."""

from __future__ import annotations

import random
from typing import Any, TypedDict

from django.db import models
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .. import results
from .base import QuestionFields, QuestionKind, Refused, Section, in_range, per_key, plain_buckets

# -- choosing options -------------------------------------------------------------------------


class ChoiceSummary(TypedDict):
    """single, multiple"""

    percent: dict[str, int]


# -- numbers on a scale -----------------------------------------------------------------------


class ScaleFields(QuestionFields):
    scale_min = models.IntegerField(_("scale minimum"), default=1)
    scale_max = models.IntegerField(_("scale maximum"), default=10)
    scale_min_label = models.CharField(_("label at the minimum"), max_length=40, blank=True)
    scale_max_label = models.CharField(_("label at the maximum"), max_length=40, blank=True)
    lower_is_better = models.BooleanField(
        _("lower is better"),
        default=False,
        help_text=_("Customer effort score: a lower score means less effort."),
    )


class ScaleRange(TypedDict):
    """``state.question.scale``: the points a scale kind's answer lies on."""

    min: int
    max: int
    min_label: str
    max_label: str
    lower_is_better: bool


ScaleValue = int  # a point of the scale


class ScaleSummary(TypedDict):
    """scale, ces"""

    percent: dict[str, int]
    mean: float | None


class NpsGroups(TypedDict):
    promoters: int
    passives: int
    detractors: int


class NpsSummary(TypedDict):
    """nps, enps"""

    score: int | None
    promoters: int
    passives: int
    detractors: int
    groups: NpsGroups


SCALE = Section("scale", 1, _("Scale, NPS and CES"), ScaleRange, ScaleFields)


class ChoiceKind(QuestionKind):
    """The attendee picks options; the result is each option's share of respondents."""

    has_options = True
    comparable_metrics = frozenset({"shares"})
    summary_schema = ChoiceSummary

    def buckets(self, value: Any) -> list[str]:
        return plain_buckets(value)

    def shares(self, counts: dict[str, int], total: int) -> dict[str, int]:
        raise NotImplementedError

    def segment_measures(self, spec, summary, total):
        return {key: float(value) for key, value in summary["percent"].items() if key != "0"}

    def gap_words(self, spec, key, more, less, gap, count):
        option = spec.get("labels", {}).get(key, key)
        return ngettext(
            "%(more)s chose %(option)s %(gap)s point more often than %(less)s.",
            "%(more)s chose %(option)s %(gap)s points more often than %(less)s.",
            count,
        ) % {"more": more, "less": less, "option": option, "gap": gap}

    def summarise(self, spec, total, counts, hidden):
        counts = per_key([str(option) for option in spec["options"]], counts)
        return counts, {"percent": self.shares(counts, total)}

    def export_lines(self, table) -> None:
        percent = table.summary["percent"]
        for option in table.spec["options"]:
            key = str(option)
            table.lines.append(
                table.line(
                    table.label(option),
                    count=table.counts.get(key, 0),
                    percent=percent.get(key, 0),
                    key=key,
                )
            )


class ScaleKind(QuestionKind):
    """An integer on ``spec["scale"]``; counted per point, so means are exact."""

    section = SCALE
    value_schema = ScaleValue
    summary_schema = ScaleSummary

    def validate(self, spec: dict, value: Any) -> int:
        if in_range(value, spec["scale"]["min"], spec["scale"]["max"]):
            return value
        raise Refused()

    def buckets(self, value: Any) -> list[str]:
        return plain_buckets(value)

    def points(self, spec: dict) -> list[str]:
        return [str(point) for point in range(spec["scale"]["min"], spec["scale"]["max"] + 1)]

    def summarise(self, spec, total, counts, hidden):
        counts = per_key(self.points(spec), counts)
        return counts, {
            "percent": results.largest_remainder_percentages(counts, total),
            "mean": results.scale_mean(counts),
        }

    measure_places = 1

    def segment_measures(self, spec, summary, total):
        return {} if summary["mean"] is None else {"mean": summary["mean"]}

    def gap_words(self, spec, key, more, less, gap, count):
        return _("%(more)s gave %(gap)s more on average than %(less)s.") % {
            "more": more,
            "less": less,
            "gap": gap,
        }

    def payload_block(self, question) -> dict:
        return {
            "min": question.scale_min,
            "max": question.scale_max,
            "min_label": question.scale_min_label,
            "max_label": question.scale_max_label,
            "lower_is_better": False,
        }

    def check(self, question) -> dict:
        errors = {}
        if question.scale_min >= question.scale_max:
            errors["scale_max"] = _("The maximum must be greater than the minimum.")
        elif question.scale_max - question.scale_min > 100:
            errors["scale_max"] = _("A scale may have at most 101 points.")
        return errors

    def point_lines(self, table) -> None:
        scale = table.spec["scale"]
        percent = table.summary.get("percent") or results.largest_remainder_percentages(
            table.counts, table.total
        )
        for point in range(scale["min"], scale["max"] + 1):
            key = str(point)
            label = key
            if point == scale["min"] and scale["min_label"]:
                label = f"{point} ({scale['min_label']})"
            elif point == scale["max"] and scale["max_label"]:
                label = f"{point} ({scale['max_label']})"
            table.lines.append(
                table.line(
                    label, count=table.counts.get(key, 0), percent=percent.get(key, 0), key=key
                )
            )

    def export_lines(self, table) -> None:
        self.point_lines(table)
        mean = table.summary["mean"]
        table.headline = table.line(
            "",
            measure=gettext("Average"),
            value=mean,
            display="-" if mean is None else table.number(mean, 1),
        )
        table.summary_lines.append(table.headline)

    def readable_answer(self, question, value, label) -> int:
        return int(value)

    def draw(self, question: dict, rng: random.Random) -> int:
        scale = question.get("scale") or {"min": 0, "max": 10}
        return rng.randint(int(scale["min"]), int(scale["max"]))


class NpsKind(ScaleKind):
    """0-10, grouped into promoters, passives and detractors; the score is % promoters minus
    % detractors. Subclasses set where the groups begin."""

    comparable_metrics = frozenset({"nps"})
    summary_schema = NpsSummary
    promoter_from = 9
    passive_from = 7
    score_name = _("NPS")

    def payload_block(self, question) -> dict:
        return {**super().payload_block(question), "min": 0, "max": 10}

    def check(self, question) -> dict:
        return {}  # always 0-10, whatever the scale fields say

    def group_of(self, score: int) -> str:
        if score >= self.promoter_from:
            return "promoters"
        return "passives" if score >= self.passive_from else "detractors"

    def nps_summary(self, counts: dict[str, int]) -> dict:
        groups = {"promoters": 0, "passives": 0, "detractors": 0}
        for value, count in counts.items():
            groups[self.group_of(int(value))] += count
        respondents = sum(groups.values())
        # Each share rounded on its own (not forced to sum to 100), so that the shares on
        # screen agree with the score: 43% promoters - 29% detractors reads as +14.
        shares = results.percentages(groups, respondents)
        return {
            "score": results.difference_percent(
                groups["promoters"], groups["detractors"], respondents
            ),
            **shares,
            "groups": groups,
        }

    def summarise(self, spec, total, counts, hidden):
        counts = per_key(self.points(spec), counts)
        return counts, self.nps_summary(counts)

    measure_places = 0

    def segment_measures(self, spec, summary, total):
        return {} if summary["score"] is None else {"score": float(summary["score"])}

    def gap_words(self, spec, key, more, less, gap, count):
        return ngettext(
            "The %(score)s of %(more)s is %(gap)s point higher than that of %(less)s.",
            "The %(score)s of %(more)s is %(gap)s points higher than that of %(less)s.",
            count,
        ) % {"score": self.score_name, "more": more, "less": less, "gap": gap}

    def export_lines(self, table) -> None:
        self.point_lines(table)
        groups = [
            ("promoters", gettext("Promoters"), self.promoter_from, 10),
            ("passives", gettext("Passives"), self.passive_from, self.promoter_from - 1),
            ("detractors", gettext("Detractors"), 0, self.passive_from - 1),
        ]
        for key, name, low, high in groups:
            table.summary_lines.append(
                table.line(
                    f"{name} ({table.span(low, high)})",
                    count=table.summary["groups"][key],
                    percent=table.summary[key],
                    key=key,
                )
            )
        score = table.summary["score"]
        table.headline = table.line(
            "",
            measure=str(self.score_name),
            value=score,
            display="-" if score is None else table.number(score, signed=True),
        )
        table.summary_lines.append(table.headline)

    def prepare_load_test(self, question) -> None:
        question.scale_min, question.scale_max = 0, 10
        question.scale_min_label, question.scale_max_label = "Not at all", "Certainly"

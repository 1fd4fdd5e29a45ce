"""Split (percentage guess): an integer 0-100 for part A, B being the rest; the mean split
rounded to whole points (53/47) and the distribution in 10-point bins."""

from __future__ import annotations

from typing import TypedDict

from django.db import models
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .. import results
from .base import QuestionFields, QuestionKind, Refused, Section, in_range, plain_buckets


class SplitFields(QuestionFields):
    split_a_label = models.CharField(
        _("part A"), max_length=60, blank=True, help_text=_("Split: e.g. self-service.")
    )
    split_b_label = models.CharField(
        _("part B"),
        max_length=60,
        blank=True,
        help_text=_("Split: e.g. live contact. Empty for a plain percentage guess."),
    )


class SplitParts(TypedDict):
    """``state.question.split``: the two parts' names (``b`` empty: a percentage guess)."""

    a: str
    b: str


SplitValue = int  # part A's share, 0..100


class SplitSummary(TypedDict):
    mean_a: int | None
    mean_b: int | None
    bins: dict[str, int]


SPLIT = Section("split", 3, _("Split / percentage guess"), SplitParts, SplitFields, collapsed=True)
BINS = range(0, 100, 10)


class Split(QuestionKind):
    name = "split"
    label = _("Split / percentage guess")
    position = 7
    section = SPLIT
    comparable_metrics = frozenset({"split", "percentage"})
    value_schema = SplitValue
    summary_schema = SplitSummary
    sample_fields = {"split_a_label": "A", "split_b_label": "B"}

    def validate(self, spec, value):
        if in_range(value, 0, 100):
            return value
        raise Refused()

    def buckets(self, value):
        return plain_buckets(value)

    def segment_measures(self, spec, summary, total):
        return {} if summary["mean_a"] is None else {"a": float(summary["mean_a"])}

    def gap_words(self, spec, key, more, less, gap, count):
        return ngettext(
            "%(more)s put %(subject)s %(gap)s point higher than %(less)s.",
            "%(more)s put %(subject)s %(gap)s points higher than %(less)s.",
            count,
        ) % {
            "more": more,
            "less": less,
            "subject": (spec.get("split") or {}).get("a", ""),
            "gap": gap,
        }

    def split_summary(self, counts: dict[str, int]) -> dict:
        mean = results.mean([(int(value), count) for value, count in counts.items()], 0)
        bins = {str(start): 0 for start in BINS}
        for value, count in counts.items():
            bins[str(min(int(value) // 10 * 10, 90))] += count
        return {
            "mean_a": None if mean is None else int(mean),
            "mean_b": None if mean is None else 100 - int(mean),
            "bins": bins,
        }

    def summarise(self, spec, total, counts, hidden):
        return counts, self.split_summary(counts)  # counts: per percentage given (sparse)

    def payload_block(self, question) -> dict:
        return {"a": question.split_a_label, "b": question.split_b_label}

    def check(self, question) -> dict:
        if not question.split_a_label:
            return {"split_a_label": _("Name part A (for example: self-service).")}
        return {}

    def export_lines(self, table) -> None:
        bins = table.summary["bins"]
        percent = results.largest_remainder_percentages(bins, table.total)
        for start in BINS:
            key = str(start)
            end = 100 if start == 90 else start + 9
            table.lines.append(
                table.line(table.span(start, end), count=bins[key], percent=percent[key], key=key)
            )
        split = table.spec["split"] or {"a": "", "b": ""}
        parts = [(split["a"], table.summary["mean_a"])]
        if split["b"]:  # a plain percentage guess has no part B
            parts.append((split["b"], table.summary["mean_b"]))
        for part, mean in parts:
            table.summary_lines.append(
                table.line(
                    part,
                    measure=gettext("Average"),
                    value=mean,
                    display="-" if mean is None else f"{table.number(mean)}%",
                )
            )
        table.headline = table.summary_lines[0]  # research on a split compares part A

    def readable_answer(self, question, value, label):
        part_a = f"{question.split_a_label} {int(value)}%".strip()
        if question.split_b_label:
            return f"{part_a} / {question.split_b_label} {100 - int(value)}%"
        return part_a

    def prepare_load_test(self, question) -> None:
        question.split_a_label, question.split_b_label = "Self-service", "Live contact"

    def draw(self, question, rng):
        return rng.randint(0, 100)


KIND = Split()

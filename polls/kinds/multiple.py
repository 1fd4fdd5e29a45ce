"""Multiple choice: a set of option ids, ``choices.min..choices.max`` of them; each option's
share of respondents (a respondent counts once, so the shares need not sum to 100)."""

from __future__ import annotations

from typing import TypedDict

from django.db import models
from django.utils.translation import gettext_lazy as _

from .. import results
from .base import ChosenValue, QuestionFields, Refused, Section, is_int, option_ids
from .families import ChoiceKind


class ChoicesFields(QuestionFields):
    min_choices = models.PositiveSmallIntegerField(_("fewest choices"), default=1)
    max_choices = models.PositiveSmallIntegerField(
        _("most choices"), null=True, blank=True, help_text=_("Empty: any number of options.")
    )


class ChoiceBounds(TypedDict):
    """``state.question.choices``: how many options an answer picks."""

    min: int
    max: int


CHOICES = Section("choices", 2, _("Multiple choice"), ChoiceBounds, ChoicesFields, collapsed=True)


class Multiple(ChoiceKind):
    name = "multiple"
    label = _("Multiple choice")
    position = 2
    section = CHOICES
    value_schema = ChosenValue  # distinct ones
    sample_fields = {"max_choices": 3}

    def validate(self, spec, value):
        if not isinstance(value, list) or not all(is_int(item) for item in value):
            raise Refused()
        chosen = sorted(set(value))
        if len(chosen) != len(value) or not set(chosen) <= set(spec["options"]):
            raise Refused()
        if not spec["choices"]["min"] <= len(chosen) <= spec["choices"]["max"]:
            raise Refused()
        return chosen

    def shares(self, counts, total):
        return results.percentages(counts, total)

    def payload_block(self, question) -> dict:
        return {
            "min": question.min_choices,
            "max": question.max_choices or len(question.options.all()),
        }

    def check(self, question) -> dict:
        if question.max_choices is not None and question.max_choices < max(question.min_choices, 1):
            return {
                "max_choices": _(
                    "The most choices must be at least the fewest choices (and at least 1)."
                )
            }
        return {}

    def check_options(self, question, labels):
        if not question.max_choices:
            return None
        if question.max_choices > len(labels):
            return _("The most choices (%(max)d) is more than the number of options.") % {
                "max": question.max_choices
            }
        if question.min_choices > len(labels):
            return _("The fewest choices is more than the number of options.")
        return None

    def readable_answer(self, question, value, label):
        return "; ".join(label(option) for option in value)

    def prepare_load_test(self, question) -> None:
        question.min_choices, question.max_choices = 1, 3

    def draw(self, question, rng):
        options = option_ids(question)
        choices = question.get("choices") or {}
        low = max(1, int(choices.get("min") or 1))
        high = min(len(options), int(choices.get("max") or len(options)))
        return sorted(rng.sample(options, rng.randint(low, max(low, high))))

    def same_answer(self, first, second) -> bool:
        return sorted(first) == sorted(second)


KIND = Multiple()

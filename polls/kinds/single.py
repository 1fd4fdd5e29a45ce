"""Single choice: one option id; each option's share of respondents, summing to 100."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from .. import results
from .base import OptionValue, Refused, is_int, option_ids
from .families import ChoiceKind


class Single(ChoiceKind):
    name = "single"
    label = _("Single choice")
    position = 1
    load_test_options = 4
    value_schema = OptionValue

    def validate(self, spec, value):
        if is_int(value) and value in spec["options"]:
            return value
        raise Refused()

    def shares(self, counts, total):
        return results.largest_remainder_percentages(counts, total)

    def readable_answer(self, question, value, label):
        return label(value)

    def prepare_load_test(self, question) -> None:
        pass  # options only

    def draw(self, question, rng):
        return rng.choice(option_ids(question))


KIND = Single()

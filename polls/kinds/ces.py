"""Customer effort score: a 1-5 or 1-7 scale whose direction the host sets (lower = less
effort in the seeds' usage); the mean to one decimal and the distribution."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from .families import ScaleKind

SCALES = ((1, 5), (1, 7))


class Ces(ScaleKind):
    name = "ces"
    label = _("Customer effort score")
    position = 6
    comparable_metrics = frozenset({"ces"})
    sample_fields = {"scale_max": 5, "lower_is_better": True}

    def payload_block(self, question) -> dict:
        return {**super().payload_block(question), "lower_is_better": question.lower_is_better}

    def check(self, question) -> dict:
        errors = {}
        if (question.scale_min, question.scale_max) not in SCALES:
            errors["scale_max"] = _("A customer effort score uses a 1-5 or a 1-7 scale.")
        return {**errors, **super().check(question)}

    def prepare_load_test(self, question) -> None:
        question.scale_min, question.scale_max, question.lower_is_better = 1, 5, True


KIND = Ces()

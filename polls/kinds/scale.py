"""Scale (report mark): an integer on the question's scale (default 1-10); the mean to one
decimal and the distribution."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from .families import ScaleKind


class Scale(ScaleKind):
    name = "scale"
    label = _("Scale / report mark")
    position = 3
    comparable_metrics = frozenset({"mean"})

    def prepare_load_test(self, question) -> None:
        question.scale_min, question.scale_max = 1, 10


KIND = Scale()

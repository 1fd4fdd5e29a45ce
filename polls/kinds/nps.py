"""Net Promoter Score: 0-10; promoters 9-10, passives 7-8, detractors 0-6."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from .families import NpsKind


class Nps(NpsKind):
    name = "nps"
    label = _("Net Promoter Score (0-10)")
    position = 4
    promoter_from, passive_from = 9, 7
    score_name = _("NPS")


KIND = Nps()

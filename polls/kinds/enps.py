"""European NPS, as the seeds define it: 0-10; promoters 8-10, passives 6-7, detractors 0-5."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from .families import NpsKind


class Enps(NpsKind):
    name = "enps"
    label = _("European NPS (0-10, promoters 8-10)")
    position = 5
    promoter_from, passive_from = 8, 6
    score_name = _("eNPS")


KIND = Enps()

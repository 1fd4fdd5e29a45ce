"""Studies and the figures they measured; knows nothing of polls."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

# Shares given as whole percentages may miss 100 by rounding (63/14/7/3/12 sums to 99).
SHARES_ROUNDING_TOLERANCE = Decimal(1)


class Study(models.Model):
    title = models.CharField(_("title"), max_length=200)
    publisher = models.CharField(_("publisher"), max_length=200)
    year = models.PositiveSmallIntegerField(_("year"))
    url = models.URLField(_("URL"), blank=True)
    sample = models.CharField(_("sample"), max_length=300, blank=True)
    note = models.TextField(_("note"), blank=True)
    # Who may change the study and its figures besides superusers; without one it is library
    # research, read-only to everyone else.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="studies",
    )

    class Meta:
        verbose_name = _("study")
        verbose_name_plural = _("studies")
        ordering = ["-year", "title"]

    def __str__(self) -> str:
        return f"{self.title} ({self.publisher}, {self.year})"


class Figure(models.Model):
    class Metric(models.TextChoices):
        SHARES = "shares", _("Share per option")
        SPLIT = "split", _("Split")
        PERCENTAGE = "percentage", _("Percentage")
        NPS = "nps", _("NPS")
        MEAN = "mean", _("Mean mark")
        CES = "ces", _("Customer effort score")

    study = models.ForeignKey(
        Study, verbose_name=_("study"), on_delete=models.CASCADE, related_name="figures"
    )
    label = models.CharField(_("label"), max_length=200)
    metric = models.CharField(_("metric"), max_length=16, choices=Metric.choices)
    value = models.DecimalField(
        _("value"),
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Split: part A in %. Percentage: %. NPS: -100 to 100. Mean and CES: the mean."),
    )
    shares = models.JSONField(
        _("shares"),
        default=list,
        blank=True,
        help_text=_("Share per option: percentages in the order of the question's options."),
    )
    shares_sum_to_100 = models.BooleanField(
        _("shares sum to 100"),
        default=True,
        help_text=_("Off when respondents could give several answers."),
    )
    year = models.PositiveSmallIntegerField(_("year measured"))
    unit = models.CharField(_("unit"), max_length=16, blank=True)
    scale_min = models.IntegerField(_("scale minimum"), null=True, blank=True)
    scale_max = models.IntegerField(_("scale maximum"), null=True, blank=True)
    lower_is_better = models.BooleanField(_("lower is better"), default=False)
    # Matched to a profile option's label by the app that links figures to questions: this app
    # knows nothing of events.
    segment = models.CharField(
        _("segment"),
        max_length=120,
        blank=True,
        help_text=_(
            "Measured for one segment only: a label matching an option of a profile question, "
            'e.g. "Generation Z". Empty: the whole population.'
        ),
    )

    class Meta:
        verbose_name = _("figure")
        verbose_name_plural = _("figures")
        ordering = ["study", "label", "year"]

    def __str__(self) -> str:
        segment = f", {self.segment}" if self.segment else ""
        return f"{self.label} ({self.year}{segment}: {self.display_value()})"

    def display_value(self) -> str:
        if self.metric == self.Metric.SHARES:
            return " / ".join(f"{share:g}" for share in self.shares)
        if self.value is None:
            return "-"
        if self.metric == self.Metric.NPS:
            return f"{self.value:+g}"
        if self.metric == self.Metric.SPLIT:
            return f"{self.value:g} / {100 - self.value:g}"
        return f"{self.value:g}{self.unit}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.metric == self.Metric.SHARES:
            errors.update(self._clean_shares())
        elif self.value is None:
            errors["value"] = _("This metric needs a value.")
        elif self.metric in (self.Metric.SPLIT, self.Metric.PERCENTAGE):
            if not 0 <= self.value <= 100:
                errors["value"] = _("A percentage lies between 0 and 100.")
        elif self.metric == self.Metric.NPS:
            if not -100 <= self.value <= 100:
                errors["value"] = _("An NPS lies between -100 and +100.")
        elif self.metric in (self.Metric.MEAN, self.Metric.CES):
            errors.update(self._clean_scale())
        if errors:
            raise ValidationError(errors)

    def _clean_shares(self) -> dict[str, str]:
        shares = self.shares
        if not isinstance(shares, list) or len(shares) < 2:
            return {"shares": _("Give at least two shares, e.g. [63, 14, 7, 3, 12].")}
        if not all(
            isinstance(share, int | float) and not isinstance(share, bool) for share in shares
        ):
            return {"shares": _("Shares are numbers, e.g. [63, 14, 7, 3, 12].")}
        if any(not 0 <= share <= 100 for share in shares):
            return {"shares": _("Each share lies between 0 and 100.")}
        total = sum(Decimal(str(share)) for share in shares)
        if self.shares_sum_to_100 and abs(total - 100) > SHARES_ROUNDING_TOLERANCE:
            return {
                "shares": _("These shares sum to %(total)s, not 100.") % {"total": f"{total:g}"}
            }
        return {}

    def _clean_scale(self) -> dict[str, str]:
        if self.scale_min is None or self.scale_max is None:
            return {"scale_max": _("A mean needs its scale (minimum and maximum).")}
        if self.scale_min >= self.scale_max:
            return {"scale_max": _("The maximum must be greater than the minimum.")}
        if not self.scale_min <= self.value <= self.scale_max:
            return {"value": _("The value lies outside the scale.")}
        return {}

    def as_payload(self) -> dict:
        """The figure as screens and phones get it (numbers as floats)."""
        study = self.study
        return {
            "id": self.id,
            "label": self.label,
            "metric": self.metric,
            "year": self.year,
            "value": float(self.value) if self.value is not None else None,
            "shares": [float(share) for share in self.shares] if self.shares else None,
            "unit": self.unit,
            "scale": (
                {"min": self.scale_min, "max": self.scale_max}
                if self.scale_min is not None and self.scale_max is not None
                else None
            ),
            "lower_is_better": self.lower_is_better,
            "segment": self.segment,
            "study": {
                "title": study.title,
                "publisher": study.publisher,
                "year": study.year,
                "url": study.url,
            },
        }

"""Studies and the figures they measured; knows nothing of polls."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Study(models.Model):
    title = models.CharField(_("title"), max_length=200)
    publisher = models.CharField(_("publisher"), max_length=200)
    year = models.PositiveSmallIntegerField(_("year"))
    url = models.URLField(_("URL"), blank=True)
    sample = models.CharField(_("sample"), max_length=300, blank=True)
    note = models.TextField(_("note"), blank=True)

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
    values = models.JSONField(_("values"), default=dict)
    year = models.PositiveSmallIntegerField(_("year measured"))
    unit = models.CharField(_("unit"), max_length=16, blank=True)

    class Meta:
        verbose_name = _("figure")
        verbose_name_plural = _("figures")
        ordering = ["study", "label", "year"]

    def __str__(self) -> str:
        return f"{self.label} ({self.year})"

"""Studies and figures in admin: every staff user reads the whole library; besides superusers,
only a study's owner changes it and its figures, and only while nobody else's work shows them.

Who else shows a figure is known only to the apps that use figures (polls links them to
questions): they register a check here (``register_use_check``), so this app imports none of
them and keeps one admin class per model whichever app's admin module loads first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Case, CharField, QuerySet, Value, When
from django.utils.translation import gettext_lazy as _

from .models import Figure, Study

# Each check takes a user and returns the ids of the figures that user must leave alone because
# work the user may not change (another host's event) shows them.
FigureUseCheck = Callable[[Any], QuerySet]
_use_checks: list[FigureUseCheck] = []


def register_use_check(check: FigureUseCheck) -> FigureUseCheck:
    if check not in _use_checks:
        _use_checks.append(check)
    return check


def changeable_studies(user) -> QuerySet[Study]:
    """The studies whose content (fields and figures) ``user`` may change."""
    if not user.is_active:
        return Study.objects.none()
    if user.is_superuser:
        return Study.objects.all()
    studies = Study.objects.filter(owner=user)
    for check in _use_checks:
        studies = studies.exclude(figures__in=check(user))
    return studies


def may_change_study(user, study: Study) -> bool:
    if user.is_superuser:
        return True
    if study.pk is None:  # being added: it will be the user's own (save_model)
        return True
    return changeable_studies(user).filter(pk=study.pk).exists()


def may_read_history(user, study: Study) -> bool:
    # The history names whoever changed the study; another host's name is theirs to give.
    return user.is_superuser or (study.owner_id is not None and study.owner_id == user.pk)


OWNERSHIP_LABELS = {
    "library": _("library (read-only; only administrators change it)"),
    "yours": _("yours"),
    "yours_in_use": _("yours, read-only while another host's event shows its figures"),
    "other": _("another host's (read-only)"),
}


def with_ownership(studies: QuerySet[Study], user) -> QuerySet[Study]:
    """Each study says whose it is from ``user``'s seat, naming nobody else."""
    return studies.annotate(
        ownership_for_viewer=Case(
            When(owner__isnull=True, then=Value("library")),
            When(pk__in=changeable_studies(user).values("pk"), then=Value("yours")),
            When(owner=user.pk, then=Value("yours_in_use")),
            default=Value("other"),
            output_field=CharField(),
        )
    )


class FollowsStudyRule:
    """Change and delete only where the study's rule allows (``may_change_study``); ``obj`` is
    the study itself unless ``study_of`` says otherwise."""

    @staticmethod
    def study_of(obj):
        return obj

    def _follows_study_rule(self, request, obj) -> bool:
        return obj is None or may_change_study(request.user, self.study_of(obj))

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and self._follows_study_rule(request, obj)

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and self._follows_study_rule(request, obj)


class FigureInline(FollowsStudyRule, admin.StackedInline):
    model = Figure
    extra = 0
    fields = [
        ("label", "metric", "year"),
        ("value", "unit"),
        ("shares", "shares_sum_to_100"),
        ("scale_min", "scale_max", "lower_is_better"),
        "segment",
    ]

    # ``obj`` is the study: its figures follow its rule.
    def has_add_permission(self, request, obj):
        allowed = super().has_add_permission(request, obj)
        return allowed and self._follows_study_rule(request, obj)


@admin.register(Study)
class StudyAdmin(FollowsStudyRule, admin.ModelAdmin):
    list_display = ["title", "publisher", "year", "ownership"]
    search_fields = ["title", "publisher"]
    inlines = [FigureInline]
    # A URL typed without a scheme means https (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_fields(self, request, obj=None):
        fields = ["title", "publisher", "year", "url", "sample", "note"]
        if request.user.is_superuser:
            return [*fields, "owner"]
        return [*fields, "ownership"]

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else ["ownership"]

    def get_list_display(self, request):
        if request.user.is_superuser:
            return ["title", "publisher", "year", "owner"]
        return self.list_display

    @admin.display(description=_("owner"))
    def ownership(self, study):
        # A study being added has no annotation: it becomes the user's own (save_model).
        return OWNERSHIP_LABELS[getattr(study, "ownership_for_viewer", "yours")]

    def get_queryset(self, request):
        return with_ownership(super().get_queryset(request), request.user)

    def save_model(self, request, obj, form, change):
        if not change and not request.user.is_superuser:
            obj.owner = request.user
        super().save_model(request, obj, form, change)

    def history_view(self, request, object_id, extra_context=None):
        study = self.get_object(request, object_id)
        if study is not None and not may_read_history(request.user, study):
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)


@admin.register(Figure)
class FigureAdmin(FollowsStudyRule, admin.ModelAdmin):
    list_display = ["label", "segment", "metric", "year", "display_value", "study"]
    list_filter = ["metric", "study"]
    search_fields = ["label", "segment", "study__title"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "study":
            # A figure goes only into a study the user may change (adding to one changes it).
            kwargs["queryset"] = changeable_studies(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @staticmethod
    def study_of(figure):
        return figure.study

    def history_view(self, request, object_id, extra_context=None):
        figure = self.get_object(request, object_id)
        if figure is not None and not may_read_history(request.user, figure.study):
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)

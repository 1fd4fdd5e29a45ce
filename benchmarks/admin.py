from django.contrib import admin
from django.db import models

from .models import Figure, Study


class FigureInline(admin.StackedInline):
    model = Figure
    extra = 0
    fields = [
        ("label", "metric", "year"),
        ("value", "unit"),
        ("shares", "shares_sum_to_100"),
        ("scale_min", "scale_max", "lower_is_better"),
    ]


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["title", "publisher", "year"]
    search_fields = ["title", "publisher"]
    inlines = [FigureInline]
    # A URL typed without a scheme means https (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(Figure)
class FigureAdmin(admin.ModelAdmin):
    list_display = ["label", "metric", "year", "display_value", "study"]
    list_filter = ["metric", "study"]
    search_fields = ["label", "study__title"]

from django.contrib import admin

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


@admin.register(Figure)
class FigureAdmin(admin.ModelAdmin):
    list_display = ["label", "metric", "year", "display_value", "study"]
    list_filter = ["metric", "study"]
    search_fields = ["label", "study__title"]

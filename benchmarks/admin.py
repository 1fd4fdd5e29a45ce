from django.contrib import admin

from .models import Figure, Study


class FigureInline(admin.TabularInline):
    model = Figure
    extra = 0


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["title", "publisher", "year"]
    inlines = [FigureInline]

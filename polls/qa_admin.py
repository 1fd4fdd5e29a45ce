"""The host's side of the audience Q&A in Django admin: each event's Q&A settings, and its items
with approve / hide / answered. Hosts see and change only the items of events they host; every
change goes through polls.qa (the rows and Redis together, under the event's row lock)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy, ngettext

from . import qa, qa_tally, tally
from .admin import hosted_events
from .attendee_admin import HostedEventFilter
from .models import QaConfig, QaItem


class HostedOnly:
    """A host's rows only, and a row only theirs to change (as attendee_admin's codes)."""

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        if not request.user.is_superuser:
            rows = rows.filter(event__hosts=request.user)
        return rows

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or obj.event.is_host(request.user))


@admin.register(QaConfig)
class QaConfigAdmin(HostedOnly, admin.ModelAdmin):
    list_display = ["event", "mode", "names_allowed", "on_stage"]
    list_filter = ["mode"]
    fields = ["event", "mode", "names_allowed", "on_stage"]

    def get_readonly_fields(self, request, obj=None):
        return ["event"] if obj is not None else []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "event":
            kwargs["queryset"] = hosted_events(request).order_by("title")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return False  # switch it off instead

    def save_model(self, request, obj, form, change):
        try:
            qa.do_qa_config(obj.event, obj.mode, obj.names_allowed, obj.on_stage)
        except ValidationError as error:
            messages.error(request, error.messages[0])


@admin.register(QaItem)
class QaItemAdmin(HostedOnly, admin.ModelAdmin):
    list_display = ["text", "event", "state", "votes", "pinned", "name", "created_at"]
    list_filter = [("event", HostedEventFilter), "state", "pinned"]
    list_select_related = ["event"]
    search_fields = ["text", "name"]
    fields = ["event", "text", "name", "state", "pinned", "created_at", "edited_at", "answered_at"]
    readonly_fields = [
        "event",
        "name",
        "state",
        "pinned",
        "created_at",
        "edited_at",
        "answered_at",
    ]
    actions = ["approve_items", "hide_items", "mark_answered"]

    def has_add_permission(self, request):
        return False  # items come from the phones

    def has_delete_permission(self, request, obj=None):
        return False  # hide instead: the votes and the record stay

    def get_changelist(self, request, **kwargs):
        self._votes: dict[int, dict[int, int]] = {}
        return super().get_changelist(request, **kwargs)

    @admin.display(description=gettext_lazy("votes"))
    def votes(self, item: QaItem) -> int:
        """Live from Redis (one read per event on the page), else as the writer wrote them."""
        cache = getattr(self, "_votes", {})
        if item.event_id not in cache:
            try:
                cache[item.event_id] = qa_tally.read_votes_sync(item.event_id)
            except tally.TallyUnavailable:
                cache[item.event_id] = {}
        counted = cache[item.event_id].get(item.id)
        return counted if counted is not None else item.votes.filter(active=True).count()

    def save_model(self, request, obj, form, change):
        if "text" in form.changed_data:
            try:
                qa.do_qa_item(obj.event, "edit", obj.pk, obj.text)
            except ValidationError as error:
                messages.error(request, error.messages[0])

    def _moderate(self, request, queryset, action: str) -> None:
        done = 0
        for item in queryset.select_related("event"):
            try:
                qa.do_qa_item(item.event, action, item.pk)
            except ValidationError as error:
                messages.error(request, error.messages[0])
                return
            done += 1
        messages.success(
            request,
            ngettext("%(count)d item changed.", "%(count)d items changed.", done) % {"count": done},
        )

    @admin.action(description=gettext_lazy("Approve (show on the phones)"), permissions=["change"])
    def approve_items(self, request, queryset):
        self._moderate(request, queryset, "approve")

    @admin.action(description=gettext_lazy("Hide"), permissions=["change"])
    def hide_items(self, request, queryset):
        self._moderate(request, queryset, "hide")

    @admin.action(description=gettext_lazy("Mark answered"), permissions=["change"])
    def mark_answered(self, request, queryset):
        self._moderate(request, queryset, "answered")

"""The host's side of attendee lists: codes in admin (make, import, revoke, restore) and the
printable badge page. Hosts see and change only the codes of events they host."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import translation
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from redis.exceptions import RedisError

from . import actions as host_actions
from . import attendees
from .admin import hosted_events
from .codes import normalise_code
from .models import AttendeeCode, Event
from .views import qr_svg

CARDS_PER_SHEET = 8  # 2 x 4 on A4, each 105 x 74 mm
# A page of QR codes draws in about a second (docs/performance.md, "Smaller figures").
SHEETS_PER_PAGE = 20
MAX_IDS_IN_LINK = 200


def badges_url(event: Event, ids=None) -> str:
    url = reverse("attendees:badges", args=[event.code])
    return f"{url}?ids={','.join(str(pk) for pk in ids)}" if ids else url


def event_links(event: Event) -> str:
    """For the event's admin page: its codes, making and importing them, and its badges."""
    if not event.pk:
        return "-"
    changelist = reverse("admin:polls_attendeecode_changelist")
    links = [
        (f"{changelist}?event__id__exact={event.pk}", _("attendee codes")),
        (f"{reverse('admin:polls_attendeecode_make')}?event={event.pk}", _("make codes")),
        (f"{reverse('admin:polls_attendeecode_import')}?event={event.pk}", _("import attendees")),
        (badges_url(event), _("badges")),
    ]
    return format_html_join(" · ", '<a href="{}">{}</a>', links)


def _not_attendee_list_warning(request, event: Event) -> None:
    if event.voice != Event.Voice.ATTENDEES:
        messages.warning(
            request,
            _(
                "%(event)s is still open to anyone with its join code: the codes only keep "
                "others out once its “who may answer” is the attendee list."
            )
            % {"event": event},
        )


class HostedEventFilter(admin.RelatedFieldListFilter):
    """Only the events the user hosts, never the titles of others."""

    def field_choices(self, field, request, model_admin):
        return [(event.pk, str(event)) for event in hosted_events(request).order_by("title")]


class StatusFilter(admin.SimpleListFilter):
    title = gettext_lazy("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", _("active")), ("revoked", _("revoked"))]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class MakeCodesForm(forms.Form):
    event = forms.ModelChoiceField(queryset=Event.objects.none(), label=gettext_lazy("event"))
    count = forms.IntegerField(
        label=gettext_lazy("how many codes"), min_value=1, max_value=attendees.MAX_CODES
    )

    def __init__(self, *args, events, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event"].queryset = events


class ImportCodesForm(forms.Form):
    event = forms.ModelChoiceField(queryset=Event.objects.none(), label=gettext_lazy("event"))
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy(
            "One attendee per row: label, and optionally their code (10 to 16 letters and "
            "digits); separated by semicolons or commas, as Excel saves CSV; a header row is "
            "allowed. Rows without a code get a new one. Any error and nothing is imported."
        ),
    )

    def __init__(self, *args, events, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event"].queryset = events


@admin.register(AttendeeCode)
class AttendeeCodeAdmin(admin.ModelAdmin):
    list_display = ["grouped_code", "label", "event", "status", "created_at", "badge_link"]
    list_filter = [("event", HostedEventFilter), StatusFilter]
    list_select_related = ["event"]
    search_fields = ["label", "code"]
    fields = ["event", "grouped_code", "label", "created_at", "revoked_at"]
    readonly_fields = ["event", "grouped_code", "created_at", "revoked_at"]
    actions = ["revoke_codes", "restore_codes", "print_badges"]

    def get_queryset(self, request):
        codes = super().get_queryset(request)
        if not request.user.is_superuser:
            codes = codes.filter(event__hosts=request.user)
        return codes

    def get_search_results(self, request, queryset, search_term):
        # A code is found however it is typed: with its dash, in lower case.
        found, duplicates = super().get_search_results(request, queryset, search_term)
        code = normalise_code(search_term)
        if code and code != search_term:
            found |= queryset.filter(code=code)
        return found, duplicates

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or obj.event.is_host(request.user))

    def has_delete_permission(self, request, obj=None):
        # Revoke instead: a deleted row would leave its holders' tokens answering (the revoked
        # set lists rows), and the answers' participant ids would name nobody.
        return False

    @admin.display(description=gettext_lazy("personal code"), ordering="code")
    def grouped_code(self, code):
        return attendees.display_code(code.code) if code.code else "-"

    @admin.display(description=gettext_lazy("status"), ordering="revoked_at")
    def status(self, code):
        return _("revoked") if code.revoked_at else _("active")

    @admin.display(description=gettext_lazy("badge"))
    def badge_link(self, code):
        return format_html('<a href="{}">{}</a>', badges_url(code.event, [code.pk]), _("badge"))

    # Making and importing: the add button leads to the "make codes" form.

    def get_urls(self):
        wrap = self.admin_site.admin_view  # staff login, never cached, CSRF-protected
        own = [
            path("make/", wrap(self.make_view), name="polls_attendeecode_make"),
            path("import/", wrap(self.import_view), name="polls_attendeecode_import"),
        ]
        return own + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("admin:polls_attendeecode_make"))

    def _form_events(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        return hosted_events(request).order_by("title")

    def _initial(self, request) -> dict:
        event_id = request.GET.get("event", "")
        return {"event": event_id} if event_id.isdigit() else {}

    def _render_form(self, request, form, title, multipart=False):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "form": form,
            "multipart": multipart,
            "make_url": reverse("admin:polls_attendeecode_make"),
            "import_url": reverse("admin:polls_attendeecode_import"),
        }
        return TemplateResponse(request, "polls/attendee_admin_form.html", context)

    def _done(self, request, event: Event, made: list[AttendeeCode]) -> HttpResponse:
        ids = [code.pk for code in made] if len(made) <= MAX_IDS_IN_LINK else None
        messages.success(
            request,
            format_html(
                '{} <a href="{}">{}</a>',
                ngettext(
                    "%(count)d code made for %(event)s.",
                    "%(count)d codes made for %(event)s.",
                    len(made),
                )
                % {"count": len(made), "event": event},
                badges_url(event, ids),
                _("Print their badges"),
            ),
        )
        _not_attendee_list_warning(request, event)
        changelist = reverse("admin:polls_attendeecode_changelist")
        return HttpResponseRedirect(f"{changelist}?event__id__exact={event.pk}")

    def make_view(self, request):
        events = self._form_events(request)
        form = MakeCodesForm(request.POST or None, events=events, initial=self._initial(request))
        if request.method == "POST" and form.is_valid():
            event = form.cleaned_data["event"]
            host_actions.check_host(request.user, event)
            made = attendees.make_codes(event, form.cleaned_data["count"])
            return self._done(request, event, made)
        return self._render_form(request, form, _("Make personal codes"))

    def import_view(self, request):
        events = self._form_events(request)
        form = ImportCodesForm(
            request.POST or None,
            request.FILES or None,
            events=events,
            initial=self._initial(request),
        )
        if request.method == "POST" and form.is_valid():
            event = form.cleaned_data["event"]
            host_actions.check_host(request.user, event)
            try:
                made = attendees.import_csv(event, form.cleaned_data["file"])
            except ValidationError as error:
                form.add_error("file", error)
            else:
                return self._done(request, event, made)
        return self._render_form(request, form, _("Import attendees"), multipart=True)

    # Actions

    def _by_event(self, request, queryset) -> dict[Event, list[int]]:
        grouped: dict[Event, list[int]] = {}
        for code in queryset.select_related("event"):
            host_actions.check_host(request.user, code.event)
            grouped.setdefault(code.event, []).append(code.pk)
        return grouped

    @admin.action(description=gettext_lazy("Revoke the selected codes (they can no longer answer)"))
    def revoke_codes(self, request, queryset):
        changed = 0
        for event, ids in self._by_event(request, queryset).items():
            try:
                changed += attendees.revoke(event, ids)
            except RedisError:
                self.message_user(
                    request, host_actions.nothing_changed().messages[0], messages.ERROR
                )
                return
        self.message_user(
            request,
            ngettext("%(count)d code revoked.", "%(count)d codes revoked.", changed)
            % {"count": changed},
            messages.SUCCESS,
        )

    @admin.action(description=gettext_lazy("Restore the selected codes"))
    def restore_codes(self, request, queryset):
        changed = 0
        for event, ids in self._by_event(request, queryset).items():
            try:
                changed += attendees.restore(event, ids)
            except RedisError:
                self.message_user(
                    request,
                    _(
                        "Restored, but the live service is unavailable: these codes stay "
                        "refused until you restore them again once it is back."
                    ),
                    messages.WARNING,
                )
                return
        self.message_user(
            request,
            ngettext("%(count)d code restored.", "%(count)d codes restored.", changed)
            % {"count": changed},
            messages.SUCCESS,
        )

    @admin.action(description=gettext_lazy("Print badges of the selected codes"))
    def print_badges(self, request, queryset):
        grouped = self._by_event(request, queryset)
        if len(grouped) != 1:
            self.message_user(request, _("Choose codes of one event."), messages.ERROR)
            return None
        [(event, ids)] = grouped.items()
        return HttpResponseRedirect(badges_url(event, ids if len(ids) <= MAX_IDS_IN_LINK else None))


def _ids(request: HttpRequest) -> list[int]:
    wanted = request.GET.get("ids", "")
    return [int(part) for part in wanted.split(",")[:MAX_IDS_IN_LINK] if part.isdigit()]


# never_cache: the page holds every attendee's code, as good as a key to the event.
@require_safe
@never_cache
@login_required
def badges(request: HttpRequest, code: str) -> HttpResponse:
    """One card per active attendee (or those in ``?ids=``), eight to an A4 sheet."""
    event = get_object_or_404(Event, code=normalise_code(code))
    host_actions.check_host(request.user, event)
    codes = event.attendee_codes.filter(revoked_at__isnull=True).order_by("label", "id")
    if "ids" in request.GET:
        codes = codes.filter(pk__in=_ids(request))
    page = Paginator(codes, CARDS_PER_SHEET * SHEETS_PER_PAGE).get_page(request.GET.get("page"))
    join_url = request.build_absolute_uri(reverse("polls:phone", args=[event.code]))
    cards = []
    for attendee in page:
        link = request.build_absolute_uri(attendees.phone_link(event, attendee.code))
        cards.append(
            {
                "label": attendee.label,
                "code": attendees.display_code(attendee.code),
                "qr_svg": mark_safe(qr_svg(link)),  # noqa: S308 - segno's own SVG markup
            }
        )
    sheets = [
        cards[start : start + CARDS_PER_SHEET] for start in range(0, len(cards), CARDS_PER_SHEET)
    ]
    with translation.override(event.language):
        return render(
            request,
            "polls/attendee_badges.html",
            {
                "event": event,
                "sheets": sheets,
                "page": page,
                "join_url": join_url,
                "ids": request.GET.get("ids", ""),
                "LANGUAGE_CODE": event.language,
            },
        )

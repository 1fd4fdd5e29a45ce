"""Django admin is the host's cockpit: events, questions, options and the live controls.

Staff who are not superusers see and change only the events they host.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from benchmarks import admin as benchmarks_admin

from . import actions as host_actions
from . import export_views, kinds, players, quiz_checks
from .answers import Rejection
from .figures import (
    check_figure_fits,
    check_figure_segment,
    event_segments,
    unmatched_segment_figures,
)
from .forms import EventForm, InlineQuestionForm, PlayerForm, QuestionForm, refusal_text
from .models import Answer, Event, Option, Player, Question, QuestionFigure
from .views import stage_url


def hosted_events(request):
    events = Event.objects.all()
    if not request.user.is_superuser:
        events = events.filter(hosts=request.user)
    return events


def visible_users(request):
    """Whom a user may see by name in admin: superusers everyone, a host themselves and the
    co-hosts of their events (anyone else only by exact username or e-mail, see EventForm)."""
    users = get_user_model().objects.all()
    if request.user.is_superuser:
        return users
    co_hosts = Event.hosts.through.objects.filter(event__hosts=request.user).values("user_id")
    return users.filter(Q(pk=request.user.pk) | Q(pk__in=co_hosts))


@benchmarks_admin.register_use_check
def figures_other_hosts_show(user):
    """The research a user must leave alone: figures linked to a question of an event they do
    not host (changing one would change what that event reveals)."""
    return (
        QuestionFigure.objects.exclude(question__event__in=Event.objects.filter(hosts=user))
        .values("figure_id")
        .distinct()
    )


class HostedEventFilter(admin.RelatedFieldListFilter):
    """The event filter offers only the events the user hosts (the default lists every event's
    title and code)."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(
            include_blank=False,
            ordering=ordering,
            limit_choices_to={"pk__in": hosted_events(request).values("pk")},
        )


def announce_after_commit(request, event_id: int) -> None:
    """In the admin's transaction: the save is a host action on the event (only the current
    question stays open, a new revision); once committed (a stage that reloads on the news must
    read the saved rows) the tally follows the rows and the event's phones and screens hear of
    it. With the live service away, the host is told so."""

    def announce(event_id: int) -> None:
        try:
            host_actions.restore_live_state(event_id)
        except ValidationError as error:
            # The form is saved either way: the retry makes it live once Redis is back.
            messages.warning(request, error.messages[0])

    host_actions.record_admin_save(event_id, announce)


class QuestionInline(admin.TabularInline):
    model = Question
    form = InlineQuestionForm  # a scored question's kind changed here is checked as saved
    extra = 0
    fields = ["order", "prompt", "kind", "state", "show_results", "options_link"]
    readonly_fields = ["state", "options_link"]
    show_change_link = True

    @admin.display(description=_("options"))
    def options_link(self, question):
        if not question.pk:
            return "-"
        url = reverse("admin:polls_question_change", args=[question.pk])
        count = question.options.count()
        label = ngettext("%(count)d option", "%(count)d options", count) % {"count": count}
        return format_html('<a href="{}">{}</a>', url, label)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["title", "code", "current_question", "language", "live_links"]
    search_fields = ["title", "code"]
    filter_horizontal = ["hosts"]
    readonly_fields = ["live_links", "export_links", "attendee_links", "stage_key"]
    form = EventForm
    fields = [
        "title",
        "code",
        "language",
        "voice",
        "theme",
        "accent_color",
        "logo_file",
        "hosts",
        "add_host",
        "current_question",
        "segment_by",
        "segment_min_respondents",
        "quiz",
        "live_links",
        "export_links",
        "attendee_links",
        "stage_key",
    ]
    inlines = [QuestionInline]
    actions = ["rotate_stage_key", "export_results_xlsx"]

    def get_queryset(self, request):
        return hosted_events(request)

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or obj.is_host(request.user))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or obj.is_host(request.user))

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "hosts":
            kwargs["queryset"] = visible_users(request).order_by("username")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "current_question":
            event_id = request.resolver_match.kwargs.get("object_id")
            kwargs["queryset"] = Question.objects.filter(event_id=event_id or 0)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=_("live"))
    def live_links(self, event):
        if not event.pk:
            return "-"
        return format_html(
            '<a href="{}">{}</a> · <a href="{}" target="_blank">{}</a> · <a href="{}">{}</a>',
            reverse("polls:host", args=[event.code]),
            _("remote control"),
            stage_url(event),
            _("stage screen"),
            reverse("polls:phone", args=[event.code]),
            _("phone page"),
        )

    @admin.display(description=_("exports"))
    def export_links(self, event):
        if not event.pk:
            return "-"
        links = [
            ("exports:results_print", _("printable results")),
            ("exports:results_xlsx", _("results (XLSX)")),
            ("exports:results_csv", _("results (CSV)")),
            ("exports:answers_csv", _("answers (CSV)")),
            ("exports:qa_csv", _("Q&A (CSV)")),
            ("exports:leaderboard_csv", _("Leaderboard (CSV)")),
        ]
        return format_html_join(
            " · ",
            '<a href="{}">{}</a>',
            ((reverse(name, args=[event.code]), label) for name, label in links),
        )

    @admin.display(description=_("attendee list"))
    def attendee_links(self, event):
        from .attendee_admin import event_links  # registered after this module (its last line)

        return event_links(event)

    def save_model(self, request, obj, form, change):
        if change:
            host_actions.lock_events([obj.pk])  # before the first write, as every action
        super().save_model(request, obj, form, change)
        if not change and not request.user.is_superuser:
            obj.hosts.add(request.user)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        event = form.instance
        if not request.user.is_superuser and not event.hosts.filter(pk=request.user.pk).exists():
            event.hosts.add(request.user)  # a host cannot lock themselves out by editing hosts
        announce_after_commit(request, event.id)
        warn_of_unmatched_segments(request, event.id)

    @admin.action(description=_("Rotate the stage key (old screens must be reopened)"))
    def rotate_stage_key(self, request, queryset):
        for event in queryset:
            host_actions.check_host(request.user, event)
            try:
                host_actions.do_rotate_stage_key(event)
            except ValidationError as error:  # saved; the screens hear of it later
                self.message_user(request, f"{event}: {error.messages[0]}", messages.WARNING)
        self.message_user(request, _("New stage keys issued."), messages.SUCCESS)

    @admin.action(description=_("Export results (XLSX)"))
    def export_results_xlsx(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Choose exactly one event."), messages.ERROR)
            return None
        event = queryset.get()
        host_actions.check_host(request.user, event)
        return export_views.xlsx_download(event)


def warn_of_unmatched_segments(request, event_id: int) -> None:
    """Saved, but research for a segment the event no longer offers will stand beside nothing:
    the host is told which (the figure links themselves are checked as they are made)."""
    unmatched = unmatched_segment_figures(event_id)
    if unmatched:
        messages.warning(
            request,
            _(
                "These research figures are for a segment no profile question of the event "
                "offers now, so the stage compares them with nothing: %(figures)s. This "
                "event's segments: %(segments)s."
            )
            % {
                "figures": "; ".join(f'"{segment}" ({prompt})' for prompt, segment in unmatched),
                "segments": ", ".join(event_segments(event_id)) or "-",
            },
        )


class OptionFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        question = self.instance
        labels = [
            form.cleaned_data.get("label")
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        if question.has_options and len(labels) < 2:
            raise ValidationError(_("This kind of question needs at least two options."))
        if not question.has_options and labels:
            raise ValidationError(
                _("A %(kind)s question has no options; remove them.")
                % {"kind": question.get_kind_display()}
            )
        if len(set(labels)) != len(labels):
            raise ValidationError(_("Two options have the same label."))
        kind = kinds.find(question.kind)
        problem = kind.check_options(question, labels) if kind is not None else None
        if problem:
            raise ValidationError(problem)
        problems = quiz_checks.options_errors(question, self.drafts())
        if problems:
            raise ValidationError(problems)

    def drafts(self) -> list[quiz_checks.OptionDraft]:
        """The options as they are being saved (the deleted ones left out)."""
        return [
            quiz_checks.OptionDraft(
                form.cleaned_data.get("label"), bool(form.cleaned_data.get("correct"))
            )
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]


class OptionInline(admin.TabularInline):
    model = Option
    formset = OptionFormSet
    extra = 0
    fields = ["order", "label", "correct"]


class FigureLinkFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        question = self.instance
        # Options saved earlier; a question created together with its options is checked again
        # when the host reveals.
        option_count = question.options.count() if question.pk else None
        linked = []
        for form in self.forms:
            figure = form.cleaned_data.get("figure") if form.cleaned_data else None
            if figure is None or form.cleaned_data.get("DELETE"):
                continue
            linked.append(figure)
            try:
                check_figure_fits(question, figure, option_count)
                check_figure_segment(question, figure)
            except ValidationError as error:
                form.add_error("figure", error)
        # A scored estimate without a target of its own scores by the figures being saved.
        problems = quiz_checks.target_errors(question, linked)
        if problems:
            raise ValidationError(problems)


class FigureLinkInline(admin.TabularInline):
    model = QuestionFigure
    formset = FigureLinkFormSet
    extra = 0
    fields = ["figure", "order"]
    autocomplete_fields = ["figure"]
    verbose_name = _("research figure")
    verbose_name_plural = _("research figures (several years of one measure make a trend)")


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = [
        "prompt",
        "event",
        "order",
        "kind",
        "state",
        "show_results",
        "segment",
        "scored",
        "is_current",
    ]
    list_filter = [("event", HostedEventFilter), "kind", "state", "segment", "scored"]
    list_select_related = ["event"]
    readonly_fields = ["state", "revealed"]
    form = QuestionForm
    inlines = [OptionInline, FigureLinkInline]
    actions = [
        "make_current",
        "open_questions",
        "close_questions",
        "show_on_phones",
        "hide_on_phones",
        "reveal_research",
        "hide_research",
    ]
    fieldsets = [
        (
            None,
            {"fields": ["event", "order", "kind", "prompt", "state", "show_results", "revealed"]},
        ),
        (
            _("Profile question"),
            {
                "fields": ["segment", "ask_on_join"],
                "description": _(
                    "A profile question puts each attendee in a segment by their answer (such as "
                    "their generation): results, exports and research can then be shown per "
                    "segment. A segment with fewer respondents than the event's smallest "
                    'segment shown is never shown on its own: it is counted under "other".'
                ),
            },
        ),
        (
            _("Quiz"),
            {
                "fields": ["scored", "target", "tolerance", "time_limit"],
                "description": _(
                    "In a quiz-mode event a scored question earns points: a single or multiple "
                    "choice for its options marked correct (below), a scale, CES or split for "
                    "a guess near its target (its own, or else the value of the latest "
                    "research figure linked to it), within the tolerance. Faster answers earn "
                    "more; with a time limit the question closes by itself and shows the "
                    "right answer."
                ),
            },
        ),
        # Each kind's own fields (kinds of one family share theirs), in the payload's order.
        *kinds.admin_fieldsets(),
    ]

    def get_queryset(self, request):
        questions = super().get_queryset(request)
        if not request.user.is_superuser:
            questions = questions.filter(event__hosts=request.user)
        return questions

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "event":
            kwargs["queryset"] = hosted_events(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or obj.event.is_host(request.user))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or obj.event.is_host(request.user))

    @admin.display(boolean=True, description=_("current"))
    def is_current(self, question):
        return question.event.current_question_id == question.id

    def save_model(self, request, obj, form, change):
        # Before the first write, as every action: the event it was in and the one it goes to.
        host_actions.lock_events([obj.event_id, form.initial.get("event")])
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        question = form.instance
        drafts = [quiz_checks.OptionDraft(o.label, o.correct) for o in question.options.all()]
        if quiz_checks.unscored_correct(question, drafts):
            messages.info(
                request,
                _(
                    "Options of this question are marked correct, but it is not scored: the "
                    "marks count only once you make it a scored question."
                ),
            )
        if question.time_limit and not question.scored:
            messages.warning(
                request,
                _(
                    "The time limit counts only for a scored question: this one stays open "
                    "until you close it."
                ),
            )
        moved_from = form.initial.get("event")
        if moved_from not in (None, form.instance.event_id):
            announce_after_commit(request, moved_from)
        announce_after_commit(request, form.instance.event_id)
        for event_id in {moved_from, form.instance.event_id} - {None}:
            warn_of_unmatched_segments(request, event_id)

    def _each(self, request, queryset, do):
        done = 0
        for question in queryset.select_related("event"):
            if not question.event.is_host(request.user):
                raise PermissionDenied
            try:
                do(question)
            except ValidationError as error:
                saved = error.code == "not_live_yet"
                level = messages.WARNING if saved else messages.ERROR
                self.message_user(request, f"{question}: {error.messages[0]}", level)
                done += saved
            else:
                done += 1
        return done

    @admin.action(description=_("Make current on the stage and phones"))
    def make_current(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Choose exactly one question."), messages.ERROR)
            return
        self._each(request, queryset, lambda q: host_actions.do_set_current(q.event, q))

    @admin.action(description=_("Open for answers (and make current)"))
    def open_questions(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Choose exactly one question."), messages.ERROR)
            return
        self._each(request, queryset, lambda q: host_actions.do_set_state(q, Question.State.OPEN))

    @admin.action(description=_("Close for answers"))
    def close_questions(self, request, queryset):
        self._each(request, queryset, lambda q: host_actions.do_set_state(q, Question.State.CLOSED))

    @admin.action(description=_("Show results on phones"))
    def show_on_phones(self, request, queryset):
        self._each(request, queryset, lambda q: host_actions.do_show_results(q, True))

    @admin.action(description=_("Hide results on phones"))
    def hide_on_phones(self, request, queryset):
        self._each(request, queryset, lambda q: host_actions.do_show_results(q, False))

    @admin.action(description=_("Reveal the research figures"))
    def reveal_research(self, request, queryset):
        self._each(request, queryset, lambda q: host_actions.do_reveal(q, True))

    @admin.action(description=_("Hide the research figures"))
    def hide_research(self, request, queryset):
        self._each(request, queryset, lambda q: host_actions.do_reveal(q, False))


@admin.register(Player)
class PlayerAdmin(admin.ModelAdmin):
    """The players of a host's quiz-mode events: rename one (a nickname that offends, or two
    that confuse), take one off the leaderboard or put them back. The stage's next leaderboard
    shows it (it reads the names and the removed players as it is drawn)."""

    list_display = ["number", "shown_name", "nickname", "event", "on_leaderboard", "created_at"]
    list_display_links = ["number", "shown_name"]
    list_filter = [("event", HostedEventFilter), "removed"]
    list_select_related = ["event"]
    search_fields = ["nickname"]
    form = PlayerForm
    fields = ["event", "number", "participant", "nickname", "removed", "created_at"]
    readonly_fields = ["event", "number", "participant", "removed", "created_at"]
    actions = ["remove_players", "restore_players"]

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        if not request.user.is_superuser:
            rows = rows.filter(event__hosts=request.user)
        return rows

    def has_add_permission(self, request):
        return False  # players come from the phones

    def has_delete_permission(self, request, obj=None):
        return False  # remove from the leaderboard instead: the number stays theirs

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or obj.event.is_host(request.user))

    @admin.display(description=_("name"), ordering="nickname")
    def shown_name(self, player):
        return player.shown_name

    @admin.display(boolean=True, description=_("on the leaderboard"), ordering="removed")
    def on_leaderboard(self, player):
        return not player.removed

    def save_model(self, request, obj, form, change):
        # As a phone's nickname: its folded key kept with it, a clash refused by the database.
        try:
            players.rename(obj, obj.nickname)
        except Rejection:
            self.message_user(request, refusal_text("taken"), messages.ERROR)

    def _mark(self, request, queryset, removed: bool) -> int:
        done = 0
        for player in queryset.select_related("event"):
            if not player.event.is_host(request.user):
                raise PermissionDenied
            if player.removed == removed:
                continue
            if removed and player.nickname:
                players.rename(player, "")  # off the board, and their nickname with them
            player.removed = removed
            player.save(update_fields=["removed"])
            done += 1
        return done

    @admin.action(description=_("Remove from the leaderboard"), permissions=["change"])
    def remove_players(self, request, queryset):
        done = self._mark(request, queryset, True)
        self.message_user(
            request,
            ngettext(
                "%(count)d player removed from the leaderboard; the stage shows it with the "
                "next leaderboard.",
                "%(count)d players removed from the leaderboard; the stage shows it with the "
                "next leaderboard.",
                done,
            )
            % {"count": done},
            messages.SUCCESS,
        )

    @admin.action(description=_("Put back on the leaderboard"), permissions=["change"])
    def restore_players(self, request, queryset):
        done = self._mark(request, queryset, False)
        self.message_user(
            request,
            ngettext(
                "%(count)d player back on the leaderboard.",
                "%(count)d players back on the leaderboard.",
                done,
            )
            % {"count": done},
            messages.SUCCESS,
        )


@admin.register(Answer)
class AnswerAdmin(admin.ModelAdmin):
    list_display = ["question", "participant", "value", "answered_at"]
    list_filter = [("question__event", HostedEventFilter)]
    list_select_related = ["question"]

    def get_queryset(self, request):
        answers = super().get_queryset(request)
        if not request.user.is_superuser:
            answers = answers.filter(question__event__hosts=request.user)
        return answers

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


from . import attendee_admin  # noqa: E402,F401

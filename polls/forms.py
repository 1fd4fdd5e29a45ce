"""Admin forms: an event's branding (accent colour and logo upload) and its co-hosts; a
question's quiz fields as the quiz can score them; a player's nickname."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from . import branding, players, quiz, quiz_checks
from .answers import Rejection
from .models import Event, Player, Question


class CurrentLogo:
    """What the upload widget shows as 'Currently: ...' (a link to the stored logo)."""

    def __init__(self, url: str, label: str):
        self.url = url
        self.label = label

    def __str__(self) -> str:
        return self.label


class EventForm(forms.ModelForm):
    """The event with its branding; the logo's bytes go to the database (see polls.branding)."""

    logo_file = forms.FileField(
        label=_("logo"),
        required=False,
        help_text=_(
            "PNG, JPEG or WebP, at most 512 KB; shown on the stage screen and its join banner. "
            "On the dark stage it sits on a white plate."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
    )
    # The hosts list shows only people the host already works with; anyone else is added by
    # an exact name, so no host can browse the accounts of others.
    add_host = forms.CharField(
        label=_("add a co-host"),
        required=False,
        max_length=254,
        help_text=_(
            "The exact username or e-mail address of an active staff account; they become a "
            "host of this event."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    class Meta:
        model = Event
        fields = [
            "title",
            "code",
            "language",
            "voice",
            "theme",
            "accent_color",
            "segment_by",
            "segment_min_respondents",
            "quiz",
        ]
        widgets = {
            "accent_color": forms.TextInput(
                attrs={"placeholder": "#E4003B", "size": 9, "autocomplete": "off"}
            ),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A form that leaves these out keeps what the event has (an attendee-list event is
        # never opened to anyone by a form that did not mention it).
        for name in ("theme", "voice", "segment_min_respondents"):
            if name in self.fields:
                self.fields[name].required = False
        event = self.instance
        if "segment_by" in self.fields:
            # Only this event's profile questions: the stage splits by one of its own questions'
            # answers, and only a profile question's answers are anyone's segment.
            field = self.fields["segment_by"]
            field.queryset = Question.objects.filter(event_id=event.pk or 0, segment=True)
            field.error_messages["invalid_choice"] = _(
                "Choose a profile question of this event (a single-choice question marked as a "
                "profile question), or none."
            )
        if event.pk and event.logo_digest:
            url = reverse("branding:logo", args=[event.code])
            kind = event.logo_type.removeprefix("image/").upper()
            self.initial["logo_file"] = CurrentLogo(f"{url}?v={event.logo_digest}", kind)

    def clean_theme(self) -> str:
        return self.cleaned_data.get("theme") or self.instance.theme or Event.Theme.DARK

    def clean_voice(self) -> str:
        return self.cleaned_data.get("voice") or self.instance.voice or Event.Voice.OPEN

    def clean_segment_by(self):
        # Left out of the form (not posted empty): the remote's "by segment" stays as it is.
        if self.add_prefix("segment_by") not in self.data:
            return self.instance.segment_by
        return self.cleaned_data.get("segment_by")

    def clean_segment_min_respondents(self) -> int:
        chosen = self.cleaned_data.get("segment_min_respondents")
        if chosen is not None:
            return chosen
        return (
            self.instance.segment_min_respondents
            or Event._meta.get_field("segment_min_respondents").default
        )

    def clean_add_host(self):
        wanted = (self.cleaned_data.get("add_host") or "").strip()
        if not wanted:
            return None
        matches = list(
            get_user_model()
            .objects.filter(is_active=True, is_staff=True)
            .filter(Q(username=wanted) | Q(email__iexact=wanted))[:2]
        )
        if len(matches) != 1:
            # One message for unknown, not staff, inactive and ambiguous: it tells nobody which.
            raise forms.ValidationError(
                _("No single active staff account has exactly this username or e-mail address."),
                code="unknown_host",
            )
        return matches[0]

    def clean_accent_color(self) -> str:
        # Typed as people type colours ("e4003b", "#E40"); the model validator checks the result.
        return branding.normalise_accent(self.cleaned_data.get("accent_color") or "")

    def clean_logo_file(self):
        upload = self.cleaned_data.get("logo_file")
        if not upload or isinstance(upload, CurrentLogo):
            return upload  # False: cleared; None or the current logo: unchanged
        if upload.size > branding.LOGO_MAX_BYTES:
            raise branding.logo_too_large(upload.size)  # said before reading it
        data = upload.read()
        branding.check_logo(data)
        return data

    def _save_m2m(self) -> None:
        # The logo row needs the saved event: it goes with the many-to-many data, which both
        # save() and the admin (form.save_m2m() after saving the event) write after the event.
        super()._save_m2m()
        new_host = self.cleaned_data.get("add_host")
        if new_host is not None:
            self.instance.hosts.add(new_host)  # after the hosts list was written, not under it
        logo = self.cleaned_data.get("logo_file")
        if isinstance(logo, bytes):
            branding.save_logo(self.instance, logo)
        elif logo is False:
            branding.save_logo(self.instance, None)


class Draft:
    """A question as a form would save it: the posted fields over the instance's own (a form's
    ``clean`` runs before the instance is updated; a field left out keeps the instance's)."""

    def __init__(self, instance: Question, cleaned: dict):
        self._instance = instance
        self._cleaned = cleaned

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._cleaned:
            return self._cleaned[name]
        return getattr(self._instance, name)


class QuestionForm(forms.ModelForm):
    """A question in admin. Its quiz fields are checked here (``polls.quiz_checks``); its
    options and figures by their inlines' formsets, which see what is being saved with them."""

    # Whether the options and figures are posted with the form (the question admin's inlines
    # check them); else they are checked as saved (the event page's list of questions).
    related_posted = True

    class Meta:
        model = Question
        # The admin's fieldsets (or inline's fields) choose the fields it shows.
        fields = ["kind", "prompt", "scored", "target", "tolerance", "time_limit"]

    def clean(self):
        cleaned = super().clean()
        if self._quiz_fields_invalid():
            return cleaned
        draft = Draft(self.instance, cleaned)
        for name, message in quiz_checks.question_errors(draft).items():
            self.add_error(name if name in self.fields else None, message)
        if not self.related_posted and self.instance.pk and not self.errors:
            options = [
                quiz_checks.OptionDraft(option.label, option.correct)
                for option in self.instance.options.all()
            ]
            figures = [link.figure for link in self.instance.figure_links.select_related("figure")]
            for message in quiz_checks.options_errors(draft, options) + quiz_checks.target_errors(
                draft, figures
            ):
                self.add_error(None, message)
        return cleaned

    def _quiz_fields_invalid(self) -> bool:
        """A field the checks read failed its own validation (its error says why)."""
        read = ("kind", "scored", "segment", "target", "tolerance", "scale_min", "scale_max")
        return any(name in self.errors for name in read)


class InlineQuestionForm(QuestionForm):
    related_posted = False


class PlayerForm(forms.ModelForm):
    """A host renames a player: the nickname cleaned and masked as a phone's, unique in the
    event (``taken`` is this form's error), empty for "Player <number>" again."""

    class Meta:
        model = Player
        fields = ["nickname"]

    def clean_nickname(self) -> str:
        raw = self.cleaned_data.get("nickname") or ""
        try:
            nickname = players.clean_nickname(raw)
        except Rejection as refusal:
            raise forms.ValidationError(refusal_text(refusal.code), code=refusal.code) from None
        key = quiz.nickname_key(nickname) if nickname else ""
        player = self.instance
        others = Player.objects.filter(event_id=player.event_id, key=key).exclude(pk=player.pk)
        if key and others.exists():
            raise forms.ValidationError(refusal_text("taken"), code="taken")
        return nickname


def refusal_text(code: str) -> str:
    """Why a host's nickname for a player was refused (``players.clean_nickname``'s codes)."""
    if code == "too_long":
        return gettext("A nickname has at most %(count)d characters.") % {
            "count": quiz.NICKNAME_CHARS
        }
    if code == "empty":
        return gettext("A nickname needs at least one letter or digit.")
    if code == "taken":
        return gettext(
            "Another player of this event has this nickname, or one that differs only in "
            "case, accents, spaces or punctuation."
        )
    return gettext("This nickname cannot be used.")

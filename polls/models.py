"""Events, their questions and options, and the durable record of answers."""

import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from . import kinds
from .codes import generate_code, is_valid_code


def new_stage_key() -> str:
    return secrets.token_urlsafe(18)


def validate_join_code(value: str) -> None:
    if not is_valid_code(value):
        raise ValidationError(
            _(
                "Use 4 to 12 uppercase letters and digits, without the letters I, L and O "
                "(they are read as the digits 1 and 0)."
            ),
            code="bad_join_code",
        )


ACCENT_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")


def validate_accent_color(value: str) -> None:
    if not ACCENT_COLOR.fullmatch(value):
        raise ValidationError(
            _("Use a hex colour: # and six digits 0-9 or letters A-F, such as #E4003B."),
            code="bad_accent_color",
        )


class Event(models.Model):
    class Voice(models.TextChoices):
        # What one voice per person means here (docs/reliability.md, "One person, one voice").
        OPEN = "open", _("Open: anyone with the code, one voice per device (best effort)")
        ATTENDEES = "attendees", _("Attendee list: only holders of a personal code")

    class Theme(models.TextChoices):
        DARK = "dark", _("Dark")
        LIGHT = "light", _("Light")
        AUTO = "auto", _("Follow the system setting")

    title = models.CharField(_("title"), max_length=200)
    code = models.CharField(
        _("join code"),
        max_length=12,
        unique=True,
        default=generate_code,
        validators=[validate_join_code],
        help_text=_("What attendees type on their phones."),
    )
    hosts = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("hosts"), related_name="hosted_events", blank=True
    )
    stage_key = models.CharField(_("stage key"), max_length=64, default=new_stage_key)
    current_question = models.ForeignKey(
        "Question",
        verbose_name=_("current question"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="nl"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    voice = models.CharField(
        _("who may answer"),
        max_length=12,
        choices=Voice.choices,
        default=Voice.OPEN,
        help_text=_(
            "Attendee list: import attendees or make personal codes, print their badge links; "
            "a code counts once per question however many devices use it."
        ),
    )
    theme = models.CharField(
        _("stage theme"), max_length=8, choices=Theme.choices, default=Theme.DARK
    )
    accent_color = models.CharField(
        _("accent colour"),
        max_length=7,
        blank=True,
        validators=[validate_accent_color],
        help_text=_(
            "For bars and highlights, as a hex colour such as #E4003B; empty for the standard "
            "colour. Made lighter or darker where needed to stay readable."
        ),
    )
    # The logo's bytes are an EventLogo row; these say whether there is one and version its URL
    # (the digest is also its ETag).
    logo_type = models.CharField(_("logo type"), max_length=16, blank=True, editable=False)
    logo_digest = models.CharField(_("logo version"), max_length=16, blank=True, editable=False)
    # Bumped by every host action in the transaction that makes it (under the event's row lock):
    # the revision a pushed state carries, so states order by commit across processes.
    revision = models.PositiveBigIntegerField(_("revision"), default=0, editable=False)
    # The profile question the stage splits every result by now (the remote's "by segment").
    segment_by = models.ForeignKey(
        "Question",
        verbose_name=_("results by segment of"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("A profile question of this event: the stage shows every result per answer."),
    )
    segment_min_respondents = models.PositiveSmallIntegerField(
        _("smallest segment shown"),
        default=5,
        validators=[MinValueValidator(2), MaxValueValidator(1000)],
        help_text=_(
            "A segment with fewer respondents is never shown on its own, on the stage, the "
            'phones or in exports: it is counted under "other" (and, where that would still '
            "single it out, the next smallest segment with it)."
        ),
    )

    quiz = models.BooleanField(
        _("quiz mode"),
        default=False,
        help_text=_(
            "Phones ask a nickname on joining and scored questions build a leaderboard; "
            'without a nickname an attendee plays as "Player 12".'
        ),
    )
    # The stage shows the quiz's podium instead of the current question (the remote's button).
    podium = models.BooleanField(_("podium on the stage"), default=False, editable=False)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.title} ({self.code})"

    def is_host(self, user) -> bool:
        if not user.is_authenticated or not user.is_active:
            return False
        if user.is_superuser:
            return True
        return self.hosts.filter(pk=user.pk).exists()


class EventLogo(models.Model):
    """An event's logo (a checked PNG/JPEG/WebP, see polls.branding), kept in the database so no
    media files need serving, and in its own table: events are loaded often (every screen's
    connect, every state rebuild, every question's ``event``) and up to 512 KB must not come
    along each time."""

    event = models.OneToOneField(
        Event, on_delete=models.CASCADE, primary_key=True, related_name="logo"
    )
    digest = models.CharField(_("logo version"), max_length=16)
    data = models.BinaryField(_("logo"))

    class Meta:
        verbose_name = _("logo")
        verbose_name_plural = _("logos")

    def __str__(self) -> str:
        return f"{self.event_id}: {self.digest}"


# The one kind a profile question (``Question.segment``) may be: one answer per attendee.
PROFILE_KIND = "single"


# The per-kind fields (scale_min, split_a_label, ...) are declared by the kinds' sections in
# polls.kinds, as abstract models: a kind's configuration lives in its own module.
class Question(*kinds.field_models(), models.Model):
    # One member per kind of polls.kinds (SINGLE = "single", ...), in their order.
    Kind = kinds.text_choices()

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    event = models.ForeignKey(
        Event, verbose_name=_("event"), on_delete=models.CASCADE, related_name="questions"
    )
    order = models.PositiveIntegerField(_("order"), default=0)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.SINGLE)
    prompt = models.CharField(_("question"), max_length=300)
    state = models.CharField(
        _("state"), max_length=8, choices=State.choices, default=State.DRAFT, editable=False
    )
    show_results = models.BooleanField(_("show results on phones"), default=False)
    revealed = models.BooleanField(_("research revealed"), default=False, editable=False)
    segment = models.BooleanField(
        _("profile question"),
        default=False,
        help_text=_(
            'Asked once per attendee (with "rather not say"); every result of the event can '
            "then be shown per answer. Single choice only."
        ),
    )
    ask_on_join = models.BooleanField(
        _("ask right after joining"),
        default=True,
        help_text=_("A profile question: phones ask it at once, else when you make it current."),
    )
    # The quiz (polls.quiz): what scores, and the clock the server keeps.
    scored = models.BooleanField(
        _("scored"),
        default=False,
        help_text=_(
            "A quiz question: choice questions score their correct options, a mark, CES or "
            "split scores the closeness to its target."
        ),
    )
    target = models.DecimalField(
        _("target"),
        max_digits=7,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_(
            "The right value of an estimate (a split: part A in %). Empty: the value of the "
            "research figure linked to the question."
        ),
    )
    tolerance = models.DecimalField(
        _("tolerance"),
        max_digits=7,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_(
            "How far from the target a guess still scores: full points at the target, none "
            "at this distance or further."
        ),
    )
    time_limit = models.PositiveSmallIntegerField(
        _("time limit (seconds)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(5), MaxValueValidator(600)],
        help_text=_("The server closes the question this long after it opens; empty: no limit."),
    )
    # Server time (ms) of the first opening (points for speed count from it) and the deadline.
    started_ms = models.BigIntegerField(_("started at (ms)"), null=True, editable=False)
    deadline_ms = models.BigIntegerField(_("deadline (ms)"), null=True, editable=False)
    figures = models.ManyToManyField(
        "benchmarks.Figure",
        verbose_name=_("research figures"),
        through="QuestionFigure",
        related_name="questions",
        blank=True,
    )

    class Meta:
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        ordering = ["event", "order", "id"]

    def __str__(self) -> str:
        return self.prompt

    @property
    def has_options(self) -> bool:
        """Whether the attendee chooses, orders or places the question's options."""
        kind = kinds.find(self.kind)
        return kind is not None and kind.has_options

    def clean(self) -> None:
        kind = kinds.find(self.kind)  # an unknown kind is the field's error
        errors = kind.check(self) if kind is not None else {}
        if self.segment and self.kind != PROFILE_KIND:
            errors.setdefault(
                "segment", _("Only a single-choice question can be a profile question.")
            )
        if errors:
            raise ValidationError(errors)


class Option(models.Model):
    question = models.ForeignKey(
        Question, verbose_name=_("question"), on_delete=models.CASCADE, related_name="options"
    )
    order = models.PositiveIntegerField(_("order"), default=0)
    label = models.CharField(_("label"), max_length=120)
    correct = models.BooleanField(_("correct"), default=False)

    class Meta:
        verbose_name = _("option")
        verbose_name_plural = _("options")
        ordering = ["question", "order", "id"]

    def __str__(self) -> str:
        return self.label


class QuestionFigure(models.Model):
    """A research figure shown beside a question's result; several years make a trend."""

    question = models.ForeignKey(
        Question, verbose_name=_("question"), on_delete=models.CASCADE, related_name="figure_links"
    )
    figure = models.ForeignKey(
        "benchmarks.Figure", verbose_name=_("figure"), on_delete=models.CASCADE, related_name="+"
    )
    order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("research figure")
        verbose_name_plural = _("research figures")
        ordering = ["question", "figure__year", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["question", "figure"], name="one_link_per_figure")
        ]

    def __str__(self) -> str:
        return str(self.figure)


class Answer(models.Model):
    """The lasting record of one participant's current answer to one question.

    Written only by the stream writer (``drain_answers``) from the Redis answer log; a changed
    answer overwrites the row, so the table always mirrors the tally.
    """

    question = models.ForeignKey(
        Question, verbose_name=_("question"), on_delete=models.CASCADE, related_name="answers"
    )
    participant = models.CharField(_("participant"), max_length=64)
    value = models.JSONField(_("value"))
    answered_at = models.DateTimeField(_("answered at"))
    log_id = models.CharField(_("answer log entry"), max_length=32)
    # The log entry's id as numbers (``<ms>-<seq>``), so the writer's upsert keeps the later of
    # two answers whichever writer commits last; empty for a row not written from the log.
    log_ms = models.BigIntegerField(_("answer log time"), null=True, editable=False)
    log_seq = models.BigIntegerField(_("answer log sequence"), null=True, editable=False)

    class Meta:
        verbose_name = _("answer")
        verbose_name_plural = _("answers")
        constraints = [
            models.UniqueConstraint(
                fields=["question", "participant"], name="one_answer_per_participant"
            )
        ]

    def __str__(self) -> str:
        return f"{self.participant}: {self.value}"


class AttendeeCode(models.Model):
    """A personal code of an attendee-list event: on a badge as a QR link, or typed."""

    event = models.ForeignKey(
        Event, verbose_name=_("event"), on_delete=models.CASCADE, related_name="attendee_codes"
    )
    code = models.CharField(_("personal code"), max_length=16, unique=True)
    label = models.CharField(
        _("attendee"), max_length=200, blank=True, help_text=_("Name or badge text (optional).")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("attendee code")
        verbose_name_plural = _("attendee codes")
        ordering = ["event", "id"]

    def __str__(self) -> str:
        return self.label or self.code


class SetAside(models.Model):
    """A participant the host set aside (a scripted burst): their answers count on no question
    of the event until restored. Kept here so a rebuilt tally leaves them out too."""

    event = models.ForeignKey(
        Event, verbose_name=_("event"), on_delete=models.CASCADE, related_name="set_aside"
    )
    participant = models.CharField(_("participant"), max_length=64)
    created_at = models.DateTimeField(_("set aside at"), auto_now_add=True)

    class Meta:
        verbose_name = _("participant set aside")
        verbose_name_plural = _("participants set aside")
        constraints = [
            models.UniqueConstraint(fields=["event", "participant"], name="one_set_aside_row")
        ]

    def __str__(self) -> str:
        return self.participant


# -- audience Q&A (polls.qa): items from the room, their votes, the event's settings ------------


class QaConfig(models.Model):
    """An event's Q&A: off, open (items appear at once) or pre-moderated, and whether a name may
    be given. A row of its own so an event without Q&A carries nothing of it."""

    class Mode(models.TextChoices):
        OFF = "off", _("Off")
        OPEN = "open", _("Open: items appear at once")
        MODERATED = "moderated", _("Pre-moderated: items wait for a host")

    event = models.OneToOneField(
        Event, on_delete=models.CASCADE, primary_key=True, related_name="qa_config"
    )
    mode = models.CharField(_("Q&A"), max_length=12, choices=Mode.choices, default=Mode.OFF)
    names_allowed = models.BooleanField(
        _("names allowed"),
        default=True,
        help_text=_("Attendees may sign their items with a name; else all items are anonymous."),
    )
    on_stage = models.BooleanField(_("Q&A on the stage"), default=False)

    class Meta:
        verbose_name = _("Q&A settings")
        verbose_name_plural = _("Q&A settings")

    def __str__(self) -> str:
        return f"{self.event_id}: {self.mode}"


class QaItem(models.Model):
    """One item asked from the room. The database is its lasting record; its votes are counted
    live in Redis (polls.qa_tally) and written here by the stream writer (``QaVote``)."""

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting for a host")
        VISIBLE = "visible", _("Visible")
        HIDDEN = "hidden", _("Hidden")
        ANSWERED = "answered", _("Answered")

    event = models.ForeignKey(
        Event, verbose_name=_("event"), on_delete=models.CASCADE, related_name="qa_items"
    )
    participant = models.CharField(_("participant"), max_length=64)
    # The phone's message id: a resent ``ask`` makes no second item.
    message_id = models.CharField(_("message id"), max_length=64)
    text = models.CharField(_("item"), max_length=280)
    name = models.CharField(_("name"), max_length=40, blank=True)
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.PENDING
    )
    pinned = models.BooleanField(_("on stage now"), default=False)
    created_at = models.DateTimeField(_("asked at"), auto_now_add=True)
    edited_at = models.DateTimeField(_("edited at"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("Q&A item")
        verbose_name_plural = _("Q&A items")
        ordering = ["event", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "participant", "message_id"], name="one_item_per_ask"
            )
        ]

    def __str__(self) -> str:
        return self.text


class QaVote(models.Model):
    """One participant's vote on one item as the vote log last had it (``active`` false: taken
    back). Written only by the stream writer; the log position keeps the later of two entries."""

    item = models.ForeignKey(
        QaItem, verbose_name=_("Q&A item"), on_delete=models.CASCADE, related_name="votes"
    )
    participant = models.CharField(_("participant"), max_length=64)
    active = models.BooleanField(_("counted"), default=True)
    voted_at = models.DateTimeField(_("voted at"))
    log_ms = models.BigIntegerField(_("vote log time"), null=True, editable=False)
    log_seq = models.BigIntegerField(_("vote log sequence"), null=True, editable=False)

    class Meta:
        verbose_name = _("Q&A vote")
        verbose_name_plural = _("Q&A votes")
        constraints = [
            models.UniqueConstraint(fields=["item", "participant"], name="one_vote_per_item")
        ]

    def __str__(self) -> str:
        return f"{self.participant}: {self.item_id}"


class QaAside(models.Model):
    """A participant the host set aside in the Q&A: their items are hidden, and so is every
    item they ask later (they are not told)."""

    event = models.ForeignKey(
        Event, verbose_name=_("event"), on_delete=models.CASCADE, related_name="qa_aside"
    )
    participant = models.CharField(_("participant"), max_length=64)
    created_at = models.DateTimeField(_("set aside at"), auto_now_add=True)

    class Meta:
        verbose_name = _("Q&A participant set aside")
        verbose_name_plural = _("Q&A participants set aside")
        constraints = [
            models.UniqueConstraint(fields=["event", "participant"], name="one_qa_aside_row")
        ]

    def __str__(self) -> str:
        return self.participant


class Player(models.Model):
    """A participant of a quiz-mode event as the leaderboard names them: a number given on
    joining ("Player 12") and the nickname they chose, unique in the event by ``key``."""

    event = models.ForeignKey(
        Event, verbose_name=_("event"), on_delete=models.CASCADE, related_name="players"
    )
    participant = models.CharField(_("participant"), max_length=64)
    number = models.PositiveIntegerField(_("number"))
    nickname = models.CharField(_("nickname"), max_length=24, blank=True)
    # The nickname folded (case, accents, spaces) for uniqueness; "" while there is none.
    key = models.CharField(_("nickname key"), max_length=24, blank=True, editable=False)
    # Removed by a host: off the leaderboard, and their nickname back to their number.
    removed = models.BooleanField(_("removed from the leaderboard"), default=False)
    created_at = models.DateTimeField(_("joined"), auto_now_add=True)

    class Meta:
        verbose_name = _("player")
        verbose_name_plural = _("players")
        ordering = ["event", "number"]
        constraints = [
            models.UniqueConstraint(fields=["event", "participant"], name="one_player_each"),
            models.UniqueConstraint(fields=["event", "number"], name="one_number_each"),
            models.UniqueConstraint(
                fields=["event", "key"], condition=~models.Q(key=""), name="unique_nickname"
            ),
        ]

    def __str__(self) -> str:
        return self.shown_name

    @property
    def shown_name(self) -> str:
        return self.nickname or default_player_name(self.number)


def default_player_name(number: int) -> str:
    """What a player without a nickname is called, in the active language."""
    return gettext("Player %(number)s") % {"number": number}

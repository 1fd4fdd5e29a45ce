"""The demo events: KSF2018, questions from the 2018 Dutch customer-service congress, and
RADEN2018, a short quiz in which the room guesses that congress's research."""

from __future__ import annotations

import contextlib
import os
import secrets
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from benchmarks.models import Figure, Study

from . import actions, qa, qa_tally, quiz_checks
from .figures import check_figure_fits, check_figure_segment
from .models import Event, Option, QaConfig, QaItem, QaVote, Question, QuestionFigure

DEMO_CODE = "KSF2018"
# The quiz demo ("raden": to guess). A second event, so the congress demo's phones stay as they
# are: a quiz-mode event asks every phone for a nickname on joining.
QUIZ_DEMO_CODE = "RADEN2018"
# The demo's host account. Its password is never written in the repository: it is random and
# printed once, or taken from DEMO_PASSWORD_VARIABLE (then anyone who reads this code still
# cannot log in on a demo served to the venue's Wi-Fi).
DEMO_HOST_USERNAME = "host"
DEMO_PASSWORD_VARIABLE = "ZP_DEMO_PASSWORD"  # noqa: S105 - the variable's name, not a password
DEMO_PASSWORD_MIN_LENGTH = 12
HOSTS_GROUP = "Hosts"


class DemoPasswordTooShort(ValueError):
    pass


KIRC = {
    "title": "Nationaal Benchmark en Trendonderzoek Klantinteractie 2018",
    "publisher": "KIRC, SAMR en Stichting ITO",
    "year": 2018,
    "sample": "Nederlandse organisaties en consumenten; gepresenteerd op het KSF-congres, "
    "20 november 2018",
    "note": "Cijfers zoals gerapporteerd uit de congrespresentatie.",
}
# The post citing this study is dated 14 February 2014 ("Customer Experience feiten die je moet
# kennen"); it gives no year of the study's own, so the year is the post's. It names the
# publisher "Economist Intelligence Group".
EIU = {
    "title": "Service 2020: Return on service",
    "publisher": "The Economist Intelligence Unit",
    "year": 2014,
    "sample": "Senior managers and customer-service experts of 832 companies in Europe, "
    "North America and Asia",
    "note": "Year as cited in a Dutch post of 14 February 2014 on customer experience facts "
    "(which names the publisher Economist Intelligence Group); the study's own year is not "
    "given there.",
}
# What earlier versions of the demo wrote, mended in place on every run (before anything is
# looked up by year); a value someone changed since is theirs and stays.
# (study title, publisher, {field: value written}):
CORRECTED_STUDIES = [
    (
        EIU["title"],
        EIU["publisher"],
        {
            "year": 2017,
            "note": "Year as cited in a 2017 Dutch post on customer interaction in 2020.",
        },
    ),
]
# (study title, figure label, year written, year now):
CORRECTED_YEARS = [
    (
        EIU["title"],
        "Bedrijven die service belangrijk vinden voor hun financiële resultaat",
        2017,
        2014,
    ),
]

# Each figure: (study, label, metric, year, value or shares, extra fields).
FIGURES = {
    "cx_results": (
        KIRC,
        "Resultaat van werk aan klantbeleving",
        "shares",
        2018,
        [63, 14, 7, 3, 12],
        {},
    ),
    "self_service": [
        (KIRC, "Aandeel selfservice in al het klantcontact", "split", year, value, {"unit": "%"})
        for year, value in ((2016, 50), (2017, 38), (2018, 39))
    ],
    "mark": [
        (
            KIRC,
            "Klanttevredenheid (rapportcijfer)",
            "mean",
            year,
            value,
            {"scale_min": 1, "scale_max": 10},
        )
        for year, value in ((2016, "7.4"), (2017, "7.5"))
    ],
    "nps": [
        (KIRC, "Net Promoter Score", "nps", year, value, {})
        for year, value in ((2016, 9), (2017, 13))
    ],
    "ces": [
        (
            KIRC,
            "Customer Effort Score",
            "ces",
            year,
            value,
            {"scale_min": 1, "scale_max": 5, "lower_is_better": True},
        )
        for year, value in ((2016, "2.0"), (2017, "1.6"))
    ],
    "mystery": (
        KIRC,
        "Bedrijven met mystery-contactonderzoek",
        "percentage",
        2018,
        18,
        {"unit": "%"},
    ),
    "chatbot": (KIRC, "Geslaagde chatbotgesprekken", "percentage", 2018, 59, {"unit": "%"}),
    "finances": (
        EIU,
        "Bedrijven die service belangrijk vinden voor hun financiële resultaat",
        "percentage",
        2014,
        84,
        {"unit": "%"},
    ),
    "innovations": (
        KIRC,
        "Vernieuwingen die nu worden ingevoerd",
        "shares",
        2018,
        [32, 31, 18, 9],
        {"shares_sum_to_100": False},
    ),
}

DEMO_QUESTIONS = [
    {
        "kind": Question.Kind.SINGLE,
        "prompt": "Wat levert werk aan klantbeleving de meeste bedrijven vooral op?",
        "options": [
            "Tevredenere klanten",
            "Meer omzet",
            "Lagere kosten",
            "Klanten blijven langer",
            "(Nog) niets",
        ],
        "figures": "cx_results",
    },
    {
        "kind": Question.Kind.SPLIT,
        "prompt": "Hoe verdeelt het klantcontact zich dit jaar: selfservice tegenover live?",
        "split": ("selfservice", "live contact"),
        "figures": "self_service",
    },
    {
        "kind": Question.Kind.SCALE,
        "prompt": "Welk rapportcijfer geeft de Nederlandse klant de service gemiddeld?",
        "scale": (1, 10, "Slecht", "Uitstekend"),
        "figures": "mark",
    },
    {
        "kind": Question.Kind.NPS,
        "prompt": "Hoe waarschijnlijk is het dat je de klantenservice van je laatste contact "
        "aanbeveelt?",
        "scale": (0, 10, "Zeker niet", "Zeker wel"),
        "figures": "nps",
    },
    {
        "kind": Question.Kind.ENPS,
        "prompt": "Dezelfde vraag, Europees geteld: beveel je die klantenservice aan?",
        "scale": (0, 10, "Zeker niet", "Zeker wel"),
    },
    {
        "kind": Question.Kind.CES,
        "prompt": "Hoeveel moeite kostte je laatste contact met een klantenservice?",
        "scale": (1, 5, "Heel weinig", "Heel veel"),
        "lower_is_better": True,
        "figures": "ces",
    },
    {
        "kind": Question.Kind.SPLIT,
        "prompt": "Welk deel van de bedrijven laat mystery-contactonderzoek doen?",
        "split": ("doet mystery contact", ""),
        "figures": "mystery",
    },
    {
        "kind": Question.Kind.SPLIT,
        "prompt": "Hoeveel procent van de chatbotgesprekken helpt de klant echt verder?",
        "split": ("geslaagde gesprekken", ""),
        "figures": "chatbot",
    },
    {
        "kind": Question.Kind.SPLIT,
        "prompt": "Hoeveel bedrijven zeggen dat service telt voor hun financiële resultaat?",
        "split": ("bedrijven", ""),
        "figures": "finances",
    },
    {
        "kind": Question.Kind.MULTIPLE,
        "prompt": "Welke vernieuwingen voeren bedrijven nu in?",
        "options": [
            "Klantenservice-app",
            "Co-browsing",
            "App met persoonlijk aanbod",
            "AI ter ondersteuning van klantcontact",
        ],
        "figures": "innovations",
    },
    {
        "kind": Question.Kind.RANKING,
        "prompt": "Wanneer vindt een klant een bedrijf klantvriendelijk? Zet in volgorde.",
        "options": [
            "Beschikbaar als ik het vraag",
            "Komt beloftes na",
            "Doet niet moeilijk over regels",
            "Geeft fouten toe en lost ze op",
            "Oprecht betrokken",
        ],
    },
    {
        "kind": Question.Kind.TEXT,
        "prompt": "Welk woord past bij service waar je blij van wordt?",
    },
    {
        "kind": Question.Kind.QUADRANT,
        "prompt": "Zet de kanalen neer: hoe tevreden zijn klanten, en hoeveel telt het mee "
        "voor aanbevelen?",
        "options": ["Telefoon", "E-mail", "Chat", "WhatsApp", "Social media", "Website of app"],
        "quadrant": ("Tevredenheid", "laag", "hoog", "Invloed op aanbevelen", "klein", "groot"),
    },
]


# The quiz: "guess the research", four scored questions on the congress's figures, each timed.
# The estimates take their targets from the linked figures (the latest year: self-service 2018
# 39 / 61, CES 2017 1.6, chatbots 2018 59%); the NPS (2017: +13) is a choice of ranges, since an
# NPS figure stands beside an NPS question only (the correct range is the one holding it).
QUIZ_TIME_LIMIT = 20
# (label, lowest, highest) of the NPS ranges; None: open-ended.
NPS_RANGES = [
    ("lager dan 0", None, -1),
    ("0 tot +10", 0, 10),
    ("+11 tot +20", 11, 20),
    ("hoger dan +20", 21, None),
]
QUIZ_QUESTIONS = [
    {
        "kind": Question.Kind.SPLIT,
        "prompt": "Raad het onderzoek: welk deel van al het klantcontact ging in 2018 via "
        "selfservice?",
        "split": ("selfservice", "live contact"),
        "figures": "self_service",
        "tolerance": 20,
    },
    {
        "kind": Question.Kind.SINGLE,
        "prompt": "Welke Net Promoter Score haalden Nederlandse bedrijven in 2017?",
        "ranges": "nps",
    },
    {
        "kind": Question.Kind.CES,
        "prompt": "Hoeveel moeite kostte klantcontact de klant in 2017 gemiddeld (Customer "
        "Effort Score)?",
        "scale": (1, 5, "Heel weinig", "Heel veel"),
        "lower_is_better": True,
        "figures": "ces",
        "tolerance": Decimal("1.5"),
    },
    {
        "kind": Question.Kind.SPLIT,
        "prompt": "Hoeveel procent van de chatbotgesprekken slaagde in 2018?",
        "split": ("geslaagde gesprekken", ""),
        "figures": "chatbot",
        "tolerance": 20,
    },
]


def latest_value(key: str) -> Decimal:
    """The latest year's value of a figure of ``FIGURES`` (what a quiz question scores by)."""
    entries = FIGURES[key]
    if isinstance(entries, tuple):
        entries = [entries]
    latest = max(entries, key=lambda entry: entry[3])
    return Decimal(str(latest[4]))


def holds(value: Decimal, low: int | None, high: int | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


# The profile question: the four generations the 2017 post speaks of. It names babyboom (born
# 1945-1960) and generation Z (born after 1995) with their years; X and Y are labelled by the
# years between, as usually given. Last in order, so the demo still opens on its first question;
# phones ask it on joining anyway.
GENERATION_QUESTION = {
    "prompt": "Tot welke generatie behoor je?",
    "options": [
        "Babyboom (1945\u20131960)",
        "Generatie X (1961\u20131980)",
        "Generatie Y (1981\u20131995)",
        "Generatie Z (na 1995)",
    ],
}


# The audience Q&A as a congress room might have left it half an hour in: open, names allowed,
# items about the day's research (the figures above), votes spread, one answered from the stage.
# (text, name or "", votes, answered). The authors and voters are made-up participant ids that
# no phone is ever given (polls.tokens makes ids of another shape), so a visitor's own votes
# start from nothing.
DEMO_QA = [
    (
        "Slechts 59% van de chatbotgesprekken slaagt. Wanneer geeft de bot het gesprek door "
        "aan een mens?",
        "",
        11,
        True,
    ),
    (
        "Selfservice zakte van 50% in 2016 naar 39% nu. Komt dat door de klant of door "
        "slechte selfservice?",
        "Sanne",
        9,
        False,
    ),
    ("Worden de slides met de onderzoekscijfers na afloop gedeeld?", "", 6, False),
    (
        "Meten jullie de Customer Effort Score per kanaal, of alleen over het hele klantcontact?",
        "Joost",
        4,
        False,
    ),
    (
        "Hoe houd je WhatsApp-contact persoonlijk als je het met een team van twintig mensen doet?",
        "",
        3,
        False,
    ),
    (
        "Maar 18% van de bedrijven doet mystery-contactonderzoek. Hoe overtuig je je directie "
        "dat het loont?",
        "Fatima",
        1,
        False,
    ),
]
DEMO_QA_MINUTES_APART = 4


def _add_sample_qa(event: Event) -> bool:
    """The demo's Q&A, once: on (open, names allowed) with its sample items and votes, unless
    the event has a Q&A of its own already (a host's, or a switch made since). Redis gets it
    in ``ensure_demo``. Whether it was added."""
    if QaConfig.objects.filter(event=event).exists() or event.qa_items.exists():
        return False
    QaConfig.objects.create(event=event, mode=QaConfig.Mode.OPEN, names_allowed=True)
    now = timezone.now()
    first = now - timedelta(minutes=DEMO_QA_MINUTES_APART * len(DEMO_QA))
    for number, (text, name, votes, answered) in enumerate(DEMO_QA, start=1):
        item = QaItem.objects.create(
            event=event,
            participant=f"demo-asker-{number}",
            message_id=f"demo-{number}",
            text=text,
            name=name,
            state=QaItem.State.ANSWERED if answered else QaItem.State.VISIBLE,
            answered_at=now if answered else None,
        )
        asked = first + timedelta(minutes=DEMO_QA_MINUTES_APART * number)
        QaItem.objects.filter(pk=item.pk).update(created_at=asked)  # auto_now_add ignores it
        QaVote.objects.bulk_create(
            QaVote(item=item, participant=f"demo-voter-{voter}", voted_at=asked)
            for voter in range(1, votes + 1)
        )
    return True


def _qa_lost(event: Event) -> bool:
    """The demo has Q&A items and Redis none of them (a Redis emptied since, as a fresh
    ``dev.py serve`` after its data folder went): the vote log went with it, so the rows are
    all there is."""
    return event.qa_items.exists() and not qa_tally.read_votes_sync(event.id)


def _figures(key: str) -> list[Figure]:
    entries = FIGURES[key]
    if isinstance(entries, tuple):
        entries = [entries]
    figures = []
    for study_fields, label, metric, year, value, extra in entries:
        study, _created = Study.objects.get_or_create(
            title=study_fields["title"],
            publisher=study_fields["publisher"],
            defaults=study_fields,
        )
        fields = {"metric": metric, **extra}
        if metric == Figure.Metric.SHARES:
            fields["shares"] = value
        else:
            fields["value"] = Decimal(str(value))
        figure, _created = Figure.objects.get_or_create(
            study=study, label=label, year=year, defaults=fields
        )
        figures.append(figure)
    return figures


def ensure_hosts_group() -> Group:
    group, _created = Group.objects.get_or_create(name=HOSTS_GROUP)
    group.permissions.set(
        Permission.objects.filter(content_type__app_label__in=["polls", "benchmarks"])
    )
    return group


def demo_password_from_environment() -> str:
    """DEMO_PASSWORD_VARIABLE's value, or '' when unset; a short one is refused."""
    password = os.environ.get(DEMO_PASSWORD_VARIABLE, "")
    if password and len(password) < DEMO_PASSWORD_MIN_LENGTH:
        raise DemoPasswordTooShort(
            f"{DEMO_PASSWORD_VARIABLE} is shorter than {DEMO_PASSWORD_MIN_LENGTH} characters"
        )
    return password


def ensure_demo_host(new_password: bool = False) -> tuple[AbstractUser, str | None]:
    """The demo's host account, made once; returns (user, password to print or None).

    With DEMO_PASSWORD_VARIABLE set its value is the password, on every run. Otherwise a new
    account (or ``new_password``) gets a random one, returned so the caller prints it once:
    it is kept nowhere else.
    """
    password = demo_password_from_environment()
    host, created = get_user_model().objects.get_or_create(
        username=DEMO_HOST_USERNAME, defaults={"is_staff": True}
    )
    chosen = None
    if password:
        if not host.check_password(password):
            host.set_password(password)
            host.save()
    elif created or new_password or not host.has_usable_password():
        chosen = secrets.token_urlsafe(12)
        host.set_password(chosen)
        host.save()
    host.groups.add(ensure_hosts_group())
    return host, chosen


def _mend_research() -> None:
    """Library studies and figures that an earlier version of the demo wrote wrong, as this one
    says them (a study a host took over is theirs to keep as it is)."""
    changed_figures = []
    fields_now = {(fields["title"], fields["publisher"]): fields for fields in (KIRC, EIU)}
    for title, publisher, written in CORRECTED_STUDIES:
        for study in Study.objects.filter(title=title, publisher=publisher, owner__isnull=True):
            stale = [name for name, value in written.items() if getattr(study, name) == value]
            if stale:
                for name in stale:
                    setattr(study, name, fields_now[(title, publisher)][name])
                study.save(update_fields=stale)
    for title, label, written, now in CORRECTED_YEARS:
        for figure in Figure.objects.filter(
            study__title=title, study__owner__isnull=True, label=label, year=written
        ):
            if not Figure.objects.filter(study=figure.study, label=label, year=now).exists():
                figure.year = now
                figure.save(update_fields=["year"])
                changed_figures.append(figure.id)
    if changed_figures:
        # A demo that revealed the figure shows it again with its year.
        actions.figure_changed(
            QuestionFigure.objects.filter(figure_id__in=changed_figures, question__revealed=True)
            .values_list("question__event_id", flat=True)
            .distinct()
        )


def _add_generation_question(event: Event) -> bool:
    """The demo's profile question, added once (a demo made by an earlier version gets it now);
    the stage splits results by it. Whether it was added."""
    if event.questions.filter(segment=True, prompt=GENERATION_QUESTION["prompt"]).exists():
        return False
    last = event.questions.order_by("-order").values_list("order", flat=True).first() or 0
    profile = Question(
        event=event,
        order=last + 1,
        kind=Question.Kind.SINGLE,
        prompt=GENERATION_QUESTION["prompt"],
        segment=True,
        ask_on_join=True,
    )
    profile.full_clean()
    profile.save()
    for option_order, label in enumerate(GENERATION_QUESTION["options"], start=1):
        Option.objects.create(question=profile, order=option_order, label=label)
    # The seeds publish no figure per generation and none is made up: the self-service split's
    # reveal sets each generation's result beside the overall figures (2018: 39 / 61).
    event.segment_by = profile
    event.save(update_fields=["segment_by"])
    return True


def _announce(event_id: int) -> None:
    with contextlib.suppress(ValidationError):  # saved; the retry makes it live
        actions.restore_live_state(event_id)


@transaction.atomic
def ensure_demo(reset: bool = False, host: AbstractUser | None = None) -> tuple[Event, bool]:
    """Create the demo event once, hosted by ``host`` (the demo host unless given); returns
    (event, created). A demo made by an earlier version is brought up to this one."""
    if host is None:
        host, _password = ensure_demo_host()

    _mend_research()
    event = Event.objects.filter(code=DEMO_CODE).first()
    if event is not None and reset:
        event.delete()
        event = None
    if event is not None:
        event.hosts.add(host)
        actions.lock_events([event.pk])
        if _add_generation_question(event):
            # As an admin edit of the questions: a new revision, everyone told after commit.
            actions.record_admin_save(event.pk, _announce)
        if _add_sample_qa(event) or _qa_lost(event):
            # Under the event's lock, as a host's Q&A switch; a new version for every phone.
            qa.rebuild_from_db(event.pk)
        return event, False
    event = Event.objects.create(
        title="KSF Jaarcongres 2018: The symphony of customer experience",
        code=DEMO_CODE,
        language="nl",
    )
    event.hosts.add(host)
    for order, spec in enumerate(DEMO_QUESTIONS, start=1):
        question = Question(event=event, order=order, kind=spec["kind"], prompt=spec["prompt"])
        if "scale" in spec:
            low, high, low_label, high_label = spec["scale"]
            question.scale_min, question.scale_max = low, high
            question.scale_min_label, question.scale_max_label = low_label, high_label
        question.lower_is_better = spec.get("lower_is_better", False)
        if "split" in spec:
            question.split_a_label, question.split_b_label = spec["split"]
        if "quadrant" in spec:
            (
                question.quadrant_x_label,
                question.quadrant_x_low,
                question.quadrant_x_high,
                question.quadrant_y_label,
                question.quadrant_y_low,
                question.quadrant_y_high,
            ) = spec["quadrant"]
        question.full_clean()
        question.save()
        for option_order, label in enumerate(spec.get("options", []), start=1):
            Option.objects.create(question=question, order=option_order, label=label)
        for figure_order, figure in enumerate(
            _figures(spec["figures"]) if "figures" in spec else []
        ):
            check_figure_fits(question, figure, len(spec.get("options", [])))
            check_figure_segment(question, figure)
            QuestionFigure.objects.create(question=question, figure=figure, order=figure_order)
    _add_generation_question(event)
    _add_sample_qa(event)
    qa.rebuild_from_db(event.pk)
    return event, True


def _make_quiz_question(event: Event, order: int, spec: dict) -> Question:
    """One scored, timed question of the quiz demo with its options and research figures."""
    question = Question(event=event, order=order, kind=spec["kind"], prompt=spec["prompt"])
    if "scale" in spec:
        low, high, low_label, high_label = spec["scale"]
        question.scale_min, question.scale_max = low, high
        question.scale_min_label, question.scale_max_label = low_label, high_label
    question.lower_is_better = spec.get("lower_is_better", False)
    if "split" in spec:
        question.split_a_label, question.split_b_label = spec["split"]
    question.scored = True
    question.time_limit = QUIZ_TIME_LIMIT
    question.tolerance = spec.get("tolerance")
    question.full_clean()
    question.save()
    if "ranges" in spec:
        value = latest_value(spec["ranges"])
        for option_order, (label, low, high) in enumerate(NPS_RANGES, start=1):
            Option.objects.create(
                question=question,
                order=option_order,
                label=label,
                correct=holds(value, low, high),
            )
    for figure_order, figure in enumerate(_figures(spec["figures"]) if "figures" in spec else []):
        check_figure_fits(question, figure, question.options.count())
        check_figure_segment(question, figure)
        QuestionFigure.objects.create(question=question, figure=figure, order=figure_order)
    problems = quiz_checks.problems(question)
    if problems:
        raise ValidationError(problems)  # a demo that could score nobody is a bug here
    return question


@transaction.atomic
def ensure_quiz_demo(reset: bool = False, host: AbstractUser | None = None) -> tuple[Event, bool]:
    """Create the quiz demo once, hosted by ``host`` (the demo host unless given), in quiz mode
    with its questions scored and timed; returns (event, created). Nothing is opened: the clock
    of a timed question starts when the host opens it."""
    if host is None:
        host, _password = ensure_demo_host()
    event = Event.objects.filter(code=QUIZ_DEMO_CODE).first()
    if event is not None and reset:
        event.delete()
        event = None
    if event is not None:
        event.hosts.add(host)
        return event, False
    event = Event.objects.create(
        title="KSF Jaarcongres 2018: raad het onderzoek",
        code=QUIZ_DEMO_CODE,
        language="nl",
        quiz=True,
    )
    event.hosts.add(host)
    for order, spec in enumerate(QUIZ_QUESTIONS, start=1):
        _make_quiz_question(event, order, spec)
    return event, True

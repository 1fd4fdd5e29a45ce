"""The demo event KSF2018: questions from the 2018 Dutch customer-service congress."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from .models import Event, Option, Question

DEMO_CODE = "KSF2018"
# DEVELOPMENT-ONLY host account for the demo; never create it on a production server.
DEMO_HOST_USERNAME = "host"
DEMO_HOST_PASSWORD = "zaalpeiling-dev-only"  # noqa: S105
HOSTS_GROUP = "Hosts"

DEMO_QUESTIONS = [
    {
        "kind": Question.Kind.SINGLE,
        "prompt": "Welk deel van al het klantcontact verloopt dit jaar via selfservice?",
        "options": ["Minder dan 30%", "30 tot 45%", "45 tot 60%", "Meer dan 60%"],
    },
    {
        "kind": Question.Kind.SCALE,
        "prompt": "Welk rapportcijfer geeft de Nederlandse klant de service gemiddeld?",
        "scale": (1, 10, "Slecht", "Uitstekend"),
    },
    {
        "kind": Question.Kind.MULTIPLE,
        "prompt": "Wat levert jullie werk aan klantbeleving tot nu toe op?",
        "options": [
            "Tevredenere klanten",
            "Meer omzet",
            "Lagere kosten",
            "Klanten blijven langer",
            "(Nog) niets",
        ],
    },
    {
        "kind": Question.Kind.SINGLE,
        "prompt": "Hoeveel bedrijven laten mystery-contactonderzoek doen?",
        "options": ["Minder dan 20%", "20 tot 40%", "40 tot 60%", "Meer dan 60%"],
    },
    {
        "kind": Question.Kind.SINGLE,
        "prompt": "Hoe vaak helpt een chatbot de klant echt verder?",
        "options": [
            "In een kwart van de gesprekken",
            "In de helft",
            "In ruim de helft",
            "In driekwart of meer",
        ],
    },
]


def ensure_hosts_group() -> Group:
    group, _created = Group.objects.get_or_create(name=HOSTS_GROUP)
    group.permissions.set(
        Permission.objects.filter(content_type__app_label__in=["polls", "benchmarks"])
    )
    return group


@transaction.atomic
def ensure_demo(reset: bool = False) -> tuple[Event, bool]:
    """Create the demo event and its dev-only host once; returns (event, created)."""
    user_model = get_user_model()
    host, created_user = user_model.objects.get_or_create(
        username=DEMO_HOST_USERNAME, defaults={"is_staff": True}
    )
    if created_user:
        host.set_password(DEMO_HOST_PASSWORD)
        host.save()
    host.groups.add(ensure_hosts_group())

    event = Event.objects.filter(code=DEMO_CODE).first()
    if event is not None and reset:
        event.delete()
        event = None
    if event is not None:
        event.hosts.add(host)
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
        question.save()
        for option_order, label in enumerate(spec.get("options", []), start=1):
            Option.objects.create(question=question, order=option_order, label=label)
    return event, True

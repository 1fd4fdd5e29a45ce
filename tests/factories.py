"""Small ``make_*`` helpers for events, questions and people."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from polls import actions
from polls.models import Event, Option, Question
from polls.tokens import issue_participant_token, new_participant_id


def make_user(username: str = "someone", **fields):
    fields.setdefault("is_staff", True)
    return get_user_model().objects.create_user(
        username=username, password="pw-for-tests", **fields
    )


def grant_polls_permissions(user) -> None:
    """What the hosts group gives in production: every permission of the polls app."""
    from django.contrib.auth.models import Permission

    user.user_permissions.set(Permission.objects.filter(content_type__app_label="polls"))


def make_event(code: str = "TEST42", title: str = "Test event", hosts=(), **fields) -> Event:
    event = Event.objects.create(
        code=code, title=title, language=fields.pop("language", "en"), **fields
    )
    if hosts:
        event.hosts.add(*hosts)
    return event


def make_question(
    event: Event,
    kind: str = Question.Kind.SINGLE,
    prompt: str = "Which one?",
    options=("Red", "Green", "Blue"),
    order: int | None = None,
    **fields,
) -> Question:
    if order is None:
        order = event.questions.count() + 1
    question = Question.objects.create(event=event, kind=kind, prompt=prompt, order=order, **fields)
    if kind != Question.Kind.SCALE:
        for index, label in enumerate(options, start=1):
            Option.objects.create(question=question, order=index, label=label)
    return question


def make_open_question(event: Event, **kwargs) -> Question:
    question = make_question(event, **kwargs)
    actions.do_set_current(event, question, open_it=True)
    question.refresh_from_db()
    return question


def admin_data(event: Event, **overrides) -> dict:
    """The event's admin change form as posted, its question inline left as it is."""
    data = {
        "title": event.title,
        "code": event.code,
        "language": event.language,
        "theme": event.theme,
        "accent_color": event.accent_color,
        "hosts": [h.pk for h in event.hosts.all()],
        "current_question": event.current_question_id or "",
        "questions-TOTAL_FORMS": 0,
        "questions-INITIAL_FORMS": 0,
        "questions-MIN_NUM_FORMS": 0,
        "questions-MAX_NUM_FORMS": 1000,
    }
    data.update(overrides)
    return data


def option_ids(question: Question) -> list[int]:
    return list(question.options.values_list("id", flat=True))


def token_for(event: Event) -> str:
    return issue_participant_token(event.id, event.code, new_participant_id("192.0.2.1"))

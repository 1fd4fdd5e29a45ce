"""Running the show: the host's actions on an event, each followed by a push to everyone.

check_* authorises, do_* writes (database, then the tally's open flag), and every do_* ends in
``live.notify_event_changed`` so phones and screens hear of it at once.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from . import live, tally
from .figures import check_figure_fits
from .models import Event, Question, new_stage_key

HOST_ACTIONS = (
    "prev",
    "next",
    "open",
    "close",
    "show_results",
    "hide_results",
    "reveal",
    "unreveal",
    "hide_word",
    "show_word",
)


def check_host(user, event: Event) -> None:
    if not event.is_host(user):
        raise PermissionDenied


def _close_others(event: Event, keep: Question | None) -> None:
    """Only the current question may be open: closing the rest keeps the tally's flags honest."""
    others = event.questions.filter(state=Question.State.OPEN)
    if keep is not None:
        others = others.exclude(pk=keep.pk)
    for question in others:
        question.state = Question.State.CLOSED
        question.save(update_fields=["state"])
        tally.set_open(question.id, False)


def do_set_current(event: Event, question: Question | None, open_it: bool = False) -> None:
    with transaction.atomic():
        _close_others(event, question)
        event.current_question = question
        event.save(update_fields=["current_question"])
        if question is not None and open_it and question.state != Question.State.OPEN:
            question.state = Question.State.OPEN
            question.save(update_fields=["state"])
    if question is not None:
        tally.set_open(question.id, question.state == Question.State.OPEN)
    live.notify_event_changed(event.id)


def check_can_open(question: Question) -> None:
    if question.has_options and question.options.count() < 2:
        raise ValidationError(_("This question needs at least two options before it opens."))


def check_can_reveal(question: Question) -> None:
    links = list(question.figure_links.select_related("figure"))
    if not links:
        raise ValidationError(_("This question has no research figure to reveal."))
    option_count = question.options.count()
    for link in links:
        check_figure_fits(question, link.figure, option_count)


def do_set_state(question: Question, state: str) -> None:
    if state == Question.State.OPEN:
        check_can_open(question)
    event = question.event
    with transaction.atomic():
        if state == Question.State.OPEN:
            _close_others(event, question)
            if event.current_question_id != question.id:
                event.current_question = question
                event.save(update_fields=["current_question"])
        question.state = state
        question.save(update_fields=["state"])
    tally.set_open(question.id, state == Question.State.OPEN)
    live.notify_event_changed(event.id)


def do_show_results(question: Question, show: bool) -> None:
    question.show_results = show
    question.save(update_fields=["show_results"])
    live.notify_event_changed(question.event_id)


def do_reveal(question: Question, revealed: bool) -> None:
    """Show (or take back) the research figures beside the room's result."""
    if revealed:
        check_can_reveal(question)
    question.revealed = revealed
    question.save(update_fields=["revealed"])
    live.notify_event_changed(question.event_id)


def do_hide_word(question: Question, word: str, hidden: bool) -> None:
    """Take a word-cloud word off every screen (or put it back); the count itself stays."""
    if question.kind != Question.Kind.TEXT or not word or len(word) > 200:
        raise ValidationError(_("Only words of a word cloud can be hidden."))
    tally.set_word_hidden(question.id, word, hidden)


def do_rotate_stage_key(event: Event) -> None:
    event.stage_key = new_stage_key()
    event.save(update_fields=["stage_key"])
    live.notify_event_changed(event.id)  # screens compare the state's key digest with theirs


def neighbour(event: Event, step: int) -> Question | None:
    questions = list(event.questions.all())
    if not questions:
        return None
    ids = [question.id for question in questions]
    if event.current_question_id not in ids:
        return questions[0] if step > 0 else None
    index = ids.index(event.current_question_id) + step
    return questions[index] if 0 <= index < len(questions) else None


def do_host_action(event: Event, action: str, word: str = "") -> None:
    """One button of the remote control."""
    current = event.current_question
    if action in ("prev", "next"):
        target = neighbour(event, -1 if action == "prev" else 1)
        if target is not None:
            do_set_current(event, target)
    elif current is None:
        return
    elif action == "open":
        do_set_state(current, Question.State.OPEN)  # may raise ValidationError
    elif action == "close":
        do_set_state(current, Question.State.CLOSED)
    elif action in ("show_results", "hide_results"):
        do_show_results(current, action == "show_results")
    elif action in ("reveal", "unreveal"):
        do_reveal(current, action == "reveal")
    elif action in ("hide_word", "show_word"):
        do_hide_word(current, word, action == "hide_word")

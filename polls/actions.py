"""Running the show: the host's actions on an event, each followed by a push to everyone.

check_* authorises, do_* writes (the database and the tally's open flags together: with Redis
away nothing is saved), and every do_* ends in ``go_live`` so phones and screens hear of it at
once, or, with Redis gone between the two, as soon as it is back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import close_old_connections, connections, transaction
from django.utils.translation import gettext as _
from redis.exceptions import RedisError

from . import push, tally, voice
from .consistency import set_aside_of
from .figures import check_figure_fits
from .models import Event, Question, SetAside, new_stage_key
from .text import word_key

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
    "set_aside",
    "restore",
)


logger = logging.getLogger(__name__)

# A change saved while Redis was away is pushed by a background retry once Redis is back.
RETRY_EVERY_SECONDS = 1.0
RETRY_FOR_SECONDS = 15 * 60
_retrying: set[int] = set()
_retrying_lock = threading.Lock()


def check_host(user, event: Event) -> None:
    if not event.is_host(user):
        raise PermissionDenied


def nothing_changed() -> ValidationError:
    return ValidationError(
        _("The live service is unavailable, so nothing was changed. Try again in a moment."),
        code="unavailable",
    )


def live_later(event_id: int) -> ValidationError:
    """Saved, but not live: the retry makes it live once Redis is back; the error says so."""
    logger.warning("event %s: the live service is unavailable, retrying", event_id)
    _retry_in_background(event_id)
    return ValidationError(
        _(
            "Saved, but the screens could not be told yet (the live service is "
            "unavailable); they will be as soon as it is back."
        ),
        code="not_live_yet",
    )


@contextlib.contextmanager
def saving(event_id: int):
    """The database writes and the tally's flags of one action, all or nothing. A flag already
    written when Redis went is put back from the database by the retry."""
    try:
        with transaction.atomic():
            yield
    except tally.TallyUnavailable as error:
        _retry_in_background(event_id)
        raise nothing_changed() from error


def go_live(event_id: int) -> None:
    """Make the event's saved state live: the tally's open flags as the database has them (an
    admin edit may have changed a question's state), and every phone and screen told. If Redis
    went away after the save, a background retry does it once Redis is back, and the caller
    hears so (``not_live_yet``)."""
    try:
        restore_live_state(event_id)
    except (tally.TallyUnavailable, RedisError, OSError) as error:
        raise live_later(event_id) from error


# One at a time per process: a retry's read of the database must not overtake a host's action
# landing meanwhile with an older copy.
_restoring = threading.Lock()


def restore_live_state(event_id: int) -> None:
    """The tally's set-aside participants and open flags from the database, then the push."""
    with _restoring:
        rows = list(Question.objects.filter(event_id=event_id).values_list("id", "kind", "state"))
        # Before the flags: a question opening must not count a set-aside participant even once.
        tally.sync_aside({qid: kind for qid, kind, _state in rows}, set_aside_of(event_id))
        tally.set_open_many({qid: state == Question.State.OPEN for qid, _kind, state in rows})
        push.notify_event_changed(event_id)


def _fill_aside(question: Question) -> None:
    """A question about to open learns who is set aside (it may be new since the set-aside)."""
    tally.sync_aside({question.id: question.kind}, set_aside_of(question.event_id))


def _retry_in_background(event_id: int) -> None:
    with _retrying_lock:
        if event_id in _retrying:
            return
        _retrying.add(event_id)
    threading.Thread(
        target=_retry, args=(event_id,), name=f"go-live-{event_id}", daemon=True
    ).start()


def _retry(event_id: int) -> None:
    try:
        deadline = time.monotonic() + RETRY_FOR_SECONDS
        while time.monotonic() < deadline:
            time.sleep(RETRY_EVERY_SECONDS)
            close_old_connections()
            try:
                restore_live_state(event_id)
            except Exception:  # Redis still away, or the database busy: try again
                logger.debug("event %s: not live yet", event_id, exc_info=True)
                continue
            logger.warning("event %s: the live service is back; its state was pushed", event_id)
            return
        logger.error("event %s: the live service stayed away; its state was not pushed", event_id)
    finally:
        with _retrying_lock:
            _retrying.discard(event_id)
        connections.close_all()


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
    with saving(event.id):
        _close_others(event, question)
        event.current_question = question
        event.save(update_fields=["current_question"])
        if question is not None and open_it and question.state != Question.State.OPEN:
            question.state = Question.State.OPEN
            question.save(update_fields=["state"])
        if question is not None:
            if question.state == Question.State.OPEN:
                _fill_aside(question)
            tally.set_open(question.id, question.state == Question.State.OPEN)
    go_live(event.id)


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
    with saving(event.id):
        if state == Question.State.OPEN:
            _close_others(event, question)
            if event.current_question_id != question.id:
                event.current_question = question
                event.save(update_fields=["current_question"])
        question.state = state
        question.save(update_fields=["state"])
        if state == Question.State.OPEN:
            _fill_aside(question)
        tally.set_open(question.id, state == Question.State.OPEN)
    go_live(event.id)


def do_show_results(question: Question, show: bool) -> None:
    question.show_results = show
    question.save(update_fields=["show_results"])
    go_live(question.event_id)


def do_reveal(question: Question, revealed: bool) -> None:
    """Show (or take back) the research figures beside the room's result."""
    if revealed:
        check_can_reveal(question)
    question.revealed = revealed
    question.save(update_fields=["revealed"])
    go_live(question.event_id)


def do_hide_word(question: Question, word: str, hidden: bool) -> None:
    """Take a word-cloud word off every screen (or put it back); the count itself stays.

    The word is kept in the form the tally counts it, so one hide covers every way of typing it
    (capitals, look-alike letters, full-width ones).
    """
    key = word_key(word) if len(word) <= 200 else None
    if question.kind != Question.Kind.TEXT or key is None:
        raise ValidationError(_("Only words of a word cloud can be hidden."))
    try:
        # Showing again also takes away the word as typed: hidden before words were normalised.
        tally.set_word_hidden(question.id, key, hidden, also=() if hidden else (word,))
    except tally.TallyUnavailable as error:
        raise nothing_changed() from error


def do_rotate_stage_key(event: Event) -> None:
    event.stage_key = new_stage_key()
    event.save(update_fields=["stage_key"])
    go_live(event.id)  # screens compare the state's key digest with theirs


def do_set_aside(event: Event, burst_id: str) -> int:
    """Set aside a burst of the current question: its participants' answers leave the counts of
    every question of the event (and of any question opened later) until restored. Returns how
    many participants were newly set aside."""
    question = event.current_question
    if question is None or not voice.is_burst_id(burst_id):
        raise ValidationError(_("There is no such burst on this question."), code="no_burst")
    try:
        bursts = voice.find_bursts(question.id)
    except tally.TallyUnavailable as error:
        raise nothing_changed() from error
    burst = next((burst for burst in bursts if burst.id == burst_id), None)
    if burst is None:
        raise ValidationError(_("There is no such burst on this question."), code="no_burst")
    with transaction.atomic():
        already = set_aside_of(event.id)
        SetAside.objects.bulk_create(
            [
                SetAside(event=event, participant=participant)
                for participant in sorted(burst.participants - already)
            ],
            ignore_conflicts=True,  # a second press meanwhile
        )
    go_live(event.id)  # the tally follows the committed rows, or the retry makes it
    return len(burst.participants - already)


def do_restore(event: Event, group: str) -> int:
    """Count again the set-aside participants of one address tag and join minutes (what a burst
    was), on every question. Returns how many were restored."""
    parsed = voice.parse_group_id(group)
    if parsed is None:
        raise ValidationError(_("There is no such set-aside group."), code="no_group")
    with transaction.atomic():
        rows = SetAside.objects.select_for_update().filter(
            event=event, participant__contains=f"-{parsed[0]}-"
        )
        restored = [row.pk for row in rows if voice.in_group(row.participant, *parsed)]
        if not restored:
            raise ValidationError(_("There is no such set-aside group."), code="no_group")
        SetAside.objects.filter(pk__in=restored).delete()
    go_live(event.id)
    return len(restored)


def neighbour(event: Event, step: int) -> Question | None:
    questions = list(event.questions.all())
    if not questions:
        return None
    ids = [question.id for question in questions]
    if event.current_question_id not in ids:
        return questions[0] if step > 0 else None
    index = ids.index(event.current_question_id) + step
    return questions[index] if 0 <= index < len(questions) else None


def do_host_action(event: Event, action: str, word: str = "", burst: str = "") -> None:
    """One button of the remote control (``burst``: a burst id, or a group id to restore)."""
    current = event.current_question
    if action == "set_aside":
        do_set_aside(event, burst)
    elif action == "restore":
        do_restore(event, burst)
    elif action in ("prev", "next"):
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

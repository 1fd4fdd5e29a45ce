"""Running the show: the host's actions on an event. Check, do, notify: once, after commit.

Every action takes the event's row lock (``select_for_update``: actions on one event queue, in
whatever process they run), checks against the rows as they are under it, writes the database and
the tally's open flags together (with Redis away nothing is saved: ``nothing_changed``), moves
``Event.revision`` and, once committed, makes ONE push (``go_live``): polls.push builds the state
from the committed rows with their revision, so a state's revision orders states by commit and
every phone, screen and the state cache keep the newest. With Redis gone between the commit and
the push, a background retry makes the change live once it is back (``not_live_yet``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import close_old_connections, connections, transaction
from django.db.models import F
from django.utils.translation import gettext as _
from redis.exceptions import RedisError

from . import metrics, push, qa, quiz, quiz_checks, tally, voice
from .consistency import set_aside_of
from .figures import check_figure_fits
from .limits import LONGEST_HIDDEN_WORD
from .models import Event, Question, SetAside, new_stage_key
from .qa import QA_HOST_ACTIONS
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
    "segments_on",
    "segments_off",
    "podium_on",
    "podium_off",
    *QA_HOST_ACTIONS,
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


class Change:
    """What one action does besides its rows: the tally's open flags, written once in its
    transaction, and whether it changed anything at all (a ``next`` past the last question)."""

    def __init__(self, event: Event) -> None:
        self.event = event
        self.flags: dict[int, bool] = {}
        self.opening: dict[int, str] = {}  # id -> kind of each question left open
        # Scored questions opening: their clocks (``tally.set_quiz_clocks``).
        self.clocks: dict[int, tuple[int, int | None, int]] = {}
        self.made = True

    def set_open(self, question_id: int, is_open: bool, kind: str = "") -> None:
        self.flags[question_id] = is_open
        if is_open:
            self.opening[question_id] = kind
        else:
            self.opening.pop(question_id, None)

    def nothing(self) -> None:
        self.made = False


@contextlib.contextmanager
def host_change(
    event: Event, after_commit: Callable[[int], None] | None = None
) -> Iterator[Change]:
    """One host action on ``event``, all or nothing: the event re-read under its row lock (the
    caller's object is refreshed), the body's rows, the tally's flags, the revision; then, once
    committed, ``after_commit(event_id)`` (``go_live`` unless said otherwise), the one push."""
    try:
        with transaction.atomic():
            event.refresh_from_db(from_queryset=Event.objects.select_for_update())
            change = Change(event)
            yield change
            if not change.made:
                return
            if change.opening:
                # Before the flags: a question opening must not count a set-aside participant
                # even once (it may be new since the set-aside).
                tally.sync_aside(change.opening, set_aside_of(event.id))
            if change.clocks:
                tally.set_quiz_clocks(change.clocks)
            closing = [qid for qid, is_open in change.flags.items() if not is_open]
            if closing:
                tally.forget_deadlines(closing)
            if change.flags:
                tally.set_open_many(change.flags)
            bump_revision(event)
            event_id = event.id
            transaction.on_commit(lambda: (after_commit or go_live)(event_id))
    except tally.TallyUnavailable as error:
        # A flag written before Redis went is put back from the database by the retry.
        _retry_in_background(event.id)
        raise nothing_changed() from error


def bump_revision(event: Event) -> None:
    """In the change's transaction, under the event's row lock: the revision its state carries."""
    Event.objects.filter(pk=event.pk).update(revision=F("revision") + 1)
    event.revision += 1


def go_live(event_id: int) -> None:
    """The push after a commit: every phone and screen told. If Redis went away after the save,
    a background retry does it once Redis is back, and the caller hears so (``not_live_yet``)."""
    try:
        push.notify_event_changed(event_id)
    except (tally.TallyUnavailable, RedisError, OSError) as error:
        raise live_later(event_id) from error


def restore_live_state(event_id: int) -> None:
    """After a commit that changed what the tally must follow (who is set aside, an admin edit
    of the questions): the tally from the database, then the push; ``not_live_yet`` as above."""
    try:
        _restore_and_push(event_id)
    except (tally.TallyUnavailable, RedisError, OSError) as error:
        raise live_later(event_id) from error


def _restore_and_push(event_id: int) -> None:
    """The tally's set-aside participants and open flags as the database has them, then the push.
    Under the event's row lock, which every action takes too: an action landing meanwhile, in any
    process, writes its flags after these, never before them with these overwriting its own."""
    with transaction.atomic():
        if not Event.objects.select_for_update().filter(pk=event_id).exists():
            return  # deleted meanwhile: its sockets were told so
        rows = list(Question.objects.filter(event_id=event_id).values_list("id", "kind", "state"))
        # Before the flags: a question opening must not count a set-aside participant even once.
        tally.sync_aside({qid: kind for qid, kind, _state in rows}, set_aside_of(event_id))
        tally.set_open_many({qid: state == Question.State.OPEN for qid, _kind, state in rows})
    push.notify_event_changed(event_id)


def record_admin_save(event_id: int, announce: Callable[[int], None]) -> None:
    """An admin save of the event, or of one of its questions with its options and figure links,
    in the admin's transaction (whose rows are written under the event's lock, see admin.py):
    only the current question stays open, the revision moves, and once committed ``announce``
    makes the tally follow the rows and tells everyone. The tally is not written before the
    commit: with Redis away the host's edit is kept, and made live by the retry."""
    event = Event.objects.select_for_update().get(pk=event_id)
    Question.objects.filter(event=event, state=Question.State.OPEN).exclude(
        pk=event.current_question_id
    ).update(state=Question.State.CLOSED)
    bump_revision(event)
    transaction.on_commit(lambda: announce(event_id), robust=True)


def lock_events(event_ids) -> None:
    """The row locks of events about to be written, in one order (two saves cannot deadlock)."""
    ids = sorted({event_id for event_id in event_ids if event_id is not None})
    list(Event.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk"))


def figure_changed(event_ids) -> None:
    """A research figure revealed by these events changed (in the caller's transaction)."""
    for event_id in sorted(set(event_ids)):
        bump_revision(Event.objects.select_for_update().get(pk=event_id))
        transaction.on_commit(lambda event_id=event_id: _quietly_live(event_id), robust=True)


def _quietly_live(event_id: int) -> None:
    with contextlib.suppress(ValidationError):  # saved; the retry makes it live
        go_live(event_id)


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
                _restore_and_push(event_id)
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


def check_can_open(question: Question) -> None:
    if question.has_options and question.options.count() < 2:
        raise ValidationError(_("This question needs at least two options before it opens."))
    if question.scored and question.state == Question.State.CLOSED and question.show_results:
        raise ValidationError(
            _("The phones have seen this quiz question's answer: it cannot open again.")
        )
    # A scored question saved right may become unscorable later (its figure's value cleared).
    problems = quiz_checks.problems(question)
    if problems:
        raise ValidationError(problems)


def _start_clock(change: Change, question: Question) -> None:
    """A scored question opening: speed counts from its first opening, and a time limit runs
    from this one (the keeper closes it then, ``polls.deadlines``)."""
    if not question.scored:
        return
    now = int(time.time() * 1000)
    if question.started_ms is None:
        question.started_ms = now
    limit = question.time_limit
    question.deadline_ms = now + limit * 1000 if limit else None
    question.save(update_fields=["started_ms", "deadline_ms"])
    change.clocks[question.id] = (
        question.started_ms,
        question.deadline_ms,
        quiz.window_ms(limit),
    )


def check_can_reveal(question: Question) -> None:
    links = list(question.figure_links.select_related("figure"))
    if not links:
        raise ValidationError(_("This question has no research figure to reveal."))
    option_count = question.options.count()
    for link in links:
        check_figure_fits(question, link.figure, option_count)


# -- the actions' bodies, inside host_change (the event and the question read under the lock) --


def _close_others(change: Change, keep: Question | None) -> None:
    """Only the current question may be open: closing the rest keeps the tally's flags honest."""
    others = Question.objects.filter(event=change.event, state=Question.State.OPEN)
    if keep is not None:
        others = others.exclude(pk=keep.pk)
    closing = list(others.values_list("id", flat=True))
    if closing:
        Question.objects.filter(pk__in=closing).update(state=Question.State.CLOSED)
    for question_id in closing:
        change.set_open(question_id, False)


def _make_current(change: Change, question: Question | None, open_it: bool = False) -> None:
    event = change.event
    _close_others(change, question)
    event.current_question = question
    event.save(update_fields=["current_question"])
    if question is None:
        return
    if open_it and question.state != Question.State.OPEN:
        check_can_open(question)
        question.state = Question.State.OPEN
        question.save(update_fields=["state"])
        _start_clock(change, question)
    change.set_open(question.id, question.state == Question.State.OPEN, question.kind)


def _set_state(change: Change, question: Question, state: str) -> None:
    if state == Question.State.OPEN:
        check_can_open(question)
        _close_others(change, question)
        if change.event.current_question_id != question.id:
            change.event.current_question = question
            change.event.save(update_fields=["current_question"])
    opening = state == Question.State.OPEN and question.state != Question.State.OPEN
    question.state = state
    question.save(update_fields=["state"])
    if opening:
        _start_clock(change, question)
    change.set_open(question.id, state == Question.State.OPEN, question.kind)


def _show_results(question: Question, show: bool) -> None:
    question.show_results = show
    question.save(update_fields=["show_results"])


def _reveal(question: Question, revealed: bool) -> None:
    if revealed:
        check_can_reveal(question)
    question.revealed = revealed
    question.save(update_fields=["revealed"])


def _current(event: Event) -> Question | None:
    """The event's current question as committed (not a copy cached on the event object)."""
    if event.current_question_id is None:
        return None
    return Question.objects.filter(pk=event.current_question_id).first()


# -- the actions ------------------------------------------------------------------------------


def do_set_current(event: Event, question: Question | None, open_it: bool = False) -> None:
    with host_change(event) as change:
        if question is not None:
            question.refresh_from_db()
        _make_current(change, question, open_it)


def do_set_state(question: Question, state: str) -> None:
    with host_change(question.event) as change:
        question.refresh_from_db()
        _set_state(change, question, state)


def do_show_results(question: Question, show: bool) -> None:
    with host_change(question.event):
        question.refresh_from_db()
        _show_results(question, show)


def do_reveal(question: Question, revealed: bool) -> None:
    """Show (or take back) the research figures beside the room's result."""
    with host_change(question.event):
        question.refresh_from_db()
        _reveal(question, revealed)


def close_at_deadline(question_id: int) -> bool:
    """The keeper's close of a timed scored question (``polls.deadlines``): closed, and its
    results (the right answer, the leaderboard) shown, unless the host was quicker or opened it
    again with a new deadline. Whether it closed it."""
    question = Question.objects.filter(pk=question_id).select_related("event").first()
    if question is None:
        return False
    closed = False
    with host_change(question.event) as change:
        question.refresh_from_db()
        due = question.deadline_ms is not None and question.deadline_ms <= time.time() * 1000
        if question.state != Question.State.OPEN or not due:
            return change.nothing()
        _set_state(change, question, Question.State.CLOSED)
        _show_results(question, True)
        closed = True
    return closed


def do_podium(event: Event, shown: bool) -> None:
    """The quiz's podium on the stage instead of the current question, or back."""
    with host_change(event) as change:
        if event.podium == shown:
            return change.nothing()
        event.podium = shown
        event.save(update_fields=["podium"])


def do_hide_word(question: Question, word: str, hidden: bool) -> None:
    """Take a word-cloud word off every screen (or put it back); the count itself stays. The
    event's state does not change: the hidden words travel with the results snapshots.

    The word is kept in the form the tally counts it, so one hide covers every way of typing it
    (capitals, look-alike letters, full-width ones).
    """
    key = word_key(word) if len(word) <= LONGEST_HIDDEN_WORD else None
    if question.kind != Question.Kind.TEXT or key is None:
        raise ValidationError(_("Only words of a word cloud can be hidden."))
    try:
        # Showing again also takes away the word as typed: hidden before words were normalised.
        tally.set_word_hidden(question.id, key, hidden, also=() if hidden else (word,))
    except tally.TallyUnavailable as error:
        raise nothing_changed() from error


def do_rotate_stage_key(event: Event) -> None:
    with host_change(event):  # screens compare the state's key digest with theirs
        event.stage_key = new_stage_key()
        event.save(update_fields=["stage_key"])


def do_set_aside(event: Event, burst_id: str) -> int:
    """Set aside a burst of the current question: its participants' answers leave the counts of
    every question of the event (and of any question opened later) until restored. Returns how
    many participants were newly set aside."""
    question = event.current_question
    if question is None or not voice.is_burst_id(burst_id):
        raise ValidationError(_("There is no such burst on this question."), code="no_burst")
    try:
        bursts = voice.find_bursts(question.id)  # before the lock: a read of the tally only
    except tally.TallyUnavailable as error:
        raise nothing_changed() from error
    burst = next((burst for burst in bursts if burst.id == burst_id), None)
    if burst is None:
        raise ValidationError(_("There is no such burst on this question."), code="no_burst")
    # The tally follows the committed rows after the commit, or the retry makes it.
    with host_change(event, after_commit=restore_live_state):
        already = set_aside_of(event.id)
        SetAside.objects.bulk_create(
            [
                SetAside(event=event, participant=participant)
                for participant in sorted(burst.participants - already)
            ],
            ignore_conflicts=True,
        )
    return len(burst.participants - already)


def do_restore(event: Event, group: str) -> int:
    """Count again the set-aside participants of one address tag and join minutes (what a burst
    was), on every question. Returns how many were restored."""
    parsed = voice.parse_group_id(group)
    if parsed is None:
        raise ValidationError(_("There is no such set-aside group."), code="no_group")
    with host_change(event, after_commit=restore_live_state):
        rows = SetAside.objects.filter(event=event, participant__contains=f"-{parsed[0]}-")
        restored = [row.pk for row in rows if voice.in_group(row.participant, *parsed)]
        if not restored:
            raise ValidationError(_("There is no such set-aside group."), code="no_group")
        SetAside.objects.filter(pk__in=restored).delete()
    return len(restored)


def do_split_by(event: Event, profile: str | None) -> None:
    """Show every result split by a profile question's answers (``profile``: its id, or "" for
    the event's first), or no longer (None)."""
    with host_change(event) as change:
        chosen = None
        if profile is not None:
            profiles = change.event.questions.filter(segment=True)
            chosen = profiles.filter(pk=int(profile)).first() if profile.isdigit() else None
            if chosen is None and not profile:
                chosen = profiles.first()
            if chosen is None:
                raise ValidationError(
                    _("This event has no such profile question."), code="no_profile"
                )
        if change.event.segment_by_id == (chosen.id if chosen else None):
            return change.nothing()
        change.event.segment_by = chosen
        change.event.save(update_fields=["segment_by"])


def neighbour(event: Event, step: int) -> Question | None:
    questions = list(event.questions.all())
    if not questions:
        return None
    ids = [question.id for question in questions]
    if event.current_question_id not in ids:
        return questions[0] if step > 0 else None
    index = ids.index(event.current_question_id) + step
    return questions[index] if 0 <= index < len(questions) else None


# The Q&A's switches (polls.qa.do_qa_config) by action name: (mode, names, stage).
QA_SWITCHES = {
    "qa_off": ("off", None, None),
    "qa_open": ("open", None, None),
    "qa_moderated": ("moderated", None, None),
    "qa_names_on": (None, True, None),
    "qa_names_off": (None, False, None),
    "qa_stage_on": (None, None, True),
    "qa_stage_off": (None, None, False),
}


def do_host_action(
    event: Event, action: str, word: str = "", burst: str = "", item: str = "", text: str = ""
) -> None:
    """One button of the remote control (``burst``: a burst id, or a group id to restore;
    ``item`` and ``text``: a Q&A item and its edited text), decided on the event as it is under
    its lock: two presses at once act one after the other."""
    if action in QA_SWITCHES:
        mode, names, stage = QA_SWITCHES[action]
        qa.do_qa_config(event, mode=mode, names=names, stage=stage)
    elif action in QA_HOST_ACTIONS:
        qa.do_qa_item(event, action.removeprefix("qa_"), item, text)
    elif action == "set_aside":
        do_set_aside(event, burst)
    elif action == "restore":
        do_restore(event, burst)
    elif action in ("hide_word", "show_word"):
        current = _current(event)
        if current is not None:
            do_hide_word(current, word, action == "hide_word")
    elif action in ("segments_on", "segments_off"):
        do_split_by(event, word if action == "segments_on" else None)
    elif action in ("podium_on", "podium_off"):
        do_podium(event, action == "podium_on")
    else:
        with host_change(event) as change:
            _press(change, action)
    if action in HOST_ACTIONS:  # done (a refused one raised); only known names become labels
        metrics.host_action(action)


def _press(change: Change, action: str) -> None:
    if action in ("prev", "next"):
        target = neighbour(change.event, -1 if action == "prev" else 1)
        if target is None:
            return change.nothing()
        return _make_current(change, target)
    current = _current(change.event)
    if current is None:
        return change.nothing()
    if action == "open":
        _set_state(change, current, Question.State.OPEN)  # may raise ValidationError
    elif action == "close":
        _set_state(change, current, Question.State.CLOSED)
    elif action in ("show_results", "hide_results"):
        _show_results(current, action == "show_results")
    elif action in ("reveal", "unreveal"):
        _reveal(current, action == "reveal")
    else:
        change.nothing()

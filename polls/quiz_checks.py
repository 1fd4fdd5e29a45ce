"""Whether a quiz question can be scored as it is configured: the checks admin runs on a
question, its options and its research figures before they are saved.

A scored question must be able to score someone: a choice question needs a right answer an
attendee can give, an estimate a target (its own, or its research figure's) inside the range
its answers take and a tolerance above zero. Each check is handed what is being saved (the
question's posted fields, its posted options and figures); ``problems`` reads them from the
database instead (the demo's tests, and whatever checks a saved question).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ObjectDoesNotExist
from django.utils.translation import gettext as _

from benchmarks.models import Figure

from . import kinds, quiz


@dataclass(frozen=True)
class OptionDraft:
    """An option as it is being saved: its label and whether it is a right answer."""

    label: str
    correct: bool


def answer_range(question) -> tuple[Decimal, Decimal] | None:
    """The values an estimate's answer takes (a split: part A's 0..100; a mark or a CES: its
    scale), or None for a kind that is no estimate."""
    if question.kind not in quiz.ESTIMATE_KINDS:
        return None
    if question.kind == "split":
        return Decimal(0), Decimal(100)
    return Decimal(question.scale_min), Decimal(question.scale_max)


def question_errors(question) -> dict[str, str]:
    """Errors by field name (``scored``, ``target``, ``tolerance``) of the question's own quiz
    fields: what is wrong whatever its options and figures."""
    if not question.scored:
        return {}
    if question.segment:
        return {
            "scored": _(
                "A profile question cannot be scored: it asks who the attendee is and has no "
                "right answer."
            )
        }
    event = event_of(question)
    if event is not None and not event.quiz:
        return {
            "scored": _(
                "Only a quiz event scores its questions: its players have nicknames and a "
                "leaderboard. Turn on quiz mode for the event, or leave this question unscored."
            )
        }
    if question.kind not in quiz.SCORED_KINDS:
        return {
            "scored": _(
                "A %(kind)s question cannot be scored. Scored questions are of these kinds: "
                "%(kinds)s."
            )
            % {"kind": kind_label(question.kind), "kinds": scored_kinds_text()}
        }
    errors: dict[str, str] = {}
    if question.kind in quiz.ESTIMATE_KINDS:
        if question.tolerance is None or question.tolerance <= 0:
            errors["tolerance"] = _(
                "A scored estimate needs a tolerance above 0: how far from the target a guess "
                "still earns points."
            )
        problem = target_outside(question, question.target)
        if problem:
            errors["target"] = problem
    return errors


def event_of(question):
    """The question's event (the posted one on a form's draft), or None before it has one."""
    try:
        return question.event
    except ObjectDoesNotExist:
        return None


def target_outside(question, target: Decimal | None, from_figure: bool = False) -> str | None:
    """What is wrong with ``target`` for the answers the question takes, if anything."""
    bounds = answer_range(question)
    if target is None or bounds is None or None in bounds:
        return None
    low, high = bounds
    if low <= target <= high:
        return None
    numbers = {"target": plain(target), "low": plain(low), "high": plain(high)}
    if from_figure:
        return (
            _(
                "The research figure's value %(target)s lies outside the answers this question "
                "takes (%(low)s to %(high)s), so no guess could be right. Enter a target of its "
                "own, or link another figure."
            )
            % numbers
        )
    return _("The target must lie within the answers this question takes: %(low)s to %(high)s.") % (
        numbers
    )


def options_errors(question, options: Iterable[OptionDraft]) -> list[str]:
    """What is wrong with these options for scoring the question (a choice question's right
    answer), if anything. Correct options on a question that is not scored are harmless (see
    ``unscored_correct``)."""
    if not question.scored or question.segment or question.kind not in quiz.CHOICE_KINDS:
        return []
    options = list(options)
    correct = sum(1 for option in options if option.correct)
    if correct == 0:
        if question.kind == "single":
            return [_("A scored single-choice question needs at least one option marked correct.")]
        return [
            _(
                "A scored multiple-choice question needs at least one option marked correct: an "
                "answer scores when it chooses exactly the correct options."
            )
        ]
    if question.kind == "multiple":
        most = question.max_choices or len(options)
        if not question.min_choices <= correct <= most:
            return [
                _(
                    "%(correct)s options are marked correct, but an answer chooses %(low)s to "
                    "%(high)s options, so nobody could choose exactly the correct ones. Change "
                    "the correct options or the fewest / most choices."
                )
                % {"correct": correct, "low": question.min_choices, "high": most}
            ]
    return []


def unscored_correct(question, options: Iterable[OptionDraft]) -> bool:
    """Options marked correct on a question that scores nothing (allowed; the host is told)."""
    return not question.scored and any(option.correct for option in options)


def figure_value(question, figures: Iterable[Figure]) -> Decimal | None:
    """The value an estimate scores by among these figures: the latest (by year) of those that
    compare with its kind, have a value and are measured for the whole population (the rule of
    ``polls.state.figure_target``, which reads the saved links)."""
    kind = kinds.find(question.kind)
    if kind is None:
        return None
    usable = [
        figure
        for figure in figures
        if figure.metric in kind.comparable_metrics
        and figure.value is not None
        and not figure.segment
    ]
    if not usable:
        return None
    return max(usable, key=lambda figure: figure.year).value


def target_errors(question, figures: Iterable[Figure]) -> list[str]:
    """What is wrong with a scored estimate's target, given the figures linked to it: without
    a target of its own, one of them must give it (inside the answers' range)."""
    if not question.scored or question.segment or question.kind not in quiz.ESTIMATE_KINDS:
        return []
    if question.target is not None:
        return []
    value = figure_value(question, figures)
    if value is None:
        kind = kinds.get(question.kind)
        return [
            _(
                "A scored %(kind)s question needs a target: enter one, or link a research "
                "figure of the whole population with a value (%(metrics)s)."
            )
            % {"kind": kind.label, "metrics": metrics_text(kind.comparable_metrics)}
        ]
    problem = target_outside(question, value, from_figure=True)
    return [problem] if problem else []


def problems(question) -> list[str]:
    """Every reason the saved question cannot be scored as it is (none: it can, or it is not
    scored), its options and figures read from the database."""
    found = list(question_errors(question).values())
    if found:
        return found
    options = [OptionDraft(option.label, option.correct) for option in question.options.all()]
    figures = [link.figure for link in question.figure_links.select_related("figure")]
    return options_errors(question, options) + target_errors(question, figures)


def scored_kinds_text() -> str:
    """The kinds that can be scored, by their names in the active language."""
    return ", ".join(str(kind.label) for kind in kinds.REGISTERED if kind.name in quiz.SCORED_KINDS)


def kind_label(name: str) -> str:
    kind = kinds.find(name)
    return str(kind.label) if kind is not None else str(name)


def metrics_text(metrics: Iterable[str]) -> str:
    labels = dict(Figure.Metric.choices)
    return ", ".join(str(labels.get(metric, metric)) for metric in sorted(metrics))


def plain(number: Decimal) -> str:
    """A number as a host types it: 39 and 1.6, not 39.00 and 1.60."""
    text = f"{Decimal(number):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text

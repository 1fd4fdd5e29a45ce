"""The record as data: every question's result from the Answer rows, and the answers.

An export is the record, not the show: counts come from the Answer rows the writer keeps (not
from the Redis tally), go through the tally's own buckets and each kind's summary, and every
linked research figure is compared, whether or not it was revealed on stage.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone, translation
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from redis.exceptions import RedisError

from benchmarks.models import Figure

from .. import kinds, tally
from ..figures import COMPARABLE_METRICS, comparisons
from ..models import Answer, Event, Question, SetAside
from ..state import question_payload, question_spec
from . import presentation
from .presentation import ResultTable, beside

# --- the results, as plain data ----------------------------------------------------------


def event_results(event: Event, screen: bool = False) -> list[dict]:
    """Every question's result in order, with the research figures beside it (newest first).

    Each question: number, prompt, kind, respondents, ``lines`` (what was counted: options,
    scale points, split bins, words, points or mean positions per item), ``summary_lines`` (mean,
    NPS and its groups, the split), ``research`` (every linked figure) and the raw ``summary``
    from ``results``. A line's ``research`` holds the figures that stand beside it.

    ``screen=True`` gives word clouds as the stage shows them (words the host hid left out,
    profanity masked, the top words only): for the printable page. Exports keep every word.
    """
    with translation.override(event.language):
        questions = list(event.questions.prefetch_related("options"))
        values: dict[int, list[Any]] = {question.id: [] for question in questions}
        for question_id, value in counted_answers(event).values_list("question_id", "value"):
            values[question_id].append(value)
        return [
            _question_result(question, number, len(questions), values[question.id], screen)
            for number, question in enumerate(questions, start=1)
        ]


def counted_answers(event: Event):
    """The event's answers that count: every one but those of participants the host set aside
    (as on the stage; the raw answers sheet keeps them, marked)."""
    aside = SetAside.objects.filter(event=event).values("participant")
    return Answer.objects.filter(question__event=event).exclude(participant__in=aside)


def _safe_buckets(kind: str, value: Any) -> list[str]:
    """The tally's buckets; none for an answer that no longer fits its question.

    The kind of a question can be changed in admin after answers came in; an export must still
    be possible then (the answer still counts as a respondent).
    """
    try:
        return tally.buckets_for(kind, value)
    except (TypeError, AttributeError, KeyError):
        return []


def _hidden_words(question: Question) -> frozenset[str]:
    if not kinds.get(question.kind).counts_words:
        return frozenset()
    try:
        return frozenset(tally.hidden_words(question.id))
    except (RedisError, OSError):
        # Hidden words live in Redis only; without it the page still renders, profanity masked.
        return frozenset()


def _question_result(
    question: Question, number: int, count: int, values: list[Any], screen: bool
) -> dict:
    payload = question_payload(question, number, count)
    # The record compares with every linked figure, revealed on stage or not.
    figures = [
        link.figure.as_payload() for link in question.figure_links.select_related("figure__study")
    ]
    payload["figures"] = figures
    spec = question_spec(payload)
    kind = question.kind
    total = len(values)
    raw: dict[str, int] = {}
    for value in values:
        for bucket in _safe_buckets(kind, value):
            raw[bucket] = raw.get(bucket, 0) + 1
    hidden = _hidden_words(question) if screen else frozenset()
    message = kinds.results_message(spec, 0, total, raw, hidden)
    summary = message["summary"]
    # A figure linked before the question's kind changed cannot be compared; it is still listed.
    comparable = [
        figure for figure in figures if figure["metric"] in COMPARABLE_METRICS.get(kind, set())
    ]
    compared = {
        entry["figure"]: entry
        for entry in comparisons({**spec, "figures": comparable}, summary, total, spec["labels"])
    }
    research = [
        presentation.research(figure, compared.get(figure["id"]), spec) for figure in figures
    ]
    research.reverse()  # newest first: the latest measurement stands beside the result
    built = ResultTable(spec, payload, total, raw, message, screen)
    kind_of = kinds.get(kind)
    kind_of.export_lines(built)
    lines, summary_lines, headline = built.lines, built.summary_lines, built.headline
    for entry in research:
        if not entry["compared"]:
            continue
        if entry["metric"] == Figure.Metric.SHARES:
            for line in lines:
                option = entry["options"].get(line["key"])
                if option is not None:
                    widest = entry["option"] is not None and str(entry["option"]) == line["key"]
                    line["research"].append(
                        beside(
                            entry,
                            option["measured"],
                            option["difference"] if total else None,
                            entry["words"] if widest else "",
                            spec,
                        )
                    )
        elif headline is not None:
            headline["research"].append(
                beside(entry, entry["measured"], entry["difference"], entry["words"], spec)
            )
    return {
        "number": number,
        "id": question.id,
        "prompt": question.prompt,
        "kind": kind,
        "kind_label": question.get_kind_display(),
        "revealed": question.revealed,
        "respondents": total,
        "lines": lines,
        "summary_lines": summary_lines,
        "items": built.items,
        "research": research,
        "beside": any(line["research"] for line in lines),
        "summary": summary,
        # Each kind's own block ("split", ...; None for the other kinds), for the page.
        **kinds.payload_blocks(question),
        "print_template": kind_of.print_template,
        "counts_words": kind_of.counts_words,
    }


def readable_answer(question: Question, value: Any, labels: dict[str, str]) -> str | int:
    """An answer as a person reads it: option labels, not ids; scale answers stay numbers."""

    def label(option_id) -> str:
        return labels.get(str(option_id), f"#{option_id}")

    kind = kinds.find(question.kind)
    if kind is None:
        return value if isinstance(value, str) else tally.encode_value(value)
    try:
        return kind.readable_answer(question, value, label)
    except (TypeError, ValueError, KeyError, AttributeError):
        # A question whose kind changed after answering: the value as stored.
        return tally.encode_value(value)


def answer_table(event: Event) -> tuple[list[str], list[list]]:
    """Header and rows of every answer, in question order, then by time answered."""
    with translation.override(event.language):
        # Per question once: a display label costs a translation lookup, and there may be
        # 5,000 answers to each question.
        questions = {
            question.id: (
                number,
                question,
                question.get_kind_display(),
                {str(option.id): option.label for option in question.options.all()},
            )
            for number, question in enumerate(event.questions.prefetch_related("options"), start=1)
        }
        headers = [
            _("No."),
            capfirst(_("question")),
            capfirst(_("kind")),
            capfirst(_("participant")),
            capfirst(_("answer")),
            capfirst(_("answered at")),
            capfirst(_("set aside")),
        ]
        answers = Answer.objects.filter(question__event=event).order_by(
            "question__order", "question_id", "answered_at", "id"
        )
        aside = set(SetAside.objects.filter(event=event).values_list("participant", flat=True))
        rows = []
        for answer in answers.iterator(chunk_size=2000):
            number, question, kind_label, labels = questions[answer.question_id]
            rows.append(
                [
                    number,
                    question.prompt,
                    kind_label,
                    answer.participant,
                    readable_answer(question, answer.value, labels),
                    timezone.localtime(answer.answered_at),
                    _("yes") if answer.participant in aside else "",
                ]
            )
        return headers, rows


# --- results as a table ------------------------------------------------------------------


def line_headers() -> list[str]:
    return [
        _("Result"),
        _("Measure"),
        _("Count"),
        _("Share (%)"),
        _("Value"),
        _("Research figure"),
        _("Difference"),
        _("Figure"),
        _("Year measured"),
        _("Study"),
        _("Publisher"),
        _("In words"),
    ]


def line_rows(line: dict) -> list[list]:
    """A result line, its first research figure beside it; more figures on rows under it.

    Count, share and value appear once, so a column's sum stays the sum of what was counted.
    """
    own = [line["label"], line["measure"], line["count"], line["percent"], line["value"]]
    if not line["research"]:
        return [[*own, None, None, None, None, None, None, None]]
    rows = []
    for index, research in enumerate(line["research"]):
        head = own if index == 0 else [line["label"], line["measure"], None, None, None]
        rows.append(
            [
                *head,
                research["measured"],
                research["difference"],
                research["label"],
                research["year"],
                research["study"],
                research["publisher"],
                research["words"],
            ]
        )
    return rows


def results_table(event: Event) -> tuple[list[str], list[list]]:
    data = event_results(event)
    with translation.override(event.language):
        headers = [
            _("No."),
            capfirst(_("question")),
            capfirst(_("kind")),
            _("Respondents"),
            _("Row"),
            *line_headers(),
        ]
        result_word, summary_word = _("result"), _("summary")
        rows = []
        for question in data:
            own = [question["number"], question["prompt"], question["kind_label"]]
            own.append(question["respondents"])
            parts = [(result_word, line) for line in question["lines"]]
            parts += [(summary_word, line) for line in question["summary_lines"]]
            if not parts:  # every question appears, even one nobody answered
                rows.append([*own, None, *[None] * len(line_headers())])
            for part, line in parts:
                rows.extend([*own, part, *row] for row in line_rows(line))
        return headers, rows

"""Which research figure can stand beside which question, and the comparison for a snapshot.

The rules live here (polls side) because the benchmarks app knows nothing of questions.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from benchmarks.compare import OptionGap, compare_shares, compare_value
from benchmarks.models import Figure

from . import kinds, protocol
from .models import Option, Question, QuestionFigure

# Per kind, the metrics of the figures it compares with (each kind's ``comparable_metrics``).
COMPARABLE_METRICS = {
    kind.name: kind.comparable_metrics for kind in kinds.REGISTERED if kind.comparable_metrics
}


def check_figure_fits(question: Question, figure: Figure, option_count: int | None) -> None:
    """Raise ValidationError when the figure cannot be compared with the question's result."""
    allowed = COMPARABLE_METRICS.get(question.kind, set())
    if figure.metric not in allowed:
        raise ValidationError(
            _("A %(metric)s figure cannot be compared with a %(kind)s question.")
            % {"metric": figure.get_metric_display(), "kind": question.get_kind_display()}
        )
    shares_mismatch = option_count is not None and len(figure.shares) != option_count
    if figure.metric == Figure.Metric.SHARES and shares_mismatch:
        raise ValidationError(
            _("The figure has %(shares)d shares but the question has %(options)d options.")
            % {"shares": len(figure.shares), "options": option_count}
        )
    if figure.metric in (Figure.Metric.MEAN, Figure.Metric.CES) and (
        figure.scale_min,
        figure.scale_max,
    ) != (question.scale_min, question.scale_max):
        raise ValidationError(
            _("Scales differ: the figure's is %(fmin)s-%(fmax)s, the question's %(qmin)s-%(qmax)s.")
            % {
                "fmin": figure.scale_min,
                "fmax": figure.scale_max,
                "qmin": question.scale_min,
                "qmax": question.scale_max,
            }
        )
    if figure.metric == Figure.Metric.CES and figure.lower_is_better != question.lower_is_better:
        raise ValidationError(_("The figure and the question disagree on whether lower is better."))


def event_segments(event_id: int) -> list[str]:
    """The labels of the event's profile options (its segments), in the questions' order."""
    options = Option.objects.filter(question__event_id=event_id, question__segment=True)
    return list(
        options.order_by("question__order", "question_id", "order", "id").values_list(
            "label", flat=True
        )
    )


def check_figure_segment(question: Question, figure: Figure) -> None:
    """Raise ValidationError when a figure measured for a segment names no segment of the
    question's event: the reveal would have no group of the room to compare it with."""
    if not figure.segment.strip():
        return
    segments = event_segments(question.event_id)
    if any(same_segment(figure.segment, label) for label in segments):
        return
    if not segments:
        raise ValidationError(
            _(
                'The figure is measured for the segment "%(segment)s", but this event has no '
                "profile question. Mark a single-choice question as a profile question, with "
                "an option of that name, or choose a figure for the whole population."
            )
            % {"segment": figure.segment}
        )
    raise ValidationError(
        _(
            'The figure is measured for the segment "%(segment)s", which no profile question '
            "of this event offers. This event's segments: %(segments)s."
        )
        % {"segment": figure.segment, "segments": ", ".join(segments)}
    )


def unmatched_segment_figures(event_id: int) -> list[tuple[str, str]]:
    """(question prompt, segment) of each figure linked in the event for a segment none of its
    profile options names any more (an option renamed or removed, a question unmarked)."""
    segments = event_segments(event_id)
    links = QuestionFigure.objects.filter(question__event_id=event_id).exclude(figure__segment="")
    return [
        (prompt, segment)
        for prompt, segment in links.order_by("question__order", "question_id", "id").values_list(
            "question__prompt", "figure__segment"
        )
        if segment.strip() and not any(same_segment(segment, label) for label in segments)
    ]


def same_segment(figure_segment: str, label: str) -> bool:
    """Whether a figure's segment names this profile option (or both are the whole)."""
    return figure_segment.strip().casefold() == label.strip().casefold()


def comparisons(
    spec: protocol.QuestionSpec,
    summary: protocol.Summary,
    total: int,
    option_labels: dict[str, str],
    segment: str = "",
) -> list[protocol.Comparison]:
    """Each revealed figure against the room's result (oldest first): the figures for the whole
    population, or with ``segment`` (a profile option's label) those measured for that segment."""
    entries: list[protocol.Comparison] = []
    for figure in spec.get("figures") or []:
        if not same_segment(figure.get("segment") or "", segment):
            continue
        metric = figure["metric"]
        if metric == "shares":
            percent = summary.get("percent", {})
            gaps = [
                OptionGap(key, option_labels.get(key, key), float(percent.get(key, 0)), measured)
                for key, measured in zip(
                    [str(option) for option in spec["options"]], figure["shares"], strict=False
                )
            ]
            compared = compare_shares(gaps, total)
        else:
            room = {
                "split": summary.get("mean_a"),
                "percentage": summary.get("mean_a"),
                "nps": summary.get("score"),
                "mean": summary.get("mean"),
                "ces": summary.get("mean"),
            }[metric]
            compared = compare_value(
                metric,
                figure["value"],
                room,
                subject=(spec.get("split") or {}).get("a", ""),
                lower_is_better=figure.get("lower_is_better", False),
            )
            compared["options"] = None
            compared["option"] = None
        entries.append(
            {"figure": figure["id"], "metric": metric, "year": figure["year"], **compared}
        )
    return entries

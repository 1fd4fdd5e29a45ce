"""An event's record as files: its answers and results in CSV and XLSX, and the data behind them.

An export is the record, not the show: counts come from the Answer rows the writer keeps (not
from the Redis tally), go through the tally's own buckets and ``results`` arithmetic, and every
linked research figure is compared, whether or not it was revealed on stage.

Spreadsheets run cell text that starts with ``=``, ``+``, ``-`` or ``@`` as a formula, and the
texts here come from attendees: CSV cells get a leading apostrophe, XLSX cells are written as
plain strings. Nothing is HTML-escaped: ``<b>hi</b>`` is what the attendee typed.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone, translation
from django.utils.formats import number_format
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.worksheet.hyperlink import Hyperlink
from redis.exceptions import RedisError

from benchmarks.models import Figure

from . import results, tally
from .figures import COMPARABLE_METRICS, comparisons
from .models import Answer, Event, Question, SetAside
from .state import question_payload, question_spec

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SHEET_TITLE_LENGTH = 31
_SHEET_TITLE_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
# Ranges take an en dash: Excel opens a CSV cell "10-19" as a date.
EN_DASH = "\u2013"
BOLD = Font(bold=True)
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"


# --- the results, as plain data ----------------------------------------------------------


def event_results(event: Event, screen: bool = False) -> list[dict]:
    """Every question's result in order, with the research figures beside it (newest first).

    Each question: number, prompt, kind, respondents, ``lines`` (what was counted: options,
    scale points, split bins, words, ranking points, quadrant means), ``summary_lines`` (mean,
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
    if question.kind != Question.Kind.TEXT:
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
    message = results.results_message(spec, 0, total, raw, hidden)
    summary = message["summary"]
    # A figure linked before the question's kind changed cannot be compared; it is still listed.
    comparable = [
        figure for figure in figures if figure["metric"] in COMPARABLE_METRICS.get(kind, set())
    ]
    compared = {
        entry["figure"]: entry
        for entry in comparisons({**spec, "figures": comparable}, summary, total, spec["labels"])
    }
    research = [_research(figure, compared.get(figure["id"]), spec) for figure in figures]
    research.reverse()  # newest first: the latest measurement stands beside the result
    built = _Lines(spec, payload, total, raw, message, screen)
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
                        _beside(
                            entry,
                            option["measured"],
                            option["difference"] if total else None,
                            entry["words"] if widest else "",
                            spec,
                        )
                    )
        elif headline is not None:
            headline["research"].append(
                _beside(entry, entry["measured"], entry["difference"], entry["words"], spec)
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
        "split": spec["split"],
        "quadrant": payload["quadrant"],
    }


def _tidy(value: float | Decimal | None) -> float | int | None:
    """39.0 -> 39: whole numbers read as whole numbers in every file."""
    if value is None:
        return None
    number = float(value)
    return int(number) if number.is_integer() else number


def _number(value: float | int, places: int = 0, signed: bool = False) -> str:
    """A number for people, in the active language (7,5 in Dutch), rounded half up."""
    rounded = results.round_half_up(value, places)
    if rounded == 0:
        rounded = abs(rounded)  # never "-0"
    text = number_format(rounded, decimal_pos=places, use_l10n=True)
    return f"+{text}" if signed and rounded > 0 else text


def _places(value: float | int) -> int:
    return 0 if float(value).is_integer() else 1


def _show(metric: str, value: float | int | None, spec: dict) -> str:
    """A figure's value as the stage writes it: 39 / 61, 63%, +13, 7,5."""
    if value is None:
        return "-"
    if metric == Figure.Metric.SPLIT and (spec.get("split") or {}).get("b"):
        return f"{_number(value, _places(value))} / {_number(100 - value, _places(value))}"
    if metric in (Figure.Metric.SPLIT, Figure.Metric.PERCENTAGE, Figure.Metric.SHARES):
        return f"{_number(value, _places(value))}%"
    if metric == Figure.Metric.NPS:
        return _number(value, signed=True)
    return _number(value, 1)


def _show_difference(metric: str, difference: float | None) -> str:
    if difference is None:
        return ""
    places = 1 if metric in (Figure.Metric.MEAN, Figure.Metric.CES) else 0
    return _number(difference, places, signed=True)


def _research(figure: dict, compared: dict | None, spec: dict) -> dict:
    study = figure["study"]
    metric = figure["metric"]
    shares = [_tidy(share) for share in figure["shares"] or []]
    measured = _tidy(figure["value"])
    entry = {
        "figure": figure["id"],
        "label": figure["label"],
        "metric": metric,
        "year": figure["year"],
        "measured": measured,
        "shares": shares,
        "measured_display": (
            " / ".join(_show(metric, share, spec) for share in shares)
            if metric == Figure.Metric.SHARES
            else _show(metric, measured, spec)
        ),
        "study": study["title"],
        "publisher": study["publisher"],
        "study_year": study["year"],
        "url": study["url"],
        "source": f"{study['title']} ({study['publisher']}, {study['year']})",
        "compared": compared is not None,
        "room": None,
        "room_display": "",
        "difference": None,
        "difference_display": "",
        "words": "",
        "option": None,
        "options": {},
    }
    if compared is None:
        return entry
    language = translation.get_language()
    entry["room"] = _tidy(compared["room"])
    entry["difference"] = _tidy(compared["difference"])
    entry["difference_display"] = _show_difference(metric, compared["difference"])
    entry["words"] = compared["words"].get(language) or compared["words"].get("en", "")
    if metric == Figure.Metric.SHARES:
        entry["option"] = compared["option"]
        entry["options"] = {
            str(option["id"]): {
                "measured": _tidy(option["measured"]),
                "difference": _tidy(option["difference"]),
            }
            for option in compared["options"]
        }
    elif compared["room"] is not None:
        entry["room_display"] = _show(metric, compared["room"], spec)
    return entry


def _beside(entry: dict, measured, difference, words: str, spec: dict) -> dict:
    """One figure as it stands beside one result line."""
    metric = entry["metric"]
    return {
        "figure": entry["figure"],
        "label": entry["label"],
        "metric": metric,
        "year": entry["year"],
        "study": entry["study"],
        "publisher": entry["publisher"],
        "source": entry["source"],
        "measured": _tidy(measured),
        "measured_display": _show(metric, measured, spec),
        "difference": _tidy(difference),
        "difference_display": _show_difference(metric, difference),
        "words": words,
        # Where the measured share lies on the option's 0-100 bar (the printable page marks it).
        "mark": (
            f"{min(max(float(measured), 0), 100):g}"
            if measured is not None and metric == Figure.Metric.SHARES
            else None
        ),
    }


def _line(
    label: str,
    measure: str = "",
    count: int | None = None,
    percent: int | None = None,
    value: float | int | None = None,
    key: str | None = None,
    display: str = "",
) -> dict:
    return {
        "key": key,
        "label": label,
        "measure": measure,
        "count": count,
        "percent": percent,
        # Bar widths on the printable page: a plain number, never localised ("7,5" is no width).
        "bar": str(percent) if percent is not None else None,
        "value": _tidy(value),
        "display": display,
        "research": [],
    }


class _Lines:
    """A question's result as table lines, per kind; ``headline`` is where value figures go."""

    def __init__(
        self, spec: dict, payload: dict, total: int, raw: dict, message: dict, screen: bool
    ):
        self.spec = spec
        self.payload = payload
        self.total = total
        self.raw = raw
        self.counts = message["counts"]
        self.summary = message["summary"]
        self.screen = screen
        self.lines: list[dict] = []
        self.summary_lines: list[dict] = []
        self.items: list[dict] = []
        self.headline: dict | None = None
        kind = spec["kind"]
        if kind in Question.CHOICE_KINDS:
            self._choice()
        elif kind in (*Question.SCALE_KINDS, *Question.NPS_KINDS):
            self._scale(kind)
        elif kind == Question.Kind.SPLIT:
            self._split()
        elif kind == Question.Kind.TEXT:
            self._text()
        elif kind == Question.Kind.RANKING:
            self._ranking()
        elif kind == Question.Kind.QUADRANT:
            self._quadrant()

    def label(self, option_id) -> str:
        return self.spec["labels"].get(str(option_id), f"#{option_id}")

    def _choice(self) -> None:
        percent = self.summary["percent"]
        for option in self.spec["options"]:
            key = str(option)
            self.lines.append(
                _line(
                    self.label(option),
                    count=self.counts.get(key, 0),
                    percent=percent.get(key, 0),
                    key=key,
                )
            )

    def _scale(self, kind: str) -> None:
        scale = self.spec["scale"]
        percent = self.summary.get("percent") or results.largest_remainder_percentages(
            self.counts, self.total
        )
        for point in range(scale["min"], scale["max"] + 1):
            key = str(point)
            label = key
            if point == scale["min"] and scale["min_label"]:
                label = f"{point} ({scale['min_label']})"
            elif point == scale["max"] and scale["max_label"]:
                label = f"{point} ({scale['max_label']})"
            self.lines.append(
                _line(label, count=self.counts.get(key, 0), percent=percent.get(key, 0), key=key)
            )
        if kind in Question.NPS_KINDS:
            promoter_from, passive_from = results.NPS_THRESHOLDS[kind]
            groups = [
                ("promoters", _("Promoters"), promoter_from, 10),
                ("passives", _("Passives"), passive_from, promoter_from - 1),
                ("detractors", _("Detractors"), 0, passive_from - 1),
            ]
            for key, name, low, high in groups:
                self.summary_lines.append(
                    _line(
                        f"{name} ({low}{EN_DASH}{high})",
                        count=self.summary["groups"][key],
                        percent=self.summary[key],
                        key=key,
                    )
                )
            score = self.summary["score"]
            self.headline = _line(
                "",
                measure=_("eNPS") if kind == Question.Kind.ENPS else _("NPS"),
                value=score,
                display="-" if score is None else _number(score, signed=True),
            )
        else:
            mean = self.summary["mean"]
            self.headline = _line(
                "",
                measure=_("Average"),
                value=mean,
                display="-" if mean is None else _number(mean, 1),
            )
        self.summary_lines.append(self.headline)

    def _split(self) -> None:
        bins = self.summary["bins"]
        percent = results.largest_remainder_percentages(bins, self.total)
        for start in range(0, 100, 10):
            key = str(start)
            end = 100 if start == 90 else start + 9
            self.lines.append(
                _line(f"{start}{EN_DASH}{end}", count=bins[key], percent=percent[key], key=key)
            )
        split = self.spec["split"] or {"a": "", "b": ""}
        parts = [(split["a"], self.summary["mean_a"])]
        if split["b"]:  # a plain percentage guess has no part B
            parts.append((split["b"], self.summary["mean_b"]))
        for part, mean in parts:
            self.summary_lines.append(
                _line(
                    part,
                    measure=_("Average"),
                    value=mean,
                    display="-" if mean is None else f"{_number(mean)}%",
                )
            )
        self.headline = self.summary_lines[0]  # research on a split compares part A

    def _text(self) -> None:
        if self.screen:
            words = [(word["word"], word["count"]) for word in self.summary["words"]]
        else:
            words = sorted(
                ((word, count) for word, count in self.raw.items() if count > 0),
                key=lambda pair: (-pair[1], pair[0]),
            )
        # Keyed by position: two masked words ("f***") may read the same.
        percent = results.percentages(
            {str(index): count for index, (_word, count) in enumerate(words)}, self.total
        )
        for index, (word, count) in enumerate(words):
            self.lines.append(_line(word, count=count, percent=percent[str(index)], key=word))

    def _ranking(self) -> None:
        items = self.summary["items"]
        most = max([item["points"] for item in items] + [1])
        for position, item in enumerate(items, start=1):
            label = self.label(item["id"])
            mean_rank = item["mean_rank"]
            rank_display = "-" if mean_rank is None else _number(mean_rank, 1)
            self.lines.append(
                _line(
                    label,
                    measure=_("Points"),
                    value=item["points"],
                    key=str(item["id"]),
                    display=_number(item["points"]),
                )
            )
            self.lines.append(
                _line(
                    label,
                    measure=_("Mean rank"),
                    value=mean_rank,
                    key=str(item["id"]),
                    display=rank_display,
                )
            )
            self.items.append(
                {
                    "position": position,
                    "label": label,
                    "points": item["points"],
                    "mean_rank": mean_rank,
                    "mean_rank_display": rank_display,
                    "bar": f"{item['points'] * 100 / most:.1f}",
                }
            )

    def _quadrant(self) -> None:
        axes = self.payload["quadrant"] or {}
        x_axis, y_axis = axes.get("x", ""), axes.get("y", "")
        corners = {
            "tr": (_("top right"), axes.get("x_high"), axes.get("y_high")),
            "tl": (_("top left"), axes.get("x_low"), axes.get("y_high")),
            "br": (_("bottom right"), axes.get("x_high"), axes.get("y_low")),
            "bl": (_("bottom left"), axes.get("x_low"), axes.get("y_low")),
        }
        for number, item in enumerate(self.summary["items"], start=1):
            label = self.label(item["id"])
            key = str(item["id"])
            for axis, mean in ((x_axis, item["x"]), (y_axis, item["y"])):
                self.lines.append(
                    _line(
                        label,
                        measure=_("Average %(axis)s") % {"axis": axis},
                        value=mean,
                        key=key,
                        display="-" if mean is None else _number(mean, 1),
                    )
                )
            quadrants = item["quadrants"]
            percent = results.largest_remainder_percentages(quadrants, sum(quadrants.values()))
            for corner, (name, x_end, y_end) in corners.items():
                measure = name
                if x_end and y_end:
                    measure = f"{name}: {x_axis} {x_end}, {y_axis} {y_end}"
                self.lines.append(
                    _line(
                        label,
                        measure=measure,
                        count=quadrants[corner],
                        percent=percent[corner],
                        key=key,
                    )
                )
            placed = item["x"] is not None and item["y"] is not None
            self.items.append(
                {
                    "number": number,
                    "label": label,
                    "x_display": "-" if item["x"] is None else _number(item["x"], 1),
                    "y_display": "-" if item["y"] is None else _number(item["y"], 1),
                    # SVG coordinates (y grows downwards): plain numbers, never localised.
                    "cx": f"{item['x']:g}" if placed else None,
                    "cy": f"{100 - item['y']:g}" if placed else None,
                }
            )


# --- readable answers --------------------------------------------------------------------


def readable_answer(question: Question, value: Any, labels: dict[str, str]) -> str | int:
    """An answer as a person reads it: option labels, not ids; scale answers stay numbers."""

    def label(option_id) -> str:
        return labels.get(str(option_id), f"#{option_id}")

    kind = question.kind
    try:
        if kind == Question.Kind.SINGLE:
            return label(value)
        if kind == Question.Kind.MULTIPLE:
            return "; ".join(label(option) for option in value)
        if kind in (*Question.SCALE_KINDS, *Question.NPS_KINDS):
            return int(value)
        if kind == Question.Kind.SPLIT:
            part_a = f"{question.split_a_label} {int(value)}%".strip()
            if question.split_b_label:
                return f"{part_a} / {question.split_b_label} {100 - int(value)}%"
            return part_a
        if kind == Question.Kind.RANKING:
            return "; ".join(f"{rank}. {label(option)}" for rank, option in enumerate(value, 1))
        if kind == Question.Kind.QUADRANT:
            return "; ".join(
                f"{label(item)}: x {point['x']}, y {point['y']}" for item, point in value.items()
            )
        if isinstance(value, str):
            return value
    except (TypeError, ValueError, KeyError, AttributeError):
        pass  # a question whose kind changed after answering: the value as stored
    return tally.encode_value(value)


def _answer_table(event: Event) -> tuple[list[str], list[list]]:
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


def _line_headers() -> list[str]:
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


def _line_rows(line: dict) -> list[list]:
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


def _results_table(event: Event) -> tuple[list[str], list[list]]:
    data = event_results(event)
    with translation.override(event.language):
        headers = [
            _("No."),
            capfirst(_("question")),
            capfirst(_("kind")),
            _("Respondents"),
            _("Row"),
            *_line_headers(),
        ]
        result_word, summary_word = _("result"), _("summary")
        rows = []
        for question in data:
            own = [question["number"], question["prompt"], question["kind_label"]]
            own.append(question["respondents"])
            parts = [(result_word, line) for line in question["lines"]]
            parts += [(summary_word, line) for line in question["summary_lines"]]
            if not parts:  # every question appears, even one nobody answered
                rows.append([*own, None, *[None] * len(_line_headers())])
            for part, line in parts:
                rows.extend([*own, part, *row] for row in _line_rows(line))
        return headers, rows


# --- CSV ---------------------------------------------------------------------------------


def neutralise(text: str) -> str:
    """A leading apostrophe keeps a spreadsheet from running the text as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, str):
        return neutralise(value)
    return value


def _csv(headers: list[str], rows: list[list]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_csv_cell(header) for header in headers])
    writer.writerows([_csv_cell(value) for value in row] for row in rows)
    # The byte order mark tells Excel the file is UTF-8 (else "financiële" comes out mangled).
    return buffer.getvalue().encode("utf-8-sig")


def answers_csv(event: Event) -> bytes:
    """One row per answer: question, participant (pseudonymous id), readable answer, time."""
    return _csv(*_answer_table(event))


def results_csv(event: Event) -> bytes:
    """One row per question and result line, the research figure and difference beside it."""
    return _csv(*_results_table(event))


# --- XLSX --------------------------------------------------------------------------------


def sheet_title(text: str, taken: set[str]) -> str:
    """A worksheet name Excel accepts: 31 characters at most, none of []:*?/\\, unique."""
    clean = ILLEGAL_CHARACTERS_RE.sub("", _SHEET_TITLE_FORBIDDEN.sub(" ", text))
    clean = " ".join(clean.split()).strip("'") or "-"
    title = clean[:SHEET_TITLE_LENGTH].rstrip().rstrip("'")
    serial = 1
    while title.casefold() in taken:
        serial += 1
        suffix = f" ({serial})"
        title = clean[: SHEET_TITLE_LENGTH - len(suffix)].rstrip().rstrip("'") + suffix
    taken.add(title.casefold())
    return title


def _cell(sheet, value: Any, bold: bool = False):
    """A cell that can never hold a formula: text is always text."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = timezone.localtime(value).replace(tzinfo=None)  # Excel has no time zones
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = DATETIME_FORMAT
    elif isinstance(value, str):
        cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", value))
        cell.data_type = "s"  # openpyxl would store "=..." as a formula, "#N/A" as an error
    else:
        cell = WriteOnlyCell(sheet, value=value)
    if bold:
        cell.font = BOLD
    return cell


def _append(sheet, values: list, bold: bool = False) -> None:
    sheet.append([None if value is None else _cell(sheet, value, bold) for value in values])


def _widths(sheet, widths: list[int]) -> None:
    for index, width in enumerate(widths):
        sheet.column_dimensions[chr(ord("A") + index)].width = width


def event_xlsx(event: Event) -> bytes:
    """An Overview sheet, one sheet per question (result table with research beside each
    line), and the raw answers last."""
    data = event_results(event)
    answer_headers, answer_rows = _answer_table(event)
    with translation.override(event.language):
        workbook = Workbook(write_only=True)
        taken: set[str] = set()
        overview_title = sheet_title(_("Overview"), taken)
        answers_title = sheet_title(_("Answers"), taken)
        titles = [sheet_title(f"{q['number']}. {q['prompt']}", taken) for q in data]
        _overview_sheet(workbook.create_sheet(overview_title), event, data, titles)
        for question, title in zip(data, titles, strict=True):
            _question_sheet(workbook.create_sheet(title), question)
        answers = workbook.create_sheet(answers_title)
        _widths(answers, [6, 50, 22, 24, 60, 20])
        answers.freeze_panes = "A2"
        _append(answers, answer_headers, bold=True)
        for row in answer_rows:
            _append(answers, row)
        buffer = io.BytesIO()
        workbook.save(buffer)
        return buffer.getvalue()


def _overview_sheet(sheet, event: Event, data: list[dict], titles: list[str]) -> None:
    _widths(sheet, [22, 60, 28, 14, 34])
    participants = counted_answers(event).values("participant").distinct().count()
    _append(sheet, [event.title], bold=True)
    _append(sheet, [capfirst(_("join code")), event.code])
    _append(sheet, [capfirst(_("created")), event.created_at])
    _append(sheet, [_("Exported at"), timezone.now()])
    _append(sheet, [_("Time zone"), settings.TIME_ZONE])
    _append(sheet, [_("Participants"), participants])
    sheet.append([])
    _append(
        sheet,
        [_("No."), capfirst(_("question")), capfirst(_("kind")), _("Respondents"), _("Sheet")],
        bold=True,
    )
    for question, title in zip(data, titles, strict=True):
        link = _cell(sheet, title)
        link.hyperlink = Hyperlink(ref="", location=f"'{title}'!A1")
        sheet.append(
            [
                question["number"],
                _cell(sheet, question["prompt"]),
                _cell(sheet, question["kind_label"]),
                question["respondents"],
                link,
            ]
        )


def _question_sheet(sheet, question: dict) -> None:
    _widths(sheet, [34, 26, 10, 10, 10, 14, 12, 40, 14, 40, 28, 60])
    sheet.freeze_panes = "A6"
    _append(sheet, [question["prompt"]], bold=True)
    _append(sheet, [capfirst(_("kind")), question["kind_label"]])
    _append(sheet, [_("Respondents"), question["respondents"]])
    sheet.append([])
    _append(sheet, _line_headers(), bold=True)
    for line in question["lines"]:
        for row in _line_rows(line):
            _append(sheet, row)
    if question["summary_lines"]:
        sheet.append([])
        for line in question["summary_lines"]:
            for row in _line_rows(line):
                _append(sheet, row)
    if question["research"]:
        sheet.append([])
        _append(sheet, [_("Research figures")], bold=True)
        _append(
            sheet,
            [
                _("Figure"),
                _("Year measured"),
                _("Research figure"),
                _("Study"),
                _("Publisher"),
                _("URL"),
                _("In words"),
            ],
            bold=True,
        )
        for entry in question["research"]:
            _append(
                sheet,
                [
                    entry["label"],
                    entry["year"],
                    entry["measured_display"],
                    entry["study"],
                    entry["publisher"],
                    entry["url"],
                    entry["words"],
                ],
            )

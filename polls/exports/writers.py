"""The record as files: CSV and XLSX.

Spreadsheets run cell text that starts with ``=``, ``+``, ``-`` or ``@`` as a formula, and the
texts here come from attendees: CSV cells get a leading apostrophe, XLSX cells are written as
plain strings. Nothing is HTML-escaped: ``<b>hi</b>`` is what the attendee typed.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone, translation
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.worksheet.hyperlink import Hyperlink

from ..models import Event
from .data import (
    answer_table,
    counted_answers,
    event_results,
    has_quiz,
    leaderboard_table,
    line_headers,
    line_rows,
    qa_table,
    quiz_record,
    results_table,
    segment_rows,
)

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SHEET_TITLE_LENGTH = 31
_SHEET_TITLE_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
BOLD = Font(bold=True)
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"


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
    return _csv(*answer_table(event))


def results_csv(event: Event) -> bytes:
    """One row per question and result line, the research figure and difference beside it."""
    return _csv(*results_table(event))


def qa_csv(event: Event) -> bytes:
    """One row per Q&A item: its text, name, votes, state and times (only the header when the
    event has no item)."""
    return _csv(*qa_table(event))


def leaderboard_csv(event: Event) -> bytes:
    """The quiz's leaderboard from the Answer rows: place, name, points, answer time, points per
    scored question; those without a place (removed, set aside) last."""
    return _csv(*leaderboard_table(event))


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
    """An Overview sheet, the Leaderboard of a quiz, one sheet per question (result table with
    research beside each line), the raw answers, and the Q&A items last when the event has
    any."""
    data = event_results(event)
    answer_headers, answer_rows = answer_table(event)
    qa_headers, qa_rows = qa_table(event)
    record = quiz_record(event) if has_quiz(event) else None
    with translation.override(event.language):
        workbook = Workbook(write_only=True)
        taken: set[str] = set()
        overview_title = sheet_title(_("Overview"), taken)
        board_title = sheet_title(_("Leaderboard"), taken) if record is not None else None
        answers_title = sheet_title(_("Answers"), taken)
        qa_title = sheet_title(capfirst(_("Q&A items")), taken) if qa_rows else None
        titles = [sheet_title(f"{q['number']}. {q['prompt']}", taken) for q in data]
        overview = workbook.create_sheet(overview_title)
        links = [(capfirst(_("Q&A items")), qa_title, len(qa_rows))]
        if record is not None:
            placed = (_("Leaderboard"), board_title, len(record["ranked"]))
            links.insert(0, placed)
        _overview_sheet(overview, event, data, titles, links)
        if record is not None:
            _leaderboard_sheet(workbook.create_sheet(board_title), event, record)
        for question, title in zip(data, titles, strict=True):
            _question_sheet(workbook.create_sheet(title), question)
        answers = workbook.create_sheet(answers_title)
        _widths(answers, [6, 50, 22, 24, 60, 20])
        answers.freeze_panes = "A2"
        _append(answers, answer_headers, bold=True)
        for row in answer_rows:
            _append(answers, row)
        if qa_title is not None:
            items = workbook.create_sheet(qa_title)
            _widths(items, [8, 60, 20, 8, 20, 14, 20, 20, 20, 14])
            items.freeze_panes = "A2"
            _append(items, qa_headers, bold=True)
            for row in qa_rows:
                _append(items, row)
        buffer = io.BytesIO()
        workbook.save(buffer)
        return buffer.getvalue()


def _overview_sheet(
    sheet,
    event: Event,
    data: list[dict],
    titles: list[str],
    links: list[tuple[str, str | None, int]],
) -> None:
    """``links``: (label, sheet title, how many it lists) of the Leaderboard (players placed)
    and the Q&A items (a title None: there is no such sheet)."""
    _widths(sheet, [22, 60, 28, 14, 34])
    participants = counted_answers(event).values("participant").distinct().count()
    _append(sheet, [event.title], bold=True)
    _append(sheet, [capfirst(_("join code")), event.code])
    _append(sheet, [capfirst(_("created")), event.created_at])
    _append(sheet, [_("Exported at"), timezone.now()])
    _append(sheet, [_("Time zone"), settings.TIME_ZONE])
    _append(sheet, [_("Participants"), participants])
    for label, title, count in links:
        if title is not None:
            link = _cell(sheet, title)
            link.hyperlink = Hyperlink(ref="", location=f"'{title}'!A1")
            sheet.append([_cell(sheet, label), count, link])
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
    _append(sheet, line_headers(), bold=True)
    for line in question["lines"]:
        for row in line_rows(line):
            _append(sheet, row)
    if question["summary_lines"]:
        sheet.append([])
        for line in question["summary_lines"]:
            for row in line_rows(line):
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
                _("Segment"),
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
                    entry["segment"],
                ],
            )
    for table in question["segments"]:
        _segment_block(sheet, table)


def _segment_block(sheet, table: dict) -> None:
    """The question's result per segment of one profile question, research for each segment
    beside its lines."""
    sheet.append([])
    _append(sheet, [_("By segment: %(question)s") % {"question": table["prompt"]}], bold=True)
    _append(
        sheet,
        [
            _(
                "A segment of fewer than %(min)d respondents is not shown on its own: it is "
                'counted under "%(other)s".'
            )
            % {"min": table["min"], "other": _("Other")}
        ],
    )
    _append(sheet, [_("Segment"), _("Respondents"), *line_headers()], bold=True)
    for group, _part, row in segment_rows(table):
        _append(sheet, [group["label"], group["respondents"], *row])


def _leaderboard_sheet(sheet, event: Event, record: dict) -> None:
    """The scored questions (what each was scored against, how many answered and scored), then
    the leaderboard table as the CSV has it."""
    _widths(sheet, [8, 40, 10, 16, 16, 12, 14, 12, 12])
    _append(sheet, [_("Leaderboard")], bold=True)
    _append(
        sheet,
        [
            _(
                "From the answers in the database. Places by points, then by less total answer "
                "time; equal in both share a place. Removed players and participants set aside "
                "are listed last, without a place; a participant set aside counts nowhere, so "
                "has no points."
            )
        ],
    )
    sheet.append([])
    _append(
        sheet,
        [
            _("No."),
            capfirst(_("question")),
            capfirst(_("kind")),
            _("Right answer"),
            _("Target"),
            _("Tolerance"),
            _("Target from research"),
            _("Respondents"),
            _("With points"),
        ],
        bold=True,
    )
    yes = _("yes")
    for question in record["questions"]:
        _append(
            sheet,
            [
                question["number"],
                question["prompt"],
                question["kind_label"],
                question["text"],
                question["target"],
                question["tolerance"],
                yes if question["from_research"] else "",
                question["answered"],
                question["scored"],
            ],
        )
    sheet.append([])
    headers, rows = leaderboard_table(event, record)
    _append(sheet, headers, bold=True)
    for row in rows:
        _append(sheet, row)

"""The record for hosts: answer, result, Q&A and leaderboard downloads, and a printable results
page."""

from __future__ import annotations

import re

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import actions
from .codes import normalise_code
from .exports import data, writers
from .models import Event

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _hosted_event(request: HttpRequest, code: str) -> Event:
    event = get_object_or_404(Event, code=normalise_code(code))
    actions.check_host(request.user, event)
    return event


def download(content: bytes, content_type: str, event: Event, name: str) -> HttpResponse:
    # Admin validates join codes, but rows made in code skip validators: keep the name plain.
    stem = re.sub(r"[^A-Za-z0-9_-]", "", event.code) or "event"
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{stem}-{name}"'
    return response


def xlsx_download(event: Event) -> HttpResponse:
    return download(writers.event_xlsx(event), XLSX_TYPE, event, "results.xlsx")


# never_cache: the files hold every participant's answers; no shared cache may keep them.
@require_safe
@never_cache
@login_required
def answers_csv(request: HttpRequest, code: str) -> HttpResponse:
    event = _hosted_event(request, code)
    return download(writers.answers_csv(event), CSV_TYPE, event, "answers.csv")


@require_safe
@never_cache
@login_required
def results_csv(request: HttpRequest, code: str) -> HttpResponse:
    event = _hosted_event(request, code)
    return download(writers.results_csv(event), CSV_TYPE, event, "results.csv")


@require_safe
@never_cache
@login_required
def qa_csv(request: HttpRequest, code: str) -> HttpResponse:
    event = _hosted_event(request, code)
    return download(writers.qa_csv(event), CSV_TYPE, event, "qa.csv")


@require_safe
@never_cache
@login_required
def leaderboard_csv(request: HttpRequest, code: str) -> HttpResponse:
    event = _hosted_event(request, code)
    return download(writers.leaderboard_csv(event), CSV_TYPE, event, "leaderboard.csv")


@require_safe
@never_cache
@login_required
def results_xlsx(request: HttpRequest, code: str) -> HttpResponse:
    return xlsx_download(_hosted_event(request, code))


@require_safe
@never_cache
@login_required
def results_print(request: HttpRequest, code: str) -> HttpResponse:
    """Every question's result with the research beside it, for paper (A4) and the screen."""
    event = _hosted_event(request, code)
    questions = data.event_results(event, screen=True)
    record = data.quiz_record(event) if data.has_quiz(event) else None
    if record is not None:
        # Each scored question's section says what it was scored against.
        scored = {question["id"]: question for question in record["questions"]}
        for question in questions:
            question["quiz"] = scored.get(question["id"])
    with translation.override(event.language):
        return render(
            request,
            "polls/results_print.html",
            {
                "event": event,
                "questions": questions,
                "qa_top": data.qa_top(event),
                "quiz": record,
                "quiz_top": record["ranked"][: data.PRINT_QUIZ_TOP] if record else [],
                "LANGUAGE_CODE": event.language,
            },
        )

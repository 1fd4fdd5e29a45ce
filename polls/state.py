"""The event's live state as phones and screens see it, built once from the database.

Its shape is ``polls.protocol.EventState``: ``question`` goes to clients as is; ``spec`` is what
the server validates answers against and computes snapshots with.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from django.utils import translation
from django.utils.translation import gettext as _

from . import kinds, protocol, quiz, quiz_checks
from .models import Event, Question
from .segments import RATHER_NOT_SAY
from .stagekeys import stage_key_digest


def look_digest(event: Event) -> str:
    """What a stage screen was drawn with (theme, accent, logo, language): when the host changes
    any of it, the state carries a new digest and open screens reload to show it."""
    look = "|".join([event.theme, event.accent_color, event.logo_digest, event.language])
    return hashlib.sha256(look.encode()).hexdigest()[:12]


def question_payload(question: Question, position: int, count: int) -> protocol.Question:
    options = [{"id": option.id, "label": option.label} for option in question.options.all()]
    links = list(question.figure_links.select_related("figure__study"))
    figures = [link.figure.as_payload() for link in links] if question.revealed else []
    return {
        "id": question.id,
        "kind": question.kind,
        "prompt": question.prompt,
        "options": options if question.has_options else [],
        "open": question.state == Question.State.OPEN,
        "state": question.state,
        "show_results": question.show_results,
        "revealed": question.revealed,
        "segment": question.segment,
        # "scale", "choices", ...: each kind's own block, null for the other kinds.
        **kinds.payload_blocks(question),
        "figures": figures,
        "figures_count": len(links),
        "position": position,
        "count": count,
        "quiz": quiz_block(question),
    }


def scoring_of(question: Question) -> quiz.Scoring | None:
    """How a scored question scores (its target: its own, else its research figure's), or None
    when it does not (not scored, or nothing to score by yet: admin refuses that)."""
    if not question.scored or question.kind not in quiz.SCORED_KINDS:
        return None
    correct = frozenset(option.id for option in question.options.all() if option.correct)
    target = question.target
    if question.kind in quiz.ESTIMATE_KINDS and target is None:
        target = figure_target(question)
    return quiz.Scoring(
        question.kind, correct, target, question.tolerance, quiz.window_ms(question.time_limit)
    )


def figure_target(question: Question) -> Decimal | None:
    """The value of the latest research figure linked to the question that compares with it."""
    links = question.figure_links.select_related("figure")
    return quiz_checks.figure_value(question, [link.figure for link in links])


def quiz_block(question: Question) -> protocol.Quiz | None:
    scoring = scoring_of(question)
    if scoring is None:
        return None
    shown = question.state == Question.State.CLOSED and question.show_results
    answer: protocol.QuizAnswer | None = None
    if shown:
        answer = {
            "correct": sorted(scoring.correct),
            "target": None if scoring.target is None else float(scoring.target),
            "tolerance": None if scoring.tolerance is None else float(scoring.tolerance),
        }
    return {
        "points": quiz.MAX_POINTS,
        "limit": question.time_limit,
        "deadline": question.deadline_ms if question.time_limit else None,
        "answer": answer,
    }


def segment_spec(event: Event) -> protocol.SegmentSpec | None:
    """What the host splits results by now: a profile question of the event, or None."""
    profile = event.segment_by
    if profile is None or profile.event_id != event.id or not profile.segment:
        return None
    with translation.override(event.language):
        other = _("Other")
    return {
        "question": profile.id,
        "prompt": profile.prompt,
        "options": [{"id": option.id, "label": option.label} for option in profile.options.all()],
        "min": event.segment_min_respondents,
        "other": other,
    }


def question_spec(
    payload: protocol.Question,
    segments: protocol.SegmentSpec | None = None,
    scoring: protocol.QuizSpec | None = None,
) -> protocol.QuestionSpec:
    options = [option["id"] for option in payload["options"]]
    if payload["segment"]:
        options.append(RATHER_NOT_SAY)  # taken, and counted as a choice of its own
    return {
        "id": payload["id"],
        "kind": payload["kind"],
        "open": payload["open"],
        "options": options,
        "labels": {str(option["id"]): option["label"] for option in payload["options"]},
        **kinds.spec_blocks(payload),
        "figures": payload["figures"],
        "segments": segments,
        "quiz": scoring,
    }


def quiz_spec(event: Event, question: Question) -> protocol.QuizSpec | None:
    scoring = scoring_of(question)
    return None if scoring is None else {"event": event.id, **scoring.as_spec()}


def profile_of(questions: list[Question]) -> tuple[list, list]:
    """(the profile questions phones ask on joining, every profile question's spec)."""
    asked: list[protocol.ProfileQuestion] = []
    specs: list[protocol.ProfileSpec] = []
    for question in questions:
        options = [{"id": option.id, "label": option.label} for option in question.options.all()]
        specs.append(
            {
                "id": question.id,
                "options": [option["id"] for option in options] + [RATHER_NOT_SAY],
                "ask_on_join": question.ask_on_join,
            }
        )
        if question.ask_on_join:
            asked.append({"id": question.id, "prompt": question.prompt, "options": options})
    return asked, specs


def build_event_state(event_id: int) -> protocol.EventState | None:
    event = Event.objects.select_related("segment_by").filter(pk=event_id).first()
    if event is None:
        return None
    question_ids = list(event.questions.values_list("id", flat=True))
    payload: protocol.Question | None = None
    scoring: protocol.QuizSpec | None = None
    current_id = event.current_question_id
    if current_id is not None and current_id in question_ids:
        question = Question.objects.prefetch_related("options").get(pk=current_id)
        payload = question_payload(question, question_ids.index(current_id) + 1, len(question_ids))
        scoring = quiz_spec(event, question)
    profiles = Question.objects.filter(event=event, segment=True).prefetch_related("options")
    asked, profile_specs = profile_of(list(profiles))
    return {
        "event": {
            "id": event.id,
            "code": event.code,
            "title": event.title,
            "language": event.language,
            "stage_key_digest": stage_key_digest(event.stage_key),
            "look": look_digest(event),
            "quiz": event.quiz,
            "podium": event.podium,
        },
        "question": payload,
        "profile": asked,
        "spec": {
            "question_ids": question_ids,
            # A profile question's own result is not split by another's answers.
            "current": (
                question_spec(payload, None if payload["segment"] else segment_spec(event), scoring)
                if payload
                else None
            ),
            # An attendee-list event takes only tokens of a personal code, also from phones
            # that joined while it was still open.
            "attendees_only": event.voice == Event.Voice.ATTENDEES,
            "profiles": profile_specs,
            "quiz": event.quiz,
        },
    }

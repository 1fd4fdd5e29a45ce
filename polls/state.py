"""The event's live state as phones and screens see it, built once from the database.

``public`` goes to clients as is; ``spec`` is what the server validates answers against and
computes snapshots with.
"""

from __future__ import annotations

import hashlib

from .models import Event, Question
from .stagekeys import stage_key_digest


def look_digest(event: Event) -> str:
    """What a stage screen was drawn with (theme, accent, logo, language): when the host changes
    any of it, the state carries a new digest and open screens reload to show it."""
    look = "|".join([event.theme, event.accent_color, event.logo_digest, event.language])
    return hashlib.sha256(look.encode()).hexdigest()[:12]


def _scale(question: Question) -> dict | None:
    if question.kind in Question.NPS_KINDS:
        return {
            "min": 0,
            "max": 10,
            "min_label": question.scale_min_label,
            "max_label": question.scale_max_label,
            "lower_is_better": False,
        }
    if question.kind in Question.SCALE_KINDS:
        return {
            "min": question.scale_min,
            "max": question.scale_max,
            "min_label": question.scale_min_label,
            "max_label": question.scale_max_label,
            "lower_is_better": question.kind == Question.Kind.CES and question.lower_is_better,
        }
    return None


def question_payload(question: Question, position: int, count: int) -> dict:
    options = [{"id": option.id, "label": option.label} for option in question.options.all()]
    kind = question.kind
    links = list(question.figure_links.select_related("figure__study"))
    figures = [link.figure.as_payload() for link in links] if question.revealed else []
    return {
        "id": question.id,
        "kind": kind,
        "prompt": question.prompt,
        "options": options if question.has_options else [],
        "open": question.state == Question.State.OPEN,
        "state": question.state,
        "show_results": question.show_results,
        "revealed": question.revealed,
        "scale": _scale(question),
        "choices": (
            {"min": question.min_choices, "max": question.max_choices or len(options)}
            if kind == Question.Kind.MULTIPLE
            else None
        ),
        "split": (
            {"a": question.split_a_label, "b": question.split_b_label}
            if kind == Question.Kind.SPLIT
            else None
        ),
        "text": {"max_length": question.text_max_length} if kind == Question.Kind.TEXT else None,
        "quadrant": (
            {
                "x": question.quadrant_x_label,
                "x_low": question.quadrant_x_low,
                "x_high": question.quadrant_x_high,
                "y": question.quadrant_y_label,
                "y_low": question.quadrant_y_low,
                "y_high": question.quadrant_y_high,
            }
            if kind == Question.Kind.QUADRANT
            else None
        ),
        "figures": figures,
        "figures_count": len(links),
        "position": position,
        "count": count,
    }


def question_spec(payload: dict) -> dict:
    return {
        "id": payload["id"],
        "kind": payload["kind"],
        "open": payload["open"],
        "options": [option["id"] for option in payload["options"]],
        "labels": {str(option["id"]): option["label"] for option in payload["options"]},
        "scale": payload["scale"],
        "choices": payload["choices"],
        "split": payload["split"],
        "text": payload["text"],
        "figures": payload["figures"],
    }


def build_event_state(event_id: int) -> dict | None:
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return None
    question_ids = list(event.questions.values_list("id", flat=True))
    payload = None
    current_id = event.current_question_id
    if current_id is not None and current_id in question_ids:
        question = Question.objects.prefetch_related("options").get(pk=current_id)
        payload = question_payload(question, question_ids.index(current_id) + 1, len(question_ids))
    return {
        "event": {
            "id": event.id,
            "code": event.code,
            "title": event.title,
            "language": event.language,
            "stage_key_digest": stage_key_digest(event.stage_key),
            "look": look_digest(event),
        },
        "question": payload,
        "spec": {
            "question_ids": question_ids,
            "current": question_spec(payload) if payload else None,
            # An attendee-list event takes only tokens of a personal code, also from phones
            # that joined while it was still open.
            "attendees_only": event.voice == Event.Voice.ATTENDEES,
        },
    }

"""The event's live state as phones and screens see it, built once from the database.

Its shape is ``polls.protocol.EventState``: ``question`` goes to clients as is; ``spec`` is what
the server validates answers against and computes snapshots with.
"""

from __future__ import annotations

import hashlib

from . import kinds, protocol
from .models import Event, Question
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
        # "scale", "choices", ...: each kind's own block, null for the other kinds.
        **kinds.payload_blocks(question),
        "figures": figures,
        "figures_count": len(links),
        "position": position,
        "count": count,
    }


def question_spec(payload: protocol.Question) -> protocol.QuestionSpec:
    return {
        "id": payload["id"],
        "kind": payload["kind"],
        "open": payload["open"],
        "options": [option["id"] for option in payload["options"]],
        "labels": {str(option["id"]): option["label"] for option in payload["options"]},
        **kinds.spec_blocks(payload),
        "figures": payload["figures"],
    }


def build_event_state(event_id: int) -> protocol.EventState | None:
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return None
    question_ids = list(event.questions.values_list("id", flat=True))
    payload: protocol.Question | None = None
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

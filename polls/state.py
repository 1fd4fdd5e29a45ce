"""The event's live state as phones and screens see it, built once from the database.

``public`` goes to clients as is; ``spec`` is what the server validates answers against.
"""

from __future__ import annotations

from .models import Event, Question


def question_payload(question: Question, position: int, count: int) -> dict:
    options = [{"id": option.id, "label": option.label} for option in question.options.all()]
    is_scale = question.kind == Question.Kind.SCALE
    is_multiple = question.kind == Question.Kind.MULTIPLE
    return {
        "id": question.id,
        "kind": question.kind,
        "prompt": question.prompt,
        "options": options,
        "open": question.state == Question.State.OPEN,
        "state": question.state,
        "show_results": question.show_results,
        "scale": (
            {
                "min": question.scale_min,
                "max": question.scale_max,
                "min_label": question.scale_min_label,
                "max_label": question.scale_max_label,
            }
            if is_scale
            else None
        ),
        "choices": (
            {"min": question.min_choices, "max": question.max_choices or len(options)}
            if is_multiple
            else None
        ),
        "position": position,
        "count": count,
    }


def question_spec(payload: dict) -> dict:
    return {
        "id": payload["id"],
        "kind": payload["kind"],
        "open": payload["open"],
        "options": [option["id"] for option in payload["options"]],
        "scale": payload["scale"],
        "choices": payload["choices"],
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
        },
        "question": payload,
        "spec": {
            "question_ids": question_ids,
            "current": question_spec(payload) if payload else None,
        },
    }

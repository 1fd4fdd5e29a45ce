"""The question kinds, one module each, and what the rest of the app asks of them.

Each kind's class (``base.QuestionKind``) owns the validation of an answer value, its Redis
count buckets, its summary arithmetic, its public payload block, its export lines, its admin
fieldset and checks, its load-test values and the paths of its front-end modules; with the
shapes of its value, payload block and summary (``polls.protocol``'s schemas are built from
them) and its section's ``Question`` fields (an abstract model ``Question`` inherits). The rest
of the app is generic: it looks a kind up here by name and calls it.

Adding a kind: a module here defining ``KIND`` (found by its file, placed by ``position``), its
JS renderer modules (``front_modules``), its row and its summary's table in docs/protocol.md and
its tests; ``Question.Kind``, ``Question``'s fields and the migration that adds them follow from
the registry (tests/test_kind_registry.py checks all of it).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from django.db import models

from .base import QuestionKind, Refused, Section, Unanswerable

__all__ = ["QuestionKind", "Refused", "Section", "Unanswerable"]

# Modules of this package that hold no kind.
SHARED = frozenset({"base", "families"})


def _discover() -> tuple[QuestionKind, ...]:
    found = []
    for module in pkgutil.iter_modules(__path__):
        if module.name not in SHARED:
            found.append(importlib.import_module(f"{__name__}.{module.name}").KIND)
    # ``position`` orders ``Question.Kind``: its choices, the admin's list, the migration's.
    return tuple(sorted(found, key=lambda kind: kind.position))


REGISTERED = _discover()
KINDS: dict[str, QuestionKind] = {kind.name: kind for kind in REGISTERED}


def get(name: str) -> QuestionKind:
    """The kind called ``name``; KeyError for a name no kind has."""
    return KINDS[name]


def find(name: Any) -> QuestionKind | None:
    return KINDS.get(name) if isinstance(name, str) else None


def names() -> tuple[str, ...]:
    return tuple(KINDS)


def text_choices() -> type[models.TextChoices]:
    """``Question.Kind``: members named after the kinds (``Question.Kind.SPLIT == "split"``)."""
    return models.TextChoices(
        "Kind", [(kind.name.upper(), (kind.name, kind.label)) for kind in REGISTERED]
    )


def sections() -> list[Section]:
    """Every kind's own configuration once, in wire order."""
    unique = {kind.section.key: kind.section for kind in REGISTERED if kind.section}
    return sorted(unique.values(), key=lambda section: section.order)


def field_models() -> tuple[type[models.Model], ...]:
    """The abstract models holding the sections' ``Question`` fields: ``Question``'s bases."""
    return tuple(section.model.abstract_model() for section in sections())


def payload_blocks(question) -> dict[str, dict | None]:
    """The per-kind keys of a public question payload: every one present, ``None`` but the
    question's own."""
    kind = get(question.kind)
    blocks: dict[str, dict | None] = dict.fromkeys(section.key for section in sections())
    if kind.section is not None:
        blocks[kind.section.key] = kind.payload_block(question)
    return blocks


def sample_blocks(name: str) -> dict[str, dict | None]:
    """``payload_blocks`` of a sample question of kind ``name``, made without a database (all
    ``None`` for a name no kind has)."""
    kind = find(name)
    blocks: dict[str, dict | None] = dict.fromkeys(section.key for section in sections())
    if kind is not None and kind.section is not None:
        blocks[kind.section.key] = kind.sample_block()
    return blocks


def spec_blocks(payload: dict) -> dict[str, dict | None]:
    """The per-kind keys the server validates and summarises with."""
    return {section.key: payload[section.key] for section in sections() if section.in_spec}


def admin_fieldsets() -> list[tuple]:
    return [section.fieldset() for section in sections()]


def summarise(spec: dict, total: int, raw: dict[str, int], hidden: frozenset[str]) -> tuple:
    """(counts to publish, summary) for one question."""
    positive = {key: count for key, count in raw.items() if count > 0}
    return get(spec["kind"]).summarise(spec, total, positive, hidden)


def results_message(
    spec: dict,
    version: int,
    total: int,
    raw_counts: dict[str, int],
    hidden: frozenset[str] = frozenset(),
) -> dict:
    """The whole snapshot a screen needs: counts, shares and the kind's summary."""
    counts, summary = summarise(spec, total, raw_counts, hidden)
    return {
        "type": "results",
        "question": spec["id"],
        "version": version,
        "total": total,
        "counts": counts,
        "summary": summary,
    }


def front_modules() -> dict[str, dict[str, str]]:
    """Per kind, its renderer modules under ``static/`` (the pages load them)."""
    return {kind.name: kind.front_modules() for kind in REGISTERED}

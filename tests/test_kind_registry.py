"""The registry of question kinds (polls.kinds): every kind is whole, one module, documented.

Adding a kind touches its module, its front-end modules, docs/protocol.md and its tests; these
checks say which part is missing.
"""

from __future__ import annotations

import re
import sys
import typing
from pathlib import Path

import pytest
from django.db.migrations.loader import MigrationLoader

from benchmarks.models import Figure
from polls import kinds, protocol
from polls.kinds.base import HOOKS, SCHEMAS, SECTION_HOOKS, QuestionKind
from polls.models import Question

ROOT = Path(__file__).resolve().parent.parent
KINDS_HEADING = "### Question kinds and their answer values"


def own(kind: QuestionKind, hook: str) -> bool:
    """Whether the kind implements ``hook`` itself (or its family does), not the base."""
    return getattr(type(kind), hook) is not getattr(QuestionKind, hook)


def kinds_section() -> str:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    start = text.index(KINDS_HEADING) + len(KINDS_HEADING)
    end = text.index("\n### ", start)
    return text[start:end]


def test_question_kind_is_the_registry():
    assert tuple(Question.Kind.values) == kinds.names()
    assert [str(label) for label in Question.Kind.labels] == [
        str(kind.label) for kind in kinds.REGISTERED
    ]
    assert Question.Kind.QUADRANT == "quadrant"  # members are named after their kinds


@pytest.mark.django_db
def test_the_migrations_know_every_kind():
    """A kind added without its migration (the field's choices) fails here."""
    state = MigrationLoader(None, ignore_no_migrations=True).project_state()
    field = state.apps.get_model("polls", "Question")._meta.get_field("kind")
    assert [value for value, _label in field.choices] == list(kinds.names())


@pytest.mark.parametrize("kind", kinds.REGISTERED, ids=kinds.names())
def test_every_kind_has_every_part(kind):
    missing = [hook for hook in HOOKS if not own(kind, hook)]
    if kind.section is not None:
        missing += [hook for hook in SECTION_HOOKS if not own(kind, hook)]
    assert not missing, f"{kind.name} lacks {missing}"
    assert kind.name and str(kind.label) and kind.position > 0


@pytest.mark.parametrize("kind", kinds.REGISTERED, ids=kinds.names())
def test_every_kind_declares_its_shapes(kind):
    """Its value and summary shapes, its section's block and fields; protocol.py has them."""
    missing = [part for part in SCHEMAS if getattr(kind, part) is None]
    assert not missing, f"{kind.name} lacks {missing}"
    protocol.validator(kind.value_schema)  # a shape the checker can hold a value to
    assert typing.is_typeddict(kind.summary_schema), kind.name
    assert protocol.VALUE_OF_KIND[kind.name] is kind.value_schema
    assert protocol.SUMMARY_OF_KIND[kind.name] is kind.summary_schema
    assert kind.summary_schema in protocol.NAMED_SHAPES.values(), "its summary is documented"
    if kind.section is not None:
        section = kind.section
        assert typing.is_typeddict(section.schema), kind.name
        model = section.model.abstract_model()
        assert model._meta.abstract and issubclass(Question, model), kind.name
        # The block a sample question of the kind gets (the baseline's) fits its shape.
        protocol.check(section.schema, kind.sample_block(), f"{kind.name} block")


def test_question_takes_its_kinds_fields_from_the_sections():
    own = {field.name for field in Question._meta.local_fields}
    for section in kinds.sections():
        assert set(section.fields) <= own, section.key
    in_sections = {name for section in kinds.sections() for name in section.fields}
    generic = {"id", "event", "order", "kind", "prompt", "state", "show_results", "revealed"}
    generic |= {"segment", "ask_on_join"}  # a profile question's, any kind's to refuse
    # The quiz's (polls.quiz): the scoring kinds share them, the others refuse them.
    generic |= {"scored", "target", "tolerance", "time_limit", "started_ms", "deadline_ms"}
    assert own - in_sections == generic, "a field of one kind outside its section"


@pytest.mark.parametrize("kind", kinds.REGISTERED, ids=kinds.names())
def test_every_kind_is_one_module(kind):
    module = f"polls.kinds.{kind.name}"
    assert type(kind).__module__ == module
    assert sys.modules[module].KIND is kind


def test_kinds_are_placed_once():
    positions = [kind.position for kind in kinds.REGISTERED]
    assert len(set(positions)) == len(positions)
    orders = [section.order for section in kinds.sections()]
    assert len(set(orders)) == len(orders)


def test_sections_name_real_fields_and_metrics_real_figures():
    fields = {field.name for field in Question._meta.get_fields()}
    for section in kinds.sections():
        assert set(section.fields) <= fields, section.key
    for kind in kinds.REGISTERED:
        assert kind.comparable_metrics <= set(Figure.Metric.values), kind.name
        if kind.print_template:
            assert (ROOT / "templates" / kind.print_template).is_file(), kind.name


def test_every_kind_has_its_row_in_the_protocol():
    rows = re.findall(r"^\| `([a-z]+)`", kinds_section(), flags=re.MULTILINE)
    assert rows == list(kinds.names())


def test_the_protocol_lists_the_payload_keys_in_their_order():
    section = " ".join(kinds_section().split())
    keys = [section_.key for section_ in kinds.sections()]
    listed = ", ".join(f"`{key}`" for key in keys[:-1]) + f" and `{keys[-1]}` are `null`"
    assert listed in section


@pytest.mark.parametrize("kind", kinds.REGISTERED, ids=kinds.names())
def test_every_kind_names_its_front_end_modules(kind):
    modules = kind.front_modules()
    assert modules == {
        face: f"polls/kinds/{kind.name}/{face}.js" for face in ("phone", "stage", "remote")
    }
    missing = [path for path in modules.values() if not (ROOT / "static" / path).is_file()]
    assert not missing, f"{kind.name} lacks its renderer modules {missing}"

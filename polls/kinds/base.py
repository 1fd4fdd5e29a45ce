"""What a question kind is made of: the hooks every kind implements, and the shared pieces.

A kind knows nothing of the database or of Redis (its own fields are declared, and become a
model only while the apps load): it is handed a question (a model instance or
the ``spec``/``state.question`` dict) and answers with plain values. So ``polls.models`` can
take its choices and its per-kind fields from the registry, and the load generator can use a
kind without a server.

A kind also declares the shapes of what it puts on the wire (``value_schema``,
``summary_schema``, its section's ``schema``) as TypedDicts or plain types; ``polls.protocol``
builds its messages' unions from them and checks every frame against them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar

from django.db import models

# The pages that draw a question: the phone, the stage screen and the host's remote control.
FRONT_FACES = ("phone", "stage", "remote")

# Parts a kind must implement itself (tests/test_kind_registry.py walks them).
HOOKS = (
    "validate",  # an answer value -> its canonical form, or Refused
    "buckets",  # the Redis count buckets an answer falls in
    "summarise",  # counts -> (published counts, summary) for a snapshot
    "export_lines",  # result lines of exports and the printable page
    "readable_answer",  # one answer as the exported answer table shows it
    "prepare_load_test",  # a throwaway question of this kind for the load test
    "draw",  # a valid load-test value from the ``state`` message
)
# Parts of a kind that has its own configuration (a ``section``).
SECTION_HOOKS = (
    "payload_block",  # its key in the public question payload
    "check",  # impossible configurations, refused in admin and by full_clean
)
# The shapes every kind declares (polls.protocol's schemas are made of them).
SCHEMAS = (
    "value_schema",  # an answer value as the phone sends it and the server acknowledges it
    "summary_schema",  # the ``summary`` of its results snapshots
)


class QuestionFields:
    """A kind's own ``Question`` fields, declared as class attributes of a subclass.

    Not a Django model itself: a model class needs the app registry loaded, and the load
    generator's processes and abuse scripts import the kinds without setting Django up.
    ``abstract_model`` makes the abstract model ``Question`` takes as a base, while the apps
    load (``polls.models``)."""

    @classmethod
    def declared(cls) -> dict[str, models.Field]:
        """The fields in their declared order (the admin fieldset's order)."""
        return {name: value for name, value in vars(cls).items() if isinstance(value, models.Field)}

    @classmethod
    def abstract_model(cls) -> type[models.Model]:
        if "_abstract_model" not in vars(cls):
            meta = type("Meta", (), {"abstract": True})
            attributes = {"__module__": "polls.models", "Meta": meta, **cls.declared()}
            cls._abstract_model = type(cls.__name__, (models.Model,), attributes)
        return cls._abstract_model


@dataclass(frozen=True)
class Section:
    """A kind's own configuration: one key of the public question payload (``null`` for every
    other kind) and one admin fieldset. Kinds of one family share their section."""

    key: str
    # Place among the payload's per-kind keys (the wire order) and among the admin fieldsets.
    order: int
    title: Any
    # The block under ``key`` in ``state.question`` (and the spec), a TypedDict.
    schema: type
    # The section's ``Question`` fields (``QuestionFields``); ``Question`` inherits them.
    model: type[QuestionFields]
    collapsed: bool = False
    # Whether the server's validation spec carries it (labels only for people it need not).
    in_spec: bool = True

    @property
    def fields(self) -> tuple[str, ...]:
        """The model's fields in their declared order (the admin fieldset's order)."""
        return tuple(self.model.declared())

    def defaults(self) -> dict[str, Any]:
        """Each field's default: what a question made without a database holds."""
        return {name: field.get_default() for name, field in self.model.declared().items()}

    def fieldset(self) -> tuple:
        options: dict[str, Any] = {"fields": list(self.fields)}
        if self.collapsed:
            options = {"classes": ["collapse"], **options}
        return (self.title, options)


class Refused(Exception):
    """An answer value the question cannot take; ``code`` is its stable error code."""

    def __init__(self, code: str = "bad_value"):
        super().__init__(code)
        self.code = code


class Unanswerable(Exception):
    """The load generator cannot answer the question (no options, unknown kind)."""


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def in_range(value: Any, low: int, high: int) -> bool:
    return is_int(value) and low <= value <= high


def option_ids(question: dict) -> list[int]:
    """The option ids of a ``state.question``; a kind with options cannot be answered without."""
    options = [option["id"] for option in question.get("options") or []]
    if not options:
        raise Unanswerable("the question has no options")
    return options


def plain_buckets(value: Any) -> list[str]:
    """An option id or a number is its own bucket (as is each of a list of them: an answer
    given before the question's kind was changed still counts somewhere)."""
    if isinstance(value, list):
        return [str(item) for item in value]
    return [str(value)]


def per_key(keys: list[str], counts: dict[str, int]) -> dict[str, int]:
    """Every key's count, zero included (screens draw every option or scale point)."""
    return {key: counts.get(key, 0) for key in keys}


# Answer values of the kinds with options.
OptionValue = int  # one option id
ChosenValue = list[int]  # option ids: distinct ones (multiple), or every one in order (ranking)


class QuestionKind:
    """One question kind. A kind's module defines ``KIND``, an instance; its class sets ``name``
    (the ``Question.Kind`` value), ``label`` and ``position`` and implements ``HOOKS`` (and
    ``SECTION_HOOKS`` when it has a ``section``)."""

    name: ClassVar[str] = ""
    label: ClassVar[Any] = ""
    # Place in ``Question.Kind`` (whose order the migrations' choices keep).
    position: ClassVar[int] = 0
    # The shapes of its answer value and of its results' summary (see ``SCHEMAS``).
    value_schema: ClassVar[object] = None
    summary_schema: ClassVar[type | None] = None
    # Fields of a sample question beyond the section's defaults (the bare-consumer baseline's).
    sample_fields: ClassVar[dict[str, Any]] = {}
    # Whether the attendee chooses, orders or places the question's options.
    has_options: ClassVar[bool] = False
    section: ClassVar[Section | None] = None
    # Research figure metrics (benchmarks.Figure.Metric values) that compare with the result.
    comparable_metrics: ClassVar[frozenset[str]] = frozenset()
    # Whether a snapshot's ``counts`` are the tally's buckets (else ``{}``: in the summary).
    publishes_counts: ClassVar[bool] = True
    # Whether the buckets are words: a capped cloud whose words the host can hide.
    counts_words: ClassVar[bool] = False
    # The printable page's own figure for this kind (else its lines as a table).
    print_template: ClassVar[str | None] = None
    # Options of a load test's throwaway question (kinds with options).
    load_test_options: ClassVar[int] = 5

    # --- the answer and its buckets -------------------------------------------------------

    def validate(self, spec: dict, value: Any) -> Any:
        raise NotImplementedError

    def buckets(self, value: Any) -> list[str]:
        raise NotImplementedError

    def most_buckets(self) -> int:
        """The tally script's cap on distinct buckets; 0: the question itself bounds them."""
        return 0

    # --- results --------------------------------------------------------------------------

    def summarise(self, spec: dict, total: int, counts: dict[str, int], hidden: frozenset[str]):
        """(counts to publish, summary) from the positive counts of the tally."""
        raise NotImplementedError

    def export_lines(self, table) -> None:
        """Fill ``table`` (``polls.exports.presentation.ResultTable``) with the result lines;
        set ``table.headline`` to the line that value figures stand beside."""
        raise NotImplementedError

    def readable_answer(self, question, value: Any, label) -> str | int:
        """An answer as a person reads it (``label``: option id -> its label)."""
        raise NotImplementedError

    # --- results by segment (``polls.by_segment``) -------------------------------------------

    def segment_measures(self, spec: dict, summary: dict, total: int) -> dict[str, float]:
        """The figures two segments' results are compared by (key -> value; none for a kind
        whose result no one number says), and their decimal places."""
        return {}

    measure_places: ClassVar[int] = 0
    # A measure one group lacks: this value (a word nobody in it gave: 0), or None to skip it.
    absent_measure: ClassVar[float | None] = None

    def gap_words(self, spec: dict, key: str, more: str, less: str, gap: str, count: int) -> str:
        """In words: segment ``more`` is ``gap`` above segment ``less`` on measure ``key``."""
        raise NotImplementedError

    def brief_answer(self, value: Any, labels: dict) -> str:
        """An answer in the host's list of suspicious bursts (``labels``: id -> label)."""
        if isinstance(value, list):
            return ", ".join(str(labels.get(item, item)) for item in value)
        return str(labels.get(value, value))

    # --- configuration --------------------------------------------------------------------

    def payload_block(self, question) -> dict | None:
        return None

    def sample_block(self) -> dict | None:
        """The payload block of a sample question, made without a database: the section's
        field defaults with ``sample_fields`` over them."""
        if self.section is None:
            return None
        fields = {**self.section.defaults(), **self.sample_fields}
        return self.payload_block(SimpleNamespace(**fields))

    def check(self, question) -> dict:
        """Errors by field name for an impossible configuration of ``question``."""
        return {}

    def check_options(self, question, labels: list[str]) -> str | None:
        """What is wrong with these options for ``question`` beyond their number, if anything."""
        return None

    # --- the load test --------------------------------------------------------------------

    def prepare_load_test(self, question) -> None:
        raise NotImplementedError

    def draw(self, question: dict, rng: random.Random) -> Any:
        raise NotImplementedError

    def same_answer(self, first: Any, second: Any) -> bool:
        """Would the server count these two (valid) values as the same answer?"""
        return first == second

    # --- the front end --------------------------------------------------------------------

    def front_modules(self) -> dict[str, str]:
        """The kind's renderer modules under ``static/``, per page (ES modules the pages
        preload and import; a kind that looks like another re-exports its renderers)."""
        return {face: f"polls/kinds/{self.name}/{face}.js" for face in FRONT_FACES}

    def front_style(self, face: str) -> str:
        """The kind's own style sheet for a page, when it brings one (under ``static/``)."""
        return f"polls/kinds/{self.name}/{face}.css"

    def __repr__(self) -> str:
        return f"<kind {self.name}>"

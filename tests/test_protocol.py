"""The protocol's types (polls.protocol) against the code that builds the messages, against
docs/protocol.md, and against the codes the server sends."""

from __future__ import annotations

import ast
import copy
import json
import random
import re
import textwrap
import typing
from pathlib import Path

import pytest

from benchmarks.models import Figure, Study
from loadgen import values as loadgen_values
from polls import delivery, protocol, push, tally
from polls.answers import ERROR_MESSAGES
from polls.models import Event, Question, QuestionFigure
from polls.protocol import FrameChecker, SchemaError, check
from polls.redis_client import get_sync_redis
from polls.state import build_event_state
from tests.factories import make_event, make_question

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "protocol.md"


# -- the checker -----------------------------------------------------------------------------

SCALE_STATE = {
    "type": "state",
    "event": {
        "code": "TEST42",
        "title": "Test event",
        "look": "3f9c0a1b7d2e",
        "quiz": False,
        "podium": False,
    },
    "question": {
        "id": 7,
        "kind": "scale",
        "prompt": "Which mark?",
        "options": [],
        "open": True,
        "state": "open",
        "show_results": False,
        "revealed": False,
        "segment": False,
        "scale": {"min": 1, "max": 10, "min_label": "", "max_label": "", "lower_is_better": False},
        "choices": None,
        "split": None,
        "text": None,
        "quadrant": None,
        "figures": [],
        "figures_count": 0,
        "position": 1,
        "count": 1,
        "quiz": None,
    },
    "profile": [],
    "answer": 8,
}


def mismatch(message: dict, checker: FrameChecker | None = None) -> str:
    with pytest.raises(SchemaError) as raised:
        (checker or FrameChecker()).message(message)
    return str(raised.value)


def changed(message: dict, change) -> dict:
    message = copy.deepcopy(message)
    change(message)
    return message


def test_a_frame_that_fits_passes():
    FrameChecker().message(SCALE_STATE)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            lambda m: m["question"]["scale"].update(max="10"),
            "state['question']['scale']['max'] is a string, not int",
        ),
        (
            lambda m: m["question"].update(choices={"min": 1, "max": 2}),
            "state['question']['choices'] is an object, not null",
        ),
        (lambda m: m["question"].pop("figures_count"), "lacks the key 'figures_count'"),
        (lambda m: m["event"].update(id=3), "state['event'] has the unknown key 'id'"),
        (lambda m: m["question"].update(kind="poll"), "state['question']['kind'] is \"poll\""),
        (lambda m: m.update(type="status"), 'status[\'type\'] is "status", not "state" or'),
        (lambda m: m["question"].update(open=1), "state['question']['open'] is a number"),
        # A scale's answer is a number, not a list.
        (lambda m: m.update(answer=[8]), "state['answer'] is a list, not int"),
    ],
)
def test_a_mismatch_names_its_path(change, error):
    assert error in mismatch(changed(SCALE_STATE, change))


def test_later_frames_are_held_to_the_kind_a_state_gave():
    checker = FrameChecker()
    checker.message(SCALE_STATE)
    results = {"type": "results", "question": 7, "version": 3, "total": 1, "counts": {}}
    # A choice summary is a possible shape, but not a scale's.
    assert "(scale) lacks the key 'mean'" in mismatch(
        {**results, "summary": {"percent": {"8": 100}}}, checker
    )
    checker.message({**results, "summary": {"percent": {"8": 100}, "mean": 8.0}})
    ack = {"type": "ack", "id": "a1", "question": 7, "answer": "eight"}
    assert "ack['answer'] is a string, not int" in mismatch(ack, checker)


def test_a_stage_screen_gets_no_answer():
    FrameChecker(stage=True).message({**SCALE_STATE, "answer": None})
    assert "this is a stage screen" in mismatch(SCALE_STATE, FrameChecker(stage=True))
    ack = {"type": "ack", "id": "a1", "question": 7, "answer": 8}
    assert "this is a stage screen" in mismatch(ack, FrameChecker(stage=True))


# -- the builders: every kind, as the server builds it ------------------------------------------

OPTIONS = ("Phone", "Chat", "E-mail")
QUESTION_FIELDS = {
    "single": {},
    "multiple": {"max_choices": 2},
    "scale": {"scale_min_label": "bad", "scale_max_label": "great"},
    "nps": {},
    "enps": {},
    "ces": {"scale_min": 1, "scale_max": 5, "lower_is_better": True},
    "split": {"split_a_label": "Self-service", "split_b_label": "Live contact"},
    "text": {"text_max_length": 60},
    "ranking": {},
    "quadrant": {"quadrant_x_label": "Effort", "quadrant_y_label": "Value"},
}
# (metric, value, shares, scale) of a figure that can stand beside the kind.
FIGURES = {
    "single": ("shares", None, [50, 30, 20], None),
    "multiple": ("shares", None, [60, 45, 10], None),
    "scale": ("mean", 7.1, [], (1, 10)),
    "ces": ("ces", 2.4, [], (1, 5)),
    "nps": ("nps", 12, [], None),
    "enps": ("nps", -5, [], None),
    "split": ("split", 39, [], None),
}


def values_for(question: dict) -> list:
    """A few valid answers of each kind, as phones send them."""
    # Kinds without options never use these; the table below is built whole.
    options = [option["id"] for option in question["options"]] or [0, 0, 0]
    return {
        "single": [options[0], options[0], options[2]],
        "multiple": [[options[0]], [options[0], options[2]]],
        "scale": [1, 8, 10],
        "nps": [0, 7, 9, 10],
        "enps": [6, 8],
        "ces": [1, 5],
        "split": [0, 39, 100],
        "text": ["quick and friendly", "friendly"],
        "ranking": [options, list(reversed(options))],
        "quadrant": [
            {
                str(option): {"x": 10 * index, "y": 100 - 10 * index}
                for index, option in enumerate(options)
            },
            {str(option): {"x": 50, "y": 50} for option in options},
        ],
    }[question["kind"]]


@pytest.fixture
def every_kind(db) -> tuple[Event, dict[str, Question]]:
    event = make_event()
    study = Study.objects.create(title="Service monitor", publisher="KSF", year=2018)
    questions = {}
    for kind in protocol.KINDS:
        question = make_question(event, kind=kind, options=OPTIONS, **QUESTION_FIELDS[kind])
        if kind in FIGURES:
            metric, value, shares, scale = FIGURES[kind]
            for year in (2017, 2018):
                figure = Figure.objects.create(
                    study=study,
                    label=f"{kind} figure",
                    metric=metric,
                    value=value,
                    shares=shares,
                    year=year,
                    scale_min=scale[0] if scale else None,
                    scale_max=scale[1] if scale else None,
                    lower_is_better=kind == "ces",
                )
                QuestionFigure.objects.create(question=question, figure=figure)
        questions[kind] = question
    return event, questions


def test_the_kinds_are_the_models_kinds():
    assert set(protocol.KINDS) == set(Question.Kind.values)
    assert set(protocol.VALUE_OF_KIND) == set(protocol.SUMMARY_OF_KIND) == set(protocol.KINDS)
    in_questions = {
        kind
        for shape in typing.get_args(protocol.Question)
        for kind in typing.get_args(typing.get_type_hints(shape)["kind"])
    }
    assert in_questions == set(protocol.KINDS)


@pytest.mark.django_db
@pytest.mark.parametrize("revealed", [False, True])
@pytest.mark.parametrize("kind", protocol.KINDS)
def test_every_kinds_state_and_results_fit_the_schemas(every_kind, kind, revealed):
    event, questions = every_kind
    question = questions[kind]
    Question.objects.filter(pk=question.pk).update(
        revealed=revealed, state=Question.State.OPEN, show_results=True
    )
    Event.objects.filter(pk=event.pk).update(current_question=question)
    state = build_event_state(event.id)
    protocol.check_event_state(state)
    assert bool(state["question"]["figures"]) == (revealed and kind in FIGURES)

    checker = FrameChecker()
    texts = push.StateTexts(state)
    FrameChecker(stage=True).frame(texts.stage)
    checker.frame(texts.stage)
    answers = values_for(state["question"])
    for value in answers:
        checker.frame(texts.phone(value))

    spec = state["spec"]["current"]
    for given in ([], answers):
        counts: dict[str, int] = {}
        for value in given:
            for bucket in tally.buckets_for(kind, value):
                counts[bucket] = counts.get(bucket, 0) + 1
        snapshot = tally.Snapshot(question.id, 1 + len(given), len(given), counts)
        message = delivery.snapshot_message(spec, snapshot)
        assert ("comparison" in message) == (revealed and kind in FIGURES)
        checker.frame(push.encode(message))


@pytest.mark.django_db
def test_the_published_and_cached_state_fit(every_kind):
    event, questions = every_kind
    Event.objects.filter(pk=event.pk).update(current_question=questions["quadrant"])
    state = push.notify_event_changed(event.id)
    check(protocol.StatePublished, {"type": "event.state", "state": state}, "published")
    cached = json.loads(get_sync_redis().get(push.state_cache_key(event.id)))
    protocol.check_event_state(cached)
    assert "revision" in cached
    check(protocol.GonePublished, {"type": "event.gone", "event": event.id}, "published")


@pytest.mark.django_db
@pytest.mark.parametrize("kind", protocol.KINDS)
def test_the_load_generators_answers_fit(every_kind, kind):
    event, questions = every_kind
    Event.objects.filter(pk=event.pk).update(current_question=questions[kind])
    question = build_event_state(event.id)["question"]
    rng = random.Random(kind)
    for _ in range(20):
        value = loadgen_values.draw(question, rng)
        message = {"type": "answer", "id": "m1", "question": question["id"], "value": value}
        check(protocol.AnswerMessage, message, "answer")
        check(protocol.VALUE_OF_KIND[kind], value, f"answer['value'] ({kind})")


# -- docs/protocol.md ------------------------------------------------------------------------------

MARKER = re.compile(r"^\s*<!-- (schema|codes): (.+?) -->\s*$")
FENCE = re.compile(r"^\s*```")


def doc_sections() -> dict[tuple[str, str], list[str]]:
    """The lines after each ``<!-- schema: name -->`` marker, up to the next marker or heading."""
    sections: dict[tuple[str, str], list[str]] = {}
    current: list[str] | None = None
    for line in DOC.read_text().splitlines():
        marker = MARKER.match(line)
        if marker:
            assert (marker[1], marker[2]) not in sections, f"{marker[0].strip()} twice"
            current = sections[(marker[1], marker[2])] = []
        elif line.startswith("#"):
            current = None
        elif current is not None:
            current.append(line)
    return sections


def table(lines: list[str]) -> list[list[str]]:
    """The cells of the section's first table (no header, no rule), backticks dropped."""
    rows, started = [], False
    for line in lines:
        if line.strip().startswith("|"):
            started = True
            cells = [cell.strip().replace("`", "") for cell in line.strip().strip("|").split("|")]
            if not set(cells[0]) <= set("-:"):
                rows.append(cells)
        elif started:
            break
    return rows[1:]  # past the header


def examples(lines: list[str]) -> list[object]:
    """The section's JSON examples (``json`` fences, indented or not)."""
    found, block = [], None
    for line in lines:
        if block is None:
            if line.strip() == "```json":
                block = []
        elif FENCE.match(line):
            found.append(json.loads(textwrap.dedent("\n".join(block))))
            block = None
        else:
            block.append(line)
    return found


SECTIONS = doc_sections()


def test_every_documented_shape_is_a_schema_and_every_schema_is_documented():
    documented = {name for kind, name in SECTIONS if kind == "schema"}
    assert documented == set(protocol.DOCUMENTED)


@pytest.mark.parametrize("name", sorted(protocol.DOCUMENTED))
def test_the_docs_field_table_is_the_schema(name):
    in_doc = {field: kind for field, kind, *_meaning in table(SECTIONS[("schema", name)])}
    in_schema = protocol.fields(protocol.DOCUMENTED[name])
    assert sorted(set(in_doc) - set(in_schema)) == [], "documented, but not in the schema"
    assert sorted(set(in_schema) - set(in_doc)) == [], "in the schema, but not documented"
    wrong = {
        field: (in_doc[field], kind) for field, kind in in_schema.items() if in_doc[field] != kind
    }
    assert wrong == {}, "(documented type, schema's type)"


@pytest.mark.parametrize("name", sorted(protocol.DOCUMENTED))
def test_the_docs_examples_fit_the_schema(name):
    found = examples(SECTIONS[("schema", name)])
    if name in protocol.WIRE_MESSAGES:
        assert found, f"docs/protocol.md gives no example of {name}"
    for example in found:
        check(protocol.DOCUMENTED[name], example, name)
        if name in ("state", "results", "ack", "error", "pong"):
            FrameChecker().message(example)


# -- codes -------------------------------------------------------------------------------------


def polls_sources() -> dict[Path, str]:
    return {path: path.read_text() for path in sorted((ROOT / "polls").rglob("*.py"))}


def rejection_codes() -> set[str]:
    """Every code a ``Rejection`` is raised with, and the tally's refusals it passes on."""
    codes = set()
    for source in polls_sources().values():
        for node in ast.walk(ast.parse(source)):
            rejection = isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Rejection"
            if rejection and node.args and isinstance(node.args[0], ast.Constant):
                codes.add(node.args[0].value)
        # The counting script's outcomes (polls.tally): what is not counted is refused as such.
        codes |= set(re.findall(r"return \{'(\w+)'", source)) - {"ok", "duplicate", "unchanged"}
    return codes


def close_codes() -> set[int]:
    """Every ``CLOSE_...`` constant and every literal code a socket is closed with."""
    codes = set()
    for source in polls_sources().values():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(
                node.value, ast.Constant
            ):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [getattr(target, "id", "") for target in targets]
                if any(name.startswith("CLOSE_") for name in names):
                    codes.add(node.value.value)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("close", "refuse"):
                codes |= {arg.value for arg in node.args if isinstance(arg, ast.Constant)}
    return codes


def documented_codes(name: str) -> list[str]:
    return [row[0] for row in table(SECTIONS[("codes", name)])]


def test_every_error_code_is_in_the_schema_and_the_doc():
    sent = rejection_codes()
    assert {"bad_json", "not_open", "rate_limited", "revoked"} <= sent  # the scan finds them
    assert sent <= set(ERROR_MESSAGES), "a code polls.answers has no message for"
    assert set(ERROR_MESSAGES) == set(protocol.ERROR_CODES)
    documented = documented_codes("error")
    assert sorted(documented) == sorted(protocol.ERROR_CODES)


def test_every_close_code_is_in_the_schema_and_the_doc():
    used = close_codes()
    assert {4401, 4403, 4404, 4408, 4429} <= used  # the scan finds them
    assert used == set(protocol.CLOSE_CODES)
    documented = [int(code) for code in documented_codes("close")]
    assert sorted(documented) == sorted(protocol.CLOSE_CODES)

"""The live protocol's messages as types, and a checker that holds a frame to them.

Every message the server sends (``state``, ``results``, ``ack``, ``error``, ``pong``, the HTTP
fallback's ``close`` event), every message a client sends (``answer``, ``ping``) and the event
state the server keeps and hands between processes is a TypedDict here. The TypedDicts are the
only source: ``check`` derives its validators from them (``check_dict_only`` with required and
optional keys, ``check_list``, ``check_map``, ``check_union``, as Zulip's event schemas), so a
builder annotated with ``StateMessage`` and a test checking a frame against ``StateMessage``
cannot drift apart. A mismatch names the path of the first wrong member
(``state['question']['scale']['min'] is a string, not int``).

docs/protocol.md documents each wire message with a field table that tests/test_protocol.py
compares with ``fields(schema)``: a field missing on either side fails the suite.

The shapes of one kind (its answer value, its block of ``state.question``, its summary) live in
its module in polls.kinds, beside the code that makes them; the unions and maps below are built
from the registry, so a new kind adds its shapes without a line here.

Beyond shapes, ``FrameChecker`` holds what one message says about the next: a question's kind
decides the shape of its answer (in ``state`` and ``ack``) and of its results' summary.
"""

import json
import re
import types
import typing
from collections.abc import Callable
from typing import Literal, NotRequired, TypedDict, Union

from . import kinds

# -- the wire: small shapes -------------------------------------------------------------------

KINDS: tuple[str, ...] = kinds.names()
Kind = Literal[KINDS]
QuestionState = Literal["draft", "open", "closed"]
Metric = Literal["shares", "split", "percentage", "nps", "mean", "ces"]
# Every code ``answers.Rejection`` can carry (tests/test_protocol.py checks polls.answers).
ErrorCode = Literal[
    "bad_json",
    "bad_message",
    "too_large",
    "unknown_type",
    "unknown_question",
    "not_open",
    "bad_value",
    "too_long",
    "empty",
    "rate_limited",
    "not_allowed",
    "unavailable",
    "revoked",
    "unknown_item",
    "hidden_item",
    "own_item",
    "flood",
    "full",
    "too_late",
    "taken",
]
# Every code a socket is closed with, and an event stream's ``close`` event carries.
CloseCode = Literal[4401, 4403, 4404, 4408, 4429]
ERROR_CODES: tuple[str, ...] = typing.get_args(ErrorCode)
CLOSE_CODES: tuple[int, ...] = typing.get_args(CloseCode)


class Option(TypedDict):
    id: int
    label: str


class FigureScale(TypedDict):
    min: int
    max: int


class Study(TypedDict):
    title: str
    publisher: str
    year: int
    url: str


class Figure(TypedDict):
    """A research figure beside a question (``benchmarks.models.Figure.as_payload``)."""

    id: int
    label: str
    metric: Metric
    year: int
    value: float | None
    shares: list[float] | None
    unit: str
    scale: FigureScale | None
    lower_is_better: bool
    study: Study
    # A profile option's label when measured for that segment only ("" or absent: everyone).
    segment: NotRequired[str]


class PublicEvent(TypedDict):
    code: str
    title: str
    look: str
    quiz: bool  # quiz mode: the phone asks a nickname
    podium: bool  # the stage shows the quiz's podium


def _union(shapes) -> object:
    """The union of the shapes, each once, in their order."""
    return Union[tuple(dict.fromkeys(shapes))]  # noqa: UP007 - built from a list


# -- answer values: one shape per kind, declared by the kind ----------------------------------

VALUE_OF_KIND: dict[str, object] = {kind.name: kind.value_schema for kind in kinds.REGISTERED}
AnswerValue = _union(VALUE_OF_KIND.values())


# -- the question of a state: one shape per section (the kinds sharing a block) ----------------


class QuizAnswer(TypedDict):
    """A scored question's right answer, once it closed and the host shows the results."""

    correct: list[int]  # the correct options of a choice question
    target: float | None  # an estimate's target (a split: part A)
    tolerance: float | None


class Quiz(TypedDict):
    """A scored question's block of the state (``polls.quiz``)."""

    points: int  # the most one answer earns
    limit: int | None  # seconds from opening, or null: no countdown
    deadline: int | None  # server time (ms since the epoch) the question closes at
    answer: QuizAnswer | None


class _Question(TypedDict):
    id: int
    prompt: str
    options: list[Option]
    open: bool
    state: QuestionState
    show_results: bool
    revealed: bool
    segment: bool  # a profile question: the phone offers "rather not say" (value 0) too
    figures: list[Figure]
    figures_count: int
    position: int
    count: int
    quiz: Quiz | None  # null: not scored


def _question_shapes() -> list[type]:
    """Per section (and one for the kinds without), a question of those kinds: its ``kind`` one
    of them, its section's key that section's block, every other section's key ``null``."""
    by_section: dict[str | None, list[str]] = {}
    for kind in kinds.REGISTERED:
        by_section.setdefault(kind.section and kind.section.key, []).append(kind.name)
    common = typing.get_type_hints(_Question)
    shapes = []
    for key, names in by_section.items():
        blocks = {
            section.key: section.schema if section.key == key else None
            for section in kinds.sections()
        }
        members = {**common, "kind": Literal[tuple(names)], **blocks}
        name = f"{(key or 'options').title()}Question"
        shapes.append(TypedDict(name, members))
    return shapes


Question = _union(_question_shapes())


# -- results: a summary per kind (a family shares one), declared by the kind ------------------

SUMMARY_OF_KIND: dict[str, type] = {kind.name: kind.summary_schema for kind in kinds.REGISTERED}
Summary = _union(SUMMARY_OF_KIND.values())


class OptionComparison(TypedDict):
    id: int
    room: float
    measured: float
    difference: float


class Comparison(TypedDict):
    """One revealed figure against the room (``polls.figures.comparisons``)."""

    figure: int
    metric: Metric
    year: int
    room: float | None
    measured: float | None
    difference: float | None
    option: int | None
    options: list[OptionComparison] | None
    words: dict[str, str]


class SegmentGroup(TypedDict):
    """One segment of the room (or ``other``: everyone in no segment shown on its own)."""

    key: str  # the profile option's id, or "other"
    label: str
    total: int
    counts: dict[str, int]
    summary: Summary
    comparison: NotRequired[list[Comparison]]  # figures measured for this segment, revealed


class Segments(TypedDict):
    """A result split by a profile question's answers (``polls.segments``)."""

    question: int
    prompt: str
    min: int  # the smallest segment shown on its own
    groups: list[SegmentGroup]
    words: dict[str, str] | None  # the largest difference between two groups shown, per language


class ProfileQuestion(TypedDict):
    """A profile question the phone asks right after joining."""

    id: int
    prompt: str
    options: list[Option]


# -- server to client --------------------------------------------------------------------------


class StateMessage(TypedDict):
    type: Literal["state"]
    event: PublicEvent
    question: Question | None
    profile: list[ProfileQuestion]
    answer: AnswerValue | None


class ProfileMessage(TypedDict):
    """To a phone as it connects, before its state: its answers to the profile questions."""

    type: Literal["profile"]
    answers: dict[str, int | None]


class ResultsMessage(TypedDict):
    type: Literal["results"]
    question: int
    version: int
    total: int
    counts: dict[str, int]
    summary: Summary
    comparison: NotRequired[list[Comparison]]
    segments: NotRequired[Segments]


class AckMessage(TypedDict):
    type: Literal["ack"]
    id: str
    question: int
    answer: AnswerValue | None  # null: a resent id whose answer is no longer counted


class ErrorMessage(TypedDict):
    type: Literal["error"]
    id: str | None
    code: ErrorCode
    message: str


class PongMessage(TypedDict):
    type: Literal["pong"]
    id: str | None
    now: int  # the server's time (ms since the epoch): a countdown's clock offset


# -- the quiz (polls.quiz): players, their scores, the leaderboard ----------------------------


class PlayerMessage(TypedDict):
    """To a phone of a quiz-mode event as it connects, and as the reply to ``nickname``."""

    type: Literal["player"]
    id: NotRequired[str]
    number: int
    name: str  # as the leaderboard shows it: the nickname, else "Player <number>"
    nickname: str
    removed: bool


class ScoreMessage(TypedDict):
    """To a phone when the host shows a scored question's results: its own part."""

    type: Literal["score"]
    question: int
    answer: AnswerValue | None
    points: int  # earned with this question
    total: int
    place: int | None  # null: not on the leaderboard (no answer yet, or removed)
    moved: int | None  # places up (+) or down (-) since before this question
    players: int


class LeaderboardRow(TypedDict):
    place: int
    name: str
    points: int
    gained: int  # with the question shown
    moved: int | None  # places up (+) or down (-); null: new on the board


class LeaderboardMessage(TypedDict):
    """To stage screens when the host shows a scored question's results, and with the podium."""

    type: Literal["leaderboard"]
    question: int | None  # null: the podium, after the last question
    podium: bool
    players: int
    answered: int  # of the question shown
    right: int  # answers that earned points
    top: list[LeaderboardRow]


# -- the audience Q&A (polls.qa): lists to phones as changes, a board to the stage ------------

QaMode = Literal["off", "open", "moderated"]
QaState = Literal["pending", "visible", "hidden", "answered"]


class QaItem(TypedDict):
    """One item of the Q&A as phones and screens see it (never who asked it)."""

    id: int
    text: str
    name: str
    at: int
    votes: int
    state: QaState
    pinned: bool


class QaMessage(TypedDict):
    """To a phone: the whole list, on joining and whenever the host switches the Q&A."""

    type: Literal["qa"]
    version: int
    mode: QaMode
    names: bool
    items: list[QaItem]
    mine: list[int]
    voted: list[int]
    pending: list[QaItem]


class QaChangesMessage(TypedDict):
    """To phones, coalesced: what changed since the version of the last list or changes."""

    type: Literal["qa_changes"]
    version: int
    items: list[QaItem]
    removed: list[int]
    votes: dict[str, int]
    open: int


class QaBoardMessage(TypedDict):
    """To stage screens, coalesced: what the stage's Q&A view shows."""

    type: Literal["qa_board"]
    version: int
    mode: QaMode
    shown: bool
    pinned: QaItem | None
    top: list[QaItem]
    open: int
    pending: int


class QaAckMessage(TypedDict):
    type: Literal["qa_ack"]
    id: str
    item: QaItem
    voted: bool


ServerMessage = (
    StateMessage
    | ProfileMessage
    | ResultsMessage
    | AckMessage
    | ErrorMessage
    | PongMessage
    | QaMessage
    | QaChangesMessage
    | QaBoardMessage
    | QaAckMessage
    | PlayerMessage
    | ScoreMessage
    | LeaderboardMessage
)


class CloseEvent(TypedDict):
    """The ``data`` of an event stream's ``event: close`` (where a socket would be closed)."""

    code: CloseCode


# -- client to server --------------------------------------------------------------------------


class AnswerMessage(TypedDict):
    type: Literal["answer"]
    id: str
    question: int
    value: AnswerValue


class PingMessage(TypedDict):
    type: Literal["ping"]
    id: NotRequired[str]


class AskMessage(TypedDict):
    type: Literal["ask"]
    id: str
    text: str
    name: NotRequired[str | None]


class VoteMessage(TypedDict):
    type: Literal["vote", "unvote"]
    id: str
    item: int


class NicknameMessage(TypedDict):
    type: Literal["nickname"]
    id: str
    name: str  # "" takes the nickname back: the player is "Player <number>" again


ClientMessage = AnswerMessage | PingMessage | AskMessage | VoteMessage | NicknameMessage


# -- inside the server: the event state push.py caches and delivery.py hands out ---------------


class EventInfo(TypedDict):
    id: int
    code: str
    title: str
    language: str
    stage_key_digest: str
    look: str
    quiz: bool
    podium: bool


class SegmentSpec(TypedDict):
    """What the current question's results are split by (the event's ``segment_by``)."""

    question: int
    prompt: str
    options: list[Option]
    min: int
    other: str  # the label of "other", in the event's language


class QuizSpec(TypedDict):
    """How the server scores the current question (``polls.quiz.Scoring``): never to phones."""

    event: int
    correct: list[int]
    target: str | None  # decimals as text: exact
    tolerance: str | None
    window: int  # ms the speed part counts over


# What answers are validated against and snapshots computed with (``state.question_spec``): the
# sections the server validates with (``in_spec``) between ``labels`` and ``figures``.
QuestionSpec = TypedDict(
    "QuestionSpec",
    {
        "id": int,
        "kind": Kind,
        "open": bool,
        "options": list[int],
        "labels": dict[str, str],
        **{section.key: section.schema | None for section in kinds.sections() if section.in_spec},
        "figures": list[Figure],
        "segments": SegmentSpec | None,
        "quiz": QuizSpec | None,
    },
)


class ProfileSpec(TypedDict):
    id: int
    options: list[int]
    ask_on_join: bool


class EventSpec(TypedDict):
    question_ids: list[int]
    current: QuestionSpec | None
    attendees_only: bool
    profiles: list[ProfileSpec]
    quiz: bool  # quiz mode: phones get ``player`` and may send ``nickname``


class EventState(TypedDict):
    """``state.build_event_state``; ``revision`` is added when it is published or cached."""

    event: EventInfo
    question: Question | None
    profile: list[ProfileQuestion]
    spec: EventSpec
    revision: NotRequired[int]


class StatePublished(TypedDict):
    """To every server process (``push.publish``): a host's change."""

    type: Literal["event.state"]
    state: EventState


class GonePublished(TypedDict):
    type: Literal["event.gone"]
    event: int


Published = StatePublished | GonePublished


# The wire messages by the name docs/protocol.md documents them under (``<!-- schema: name -->``),
# and the shapes it documents on their own (referred to by that name in the field tables).
WIRE_MESSAGES: dict[str, type] = {
    "state": StateMessage,
    "profile": ProfileMessage,
    "results": ResultsMessage,
    "ack": AckMessage,
    "error": ErrorMessage,
    "pong": PongMessage,
    "close": CloseEvent,
    "answer": AnswerMessage,
    "ping": PingMessage,
    "qa": QaMessage,
    "qa_changes": QaChangesMessage,
    "qa_board": QaBoardMessage,
    "qa_ack": QaAckMessage,
    "player": PlayerMessage,
    "score": ScoreMessage,
    "leaderboard": LeaderboardMessage,
    "nickname": NicknameMessage,
    "ask": AskMessage,
    "vote": VoteMessage,
}


def _doc_name(shape: type) -> str:
    """A summary's name in the doc: ``NpsSummary`` is documented as ``nps summary``."""
    return " ".join(word.lower() for word in re.findall(r"[A-Z][a-z]*", shape.__name__))


NAMED_SHAPES: dict[str, type] = {
    "figure": Figure,
    "comparison": Comparison,
    "segments": Segments,
    "profile question": ProfileQuestion,
    "qa item": QaItem,
    "quiz": Quiz,
    "quiz answer": QuizAnswer,
    "leaderboard row": LeaderboardRow,
    **{
        _doc_name(shape): shape
        for shape in dict.fromkeys(SUMMARY_OF_KIND.values())
        if typing.is_typeddict(shape)  # a kind without one fails tests/test_kind_registry.py
    },
}
DOCUMENTED = {**WIRE_MESSAGES, **NAMED_SHAPES}
_NAME_OF = {shape: name for name, shape in NAMED_SHAPES.items()}
# Sets of values the doc lists in a table of their own, and names in its field tables.
NAMED_VALUES: dict[str, object] = {
    "kind": Kind,
    "error code": ErrorCode,
    "close code": CloseCode,
    "qa mode": QaMode,
    "qa state": QaState,
}


# -- validators ----------------------------------------------------------------------------------


class SchemaError(ValueError):
    """A value does not fit its schema: ``path`` names the first wrong member."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path} {problem}")
        self.path = path
        self.problem = problem


Validator = Callable[[str, object], None]


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def check_int(path: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SchemaError(path, f"is {_describe(value)}, not int")


def check_number(path: str, value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise SchemaError(path, f"is {_describe(value)}, not number")


def check_string(path: str, value: object) -> None:
    if not isinstance(value, str):
        raise SchemaError(path, f"is {_describe(value)}, not string")


def check_bool(path: str, value: object) -> None:
    if not isinstance(value, bool):
        raise SchemaError(path, f"is {_describe(value)}, not bool")


def check_none(path: str, value: object) -> None:
    if value is not None:
        raise SchemaError(path, f"is {_describe(value)}, not null")


def equals(*allowed: object) -> Validator:
    """One of the given JSON values (the type counts: ``True`` is not ``1``)."""

    def check(path: str, value: object) -> None:
        if not any(type(value) is type(item) and value == item for item in allowed):
            choices = " or ".join(json.dumps(item) for item in allowed)
            raise SchemaError(path, f"is {json.dumps(value, default=str)}, not {choices}")

    return check


def check_list(item: Validator) -> Validator:
    def check(path: str, value: object) -> None:
        if not isinstance(value, list):
            raise SchemaError(path, f"is {_describe(value)}, not a list")
        for index, member in enumerate(value):
            item(f"{path}[{index}]", member)

    return check


def check_map(item: Validator) -> Validator:
    """An object with any keys (ids, scale points, languages), every value fitting ``item``."""

    def check(path: str, value: object) -> None:
        if not isinstance(value, dict):
            raise SchemaError(path, f"is {_describe(value)}, not an object")
        for key, member in value.items():
            item(f"{path}[{key!r}]", member)

    return check


def check_dict_only(
    required: list[tuple[str, Validator]], optional: list[tuple[str, Validator]] | None = None
) -> Validator:
    """An object with exactly these keys: every required one, any of the optional ones."""
    known = dict(required) | dict(optional or [])

    def check(path: str, value: object) -> None:
        if not isinstance(value, dict):
            raise SchemaError(path, f"is {_describe(value)}, not an object")
        for key, _item in required:
            if key not in value:
                raise SchemaError(path, f"lacks the key {key!r}")
        for key in value:
            if key not in known:
                raise SchemaError(path, f"has the unknown key {key!r}")
        for key, member in value.items():
            known[key](f"{path}[{key!r}]", member)

    return check


class Alternative(typing.NamedTuple):
    """One shape of a union: its validator and, for an object, what tells it apart."""

    validator: Validator
    discriminators: dict[str, tuple] = {}  # key -> its allowed values (``type``, ``kind``)
    required: frozenset[str] = frozenset()
    known: frozenset[str] = frozenset()


def check_union(alternatives: list[Alternative], expected: str = "any of its shapes") -> Validator:
    """The value fits one alternative. When none fits, the error reported is that of the
    alternative the value was meant to be: the one whose discriminators match, else the one the
    check got deepest into, else the object closest in keys; so the path points into its shape."""

    def check(path: str, value: object) -> None:
        failures = []
        for alternative in alternatives:
            try:
                alternative.validator(path, value)
            except SchemaError as error:
                failures.append((_closeness(alternative, value, error), error))
            else:
                return
        (matched, depth, _keys), error = max(failures, key=lambda failure: failure[0])
        objects = [item for item in alternatives if item.known]
        if not matched and isinstance(value, dict) and objects:
            # A ``type`` or ``kind`` that none of the objects has is the mismatch.
            shared = set.intersection(*(set(item.discriminators) for item in objects))
            for key in sorted(shared & set(value)):
                allowed = [each for item in objects for each in item.discriminators[key]]
                equals(*allowed)(f"{path}[{key!r}]", value[key])
        if not matched and depth == _depth(path) and not isinstance(value, dict):
            raise SchemaError(path, f"is {_describe(value)}, not {expected}")
        raise error

    return check


def _closeness(alternative: Alternative, value: object, error: SchemaError) -> tuple:
    if not isinstance(value, dict):
        return (False, _depth(error.path), 0)
    matched = bool(alternative.discriminators) and all(
        any(type(value.get(key)) is type(item) and value.get(key) == item for item in allowed)
        for key, allowed in alternative.discriminators.items()
    )
    keys = set(value)
    differences = len(alternative.required - keys) + len(keys - alternative.known)
    return (matched, _depth(error.path), -differences)


def _depth(path: str) -> int:
    return path.count("[")


# -- validators from the TypedDicts ----------------------------------------------------------------

_SCALARS: dict[object, Validator] = {
    int: check_int,
    float: check_number,
    str: check_string,
    bool: check_bool,
    None: check_none,
    type(None): check_none,
}
_validators: dict[object, Validator] = {}


def _is_typeddict(shape: object) -> bool:
    return isinstance(shape, type) and typing.is_typeddict(shape)


def _is_union(shape: object) -> bool:
    return typing.get_origin(shape) in (Union, types.UnionType)


def _hints(shape: type) -> dict[str, object]:
    return typing.get_type_hints(shape)


def _alternative(shape: object) -> Alternative:
    if not _is_typeddict(shape):
        return Alternative(validator(shape))
    hints = _hints(shape)
    return Alternative(
        validator(shape),
        {key: typing.get_args(hint) for key, hint in hints.items() if _is_literal(hint)},
        frozenset(shape.__required_keys__),
        frozenset(hints),
    )


def _is_literal(shape: object) -> bool:
    return typing.get_origin(shape) is Literal


def validator(shape: object) -> Validator:
    """The validator of a type: a TypedDict, a ``Literal``, ``list``, ``dict[str, ...]``, a
    union, or a JSON scalar."""
    if shape in _validators:
        return _validators[shape]
    if shape in _SCALARS:
        return _SCALARS[shape]
    origin, args = typing.get_origin(shape), typing.get_args(shape)
    if _is_typeddict(shape):
        hints = _hints(shape)
        made = check_dict_only(
            [(name, validator(hints[name])) for name in hints if name in shape.__required_keys__],
            [(name, validator(hints[name])) for name in hints if name in shape.__optional_keys__],
        )
    elif origin is Literal:
        made = equals(*args)
    elif origin is list:
        made = check_list(validator(args[0]))
    elif origin is dict:
        made = check_map(validator(args[1]))
    elif _is_union(shape):
        made = check_union([_alternative(arg) for arg in args], render(shape))
    else:
        raise TypeError(f"no validator for {shape!r}")
    _validators[shape] = made
    return made


def check(shape: object, value: object, name: str = "message") -> None:
    """Raise SchemaError unless ``value`` fits ``shape``; ``name`` starts the path."""
    validator(shape)(name, value)


# -- what a type says in docs/protocol.md -------------------------------------------------------


def render(shape: object) -> str:
    """The type as the doc's field tables write it (``null or object``, ``list of int``)."""
    if shape in _NAME_OF:
        return _NAME_OF[shape]
    if shape in (None, type(None)):
        return "null"
    if shape in _SCALARS:
        return {int: "int", float: "number", str: "string", bool: "bool"}[shape]
    origin, args = typing.get_origin(shape), typing.get_args(shape)
    if _is_typeddict(shape):
        return "object"
    if origin is Literal:
        return _join([json.dumps(arg) for arg in args])
    if origin is list:
        return f"list of {render(args[0])}"
    if origin is dict:
        return f"map of {render(args[1])}"
    if _is_union(shape):
        return _join([render(arg) for arg in args])
    raise TypeError(f"cannot render {shape!r}")


def _join(rendered: list[str]) -> str:
    """Alternatives joined once each; all values of a named set (a kind) say its name."""
    seen: list[str] = []
    for text in rendered:
        for part in text.split(" or "):
            if part not in seen:
                seen.append(part)
    for name, values in NAMED_VALUES.items():
        named = {json.dumps(value) for value in typing.get_args(values)}
        if named <= set(seen):
            seen = [name if part in named else part for part in seen]
            seen = [part for index, part in enumerate(seen) if part not in seen[:index]]
    return " or ".join(seen)


def fields(shape: type) -> dict[str, str]:
    """Every field of a documented shape, by dotted path, with its rendered type.

    A nested object's members follow as ``parent.member``, a list's objects as
    ``parent[].member``, a map's objects as ``parent.*.member``; the alternatives of a union
    contribute all their fields (a path in several gets their types joined). A key that may be
    absent ends in ``?``. Shapes documented on their own (NAMED_SHAPES) are not opened."""
    found: dict[str, list[str]] = {}
    _collect(shape, "", found, root=True)
    return {path: _join(texts) for path, texts in found.items()}


def _collect(shape: object, path: str, found: dict[str, list[str]], root: bool = False) -> None:
    if shape in _NAME_OF and not root:
        return
    origin, args = typing.get_origin(shape), typing.get_args(shape)
    if _is_typeddict(shape):
        for name, hint in _hints(shape).items():
            member = f"{path}.{name}" if path else name
            optional = "?" if name in shape.__optional_keys__ else ""
            found.setdefault(member + optional, []).append(render(hint))
            _collect(hint, member, found)
    elif _is_union(shape):
        for arg in args:
            _collect(arg, path, found)
    elif origin is list:
        _collect(args[0], path + "[]", found)
    elif origin is dict:
        _collect(args[1], path + ".*", found)


# -- one connection's frames ----------------------------------------------------------------------


class FrameChecker:
    """Checks every frame a client receives, and what one frame says about the next.

    A ``state`` with a question tells its kind: the state's ``answer``, a later ``ack`` and a
    later ``results`` snapshot of that question must have that kind's shape. A stage screen
    has no answer of its own and is never acknowledged."""

    def __init__(self, stage: bool = False) -> None:
        self.stage = stage
        self.kinds: dict[int, str] = {}

    def frame(self, text: str | bytes) -> ServerMessage:
        """The decoded frame; SchemaError when it is not a server message of the protocol."""
        try:
            message = json.loads(text)
        except ValueError:
            raise SchemaError("frame", "is not JSON") from None
        self.message(message)
        return message

    def message(self, message: object) -> None:
        name = message.get("type", "message") if isinstance(message, dict) else "message"
        check(ServerMessage, message, str(name))
        message_type = message["type"]
        if self.stage and (message_type == "ack" or message.get("answer") is not None):
            raise SchemaError(str(name), "carries an answer, but this is a stage screen")
        if self.stage and message_type in ("qa", "qa_changes", "qa_ack"):
            raise SchemaError(str(name), "is a phone's Q&A message, but this is a stage screen")
        if not self.stage and message_type == "qa_board":
            raise SchemaError(str(name), "is the stage's Q&A board, but this is a phone")
        if message_type == "state" and message["question"] is not None:
            question = message["question"]
            self.kinds[question["id"]] = question["kind"]
            if message["answer"] is not None:
                check(VALUE_OF_KIND[question["kind"]], message["answer"], "state['answer']")
        elif message_type == "ack" and message["answer"] is not None:
            kind = self.kinds.get(message["question"])
            if kind is not None:
                check(VALUE_OF_KIND[kind], message["answer"], "ack['answer']")
        elif message_type == "results" and message["question"] in self.kinds:
            kind = self.kinds[message["question"]]
            check(SUMMARY_OF_KIND[kind], message["summary"], f"results['summary'] ({kind})")


def check_event_state(state: object) -> None:
    """The server-internal event state, with its spec agreeing with its public question."""
    check(EventState, state, "event_state")
    question, current = state["question"], state["spec"]["current"]
    if (question is None) != (current is None):
        raise SchemaError("event_state['spec']['current']", "disagrees with the question")
    if question is not None:
        blocks = [section.key for section in kinds.sections() if section.in_spec]
        for key in ("id", "kind", "open", *blocks, "figures"):
            if question[key] != current[key]:
                raise SchemaError(f"event_state['spec']['current'][{key!r}]", "differs")

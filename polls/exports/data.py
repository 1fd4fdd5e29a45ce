"""The record as data: every question's result from the Answer rows, and the answers.

An export is the record, not the show: counts come from the Answer rows the writer keeps (not
from the Redis tally), go through the tally's own buckets and each kind's summary, and every
linked research figure is compared, whether or not it was revealed on stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone, translation
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from redis.exceptions import RedisError

from benchmarks.models import Figure
from benchmarks.numbers import number, round_half_up
from benchmarks.numbers import places as number_places

from .. import kinds, quiz, quiz_board, tally
from ..consistency import set_aside_of
from ..figures import COMPARABLE_METRICS, comparisons, same_segment
from ..models import Answer, Event, Player, QaAside, QaItem, Question, SetAside
from ..segments import OTHER, RATHER_NOT_SAY, Group, fold
from ..state import question_payload, question_spec, scoring_of
from . import presentation
from .presentation import ResultTable, beside, tidy

# --- the results, as plain data ----------------------------------------------------------


def event_results(event: Event, screen: bool = False) -> list[dict]:
    """Every question's result in order, with the research figures beside it (newest first).

    Each question: number, prompt, kind, respondents, ``lines`` (what was counted: options,
    scale points, split bins, words, points or mean positions per item), ``summary_lines`` (mean,
    NPS and its groups, the split), ``research`` (every linked figure) and the raw ``summary``
    from ``results``. A line's ``research`` holds the figures that stand beside it.

    ``screen=True`` gives word clouds as the stage shows them (words the host hid left out,
    profanity masked, the top words only): for the printable page. Exports keep every word,
    and add ``segments``: the result per segment of each profile question (``_segment_table``).
    """
    with translation.override(event.language):
        questions = list(event.questions.prefetch_related("options"))
        answers = list(counted_answers(event).values_list("participant", "question_id", "value"))
        values: dict[int, list[tuple[str, Any]]] = {question.id: [] for question in questions}
        for participant, question_id, value in answers:
            values[question_id].append((participant, value))
        # The printable page shows the whole room; the files add the tables by segment.
        splits = [] if screen else event_splits(event, questions, answers)
        return [
            _question_result(question, number, len(questions), values[question.id], screen, splits)
            for number, question in enumerate(questions, start=1)
        ]


def counted_answers(event: Event):
    """The event's answers that count: every one but those of participants the host set aside
    (as on the stage; the raw answers sheet keeps them, marked)."""
    aside = SetAside.objects.filter(event=event).values("participant")
    return Answer.objects.filter(question__event=event).exclude(participant__in=aside)


def _safe_buckets(kind: str, value: Any) -> list[str]:
    """The tally's buckets; none for an answer that no longer fits its question.

    The kind of a question can be changed in admin after answers came in; an export must still
    be possible then (the answer still counts as a respondent).
    """
    try:
        return tally.buckets_for(kind, value)
    except (TypeError, AttributeError, KeyError):
        return []


def _hidden_words(question: Question) -> frozenset[str]:
    if not kinds.get(question.kind).counts_words:
        return frozenset()
    try:
        return frozenset(tally.hidden_words(question.id))
    except (RedisError, OSError):
        # Hidden words live in Redis only; without it the page still renders, profanity masked.
        return frozenset()


def _question_result(
    question: Question,
    number: int,
    count: int,
    values: list[tuple[str, Any]],
    screen: bool,
    splits: list[Split] = (),
) -> dict:
    """``values``: (participant, value) of each counted answer."""
    payload = question_payload(question, number, count)
    # The record compares with every linked figure, revealed on stage or not.
    figures = [
        link.figure.as_payload() for link in question.figure_links.select_related("figure__study")
    ]
    payload["figures"] = figures
    spec = question_spec(payload)
    if question.segment:
        spec["labels"][str(RATHER_NOT_SAY)] = _("Rather not say")
    kind = question.kind
    hidden = _hidden_words(question) if screen else frozenset()
    answered = [value for _participant, value in values]
    whole = _result(spec, payload, len(answered), _raw_counts(kind, answered), hidden, screen)
    kind_of = kinds.get(kind)
    return {
        "number": number,
        "id": question.id,
        "prompt": question.prompt,
        "kind": kind,
        "kind_label": question.get_kind_display(),
        "revealed": question.revealed,
        "respondents": whole["respondents"],
        "lines": whole["lines"],
        "summary_lines": whole["summary_lines"],
        "items": whole["items"],
        "research": whole["research"],
        "beside": any(line["research"] for line in whole["lines"]),
        "summary": whole["summary"],
        # Each kind's own block ("split", ...; None for the other kinds), for the page.
        **kinds.payload_blocks(question),
        "print_template": kind_of.print_template,
        "counts_words": kind_of.counts_words,
        # Per profile question of the event (not this one: by itself it splits into nothing
        # but its own options), the groups the privacy rule lets the record show.
        "segments": [
            _segment_table(spec, payload, values, split, hidden, screen)
            for split in splits
            if split.question_id != question.id
        ],
    }


def _result(
    spec: dict,
    payload: dict,
    total: int,
    raw: dict[str, int],
    hidden: frozenset[str],
    screen: bool,
    segment: str = "",
) -> dict:
    """One result's lines with research beside them: the whole room (with the figures for the
    whole population) or one segment of it (with the figures for ``segment``); ``raw``: the
    tally's buckets counted over its respondents."""
    kind = spec["kind"]
    message = kinds.results_message(spec, 0, total, raw, hidden)
    summary = message["summary"]
    figures = [
        figure for figure in spec["figures"] if same_segment(figure.get("segment") or "", segment)
    ]
    # A figure linked before the question's kind changed cannot be compared; it is still listed.
    comparable = [
        figure for figure in figures if figure["metric"] in COMPARABLE_METRICS.get(kind, set())
    ]
    compared = {
        entry["figure"]: entry
        for entry in comparisons(
            {**spec, "figures": comparable}, summary, total, spec["labels"], segment
        )
    }
    research = [
        presentation.research(figure, compared.get(figure["id"]), spec)
        for figure in (spec["figures"] if not segment else figures)
    ]
    research.reverse()  # newest first: the latest measurement stands beside the result
    built = ResultTable(spec, payload, total, raw, message, screen)
    kinds.get(kind).export_lines(built)
    lines, headline = built.lines, built.headline
    for entry in research:
        if not entry["compared"]:
            continue
        if entry["metric"] == Figure.Metric.SHARES:
            for line in lines:
                option = entry["options"].get(line["key"])
                if option is not None:
                    widest = entry["option"] is not None and str(entry["option"]) == line["key"]
                    line["research"].append(
                        beside(
                            entry,
                            option["measured"],
                            option["difference"] if total else None,
                            entry["words"] if widest else "",
                            spec,
                        )
                    )
        elif headline is not None:
            headline["research"].append(
                beside(entry, entry["measured"], entry["difference"], entry["words"], spec)
            )
    return {
        "respondents": total,
        "lines": lines,
        "summary_lines": built.summary_lines,
        "items": built.items,
        "research": research,
        "summary": summary,
    }


def _raw_counts(kind: str, values: list[Any]) -> dict[str, int]:
    raw: dict[str, int] = {}
    for value in values:
        for bucket in _safe_buckets(kind, value):
            raw[bucket] = raw.get(bucket, 0) + 1
    return raw


# --- results by segment --------------------------------------------------------------------


@dataclass
class Split:
    """A profile question of the event and who is in which of its segments."""

    question_id: int
    prompt: str
    options: list[tuple[int, str]]  # (option id, label) in the question's order
    member_of: dict[str, int]  # participant -> the option id they answered (0 and none left out)
    smallest: int  # the event's segment_min_respondents


def event_splits(event: Event, questions: list[Question], answers: list[tuple]) -> list[Split]:
    """The event's profile questions with each participant's segment, from the counted Answer
    rows (``answers``: participant, question id, value): a participant's segment is their
    answer to the profile question when it is one of its options (0: rather not say)."""
    splits = []
    for question in questions:
        if not question.segment:
            continue
        options = [(option.id, option.label) for option in question.options.all()]
        ids = {option_id for option_id, _label in options}
        member_of = {
            participant: value
            for participant, question_id, value in answers
            if question_id == question.id
            and isinstance(value, int)
            and not isinstance(value, bool)
            and value in ids
        }
        splits.append(
            Split(question.id, question.prompt, options, member_of, event.segment_min_respondents)
        )
    return splits


def _segment_table(
    spec: dict,
    payload: dict,
    values: list[tuple[str, Any]],
    split: Split,
    hidden: frozenset[str],
    screen: bool,
) -> dict:
    """The question's result per segment of ``split``: the segments the privacy rule shows on
    their own (``segments.fold``), then "other", each with the research for its segment."""
    kind = spec["kind"]
    per_option: dict[int, list[Any]] = {option_id: [] for option_id, _label in split.options}
    rest: list[Any] = []
    for participant, value in values:
        option_id = split.member_of.get(participant)
        (per_option[option_id] if option_id is not None else rest).append(value)
    groups = [
        Group(
            str(option_id),
            label,
            len(per_option[option_id]),
            _raw_counts(kind, per_option[option_id]),
        )
        for option_id, label in split.options
    ]
    shown, other = fold(
        groups, Group(OTHER, _("Other"), len(rest), _raw_counts(kind, rest)), split.smallest
    )
    entries = []
    for group in [*shown, *([other] if other is not None else [])]:
        segment = "" if group.key == OTHER else group.label
        result = _result(spec, payload, group.total, group.counts, hidden, screen, segment)
        if group.key == OTHER:
            result["research"] = []  # no figure is measured for "other"
            for line in [*result["lines"], *result["summary_lines"]]:
                line["research"] = []
        entries.append({"key": group.key, "label": group.label, **result})
    return {
        "question": split.question_id,
        "prompt": split.prompt,
        "min": split.smallest,
        "groups": entries,
    }


def readable_answer(question: Question, value: Any, labels: dict[str, str]) -> str | int:
    """An answer as a person reads it: option labels, not ids; scale answers stay numbers."""

    def label(option_id) -> str:
        return labels.get(str(option_id), f"#{option_id}")

    kind = kinds.find(question.kind)
    if kind is None:
        return value if isinstance(value, str) else tally.encode_value(value)
    try:
        return kind.readable_answer(question, value, label)
    except (TypeError, ValueError, KeyError, AttributeError):
        # A question whose kind changed after answering: the value as stored.
        return tally.encode_value(value)


def answer_table(event: Event) -> tuple[list[str], list[list]]:
    """Header and rows of every answer, in question order, then by time answered."""
    with translation.override(event.language):
        # Per question once: a display label costs a translation lookup, and there may be
        # 5,000 answers to each question.
        questions = {
            question.id: (
                number,
                question,
                question.get_kind_display(),
                {str(option.id): option.label for option in question.options.all()},
            )
            for number, question in enumerate(event.questions.prefetch_related("options"), start=1)
        }
        headers = [
            _("No."),
            capfirst(_("question")),
            capfirst(_("kind")),
            capfirst(_("participant")),
            capfirst(_("answer")),
            capfirst(_("answered at")),
            capfirst(_("set aside")),
        ]
        answers = Answer.objects.filter(question__event=event).order_by(
            "question__order", "question_id", "answered_at", "id"
        )
        aside = set(SetAside.objects.filter(event=event).values_list("participant", flat=True))
        rows = []
        for answer in answers.iterator(chunk_size=2000):
            number, question, kind_label, labels = questions[answer.question_id]
            rows.append(
                [
                    number,
                    question.prompt,
                    kind_label,
                    answer.participant,
                    readable_answer(question, answer.value, labels),
                    timezone.localtime(answer.answered_at),
                    _("yes") if answer.participant in aside else "",
                ]
            )
        return headers, rows


# --- results as a table ------------------------------------------------------------------


def line_headers() -> list[str]:
    return [
        _("Result"),
        _("Measure"),
        _("Count"),
        _("Share (%)"),
        _("Value"),
        _("Research figure"),
        _("Difference"),
        _("Figure"),
        _("Year measured"),
        _("Study"),
        _("Publisher"),
        _("In words"),
    ]


def line_rows(line: dict) -> list[list]:
    """A result line, its first research figure beside it; more figures on rows under it.

    Count, share and value appear once, so a column's sum stays the sum of what was counted.
    """
    own = [line["label"], line["measure"], line["count"], line["percent"], line["value"]]
    if not line["research"]:
        return [[*own, None, None, None, None, None, None, None]]
    rows = []
    for index, research in enumerate(line["research"]):
        head = own if index == 0 else [line["label"], line["measure"], None, None, None]
        rows.append(
            [
                *head,
                research["measured"],
                research["difference"],
                research["label"],
                research["year"],
                research["study"],
                research["publisher"],
                research["words"],
            ]
        )
    return rows


def results_table(event: Event) -> tuple[list[str], list[list]]:
    """One row per result line: each question's whole room (profile question and segment
    empty), then its lines per segment of each profile question, as ``segment_rows`` gives."""
    data = event_results(event)
    with translation.override(event.language):
        headers = [
            _("No."),
            capfirst(_("question")),
            capfirst(_("kind")),
            _("Profile question"),
            _("Segment"),
            _("Respondents"),
            _("Row"),
            *line_headers(),
        ]
        result_word, summary_word = _("result"), _("summary")
        rows = []
        for question in data:
            own = [question["number"], question["prompt"], question["kind_label"]]
            parts = [(result_word, line) for line in question["lines"]]
            parts += [(summary_word, line) for line in question["summary_lines"]]
            whole = [*own, None, None, question["respondents"]]
            if not parts:  # every question appears, even one nobody answered
                rows.append([*whole, None, *[None] * len(line_headers())])
            for part, line in parts:
                rows.extend([*whole, part, *row] for row in line_rows(line))
            for table in question["segments"]:
                for group, part, row in segment_rows(table):
                    rows.append(
                        [*own, table["prompt"], group["label"], group["respondents"], part, *row]
                    )
        return headers, rows


def segment_rows(table: dict):
    """(group, "result" or "summary", line row) for each shown group of a table by segment."""
    result_word, summary_word = _("result"), _("summary")
    for group in table["groups"]:
        for part, lines in ((result_word, group["lines"]), (summary_word, group["summary_lines"])):
            for line in lines:
                for row in line_rows(line):
                    yield group, part, row


# --- the audience Q&A ----------------------------------------------------------------------

# What the printable page lists: the items most voted on that the room saw.
PRINT_QA_TOP = 10
_SHOWN = (QaItem.State.VISIBLE, QaItem.State.ANSWERED)


def qa_items(event: Event):
    """The event's Q&A items as asked, each with ``counted``: its votes as the QaVote rows hold
    them (the writer's record; equal to Redis once the vote log is drained)."""
    return QaItem.objects.filter(event=event).annotate(
        counted=Count("votes", filter=Q(votes__active=True))
    )


def qa_table(event: Event) -> tuple[list[str], list[list]]:
    """Header and rows of every Q&A item in the order asked, hidden ones too (with their
    state): the author's name only when they gave one, never their participant id."""
    with translation.override(event.language):
        headers = [
            "ID",
            capfirst(_("item")),
            capfirst(_("name")),
            capfirst(_("votes")),
            capfirst(_("state")),
            capfirst(_("on stage now")),
            capfirst(_("asked at")),
            capfirst(_("edited at")),
            capfirst(_("answered at")),
            _("Author set aside"),
        ]
        aside = set(QaAside.objects.filter(event=event).values_list("participant", flat=True))
        yes = _("yes")
        rows = [
            [
                item.id,
                item.text,
                item.name,
                item.counted,
                item.get_state_display(),
                yes if item.pinned else "",
                timezone.localtime(item.created_at),
                timezone.localtime(item.edited_at) if item.edited_at else None,
                timezone.localtime(item.answered_at) if item.answered_at else None,
                yes if item.participant in aside else "",
            ]
            for item in qa_items(event).order_by("created_at", "id")
        ]
        return headers, rows


def qa_top(event: Event, limit: int = PRINT_QA_TOP) -> list[dict]:
    """The items the room saw (visible or answered; never hidden or waiting ones), most votes
    first, then the earliest asked: for the printable page."""
    shown = qa_items(event).filter(state__in=_SHOWN).order_by("-counted", "created_at", "id")
    return [
        {
            "id": item.id,
            "text": item.text,
            "name": item.name,
            "votes": item.counted,
            "answered": item.state == QaItem.State.ANSWERED,
        }
        for item in shown[:limit]
    ]


# --- the quiz ------------------------------------------------------------------------------

# What the printable page lists: the first ten of the leaderboard, as the stage shows them.
PRINT_QUIZ_TOP = 10


def has_quiz(event: Event) -> bool:
    """An event in quiz mode, or one with a scored question (an event taken out of quiz mode
    outside admin, which refuses that, keeps its scores in the record)."""
    return event.quiz or event.questions.filter(scored=True).exists()


def seconds(elapsed_ms: int) -> float:
    """Answer time in seconds to one decimal, rounded half up: 12,345 ms -> 12.3."""
    return float(round_half_up(Decimal(elapsed_ms) / 1000, 1))


def _right_answer(question: Question, scoring: quiz.Scoring) -> dict:
    """What a scored question was scored against, as the stage shows it once the results are:
    its correct options' labels, else its target (a split's as a percentage) and tolerance,
    and whether that target is a research figure's (the question had none of its own)."""
    if question.kind in quiz.CHOICE_KINDS:
        labels = [option.label for option in question.options.all() if option.correct]
        return {
            "text": ", ".join(labels),
            "correct": labels,
            "target": None,
            "tolerance": None,
            "tolerance_text": "",
            "from_research": False,
        }
    target, tolerance = scoring.target, scoring.tolerance
    text = ""
    if target is not None:
        text = number(target, number_places(target))
        if question.kind == "split":
            text += "%"
    return {
        "text": text,
        "correct": [],
        "target": tidy(target),
        "tolerance": tidy(tolerance),
        "tolerance_text": (
            "" if tolerance is None else number(tolerance, number_places(tolerance))
        ),
        "from_research": question.target is None and target is not None,
    }


def quiz_record(event: Event) -> dict:
    """The quiz as the database holds it (``quiz_board.recompute``: each participant's last
    answer to every scored question that opened, with the server's time of it), so it needs
    no Redis: ``questions`` (each scored question's right answer, how many answered and how
    many scored), ``ranked`` (places by ``quiz.board_score``: points, then less total answer
    time; equal in both share a place; ties listed by name) and ``apart``.

    ``apart``: who answered but has no place, after the ranked. Removed players (off the
    leaderboard by a host) keep their points, since their answers count in the results; a
    participant set aside counts nowhere (no result, no score, no place), so is listed by name
    with no points rather than left out: the record shows the host who was taken off.
    ``answered`` counts removed players' answers as the results do, set-aside ones not.
    """
    with translation.override(event.language):
        scores = quiz_board.recompute(event.id)
        numbers = {
            question_id: position
            for position, question_id in enumerate(
                event.questions.values_list("id", flat=True), start=1
            )
        }
        played = [
            question
            for question in event.questions.filter(scored=True).prefetch_related("options")
            if question.id in scores
        ]
        questions = []
        for question in played:
            scoring = scoring_of(question)
            per_participant = scores[question.id]
            questions.append(
                {
                    "number": numbers[question.id],
                    "id": question.id,
                    "prompt": question.prompt,
                    "kind": question.kind,
                    "kind_label": question.get_kind_display(),
                    "answered": len(per_participant),
                    "scored": sum(1 for points, _ms in per_participant.values() if points > 0),
                    **_right_answer(question, scoring),
                }
            )
        totals: dict[str, tuple[int, int]] = {}
        for per_participant in scores.values():
            for participant, (points, elapsed) in per_participant.items():
                before = totals.get(participant, (0, 0))
                totals[participant] = (before[0] + points, before[1] + elapsed)
        aside = set_aside_of(event.id)
        aside_played = set(
            Answer.objects.filter(question_id__in=scores, participant__in=aside).values_list(
                "participant", flat=True
            )
        )
        players = {
            player.participant: player
            for player in Player.objects.filter(
                event=event, participant__in=[*totals, *aside_played]
            )
        }

        def name(participant: str) -> str:
            player = players.get(participant)
            # Outside quiz mode nobody is a player: the pseudonymous id, as the answers list it.
            return player.shown_name if player is not None else participant

        def row(participant: str, place: int | None, left_off: str) -> dict:
            total = totals.get(participant)
            return {
                "participant": participant,
                "place": place,
                "name": name(participant),
                "points": None if total is None else total[0],
                "elapsed_ms": None if total is None else total[1],
                "seconds": None if total is None else seconds(total[1]),
                "per_question": [
                    scores[question["id"]].get(participant, (None, None))[0]
                    for question in questions
                ],
                "left_off": left_off,
            }

        removed = {participant for participant, player in players.items() if player.removed}
        board = sorted(
            (
                (participant, quiz.board_score(*total))
                for participant, total in totals.items()
                if participant not in removed
            ),
            key=lambda pair: (-pair[1], name(pair[0]).casefold(), pair[0]),
        )
        place_of = quiz_board.places(board)
        ranked = [row(participant, place_of[participant], "") for participant, _score in board]
        removed_word = capfirst(_("removed from the leaderboard"))
        aside_word = capfirst(_("set aside"))

        def by_name(participant: str) -> tuple[str, str]:
            return name(participant).casefold(), participant

        apart = [
            row(participant, None, removed_word)
            for participant in sorted(removed & totals.keys(), key=by_name)
        ]
        apart += [
            row(participant, None, aside_word) for participant in sorted(aside_played, key=by_name)
        ]
        return {"questions": questions, "ranked": ranked, "apart": apart}


def leaderboard_table(event: Event, record: dict | None = None) -> tuple[list[str], list[list]]:
    """Header and rows of the leaderboard: the ranked, then those without a place (``apart``);
    one column of points per scored question (empty: not answered)."""
    record = quiz_record(event) if record is None else record
    with translation.override(event.language):
        headers = [
            _("Place"),
            capfirst(_("name")),
            _("Points"),
            _("Answer time (s)"),
            *[
                _("Question %(number)s") % {"number": question["number"]}
                for question in record["questions"]
            ],
            _("Not placed"),
        ]
        rows = [
            [
                entry["place"],
                entry["name"],
                entry["points"],
                entry["seconds"],
                *entry["per_question"],
                entry["left_off"],
            ]
            for entry in [*record["ranked"], *record["apart"]]
        ]
        return headers, rows

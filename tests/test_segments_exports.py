"""Exports by segment: each question's result per segment of every profile question, computed
from the Answer rows, research per segment beside it, small segments only within "other"."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from benchmarks.models import Figure, Study
from benchmarks.numbers import round_half_up
from polls.exports import data as export_data
from polls.exports import writers
from polls.models import QuestionFigure, SetAside
from tests.factories import make_event, make_question, option_ids
from tests.test_exports import answer, as_dicts, open_xlsx, sheet_rows

pytestmark = pytest.mark.django_db

GENERATIONS = ("Babyboom", "Generation X", "Generation Y", "Generation Z")
# Per participant: generation (None: no profile answer, 0: rather not say), self-service share
# guessed, colour chosen. Generation X has 4 (k = 5): it is shown only within "other".
PEOPLE = (
    [("Babyboom", share, "Red") for share in (30, 40, 40, 50, 35, 45)]
    + [("Generation X", share, "Green") for share in (60, 20, 50, 10)]
    + [
        ("Generation Z", share, colour)
        for share, colour in zip(
            (70, 80, 60, 90, 75, 65, 85),
            ("Blue", "Blue", "Red", "Blue", "Green", "Blue", "Blue"),
            strict=True,
        )
    ]
    + [(0, 55, "Red"), (0, 45, "Green"), (None, 50, "Blue")]
)


def link(question, segment: str, value: int, year: int = 2018) -> Figure:
    study, _created = Study.objects.get_or_create(title="Benchmark", publisher="KIRC", year=2018)
    figure = Figure.objects.create(
        study=study,
        label="Self-service",
        metric="split",
        year=year,
        value=Decimal(value),
        unit="%",
        segment=segment,
    )
    QuestionFigure.objects.create(question=question, figure=figure)
    return figure


@pytest.fixture
def room(host):
    event = make_event(code="TEST42", hosts=[host])
    profile = make_question(event, prompt="Which generation?", options=GENERATIONS, segment=True)
    split = make_question(
        event,
        kind="split",
        prompt="Self-service or live?",
        options=(),
        split_a_label="self-service",
        split_b_label="live",
    )
    colour = make_question(event, prompt="Colour?", options=("Red", "Green", "Blue"))
    link(split, "", 39)
    link(split, "generation z", 70)  # as a host may type it
    by_label = dict(zip(GENERATIONS, option_ids(profile), strict=True))
    colours = dict(zip(("Red", "Green", "Blue"), option_ids(colour), strict=True))
    for index, (generation, share, chosen) in enumerate(PEOPLE):
        participant = f"p{index}"
        if generation is not None:
            answer(profile, participant, by_label.get(generation, 0))
        answer(split, participant, share)
        answer(colour, participant, colours[chosen])
    # Set aside: counted nowhere, not even in their segment.
    answer(profile, "burst", by_label["Generation Z"])
    answer(split, "burst", 0)
    answer(colour, "burst", colours["Red"])
    SetAside.objects.create(event=event, participant="burst")
    return event


def expected_groups() -> dict[str, list[tuple]]:
    """The groups recomputed by hand: Babyboom (6) and Generation Z (7) on their own; the 4 of
    Generation X with the 3 in no segment as "other" (7)."""
    groups: dict[str, list[tuple]] = {"Babyboom": [], "Generation Z": [], "Other": []}
    for generation, share, colour in PEOPLE:
        key = generation if generation in ("Babyboom", "Generation Z") else "Other"
        groups[key].append((share, colour))
    return groups


def test_each_segment_table_equals_a_recomputation_from_the_answers(room):
    profile, split, colour = export_data.event_results(room)
    assert profile["segments"] == []  # a profile question is not split by itself
    assert [line["label"] for line in profile["lines"]] == [*GENERATIONS, "Rather not say"]
    assert [line["count"] for line in profile["lines"]] == [6, 4, 0, 7, 2]
    expected = expected_groups()
    (table,) = split["segments"]
    assert (table["prompt"], table["min"]) == ("Which generation?", 5)
    assert [group["label"] for group in table["groups"]] == list(expected)
    for group in table["groups"]:
        shares = [share for share, _colour in expected[group["label"]]]
        assert group["respondents"] == len(shares)
        headline = group["summary_lines"][0]
        mean = round_half_up(Decimal(sum(shares)) / len(shares), 0)
        assert (headline["label"], headline["value"]) == ("self-service", int(mean))
        assert sum(line["count"] for line in group["lines"]) == len(shares)
    (colour_table,) = colour["segments"]
    for group in colour_table["groups"]:
        counted = Counter(chosen for _share, chosen in expected[group["label"]])
        assert {line["label"]: line["count"] for line in group["lines"]} == {
            name: counted.get(name, 0) for name in ("Red", "Green", "Blue")
        }
    # The segments and "other" together are the whole room (the set-aside burst in neither).
    assert sum(group["respondents"] for group in table["groups"]) == split["respondents"] == 20


def test_research_for_a_segment_stands_beside_that_segment_only(room):
    _profile, split, _colour = export_data.event_results(room)
    whole = split["summary_lines"][0]
    assert [entry["measured"] for entry in whole["research"]] == [39]
    babyboom, generation_z, other = split["segments"][0]["groups"]
    z_line = generation_z["summary_lines"][0]
    assert [(entry["measured"], entry["difference"]) for entry in z_line["research"]] == [
        (70, z_line["value"] - 70)
    ]
    assert "more self-service" in z_line["research"][0]["words"]
    assert babyboom["summary_lines"][0]["research"] == []
    assert other["summary_lines"][0]["research"] == []
    # The record lists the segment's figure with its segment.
    assert {(entry["measured"], entry["segment"]) for entry in split["research"]} == {
        (39, ""),
        (70, "generation z"),
    }


def test_the_csv_has_the_table_by_segment_and_never_names_a_small_segment(room):
    rows = as_dicts(writers.results_csv(room))
    whole = [
        row for row in rows if row["Question"] == "Self-service or live?" and not row["Segment"]
    ]
    by_segment = [row for row in rows if row["Segment"]]
    assert {row["Profile question"] for row in by_segment} == {"Which generation?"}
    assert {row["Segment"] for row in by_segment} == {"Babyboom", "Generation Z", "Other"}
    respondents = {(row["Question"], row["Segment"]): row["Respondents"] for row in by_segment}
    assert respondents[("Colour?", "Babyboom")] == "6"
    assert respondents[("Self-service or live?", "Other")] == "7"
    assert {row["Respondents"] for row in whole} == {"20"}
    z_summary = [
        row for row in by_segment if row["Segment"] == "Generation Z" and row["Row"] == "summary"
    ]
    assert z_summary[0]["Research figure"] == "70"
    # Generation X (4 < 5) is named only as an option of the profile question itself.
    named = [row for row in rows if "Generation X" in row.values()]
    assert named and all(row["Question"] == "Which generation?" for row in named)
    assert all(row["Segment"] == "" for row in named)


def test_the_xlsx_sheets_have_the_table_by_segment(room):
    workbook = open_xlsx(writers.event_xlsx(room))
    split_sheet = sheet_rows(workbook[workbook.sheetnames[2]])
    cells = [cell for row in split_sheet for cell in row if cell is not None]
    assert "By segment: Which generation?" in cells
    start = cells.index("By segment: Which generation?")
    assert any("fewer than 5 respondents" in str(cell) for cell in cells[start:])
    segment_rows = [row for row in split_sheet if row[0] in ("Babyboom", "Generation Z", "Other")]
    assert {row[0] for row in segment_rows} == {"Babyboom", "Generation Z", "Other"}
    assert {row[0]: row[1] for row in segment_rows} == {
        "Babyboom": 6,
        "Generation Z": 7,
        "Other": 7,
    }
    for title in workbook.sheetnames:
        if title.startswith("1."):  # the profile question's own sheet counts its options
            continue
        for row in sheet_rows(workbook[title]):
            if title == "Answers":
                continue
            assert "Generation X" not in row, title


def test_a_room_too_small_to_split_shows_no_segment(host):
    event = make_event(code="SMALL5", hosts=[host])
    profile = make_question(event, prompt="Generation?", options=GENERATIONS, segment=True)
    question = make_question(event, prompt="Colour?", options=("Red", "Green"))
    ids = option_ids(profile)
    red = option_ids(question)[0]
    for index in range(4):
        answer(profile, f"p{index}", ids[0])
        answer(question, f"p{index}", red)
    _profile, colour = export_data.event_results(event)
    assert colour["segments"][0]["groups"] == []
    rows = as_dicts(writers.results_csv(event))
    assert not [row for row in rows if row["Segment"]]


def test_the_tables_by_segment_speak_the_events_language(room):
    room.language = "nl"
    room.save()
    rows = as_dicts(writers.results_csv(room))
    assert {row["Segment"] for row in rows if row["Profielvraag"]} == {
        "Babyboom",
        "Generation Z",
        "Overig",
    }
    assert "Zeg ik liever niet" in {row["Resultaat"] for row in rows}
    workbook = open_xlsx(writers.event_xlsx(room))
    cells = [cell for row in sheet_rows(workbook[workbook.sheetnames[2]]) for cell in row]
    assert "Per segment: Which generation?" in cells
    assert any("minder dan 5 respondenten" in str(cell) for cell in cells)

"""The quiz in the record: the Leaderboard sheet, leaderboard.csv, the printable page's top ten
and right answers, who may download them; all from the Answer rows (``quiz_board.recompute``),
equal to the live leaderboard in Redis once the writer drained, and readable without Redis."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from itertools import count

import openpyxl
import pytest
from channels.db import database_sync_to_async
from django.urls import reverse

from benchmarks.models import Figure, Study
from polls import quiz_board, tally, writer
from polls.exports import data as export_data
from polls.exports import writers
from polls.models import Answer, Player, Question, QuestionFigure, SetAside
from tests import test_quiz as live
from tests.factories import make_event, make_question, make_user, option_ids

_log_ids = count(1)
START = 1_700_000_000_000  # a question's first opening, server ms


def answer(question, participant: str, value, after_ms: int) -> Answer:
    """An Answer row as the writer leaves it, ``after_ms`` after the question first opened."""
    at = datetime.fromtimestamp(((question.started_ms or START) + after_ms) / 1000, tz=UTC)
    return Answer.objects.create(
        question=question,
        participant=participant,
        value=value,
        answered_at=at,
        log_id=f"{next(_log_ids)}-0",
    )


def link_figure(question, value: str, year: int = 2018) -> Figure:
    study, _created = Study.objects.get_or_create(
        title="National benchmark on customer interaction", publisher="KIRC", year=2018
    )
    figure = Figure.objects.create(
        study=study, label="Self-service", metric="split", year=year, value=Decimal(value)
    )
    QuestionFigure.objects.create(question=question, figure=figure)
    return figure


def read_csv(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def open_xlsx(content: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(content))


def sheet_rows(sheet) -> list[list]:
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def player(event, participant: str, number: int, nickname: str = "", removed=False) -> Player:
    return Player.objects.create(
        event=event,
        participant=participant,
        number=number,
        nickname=nickname,
        key=nickname.casefold(),
        removed=removed,
    )


@pytest.fixture
def event(host):
    return make_event(code="QWZ42A", title="Quiz night", hosts=[host], quiz=True)


@pytest.fixture
def played(db, event):
    """A scored single choice (Red right, 20 s), a plain question, a scored split whose target is
    the research figure's 39 (+- 20, untimed: 30 s of speed), five players: Anna and Eva tie,
    Player 2 (no nickname) third, Cees removed, Dirk set aside."""
    choice = make_question(event, prompt="Which is right?", scored=True, time_limit=20)
    choice.started_ms = START
    choice.save()
    red, green, _blue = option_ids(choice)
    choice.options.filter(pk=red).update(correct=True)
    plain = make_question(event, prompt="How was your day?")
    split = make_question(
        event,
        kind=Question.Kind.SPLIT,
        prompt="Self-service?",
        options=(),
        scored=True,
        tolerance=Decimal(20),
    )
    split.started_ms = START + 60_000
    split.save()
    link_figure(split, "39")
    for number, (participant, nickname) in enumerate(
        [
            ("p-anna", "Anna"),
            ("p-bram", ""),
            ("p-cees", "Cees"),
            ("p-dirk", "Dirk"),
            ("p-eva", "Eva"),
        ],
        start=1,
    ):
        player(event, participant, number, nickname, removed=participant == "p-cees")
    SetAside.objects.create(event=event, participant="p-dirk")
    answer(choice, "p-anna", red, 2000)  # 950 points
    answer(choice, "p-bram", green, 1000)  # 0
    answer(choice, "p-cees", red, 0)  # 1000
    answer(choice, "p-dirk", red, 0)  # set aside: counts nowhere
    answer(choice, "p-eva", red, 2000)  # 950
    answer(split, "p-anna", 39, 3050)  # 950, in 5.05 s over both
    answer(split, "p-eva", 39, 3050)  # 950
    answer(split, "p-bram", 29, 6000)  # 500 * 0.9 = 450
    answer(plain, "p-anna", option_ids(plain)[0], 1000)  # not scored: in no column
    return choice, plain, split


EXPECTED = [
    ["Place", "Name", "Points", "Answer time (s)", "Question 1", "Question 3", "Not placed"],
    ["1", "Anna", "1900", "5.1", "950", "950", ""],
    ["1", "Eva", "1900", "5.1", "950", "950", ""],
    ["3", "Player 2", "450", "7.0", "0", "450", ""],
    ["", "Cees", "1000", "0.0", "1000", "", "Removed from the leaderboard"],
    ["", "Dirk", "", "", "", "", "Set aside"],
]


# --- the data ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_csv_places_by_points_then_answer_time_and_lists_the_unplaced_last(event, played):
    assert read_csv(writers.leaderboard_csv(event)) == EXPECTED


@pytest.mark.django_db
def test_each_scored_question_has_its_right_answer_and_how_many_answered_and_scored(event, played):
    choice, _plain, split = played
    record = export_data.quiz_record(event)
    first, second = record["questions"]
    assert (first["id"], first["number"], first["text"], first["from_research"]) == (
        choice.id,
        1,
        "Red",
        False,
    )
    assert (first["answered"], first["scored"]) == (4, 3)  # Dirk set aside; Cees counts
    assert (second["id"], second["number"], second["text"]) == (split.id, 3, "39%")
    assert (second["target"], second["tolerance"], second["from_research"]) == (39, 20, True)
    assert (second["answered"], second["scored"]) == (3, 3)
    # Its own target wins over the research figure, and says so.
    Question.objects.filter(pk=split.pk).update(target=Decimal("42.5"))
    second = export_data.quiz_record(event)["questions"][1]
    assert (second["text"], second["from_research"]) == ("42.5%", False)


@pytest.mark.django_db
def test_the_xlsx_has_a_leaderboard_sheet_after_the_overview_in_the_events_language(event, played):
    event.language = "nl"
    event.save()
    workbook = open_xlsx(writers.event_xlsx(event))
    assert workbook.sheetnames[:2] == ["Overzicht", "Scorebord"]
    rows = sheet_rows(workbook["Scorebord"])
    assert rows[0][0] == "Scorebord"
    header = rows.index(next(row for row in rows if row[0] == "Nr."))
    questions = rows[header + 1 : header + 3]
    assert [[row[0], row[1], row[3]] for row in questions] == [
        [1, "Which is right?", "Red"],
        [3, "Self-service?", "39%"],
    ]
    assert [row[4:9] for row in questions] == [[None, None, None, 4, 3], [39, 20, "ja", 3, 3]]
    table = rows[header + 4 :]
    assert [table[0][1], table[0][2], table[0][4], table[0][5]] == [
        "Naam",
        "Punten",
        "Vraag 1",
        "Vraag 3",
    ]
    assert [row[:6] for row in table[1:4]] == [
        [1, "Anna", 1900, 5.1, 950, 950],
        [1, "Eva", 1900, 5.1, 950, 950],
        [3, "Speler 2", 450, 7, 0, 450],
    ]
    assert [row[:6] for row in table[4:6]] == [
        [None, "Cees", 1000, 0, 1000, None],
        [None, "Dirk", None, None, None, None],
    ]
    assert [row[6] for row in table[4:6]] == ["Van het scorebord gehaald", "Apart gezet"]
    overview = sheet_rows(workbook["Overzicht"])
    assert ["Scorebord", 3, "Scorebord", None, None] in overview


@pytest.mark.django_db
def test_an_event_without_a_quiz_has_no_leaderboard_sheet_and_a_header_only_csv(host):
    plain = make_event(code="PLAIN1", hosts=[host])
    make_question(plain, prompt="Favourite colour?")
    assert "Leaderboard" not in open_xlsx(writers.event_xlsx(plain)).sheetnames
    assert read_csv(writers.leaderboard_csv(plain)) == [
        ["Place", "Name", "Points", "Answer time (s)", "Not placed"]
    ]


@pytest.mark.django_db
def test_a_scored_question_outside_quiz_mode_names_its_players_by_their_ids(host):
    plain = make_event(code="PLAIN2", hosts=[host])
    question = make_question(plain, prompt="Which is right?", scored=True)
    question.started_ms = START
    question.save()
    right = option_ids(question)[0]
    question.options.filter(pk=right).update(correct=True)
    answer(question, "1a2b-cafe0123-00ff", right, 0)
    assert "Leaderboard" in open_xlsx(writers.event_xlsx(plain)).sheetnames
    assert read_csv(writers.leaderboard_csv(plain))[1][:3] == ["1", "1a2b-cafe0123-00ff", "1000"]


@pytest.mark.django_db
def test_a_scored_question_never_opened_has_no_column(event, played):
    make_question(event, prompt="Not yet", scored=True)  # no clock: nobody could answer it
    assert read_csv(writers.leaderboard_csv(event))[0] == EXPECTED[0]


@pytest.mark.django_db
def test_nicknames_are_text_never_formulas(event, played):
    Player.objects.filter(participant="p-anna").update(nickname="=HYPERLINK(1)")
    rows = read_csv(writers.leaderboard_csv(event))
    assert rows[1][1] == "'=HYPERLINK(1)"
    sheet = open_xlsx(writers.event_xlsx(event))["Leaderboard"]
    cells = [cell for row in sheet.iter_rows() for cell in row if cell.value == "=HYPERLINK(1)"]
    assert cells and all(cell.data_type == "s" for cell in cells)


# --- the faces ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_hosts_download_the_leaderboard_csv(client, host, event, played):
    client.force_login(host)
    response = client.get(reverse("exports:leaderboard_csv", args=[event.code]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="QWZ42A-leaderboard.csv"'
    assert "no-store" in response["Cache-Control"]
    assert read_csv(response.content) == EXPECTED


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["exports:leaderboard_csv", "exports:results_xlsx", "exports:results_print"]
)
def test_only_the_events_hosts_get_the_leaderboard(client, event, played, name):
    url = reverse(name, args=[event.code])
    anonymous = client.get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("admin:login"))
    other = make_user("host-b")
    make_event(code="OTHER1", hosts=[other])  # a host, of another event
    client.force_login(other)
    assert client.get(url).status_code == 403
    client.force_login(make_user("root", is_superuser=True))
    assert client.get(url).status_code == 200
    assert client.post(url).status_code == 405


@pytest.mark.django_db
def test_an_unknown_event_is_a_404(client, host):
    client.force_login(host)
    assert client.get(reverse("exports:leaderboard_csv", args=["NOPE99"])).status_code == 404


@pytest.mark.django_db
def test_the_printable_page_lists_the_top_ten_and_each_right_answer(client, host, event, played):
    choice, _plain, _split = played
    red = option_ids(choice)[0]
    for number in range(6, 18):  # twelve more players: the page stops at ten
        participant = f"p-{number}"
        player(event, participant, number, f"<b>N{number}</b>" if number == 6 else "")
        answer(choice, participant, red, 10_000 + number)
    client.force_login(host)
    response = client.get(reverse("exports:results_print", args=[event.code]))
    page = response.content.decode()
    assert reverse("exports:leaderboard_csv", args=[event.code]) in page
    section = page[page.index('id="pr-quiz"') :]
    board = section[: section.index("</table>")]
    assert board.count('<td class="pr-num pr-place">') == 10
    # Anna and Eva share the first place; the twelve's fastest eight follow (750 points each).
    assert board.index("Anna") < board.index("Eva") < board.index("N6") < board.index("Player 13")
    assert "Player 14" not in board and "Player 2" not in board
    assert "<b>1900</b>" in board and "5.1" in board
    assert "&lt;b&gt;N6&lt;/b&gt;" in board and "<b>N6</b>" not in page
    assert "Cees" not in board and "Dirk" not in board  # no place, so not in the top
    assert "Right answer: Red" in section and "15 of 16 right" in section
    assert "Research: 39%" in section and "(± 20)" in section
    # The scored questions' own sections say it too; the plain one does not.
    own = page[page.index('id="pr-q1"') : page.index('id="pr-q2"')]
    assert "Right answer: Red" in own
    plain = page[page.index('id="pr-q2"') : page.index('id="pr-q3"')]
    assert 'class="pr-right"' not in plain
    assert "<script" not in page and " style=" not in page


@pytest.mark.django_db
def test_the_printable_page_in_dutch_and_without_a_quiz(client, host, event, played):
    event.language = "nl"
    event.save()
    client.force_login(host)
    page = client.get(reverse("exports:results_print", args=[event.code])).content.decode()
    section = page[page.index('id="pr-quiz"') :]
    assert "Scorebord" in section and "Punten" in section and "Speler 2" in section
    assert "Goede antwoord: Red" in section and "Onderzoek: 39%" in section
    assert "5,1" in section  # seconds in the event's language
    plain = make_event(code="PLAIN1", hosts=[host])
    make_question(plain, prompt="Favourite colour?")
    page = client.get(reverse("exports:results_print", args=[plain.code])).content.decode()
    assert 'id="pr-quiz"' not in page and "leaderboard.csv" not in page


# --- equal to the live leaderboard, and without Redis ----------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("disconnect_sockets")
async def test_the_record_equals_the_live_leaderboard_and_needs_no_redis(host, settings):
    """Phones answer over sockets through the real answer script (a change of mind too); once
    the writer drained, the export's places, points and times are the live board's, and the
    same with Redis gone."""
    event, choice, split = await database_sync_to_async(live_quiz)(host)
    red, green, _blue = await database_sync_to_async(option_ids)(choice)
    phones = [await live.phone(event) for _ in range(6)]
    for index, (communicator, _player, _state) in enumerate(phones[:3]):
        name = {"type": "nickname", "id": f"n{index}", "name": f"Team {index}"}
        await live.reply(communicator, name, "player")
    await live.open_question(event, choice)
    picks = [red, green, red, red, green, red]
    for index, (communicator, _player, _state) in enumerate(phones):
        message = {"type": "answer", "id": f"c{index}", "question": choice.id}
        await live.reply(communicator, {**message, "value": picks[index]}, "ack")
        await asyncio.sleep(0.003)
    # A change of mind replaces the earlier answer's points and time.
    change = {"type": "answer", "id": "c1b", "question": choice.id, "value": red}
    await live.reply(phones[1][0], change, "ack")
    await live.open_question(event, split)
    for index, (communicator, _player, _state) in enumerate(phones[:5]):
        message = {"type": "answer", "id": f"s{index}", "question": split.id}
        await live.reply(communicator, {**message, "value": 30 + 4 * index}, "ack")
        await asyncio.sleep(0.003)
    numbers = [player["number"] for _c, player, _s in phones]
    removed, aside = await database_sync_to_async(take_off)(event, numbers[4], numbers[5])
    board = await quiz_board.read_board(event.id, split.id, False)
    await database_sync_to_async(compare)(event, choice, split, board, removed, aside, settings)


def live_quiz(host):
    event = make_event(code="LIVE42", hosts=[host], quiz=True)
    choice = make_question(event, prompt="Which is right?", scored=True, time_limit=30)
    choice.options.filter(pk=option_ids(choice)[0]).update(correct=True)
    split = make_question(
        event, kind=Question.Kind.SPLIT, options=(), scored=True, tolerance=Decimal(20)
    )
    link_figure(split, "39")
    return event, choice, split


def take_off(event, removed_number: int, aside_number: int) -> tuple[str, str]:
    """Drain the writer, then remove one player and set another aside (after they scored)."""
    writer.drain_all()
    players = {p.number: p.participant for p in Player.objects.filter(event=event)}
    removed, aside = players[removed_number], players[aside_number]
    Player.objects.filter(event=event, participant=removed).update(removed=True)
    SetAside.objects.create(event=event, participant=aside)
    return removed, aside


def compare(event, choice, split, board, removed: str, aside: str, settings) -> None:
    record = export_data.quiz_record(event)
    # Places and totals as the stage's leaderboard has them (removed and set aside: no place).
    assert {
        entry["participant"]: (entry["place"], entry["points"]) for entry in record["ranked"]
    } == {participant: (place, total) for participant, (_g, total, place, _m) in board.own.items()}
    assert len(record["ranked"]) == board.players == 4
    top = json.loads(board.leaderboard)["top"]
    assert {row["name"]: row["place"] for row in top} == {
        entry["name"]: entry["place"] for entry in record["ranked"]
    }
    assert {"Team 0", "Team 1", "Team 2"} <= {row["name"] for row in top}
    # Points and answer times to the millisecond, per question and in total, as Redis has them.
    ranked_raw = tally.get_sync_redis().zrevrange(
        tally.quiz_keys(event.id)["board"], 0, -1, withscores=True
    )
    live_totals = {p.decode(): quiz_board.total_of(score) for p, score in ranked_raw}
    for entry in record["ranked"]:
        assert (entry["points"], entry["elapsed_ms"]) == live_totals[entry["participant"]]
    for column, question in enumerate((choice, split)):
        scores = tally.read_scores_sync(question.id)
        for entry in [*record["ranked"], *record["apart"]]:
            participant = entry["participant"]
            if participant == aside:
                assert entry["per_question"][column] is None  # counted nowhere
            else:
                assert entry["per_question"][column] == scores.get(participant, (None,))[0]
    assert [entry["participant"] for entry in record["apart"]] == [removed, aside]
    assert (record["apart"][0]["points"], record["apart"][0]["elapsed_ms"]) == live_totals[removed]
    assert record["questions"][1]["from_research"]
    before = writers.leaderboard_csv(event)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # Redis gone: nothing there to read
    with pytest.raises(tally.TallyUnavailable):
        tally.write_scores(event.id, {})
    assert writers.leaderboard_csv(event) == before
    assert "Leaderboard" in open_xlsx(writers.event_xlsx(event)).sheetnames

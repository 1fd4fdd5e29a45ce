"""Exports and the record: CSV and XLSX from the Answer rows, research beside each result,
formula injection neutralised, the printable page, and who may download."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from itertools import count

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from benchmarks.models import Figure, Study
from polls import tally
from polls.demo import DEMO_QA, ensure_demo
from polls.exports import data as export_data
from polls.exports import writers
from polls.models import Answer, Question, QuestionFigure
from tests.factories import (
    grant_polls_permissions,
    make_event,
    make_question,
    make_user,
    option_ids,
)

pytestmark = pytest.mark.django_db

_log_ids = count(1)


def answer(question, participant: str, value, at: datetime | None = None) -> Answer:
    """An Answer row as the stream writer leaves it (one per participant and question)."""
    return Answer.objects.create(
        question=question,
        participant=participant,
        value=value,
        answered_at=at or timezone.now(),
        log_id=f"{next(_log_ids)}-0",
    )


def read_csv(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def as_dicts(content: bytes) -> list[dict[str, str]]:
    header, *rows = read_csv(content)
    return [dict(zip(header, row, strict=True)) for row in rows]


def open_xlsx(content: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(content))


def sheet_rows(sheet) -> list[list]:
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def add_figure(question, metric: str, year: int, **fields) -> Figure:
    study, _created = Study.objects.get_or_create(
        title="National benchmark on customer interaction",
        publisher="KIRC",
        year=2018,
        defaults={"url": "https://example.org/benchmark"},
    )
    figure = Figure.objects.create(
        study=study, label="Measured", metric=metric, year=year, **fields
    )
    QuestionFigure.objects.create(question=question, figure=figure)
    return figure


@pytest.fixture
def event(host):
    return make_event(code="TEST42", title="Test event", hosts=[host])


@pytest.fixture
def choice(event):
    """Red 2, Green 1, Blue 1 against research shares 50 / 30 / 20."""
    question = make_question(event, prompt="Favourite colour?")
    red, green, blue = option_ids(question)
    for participant, value in (("p1", red), ("p2", red), ("p3", green), ("p4", blue)):
        answer(question, participant, value)
    add_figure(question, "shares", 2018, shares=[50, 30, 20])
    return question


@pytest.fixture
def split(event):
    """The room guesses 53/47 self-service; research measured 38 (2017) and 39 (2018)."""
    question = make_question(
        event,
        kind=Question.Kind.SPLIT,
        prompt="Self-service against live contact?",
        options=(),
        split_a_label="self-service",
        split_b_label="live contact",
    )
    answer(question, "p1", 50)
    answer(question, "p2", 56)
    add_figure(question, "split", 2017, value=Decimal("38"), unit="%")
    add_figure(question, "split", 2018, value=Decimal("39"), unit="%")
    return question


# --- the data ----------------------------------------------------------------------------


def test_results_come_from_the_answer_rows_with_research_never_revealed(event, choice, split):
    assert not choice.revealed and not split.revealed
    first, second = export_data.event_results(event)
    assert [line["count"] for line in first["lines"]] == [2, 1, 1]
    assert [line["percent"] for line in first["lines"]] == [50, 25, 25]
    assert [line["research"][0]["difference"] for line in first["lines"]] == [0, -5, 5]
    assert second["respondents"] == 2
    headline = second["summary_lines"][0]
    assert (headline["label"], headline["value"]) == ("self-service", 53)
    assert [(r["year"], r["measured"], r["difference"]) for r in headline["research"]] == [
        (2018, 39, 14),
        (2017, 38, 15),
    ]
    assert "14 points more self-service" in headline["research"][0]["words"]


def test_a_question_without_answers_still_appears(event):
    make_question(event, kind=Question.Kind.TEXT, prompt="One word?", options=())
    (result,) = export_data.event_results(event)
    assert result["respondents"] == 0 and result["lines"] == []
    rows = as_dicts(writers.results_csv(event))
    assert [row["Question"] for row in rows] == ["One word?"]


# --- CSV ---------------------------------------------------------------------------------


def test_answers_csv_has_one_row_per_answer_with_labels_not_ids(event, choice):
    content = writers.answers_csv(event)
    assert content.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with the BOM
    rows = as_dicts(content)
    assert len(rows) == Answer.objects.count() == 4
    assert [row["Answer"] for row in rows] == ["Red", "Red", "Green", "Blue"]
    assert {row["Participant"] for row in rows} == {"p1", "p2", "p3", "p4"}
    assert {row["Question"] for row in rows} == {"Favourite colour?"}
    assert {row["No."] for row in rows} == {"1"}
    assert {row["Kind"] for row in rows} == {"Single choice"}
    for row in rows:
        moment = datetime.fromisoformat(row["Answered at"])
        assert moment.tzinfo is not None


def test_every_kind_of_answer_reads_as_text(event):
    multiple = make_question(event, kind=Question.Kind.MULTIPLE, options=("A", "B", "C"))
    scale = make_question(event, kind=Question.Kind.SCALE, scale_min=1, scale_max=10)
    split = make_question(
        event, kind=Question.Kind.SPLIT, options=(), split_a_label="self", split_b_label="live"
    )
    plain = make_question(event, kind=Question.Kind.SPLIT, options=(), split_a_label="chatbots")
    ranking = make_question(event, kind=Question.Kind.RANKING, options=("X", "Y", "Z"))
    quadrant = make_question(
        event,
        kind=Question.Kind.QUADRANT,
        options=("Phone", "Chat"),
        quadrant_x_label="satisfaction",
        quadrant_y_label="weight",
    )
    text = make_question(event, kind=Question.Kind.TEXT, options=())
    a, _b, c = option_ids(multiple)
    x, y, z = option_ids(ranking)
    phone, chat = option_ids(quadrant)
    answer(multiple, "p1", [a, c])
    answer(scale, "p1", 7)
    answer(split, "p1", 53)
    answer(plain, "p1", 59)
    answer(ranking, "p1", [z, x, y])
    answer(quadrant, "p1", {str(phone): {"x": 80, "y": 20}, str(chat): {"x": 10, "y": 90}})
    answer(text, "p1", "Quick and friendly")
    assert [row["Answer"] for row in as_dicts(writers.answers_csv(event))] == [
        "A; C",
        "7",
        "self 53% / live 47%",
        "chatbots 59%",
        "1. Z; 2. X; 3. Y",
        "Phone: x 80, y 20; Chat: x 10, y 90",
        "Quick and friendly",
    ]


def test_results_csv_rows_and_totals_equal_the_answers(event, choice):
    rows = as_dicts(writers.results_csv(event))
    results = [row for row in rows if row["Row"] == "result"]
    assert [row["Result"] for row in results] == ["Red", "Green", "Blue"]
    assert [row["Count"] for row in results] == ["2", "1", "1"]
    assert sum(int(row["Count"]) for row in results) == choice.answers.count()
    assert [row["Share (%)"] for row in results] == ["50", "25", "25"]
    assert {row["Respondents"] for row in rows} == {"4"}
    # The research share and the difference stand beside each option.
    assert [(row["Research figure"], row["Difference"]) for row in results] == [
        ("50", "0"),
        ("30", "-5"),
        ("20", "5"),
    ]
    assert {row["Figure"] for row in results} == {"Measured"}
    assert {row["Study"] for row in results} == {"National benchmark on customer interaction"}
    assert {row["Publisher"] for row in results} == {"KIRC"}
    assert {row["Year measured"] for row in results} == {"2018"}
    # The verdict in words goes on the row of the widest gap.
    assert [bool(row["In words"]) for row in results] == [False, True, False]
    assert "Green, chosen 5 points less often" in results[1]["In words"]


def test_results_csv_puts_the_research_beside_the_split_and_every_year_under_it(event, split):
    rows = [row for row in as_dicts(writers.results_csv(event)) if row["Row"] == "summary"]
    assert [
        (row["Result"], row["Value"], row["Research figure"], row["Difference"]) for row in rows
    ] == [
        ("self-service", "53", "39", "14"),
        ("self-service", "", "38", "15"),  # the older figure: counted values are not repeated
        ("live contact", "47", "", ""),
    ]
    bins = [row for row in as_dicts(writers.results_csv(event)) if row["Row"] == "result"]
    assert [row["Result"] for row in bins][:2] == ["0\u20139", "10\u201319"]
    assert sum(int(row["Count"]) for row in bins) == 2


def test_nps_summary_lines(event):
    question = make_question(event, kind=Question.Kind.NPS, options=())
    for participant, score in enumerate([10, 9, 8, 3]):
        answer(question, f"p{participant}", score)
    add_figure(question, "nps", 2017, value=Decimal("13"))
    rows = [row for row in as_dicts(writers.results_csv(event)) if row["Row"] == "summary"]
    assert [(row["Result"], row["Count"], row["Share (%)"]) for row in rows[:3]] == [
        ("Promoters (9\u201310)", "2", "50"),
        ("Passives (7\u20138)", "1", "25"),
        ("Detractors (0\u20136)", "1", "25"),
    ]
    assert (rows[3]["Measure"], rows[3]["Value"], rows[3]["Research figure"]) == ("NPS", "25", "13")
    assert rows[3]["Difference"] == "12"


def test_csv_neutralises_formulas_and_never_escapes_html(event):
    question = make_question(event, kind=Question.Kind.TEXT, prompt="=1+1 or <b>?</b>", options=())
    typed = ['=HYPERLINK("http://x")', "+1 idea", "-2 ideas", "@SUM(A1)", "\tTabbed", "<b>hi</b>"]
    for participant, text in enumerate(typed):
        answer(question, f"p{participant}", text)
    rows = as_dicts(writers.answers_csv(event))
    assert [row["Answer"] for row in rows] == [
        '\'=HYPERLINK("http://x")',
        "'+1 idea",
        "'-2 ideas",
        "'@SUM(A1)",
        "'\tTabbed",
        "<b>hi</b>",
    ]
    assert {row["Question"] for row in rows} == {"'=1+1 or <b>?</b>"}
    assert "&lt;" not in writers.answers_csv(event).decode("utf-8-sig")
    result_rows = as_dicts(writers.results_csv(event))
    assert {row["Question"] for row in result_rows} == {"'=1+1 or <b>?</b>"}


def test_csv_keeps_dutch_characters_and_speaks_the_events_language(event):
    event.language = "nl"
    event.save()
    question = make_question(event, prompt="Financiële resultaten?", options=("Één", "Twee"))
    answer(question, "p1", option_ids(question)[0])
    nps = make_question(event, kind=Question.Kind.NPS, options=())
    answer(nps, "p1", 9)
    header, row = read_csv(writers.answers_csv(event))[:2]
    assert header[1:6] == ["Vraag", "Soort", "Deelnemer", "Antwoord", "Beantwoord op"]
    assert row[1:5] == ["Financiële resultaten?", "Eén antwoord", "p1", "Één"]
    results = read_csv(writers.results_csv(event))
    assert "Verschil" in results[0]
    assert any(row[7].startswith("Promotors") for row in results[1:])


# --- XLSX --------------------------------------------------------------------------------


def test_xlsx_has_an_overview_a_sheet_per_question_and_the_answers(event, choice, split):
    long_prompt = "What [really] matters: price/quality *or* speed? A very long question\\"
    other = make_question(event, prompt=long_prompt, options=("Price", "Speed"))
    answer(other, "p1", option_ids(other)[0])
    workbook = open_xlsx(writers.event_xlsx(event))
    names = workbook.sheetnames
    assert len(names) == 2 + event.questions.count()
    assert names[0] == "Overview" and names[-1] == "Answers"
    assert len({name.casefold() for name in names}) == len(names)
    for name in names:
        assert len(name) <= 31
        assert not set(name) & set("[]:*?/\\")
    overview = sheet_rows(workbook["Overview"])
    assert overview[0][0] == "Test event"
    assert overview[1][:2] == ["Join code", "TEST42"]
    listed = [row for row in overview if isinstance(row[0], int)]
    assert [(row[1], row[3]) for row in listed] == [
        ("Favourite colour?", 4),
        ("Self-service against live contact?", 2),
        (long_prompt, 1),
    ]
    answers = sheet_rows(workbook["Answers"])
    assert answers[0][:5] == ["No.", "Question", "Kind", "Participant", "Answer"]
    assert len(answers) == 1 + Answer.objects.count()
    assert isinstance(answers[1][5], datetime)


def test_xlsx_question_sheet_has_the_research_beside_each_result(event, choice, split):
    workbook = open_xlsx(writers.event_xlsx(event))
    colour = sheet_rows(workbook[workbook.sheetnames[1]])
    assert colour[0][0] == "Favourite colour?"
    header = colour[4]
    assert header[:7] == [
        "Result",
        "Measure",
        "Count",
        "Share (%)",
        "Value",
        "Research figure",
        "Difference",
    ]
    by_label = {row[0]: row for row in colour[5:8]}
    assert by_label["Red"][2:7] == [2, 50, None, 50, 0]
    assert by_label["Green"][2:7] == [1, 25, None, 30, -5]
    assert by_label["Blue"][7:11] == [
        "Measured",
        2018,
        "National benchmark on customer interaction",
        "KIRC",
    ]
    guess = sheet_rows(workbook[workbook.sheetnames[2]])
    average = next(row for row in guess if row[0] == "self-service" and row[4] == 53)
    assert average[5:7] == [39, 14]
    assert "14 points more self-service" in average[11]
    # Every linked figure is listed with its source, revealed on stage or not.
    assert any(row[0] == "Research figures" for row in guess)
    assert any(row[5] == "https://example.org/benchmark" for row in guess)


def test_xlsx_writes_formulas_as_plain_text(event):
    question = make_question(event, kind=Question.Kind.TEXT, prompt="=SUM(1;2)", options=())
    typed = ['=HYPERLINK("http://x","click")', "#N/A", "+31 6", "@cmd", "<b>hi</b>"]
    for participant, text in enumerate(typed):
        answer(question, f"p{participant}", text)
    workbook = open_xlsx(writers.event_xlsx(event))
    cells = [row[4] for row in workbook["Answers"].iter_rows(min_row=2)]
    assert [cell.value for cell in cells] == typed
    assert {cell.data_type for cell in cells} == {"s"}
    prompt = workbook[workbook.sheetnames[1]]["A1"]
    assert (prompt.value, prompt.data_type) == ("=SUM(1;2)", "s")
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            assert all(cell.data_type != "f" for cell in row)


def test_sheet_titles_are_short_clean_and_unique():
    taken: set[str] = set()
    first = writers.sheet_title("1. Which [channel]: phone/chat*? " + "x" * 40, taken)
    assert len(first) <= 31 and not set(first) & set("[]:*?/\\")
    assert writers.sheet_title("Overview", taken) == "Overview"
    again = writers.sheet_title("overview", taken)
    assert again != "Overview" and len(again) <= 31
    assert writers.sheet_title("'quoted'", taken) == "quoted"


# --- the demo: every kind ----------------------------------------------------------------


def test_the_demo_event_exports_every_kind(client):
    event, _created = ensure_demo()
    questions = list(event.questions.prefetch_related("options"))
    for index, question in enumerate(questions):
        ids = [option.id for option in question.options.all()]
        value = {
            Question.Kind.SINGLE: ids[:1] and ids[0],
            Question.Kind.MULTIPLE: ids[:2],
            Question.Kind.SCALE: 8,
            Question.Kind.NPS: 9,
            Question.Kind.ENPS: 6,
            Question.Kind.CES: 2,
            Question.Kind.SPLIT: 53,
            Question.Kind.TEXT: "Snel en vriendelijk",
            Question.Kind.RANKING: list(reversed(ids)),
            Question.Kind.QUADRANT: {str(i): {"x": 70, "y": 30} for i in ids},
        }[question.kind]
        answer(question, f"p{index}", value)
    data = export_data.event_results(event)
    assert len(data) == len(questions) == 14
    assert all(result["respondents"] == 1 for result in data)
    self_service = data[1]
    headline = self_service["summary_lines"][0]
    assert (headline["value"], headline["research"][0]["measured"]) == (53, 39)
    assert headline["research"][0]["difference"] == 14
    workbook = open_xlsx(writers.event_xlsx(event))
    # An overview, 14 questions, the answers and the demo's Q&A.
    assert len(workbook.sheetnames) == 17
    assert (workbook.sheetnames[0], workbook.sheetnames[-1]) == ("Overzicht", "Vragen uit de zaal")
    rows = read_csv(writers.results_csv(event))
    assert {row[0] for row in rows[1:]} == {str(n) for n in range(1, 15)}
    assert len(read_csv(writers.answers_csv(event))) == 15
    assert len(read_csv(writers.qa_csv(event))) == 1 + len(DEMO_QA)
    host = get_user_model().objects.get(username="host")
    client.force_login(host)
    page = client.get(reverse("exports:results_print", args=[event.code])).content.decode()
    for question in questions:
        assert question.prompt in page
    assert "KIRC, SAMR en Stichting ITO" in page
    assert "The Economist Intelligence Unit" in page
    assert 'lang="nl"' in page
    assert "Vragen uit de zaal met de meeste stemmen" in page
    assert all(text in page for text, _name, _votes, _answered in DEMO_QA)


def test_an_event_nobody_answered_exports_and_prints(client):
    event, _created = ensure_demo()
    workbook = open_xlsx(writers.event_xlsx(event))
    assert len(workbook.sheetnames) == 17  # with the demo's Q&A, which has votes of its own
    rows = read_csv(writers.results_csv(event))[1:]
    assert {row[0] for row in rows} == {str(n) for n in range(1, 15)}
    assert len(read_csv(writers.answers_csv(event))) == 1
    client.force_login(get_user_model().objects.get(username="host"))
    page = client.get(reverse("exports:results_print", args=[event.code])).content.decode()
    assert page.count('<p class="pr-empty">Nog geen antwoorden uit de zaal.</p>') == 14


def test_the_page_leaves_hidden_words_out_and_masks_profanity_but_the_record_keeps_them(
    client, host, event
):
    question = make_question(event, kind=Question.Kind.TEXT, prompt="One word?", options=())
    answer(question, "p1", "friendly secret")
    answer(question, "p2", "friendly shit")
    tally.set_word_hidden(question.id, "secret", True)
    client.force_login(host)
    page = client.get(reverse("exports:results_print", args=[event.code])).content.decode()
    assert "friendly" in page and "s***" in page
    assert "secret" not in page and "shit" not in page
    words = [row["Result"] for row in as_dicts(writers.results_csv(event))]
    assert words == ["friendly", "secret", "shit"]


# --- the faces ---------------------------------------------------------------------------

DOWNLOADS = [
    ("exports:answers_csv", "TEST42-answers.csv", "text/csv; charset=utf-8"),
    ("exports:results_csv", "TEST42-results.csv", "text/csv; charset=utf-8"),
    (
        "exports:results_xlsx",
        "TEST42-results.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
]


@pytest.mark.parametrize(("name", "filename", "content_type"), DOWNLOADS)
def test_hosts_download_attachments(client, host, event, choice, name, filename, content_type):
    client.force_login(host)
    response = client.get(reverse(name, args=[event.code]))
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize(
    "name", [name for name, _file, _type in DOWNLOADS] + ["exports:results_print"]
)
def test_only_hosts_get_the_record(client, event, choice, name):
    url = reverse(name, args=[event.code])
    anonymous = client.get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("admin:login"))
    client.force_login(make_user("host-b"))
    assert client.get(url).status_code == 403
    client.force_login(make_user("root", is_superuser=True))
    assert client.get(url).status_code == 200


def test_unknown_event_is_a_404(client, host):
    client.force_login(host)
    assert client.get(reverse("exports:results_xlsx", args=["NOPE99"])).status_code == 404


def test_printable_page_shows_every_question_its_research_and_escapes_text(
    client, host, event, choice, split
):
    odd = make_question(event, prompt="Bold <b>claims</b>?", options=("<b>yes</b>", "no"))
    answer(odd, "p1", option_ids(odd)[0])
    text = make_question(event, kind=Question.Kind.TEXT, prompt="One word?", options=())
    answer(text, "p1", "<b>hi</b> there")
    client.force_login(host)
    response = client.get(reverse("exports:results_print", args=[event.code]))
    assert response.status_code == 200
    page = response.content.decode()
    for prompt in ("Favourite colour?", "Self-service against live contact?", "One word?"):
        assert prompt in page
    assert "Bold &lt;b&gt;claims&lt;/b&gt;?" in page and "<b>claims</b>" not in page
    assert "&lt;b&gt;yes&lt;/b&gt;" in page and "<b>yes</b>" not in page
    assert "National benchmark on customer interaction (KIRC, 2018)" in page
    assert "39 / 61" in page and "+14" in page
    assert "The room guessed 14 points more self-service than measured." in page
    assert 'width="50"' in page  # Red's bar: half the respondents
    # Nothing the strict CSP would block, nothing loaded from elsewhere.
    assert "<script" not in page and " style=" not in page
    assert "polls/print.css" in page
    assert "Content-Security-Policy" in response.headers


def test_printable_page_in_dutch(client, host, event, split):
    event.language = "nl"
    event.save()
    client.force_login(host)
    page = client.get(reverse("exports:results_print", args=[event.code])).content.decode()
    assert 'lang="nl"' in page
    assert "Onderzoekscijfers" in page and "Verschil" in page
    assert "De zaal schatte 14 procentpunt meer self-service dan gemeten." in page


# --- admin -------------------------------------------------------------------------------


@pytest.fixture
def admin_host(host):

    grant_polls_permissions(host)
    return host


def test_event_change_page_links_the_record(client, admin_host, event):
    client.force_login(admin_host)
    page = client.get(reverse("admin:polls_event_change", args=[event.id])).content.decode()
    for name in ("results_print", "results_xlsx", "results_csv", "answers_csv"):
        assert reverse(f"exports:{name}", args=[event.code]) in page


def test_admin_action_exports_one_event(client, admin_host, event, choice):
    client.force_login(admin_host)
    url = reverse("admin:polls_event_changelist")
    response = client.post(url, {"action": "export_results_xlsx", "_selected_action": [event.id]})
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="TEST42-results.xlsx"'
    assert open_xlsx(response.content).sheetnames[0] == "Overview"
    other = make_event(code="EVENTB", hosts=[admin_host])
    response = client.post(
        url,
        {"action": "export_results_xlsx", "_selected_action": [event.id, other.id]},
        follow=True,
    )
    assert "Choose exactly one event." in response.content.decode()


def test_participants_set_aside_count_in_no_result_and_are_marked_in_the_answers(event, choice):
    from polls.models import SetAside

    SetAside.objects.create(event=event, participant="p1")
    SetAside.objects.create(event=event, participant="p2")
    rows = as_dicts(writers.results_csv(event))
    results = [row for row in rows if row["Row"] == "result"]
    assert [row["Count"] for row in results] == ["0", "1", "1"]  # as the stage shows it
    assert {row["Respondents"] for row in rows} == {"2"}
    marked = {row["Participant"]: row["Set aside"] for row in as_dicts(writers.answers_csv(event))}
    assert marked == {"p1": "yes", "p2": "yes", "p3": "", "p4": ""}
    overview = sheet_rows(open_xlsx(writers.event_xlsx(event)).worksheets[0])
    assert ["Participants", 2, None, None, None] in overview

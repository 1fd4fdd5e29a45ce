"""The Q&A in the record: its CSV, its XLSX sheet, the printable page's top items, who may
download them; votes as the QaVote rows hold them, equal to Redis once the writer drained."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime

import openpyxl
import pytest
from django.urls import reverse

from polls import actions, qa, qa_tally, writer
from polls.exports import data as export_data
from polls.exports import writers
from polls.models import QaAside, QaItem
from tests.factories import grant_polls_permissions, make_event, make_question, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(host):
    event = make_event(code="TEST42", title="Test event", hosts=[host])
    actions.do_host_action(event, "qa_open")
    return event


def add_item(event, text: str, participant: str, name: str = "", state: str = "visible"):
    """An item as an ``ask`` leaves it: the row, then Redis (polls.qa.ask)."""
    item = QaItem.objects.create(
        event=event,
        participant=participant,
        message_id=f"m-{participant}-{text[:10]}",
        text=text,
        name=name,
        state=state,
    )
    asyncio.run(
        qa_tally.add_item(event.id, item.id, state, participant, item.message_id, qa.payload(item))
    )
    return item


def votes(event, *cast: tuple[QaItem, str, bool]) -> None:
    """Votes (or votes taken back) counted in Redis as a phone's are, then drained to rows."""

    async def each():
        for number, (item, voter, want) in enumerate(cast):
            outcome = await qa_tally.vote(event.id, voter, f"v{number}", item.id, want, 100)
            assert outcome.status == "ok", outcome

    asyncio.run(each())
    writer.drain_all()


@pytest.fixture
def items(event):
    """Three items: 3 votes (one taken back: 2), 1 vote, and one hidden with 1 vote."""
    first = add_item(event, "Will the slides be shared?", "p-1", name="Anna")
    second = add_item(event, '=HYPERLINK("http://x") or -1?', "p-2")
    third = add_item(event, "Off topic", "p-3")
    votes(
        event,
        (first, "v-1", True),
        (first, "v-2", True),
        (first, "v-3", True),
        (first, "v-3", False),
        (second, "v-1", True),
        (third, "v-2", True),
    )
    qa.do_qa_item(event, "answered", first.id)
    qa.do_qa_item(event, "pin", second.id)
    qa.do_qa_item(event, "set_aside", third.id)
    return first, second, third


def read_csv(content: bytes) -> list[dict[str, str]]:
    header, *rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    return [dict(zip(header, row, strict=True)) for row in rows]


def sheet_rows(sheet) -> list[list]:
    return [list(row) for row in sheet.iter_rows(values_only=True)]


# --- the data ----------------------------------------------------------------------------


def test_the_csv_has_one_row_per_item_with_votes_as_redis_counted_them(event, items):
    first, second, third = items
    rows = read_csv(writers.qa_csv(event))
    assert [row["ID"] for row in rows] == [str(first.id), str(second.id), str(third.id)]
    assert list(rows[0]) == [
        "ID",
        "Item",
        "Name",
        "Votes",
        "State",
        "On stage now",
        "Asked at",
        "Edited at",
        "Answered at",
        "Author set aside",
    ]
    by_id = {int(row["ID"]): row for row in rows}
    assert [(row["Name"], row["State"], row["On stage now"]) for row in rows] == [
        ("Anna", "Answered", ""),
        ("", "Visible", "yes"),
        ("", "Hidden", ""),
    ]
    # The durable count, which equals what Redis counted once the writer drained the log.
    live = qa_tally.read_votes_sync(event.id)
    assert {item_id: int(row["Votes"]) for item_id, row in by_id.items()} == live
    assert live == {first.id: 2, second.id: 1, third.id: 1}
    assert by_id[first.id]["Answered at"] and not by_id[second.id]["Answered at"]
    assert datetime.fromisoformat(by_id[first.id]["Asked at"]).tzinfo is not None
    assert [row["Author set aside"] for row in rows] == ["", "", "yes"]
    assert "p-1" not in writers.qa_csv(event).decode("utf-8-sig")  # never the author's id


def test_the_csv_neutralises_formulas_as_the_other_csv_files(event, items):
    texts = [row["Item"] for row in read_csv(writers.qa_csv(event))]
    assert texts[1] == '\'=HYPERLINK("http://x") or -1?'
    first = items[0]
    QaItem.objects.filter(pk=first.pk).update(text="+31 6", name="@me")
    row = read_csv(writers.qa_csv(event))[0]
    assert (row["Item"], row["Name"]) == ("'+31 6", "'@me")


def test_an_event_without_items_has_a_header_only_csv_and_no_sheet(event):
    make_question(event, prompt="Favourite colour?")
    assert read_csv(writers.qa_csv(event)) == []
    workbook = openpyxl.load_workbook(io.BytesIO(writers.event_xlsx(event)))
    assert workbook.sheetnames == ["Overview", "1. Favourite colour", "Answers"]
    assert not any(row[0] == "Q&A items" for row in sheet_rows(workbook["Overview"]))


def test_the_xlsx_has_a_q_and_a_sheet_last_in_the_events_language(event, items):
    event.language = "nl"
    event.save()
    make_question(event, prompt="Favoriete kleur?")
    workbook = openpyxl.load_workbook(io.BytesIO(writers.event_xlsx(event)))
    assert workbook.sheetnames[-2:] == ["Antwoorden", "Vragen uit de zaal"]
    rows = sheet_rows(workbook["Vragen uit de zaal"])
    assert rows[0] == [
        "ID",
        "Vraag",
        "Naam",
        "Stemmen",
        "Status",
        "Nu op het scherm",
        "Gesteld om",
        "Bewerkt om",
        "Beantwoord op",
        "Auteur apart gezet",
    ]
    assert [(row[2], row[3], row[4], row[9]) for row in rows[1:]] == [
        ("Anna", 2, "Beantwoord", None),
        (None, 1, "Zichtbaar", None),
        (None, 1, "Verborgen", "ja"),
    ]
    assert isinstance(rows[1][6], datetime)
    cell = workbook["Vragen uit de zaal"]["B3"]
    assert (cell.value, cell.data_type) == ('=HYPERLINK("http://x") or -1?', "s")
    overview = sheet_rows(workbook["Overzicht"])
    assert ["Vragen uit de zaal", 3, "Vragen uit de zaal", None, None] in overview


def test_the_top_items_are_those_the_room_saw_most_votes_first(event, items):
    first, second, _hidden = items
    add_item(event, "Still waiting for a host", "p-4", state="pending")
    top = export_data.qa_top(event)
    assert [(item["id"], item["votes"], item["answered"]) for item in top] == [
        (first.id, 2, True),
        (second.id, 1, False),
    ]
    assert len(export_data.qa_top(event, limit=1)) == 1


# --- the faces ---------------------------------------------------------------------------


def test_hosts_download_the_q_and_a_csv(client, host, event, items):
    client.force_login(host)
    response = client.get(reverse("exports:qa_csv", args=[event.code]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="TEST42-qa.csv"'
    assert "no-store" in response["Cache-Control"]
    assert len(read_csv(response.content)) == 3


@pytest.mark.parametrize("name", ["exports:qa_csv", "exports:results_xlsx"])
def test_only_hosts_get_the_q_and_a(client, event, items, name):
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


def test_the_printable_page_lists_the_top_items_and_never_hidden_ones(client, host, event, items):
    add_item(event, "<b>Bold</b> question", "p-5")
    client.force_login(host)
    page = client.get(reverse("exports:results_print", args=[event.code])).content.decode()
    assert reverse("exports:qa_csv", args=[event.code]) in page
    assert "Most voted items from the room" in page
    section = page[page.index('id="pr-qa"') :]
    assert section.index("Will the slides be shared?") < section.index("HYPERLINK")
    assert "2 votes · Anna · <b" in section and "Answered</b>" in section
    assert "1 vote</p>" in section.replace("\n", "")
    assert "&lt;b&gt;Bold&lt;/b&gt; question" in section and "<b>Bold</b>" not in section
    assert "Off topic" not in page  # hidden (its author set aside)
    assert "<script" not in page and " style=" not in page


def test_the_printable_page_in_dutch_and_without_items(client, host, event, items):
    event.language = "nl"
    event.save()
    client.force_login(host)
    url = reverse("exports:results_print", args=[event.code])
    page = client.get(url).content.decode()
    assert "Vragen uit de zaal met de meeste stemmen" in page
    assert "2 stemmen" in page and "Beantwoord" in page
    QaItem.objects.filter(event=event).update(state=QaItem.State.HIDDEN)
    page = client.get(url).content.decode()
    assert 'id="pr-qa"' not in page  # no item the room saw: no Q&A section
    QaAside.objects.all().delete()
    QaItem.objects.all().delete()
    assert 'id="pr-qa"' not in client.get(url).content.decode()


def test_the_event_change_page_links_the_q_and_a_csv(client, host, event):
    grant_polls_permissions(host)
    client.force_login(host)
    page = client.get(reverse("admin:polls_event_change", args=[event.id])).content.decode()
    assert reverse("exports:qa_csv", args=[event.code]) in page
    assert "Q&amp;A (CSV)" in page

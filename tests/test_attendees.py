"""Attendee-list events: personal codes made, imported, revoked and printed on badges."""

from __future__ import annotations

import re
from io import BytesIO, StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from redis.exceptions import RedisError

from polls import attendees
from polls.codes import GENERATED_ALPHABET
from polls.models import AttendeeCode, Event
from tests.factories import grant_polls_permissions, make_event, make_user

pytestmark = pytest.mark.django_db

CODE_SHAPE = re.compile(f"^[{GENERATED_ALPHABET}]{{5}}-[{GENERATED_ALPHABET}]{{5}}$")


@pytest.fixture
def host():
    user = make_user("host-a")
    grant_polls_permissions(user)
    return user


@pytest.fixture
def other_host():
    user = make_user("host-b")
    grant_polls_permissions(user)
    make_event(code="EVENTB", title="Another congress", hosts=[user])
    return user


@pytest.fixture
def event(host):
    return make_event(code="TEST42", title="Service Congress", hosts=[host], voice="attendees")


def import_errors(event, content: bytes) -> list[tuple[str, int | None]]:
    with pytest.raises(ValidationError) as caught:
        attendees.import_csv(event, BytesIO(content))
    return [(error.code, error.params["line"]) for error in caught.value.error_list]


# Making codes ------------------------------------------------------------------------------


def test_made_codes_are_unique_well_formed_and_stored_plain(event):
    made = attendees.make_codes(event, 2000)
    codes = [code.code for code in made]
    assert len(set(codes)) == 2000
    assert all(CODE_SHAPE.match(attendees.display_code(code)) for code in codes)
    assert event.attendee_codes.count() == 2000


def test_made_codes_take_their_labels(event):
    made = attendees.make_codes(event, 2, labels=["Anna de Vries", "Piet Jansen"])
    assert [code.label for code in made] == ["Anna de Vries", "Piet Jansen"]


def test_making_more_than_the_limit_makes_none(event):
    with pytest.raises(ValidationError) as caught:
        attendees.make_codes(event, attendees.MAX_CODES + 1)
    assert caught.value.code == "bad_count"
    assert not AttendeeCode.objects.exists()


def test_the_command_prints_code_and_absolute_link_per_line(event):
    out, err = StringIO(), StringIO()
    call_command(
        "attendee_codes", "test42", "--count", "3", "--base", "https://zaal.example/", stdout=out
    )
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    stored = set(event.attendee_codes.values_list("code", flat=True))
    for line in lines:
        shown, link = line.split("\t")
        assert CODE_SHAPE.match(shown)
        plain = shown.replace("-", "")
        assert plain in stored
        assert link == f"https://zaal.example/e/TEST42/?a={plain}"
    assert err.getvalue() == ""


def test_the_command_warns_on_stderr_when_the_event_is_open():
    open_event = make_event(code="FREE42")
    out, err = StringIO(), StringIO()
    call_command("attendee_codes", "FREE42", "--count", "1", stdout=out, stderr=err)
    shown, link = out.getvalue().strip().split("\t")
    assert link == f"/e/FREE42/?a={shown.replace('-', '')}"
    assert "open to anyone" in err.getvalue()
    assert open_event.attendee_codes.count() == 1


def test_the_command_refuses_an_unknown_event_and_a_bad_base(event):
    with pytest.raises(CommandError):
        call_command("attendee_codes", "NOSUCH", "--count", "1", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command(
            "attendee_codes", "TEST42", "--count", "1", "--base", "javascript:x", stdout=StringIO()
        )
    assert not AttendeeCode.objects.exists()


# CSV import --------------------------------------------------------------------------------


def test_dutch_excel_csv_with_bom_semicolons_and_header(event):
    content = (
        "\ufeffNaam;Code\r\n"
        "Jansen, Piet;abcde-fghjk-m\r\n"
        '"de Vries; Anna";\r\n'
        ";\r\n"  # Excel's empty row
        "Özil Müller;\r\n"
    ).encode()
    made = attendees.import_csv(event, BytesIO(content))
    assert [code.label for code in made] == ["Jansen, Piet", "de Vries; Anna", "Özil Müller"]
    assert made[0].code == "ABCDEFGHJKM"
    assert all(attendees.is_generated_form(code.code) for code in made[1:])


def test_comma_separated_csv_without_header(event):
    made = attendees.import_csv(event, BytesIO(b"Anna,\nPiet,PQRST 23467\n"))
    assert [(code.label, len(code.code)) for code in made] == [("Anna", 10), ("Piet", 10)]
    assert made[1].code == "PQRST23467"


def test_duplicate_codes_are_reported_with_lines_and_nothing_is_saved(event):
    content = b"label;code\nAnna;ABCDE-FGHJK\nPiet;\nKees;abcdefghjk\n"
    assert import_errors(event, content) == [("duplicate_code", 4)]
    assert not AttendeeCode.objects.exists()


def test_a_code_taken_by_another_event_is_reported(event):
    other = make_event(code="OTHER1")
    attendees.import_csv(other, BytesIO(b"Anna;ABCDEFGHJK\n"))
    assert import_errors(event, b"Piet;MNPQRTUVWX\nAnna;ABCDE-FGHJK\n") == [("code_taken", 2)]
    assert not event.attendee_codes.exists()


def test_bad_codes_and_extra_columns_are_reported_each_with_its_line(event):
    content = b"Anna;ABC\nPiet;ABCDEFGHJK\nKees;ABCDE+FGHJK\nMies;MNPQRTUVWX;extra\n"
    assert import_errors(event, content) == [
        ("bad_code", 1),
        ("bad_code", 3),
        ("too_many_columns", 4),
    ]
    assert not AttendeeCode.objects.exists()


def test_too_many_rows_imports_nothing(event):
    content = "".join(f"Attendee {n}\n" for n in range(attendees.MAX_CODES + 1)).encode()
    assert import_errors(event, content) == [("too_many_rows", None)]
    assert not AttendeeCode.objects.exists()


def test_a_file_over_two_megabytes_imports_nothing(event):
    content = b"x" * 199 + b"\n"
    assert import_errors(event, content * 10_500) == [("too_large", None)]
    assert not AttendeeCode.objects.exists()


def test_a_file_that_is_not_utf8_names_its_line(event):
    assert import_errors(event, b"Anna\nJos\xe9\n") == [("bad_encoding", 2)]


# Revoking, and the Redis mirror ------------------------------------------------------------


def revoked_set(redis, event) -> set[str]:
    return {member.decode() for member in redis.smembers(attendees.revoked_key(event.id))}


def test_revoke_and_restore_are_mirrored_in_redis(event, redis):
    anna, piet = attendees.make_codes(event, 2)
    assert attendees.revoke(event, [anna.pk]) == 1
    assert revoked_set(redis, event) == {attendees.MIRRORED, str(anna.pk)}
    anna.refresh_from_db()
    assert anna.revoked_at is not None
    assert attendees.restore(event, [anna.pk]) == 1
    assert revoked_set(redis, event) == {attendees.MIRRORED}
    assert attendees.revoke(event, [piet.pk, anna.pk]) == 2
    assert revoked_set(redis, event) == {attendees.MIRRORED, str(anna.pk), str(piet.pk)}


def test_revoke_touches_only_codes_of_the_event_named(event, redis):
    other = make_event(code="OTHER1")
    [theirs] = attendees.make_codes(other, 1)
    assert attendees.revoke(event, [theirs.pk]) == 0
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_mirror_revoked_restores_the_set_after_a_flushall(event, redis):
    anna, _piet = attendees.make_codes(event, 2)
    attendees.revoke(event, [anna.pk])
    redis.flushall()
    assert attendees.mirror_revoked(event.id) == 1
    assert revoked_set(redis, event) == {attendees.MIRRORED, str(anna.pk)}


def test_a_revoke_with_redis_away_revokes_nothing(event, settings):
    [anna] = attendees.make_codes(event, 1)
    settings.REDIS_URL = "unix:///nonexistent/redis.sock"
    with pytest.raises(RedisError):
        attendees.revoke(event, [anna.pk])
    anna.refresh_from_db()
    assert anna.revoked_at is None


@pytest.mark.django_db(transaction=True)
async def test_is_revoked_answers_from_redis(redis):
    from asgiref.sync import sync_to_async

    event = await sync_to_async(make_event)(code="ASYNC1", voice="attendees")
    anna, piet = await sync_to_async(attendees.make_codes)(event, 2)
    await sync_to_async(attendees.revoke)(event, [anna.pk])
    assert await attendees.is_revoked(event.id, anna.pk)
    assert not await attendees.is_revoked(event.id, piet.pk)
    await sync_to_async(attendees.restore)(event, [anna.pk])
    assert not await attendees.is_revoked(event.id, anna.pk)


@pytest.mark.django_db(transaction=True)
async def test_with_the_mirror_lost_the_database_decides_and_it_is_mirrored_again(redis):
    from asgiref.sync import sync_to_async

    event = await sync_to_async(make_event)(code="ASYNC1", voice="attendees")
    anna, piet = await sync_to_async(attendees.make_codes)(event, 2)
    await sync_to_async(attendees.revoke)(event, [anna.pk])
    redis.flushall()  # as a Redis restarted without its AOF
    assert await attendees.is_revoked(event.id, anna.pk)
    assert not await attendees.is_revoked(event.id, piet.pk)
    assert revoked_set(redis, event) == {attendees.MIRRORED, str(anna.pk)}


@pytest.mark.django_db(transaction=True)
async def test_with_redis_away_the_database_decides(settings):
    from asgiref.sync import sync_to_async

    event = await sync_to_async(make_event)(code="ASYNC1", voice="attendees")
    anna, piet = await sync_to_async(attendees.make_codes)(event, 2)
    await sync_to_async(attendees.revoke)(event, [anna.pk])
    settings.REDIS_URL = "unix:///nonexistent/redis.sock"
    assert await attendees.is_revoked(event.id, anna.pk)
    assert not await attendees.is_revoked(event.id, piet.pk)
    assert await attendees.is_revoked(event.id, 999_999)  # no such code: refused


# Joining with a code -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_attendee_for_join_accepts_typed_variants_and_refuses_the_rest():
    from asgiref.sync import sync_to_async

    event = await sync_to_async(make_event)(code="ASYNC1", voice="attendees")
    other = await sync_to_async(make_event)(code="ASYNC2", voice="attendees")
    anna, piet = await sync_to_async(attendees.make_codes)(event, 2)
    [theirs] = await sync_to_async(attendees.make_codes)(other, 1)
    await sync_to_async(attendees.revoke)(event, [piet.pk])
    shown = attendees.display_code(anna.code)
    for typed in (anna.code, shown, shown.lower(), f" {shown[:5]} {shown[6:]} ", shown + "\n"):
        assert await attendees.attendee_for_join(event.id, typed) == anna.pk, typed
    assert await attendees.attendee_for_join(event.id, piet.code) is None  # revoked
    assert await attendees.attendee_for_join(event.id, theirs.code) is None  # another event's
    assert await attendees.attendee_for_join(other.id, theirs.code) == theirs.pk
    for typed in ("ABCDEFGHJK", "", "x" * 5000, "ABCDE<FGHJK", None):
        assert await attendees.attendee_for_join(event.id, typed) is None


# The badge page ----------------------------------------------------------------------------


def test_the_badge_page_prints_20_attendees_on_3_sheets(client, host, event):
    made = attendees.make_codes(event, 20, labels=[f"Attendee {n:02}" for n in range(20)])
    attendees.revoke(event, [made[0].pk])
    attendees.make_codes(event, 1)  # 21 made, 1 revoked: 20 cards
    client.force_login(host)
    response = client.get(reverse("attendees:badges", args=["TEST42"]))
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('class="bd-sheet"') == 3
    assert page.count('class="bd-card"') == 20
    assert page.count("<svg") == 20
    assert "Attendee 00" not in page  # revoked
    assert attendees.display_code(made[1].code) in page
    assert "Service Congress" in page
    # CSP: no inline script or style, and nothing fetched from elsewhere.
    assert "<script" not in page and "style=" not in page and "<style" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_the_badge_page_can_print_chosen_codes(client, host, event):
    made = attendees.make_codes(event, 10)
    client.force_login(host)
    url = attendees_badges_url(event, [made[2].pk, made[5].pk])
    page = client.get(url).content.decode()
    assert page.count('class="bd-card"') == 2
    assert attendees.display_code(made[5].code) in page
    assert attendees.display_code(made[3].code) not in page


def attendees_badges_url(event, ids) -> str:
    from polls.attendee_admin import badges_url

    return badges_url(event, ids)


def test_the_badge_page_refuses_a_second_host_and_strangers(client, event, other_host):
    attendees.make_codes(event, 1)
    url = reverse("attendees:badges", args=["TEST42"])
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(other_host)
    assert client.get(url).status_code == 403


# Admin -------------------------------------------------------------------------------------


def test_admin_lists_only_codes_and_events_the_user_hosts(client, event, other_host):
    [ours] = attendees.make_codes(event, 1, labels=["Anna de Vries"])
    attendees.make_codes(Event.objects.get(code="EVENTB"), 1, labels=["Kees Other"])
    client.force_login(other_host)
    page = client.get(reverse("admin:polls_attendeecode_changelist")).content.decode()
    assert "Kees Other" in page and "Another congress" in page
    assert "Anna de Vries" not in page and "Service Congress" not in page
    change = reverse("admin:polls_attendeecode_change", args=[ours.pk])
    assert client.get(change).status_code in (302, 403, 404)
    assert client.post(change, {"label": "Changed"}).status_code in (302, 403, 404)
    ours.refresh_from_db()
    assert ours.label == "Anna de Vries"


def test_admin_forms_refuse_another_hosts_event(client, event, other_host):
    client.force_login(other_host)
    response = client.post(
        reverse("admin:polls_attendeecode_make"), {"event": event.pk, "count": 5}
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    upload = SimpleUploadedFile("a.csv", b"Anna\n", content_type="text/csv")
    response = client.post(
        reverse("admin:polls_attendeecode_import"), {"event": event.pk, "file": upload}
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not AttendeeCode.objects.exists()


def test_admin_actions_of_a_second_host_do_not_reach_another_event(client, event, other_host):
    [ours] = attendees.make_codes(event, 1)
    client.force_login(other_host)
    client.post(
        reverse("admin:polls_attendeecode_changelist"),
        {"action": "revoke_codes", "_selected_action": [ours.pk]},
    )
    ours.refresh_from_db()
    assert ours.revoked_at is None


def test_a_host_makes_codes_in_admin_and_is_sent_to_their_badges(client, host, event):
    client.force_login(host)
    form = client.get(reverse("admin:polls_attendeecode_add"), follow=True)
    assert b'name="count"' in form.content and b"csrfmiddlewaretoken" in form.content
    response = client.post(
        reverse("admin:polls_attendeecode_make"), {"event": event.pk, "count": 4}, follow=True
    )
    assert event.attendee_codes.count() == 4
    assert reverse("attendees:badges", args=["TEST42"]) in response.content.decode()


def test_a_host_imports_a_csv_in_admin_and_sees_its_errors(client, host, event):
    client.force_login(host)
    url = reverse("admin:polls_attendeecode_import")
    bad = SimpleUploadedFile("a.csv", b"Anna;ABCDEFGHJK\nPiet;ABCDE-FGHJK\n")
    page = client.post(url, {"event": event.pk, "file": bad}).content.decode()
    assert "Line 2" in page and not AttendeeCode.objects.exists()
    good = SimpleUploadedFile("a.csv", "\ufeffNaam;Code\r\nAnna;\r\nPiet;\r\n".encode())
    assert client.post(url, {"event": event.pk, "file": good}).status_code == 302
    assert sorted(event.attendee_codes.values_list("label", flat=True)) == ["Anna", "Piet"]


def test_a_host_revokes_and_restores_in_admin(client, host, event, redis):
    [anna] = attendees.make_codes(event, 1)
    client.force_login(host)
    url = reverse("admin:polls_attendeecode_changelist")
    client.post(url, {"action": "revoke_codes", "_selected_action": [anna.pk]})
    assert revoked_set(redis, event) == {attendees.MIRRORED, str(anna.pk)}
    client.post(url, {"action": "restore_codes", "_selected_action": [anna.pk]})
    assert revoked_set(redis, event) == {attendees.MIRRORED}
    delete = reverse("admin:polls_attendeecode_delete", args=[anna.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert AttendeeCode.objects.filter(pk=anna.pk).exists()


def test_a_quoted_label_with_line_breaks_becomes_one_line(event):
    [made] = attendees.import_csv(event, BytesIO(b'"Anna\r\nde  Vries";\r\n'))
    assert made.label == "Anna de Vries"


def test_event_links_lead_to_the_events_codes_forms_and_badges(client, host, event):
    from polls.attendee_admin import event_links

    client.force_login(host)
    hrefs = re.findall(r'href="([^"]+)"', str(event_links(event)))
    assert len(hrefs) == 4
    for href in hrefs:
        assert client.get(href.replace("&amp;", "&")).status_code == 200, href

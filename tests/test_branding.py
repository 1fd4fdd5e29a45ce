"""An event's look: the accent colour (validated, made readable), the logo (checked, stored in the
database, served with a strong ETag) and the admin form that sets both."""

from __future__ import annotations

import json
import re
import struct
import zlib

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from polls import branding, push
from polls.forms import EventForm
from polls.models import Event, EventLogo
from polls.state import build_event_state, look_digest
from tests.factories import admin_data, grant_polls_permissions, make_event, make_user
from tests.live_helpers import cached_event_state

pytestmark = pytest.mark.django_db


def png_bytes(width: int = 2, height: int = 1, rgb: tuple[int, int, int] = (228, 0, 59)) -> bytes:
    """A real (tiny) PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 64


# --- the accent colour -------------------------------------------------------------


@pytest.mark.parametrize("value", ["#E4003B", "#e4003b", "#000000", ""])
def test_a_hex_accent_or_none_is_accepted(value):
    event = make_event(accent_color=value)
    event.full_clean()


@pytest.mark.parametrize("value", ["red", "#E4003", "#E4003BFF", "E4003B", "#12345G", "#E40"])
def test_anything_but_a_six_digit_hex_accent_is_refused_with_a_message(value):
    event = make_event()
    event.accent_color = value
    with pytest.raises(ValidationError) as raised:
        event.full_clean()
    assert "accent_color" in raised.value.message_dict


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("e4003b", "#E4003B"), (" #e4003B ", "#E4003B"), ("#e40", "#EE4400"), ("", "")],
)
def test_the_form_takes_colours_as_people_type_them(typed, stored):
    form = EventForm(
        data={"title": "T", "code": "TEST42", "language": "en", "accent_color": typed},
    )
    assert form.is_valid(), form.errors
    assert form.save().accent_color == stored


def test_the_form_refuses_a_colour_name_clearly():
    form = EventForm(data={"title": "T", "code": "TEST42", "language": "en", "accent_color": "red"})
    assert not form.is_valid()
    assert "such as #E4003B" in form.errors["accent_color"][0]


@pytest.mark.parametrize("accent", ["#E4003B", "#FFD400", "#FFFFFF", "#000000", "#808080"])
def test_the_accent_is_made_readable_on_every_surface(accent):
    css = branding.brand_css(accent)
    values = dict(
        part.split(":") for part in css.strip().removeprefix(":root{").removesuffix("}").split(";")
    )
    for name, surfaces in (
        ("--brand-l", branding.LIGHT_SURFACES),
        ("--brand-d", branding.DARK_SURFACES),
    ):
        shade = branding.parse_hex(values[name])
        ink = branding.parse_hex(values[f"{name}-ink"])
        for surface in surfaces:
            assert branding.contrast(shade, branding.parse_hex(surface)) >= 4.5
        assert branding.contrast(shade, ink) >= 4.5


def test_a_readable_accent_is_kept_exactly():
    css = branding.brand_css("#0A6B86")  # 5.6:1 on the light surfaces
    assert "--brand-l:#0A6B86;" in css
    assert "--brand:#0A6B86;" in css


# --- the logo ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "content_type"),
    [(png_bytes(), "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp")],
)
def test_raster_logos_are_told_by_their_first_bytes(data, content_type):
    assert branding.check_logo(data) == content_type


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (SVG, "bad_logo_type"),
        (b"<?xml version='1.0'?>" + SVG, "bad_logo_type"),
        (b"GIF89a" + b"\x00" * 20, "bad_logo_type"),
        (b"not an image at all", "bad_logo_type"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "bad_logo_type"),
        (b"", "empty_logo"),
        (png_bytes() + b"\x00" * branding.LOGO_MAX_BYTES, "logo_too_large"),
    ],
)
def test_svg_garbage_empty_and_oversized_logos_are_refused(data, code):
    with pytest.raises(ValidationError) as raised:
        branding.check_logo(data)
    assert raised.value.code == code


def upload(data: bytes, name: str = "logo.png", content_type: str = "image/png"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def test_an_uploaded_png_is_stored_in_the_database_with_its_type_and_digest():
    event = make_event()
    data = png_bytes()
    form = EventForm(
        data={"title": "T", "code": event.code, "language": "en", "theme": "light"},
        files={"logo_file": upload(data)},
        instance=event,
    )
    assert form.is_valid(), form.errors
    form.save()
    stored = Event.objects.get(pk=event.pk)
    assert bytes(stored.logo.data) == data
    assert stored.logo.digest == stored.logo_digest
    assert stored.logo_type == "image/png"
    assert len(stored.logo_digest) == 16
    assert stored.theme == "light"


@pytest.mark.parametrize(
    ("data", "name", "content_type", "message"),
    [
        (SVG, "logo.svg", "image/svg+xml", "SVG is not accepted"),
        (SVG, "logo.png", "image/png", "SVG is not accepted"),  # the name and type lie
        (
            b"\x89PNG" + b"\x00" * (branding.LOGO_MAX_BYTES + 1),
            "big.png",
            "image/png",
            "at most 512 KB",
        ),
    ],
)
def test_a_refused_upload_says_why_and_stores_nothing(data, name, content_type, message):
    event = make_event()
    form = EventForm(
        data={"title": "T", "code": event.code, "language": "en"},
        files={"logo_file": upload(data, name, content_type)},
        instance=event,
    )
    assert not form.is_valid()
    assert message in form.errors["logo_file"][0]
    assert Event.objects.get(pk=event.pk).logo_digest == ""


def test_a_logo_can_be_cleared():
    event = make_event()
    branding.save_logo(event, png_bytes())
    form = EventForm(
        data={"title": "T", "code": event.code, "language": "en", "logo_file-clear": "on"},
        instance=Event.objects.get(pk=event.pk),
    )
    assert form.is_valid(), form.errors
    form.save()
    stored = Event.objects.get(pk=event.pk)
    assert (stored.logo_digest, stored.logo_type) == ("", "")
    assert not EventLogo.objects.filter(event=event).exists()


def test_events_and_questions_load_without_the_logos_bytes():
    """Live code loads events often, by themselves and as a question's event."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from polls.models import Question

    event = make_event()
    branding.save_logo(event, png_bytes())
    question = Question.objects.create(event=event, prompt="Which one?")
    with CaptureQueriesContext(connection) as queries:
        Event.objects.get(pk=event.pk)
        Question.objects.select_related("event").get(pk=question.pk)
        Question.objects.get(pk=question.pk).event  # noqa: B018 - the lazy load is the point
    assert len(queries) == 4
    assert all("polls_eventlogo" not in q["sql"] and '"data"' not in q["sql"] for q in queries)
    renamed = Event.objects.get(pk=event.pk)
    renamed.title = "Renamed"
    renamed.save()
    assert bytes(EventLogo.objects.get(event=event).data) == png_bytes()


def test_a_logo_replaced_between_the_two_reads_is_never_served_under_the_old_version(client):
    """The view reads the version, then the bytes; they must belong together."""
    event = make_event()
    branding.save_logo(event, png_bytes(rgb=(0, 0, 0)))
    EventLogo.objects.filter(event=event).update(digest="0" * 16)  # as if replaced meanwhile
    response = client.get(reverse("branding:logo", args=[event.code]), {"v": event.logo_digest})
    assert response.status_code == 404


# --- serving -----------------------------------------------------------------------


def test_the_logo_is_served_with_a_strong_etag_and_cached_for_good_when_versioned(client):
    event = make_event()
    data = png_bytes()
    branding.save_logo(event, data)
    url = reverse("branding:logo", args=[event.code])
    response = client.get(url, {"v": event.logo_digest})
    assert response.status_code == 200
    assert response.content == data
    assert response["Content-Type"] == "image/png"
    assert response["ETag"] == f'"{event.logo_digest}"'
    assert "immutable" in response["Cache-Control"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    plain = client.get(url)
    assert plain["Cache-Control"] == "public, max-age=300"
    again = client.get(url, headers={"If-None-Match": response["ETag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == response["ETag"]


def test_no_logo_no_event_and_writes_are_refused(client):
    event = make_event()
    assert client.get(reverse("branding:logo", args=[event.code])).status_code == 404
    assert client.get(reverse("branding:logo", args=["NOSUCH"])).status_code == 404
    branding.save_logo(event, png_bytes())
    assert client.post(reverse("branding:logo", args=[event.code])).status_code == 405


def test_the_accent_style_sheet_needs_no_event_and_accepts_only_hex(client):
    response = client.get("/brand/e4003b.css")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert response.content.decode() == branding.brand_css("#E4003B")
    assert "immutable" in response["Cache-Control"]
    for bad in ("/brand/e4003.css", "/brand/zz003b.css", "/brand/e4003b;x.css"):
        assert client.get(bad).status_code == 404


def test_pages_link_the_accent_and_the_stage_shows_logo_and_theme(client):
    host = make_user("host-a")
    event = make_event(hosts=[host], accent_color="#E4003B", theme="light")
    branding.save_logo(event, png_bytes())
    style = '<link rel="stylesheet" href="/brand/E4003B.css">'
    stage = client.get(reverse("polls:stage", args=[event.code]), {"key": event.stage_key})
    html = stage.content.decode()
    assert style in html
    assert 'class="st-page st-theme-light"' in html
    assert f'src="/e/{event.code}/logo?v={event.logo_digest}"' in html
    assert style in client.get(reverse("polls:phone", args=[event.code])).content.decode()
    client.force_login(host)
    assert style in client.get(reverse("polls:host", args=[event.code])).content.decode()


def test_pages_without_branding_link_nothing_extra(client):
    event = make_event()
    stage = client.get(reverse("polls:stage", args=[event.code]), {"key": event.stage_key})
    html = stage.content.decode()
    assert "/brand/" not in html
    assert "st-logo" not in html
    assert 'class="st-page st-theme-dark"' in html


# --- the admin ---------------------------------------------------------------------


def test_a_host_brands_an_event_in_the_admin(client, redis, django_capture_on_commit_callbacks):
    host = make_user("host-a")
    grant_polls_permissions(host)
    event = make_event(hosts=[host])
    client.force_login(host)
    url = reverse("admin:polls_event_change", args=[event.id])
    page = client.get(url).content.decode()
    assert 'enctype="multipart/form-data"' in page
    assert 'accept="image/png,image/jpeg,image/webp"' in page
    data = png_bytes()
    with django_capture_on_commit_callbacks(execute=False) as announcements:
        response = client.post(
            url,
            admin_data(event, accent_color="e4003b", theme="light", logo_file=upload(data)),
        )
    assert response.status_code == 302, response.content.decode()[:3000]
    stored = Event.objects.get(pk=event.pk)
    assert (stored.accent_color, stored.theme, bytes(stored.logo.data)) == (
        "#E4003B",
        "light",
        data,
    )
    # Screens hear of it once the save is committed (a reloading stage reads the new look).
    assert redis.get(push.state_cache_key(event.id)) is None
    for announce in announcements:
        announce()
    cached = cached_event_state(redis.get(push.state_cache_key(event.id)))
    assert cached["event"]["look"] == look_digest(stored)
    # The change page links the stored logo; an SVG is refused with the reason.
    page = client.get(url).content.decode()
    assert f"/e/{event.code}/logo?v={stored.logo_digest}" in page
    refused = client.post(url, admin_data(stored, logo_file=upload(SVG, "x.svg", "image/svg+xml")))
    assert refused.status_code == 200
    assert "SVG is not accepted" in refused.content.decode()
    assert Event.objects.get(pk=event.pk).logo_digest == stored.logo_digest


def test_the_state_carries_the_look_the_stage_was_drawn_with(client):
    """A stage compares the two and redraws itself when the host changes the look."""

    event = Event.objects.create(title="Look", code="STAGE7")
    looks = {build_event_state(event.id)["event"]["look"]}
    for change in (
        {"theme": "light"},
        {"accent_color": "#E4003B"},
        {"logo_digest": "0123456789abcdef"},
        {"language": "en"},
    ):
        Event.objects.filter(pk=event.pk).update(**change)
        looks.add(build_event_state(event.id)["event"]["look"])
    assert len(looks) == 5
    Event.objects.filter(pk=event.pk).update(title="Another title")  # the stage updates that live
    assert build_event_state(event.id)["event"]["look"] in looks

    event.refresh_from_db()
    response = client.get(f"/e/{event.code}/stage/?key={event.stage_key}")
    assert response.status_code == 200, response
    page = response.content.decode()
    config = json.loads(re.search(r'id="zp-config"[^>]*>(.*?)</script>', page).group(1))
    assert config["look"] == look_digest(event) == build_event_state(event.id)["event"]["look"]

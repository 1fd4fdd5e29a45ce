"""An event's look: its accent colour made readable, its logo checked, stored and served.

Neither reaches a page as inline style (the CSP allows only this site's own style sheets): the
accent arrives as a tiny style sheet whose URL carries the colour, the logo as an image URL
versioned by its digest. Both are answered without touching the live path.
"""

from __future__ import annotations

import hashlib

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.http import parse_etags
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from .codes import normalise_code
from .models import Event, EventLogo

# --- the accent colour ------------------------------------------------------------

RGB = tuple[int, int, int]

# The surfaces the accent is drawn on (stage, phone and remote; cards and panels included).
LIGHT_SURFACES = ("#FFFFFF", "#F3F6F7")
DARK_SURFACES = ("#061015", "#0C1418", "#0D1C23", "#152127")
# WCAG AA for normal text: the phone writes links and numbers in the accent.
TEXT_CONTRAST = 4.5


def parse_hex(value: str) -> RGB:
    value = value.removeprefix("#")
    if len(value) != 6:
        raise ValueError(value)
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def to_hex(rgb: RGB) -> str:
    return "#{:02X}{:02X}{:02X}".format(*rgb)


def normalise_accent(value: str) -> str:
    """#RRGGBB in capitals from what people type: 'e4003b', '#E40', ' #e4003B '; '' stays ''."""
    text = value.strip().removeprefix("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    return f"#{text.upper()}" if text else ""


def luminance(rgb: RGB) -> float:
    """WCAG relative luminance."""

    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def mix(a: RGB, b: RGB, share_of_b: float) -> RGB:
    r, g, b_ = (round(x + (y - x) * share_of_b) for x, y in zip(a, b, strict=True))
    return r, g, b_


def readable_on(accent: RGB, surfaces: tuple[str, ...], target: float = TEXT_CONTRAST) -> RGB:
    """The accent itself if it reads on every surface, else the nearest shade that does.

    Shades move towards white on dark surfaces and towards black on light ones, one percent at a
    time, so a brand colour changes no more than contrast requires.
    """
    backgrounds = [parse_hex(s) for s in surfaces]
    towards = (255, 255, 255) if luminance(backgrounds[0]) < 0.18 else (0, 0, 0)
    for step in range(101):
        shade = mix(accent, towards, step / 100)
        if min(contrast(shade, bg) for bg in backgrounds) >= target:
            return shade
    return towards


def ink_on(colour: RGB) -> RGB:
    """Black or white, whichever reads better on colour (always at least 4.58:1)."""
    white, black = (255, 255, 255), (0, 0, 0)
    return white if contrast(colour, white) >= contrast(colour, black) else black


def brand_css(accent: str) -> str:
    """Custom properties the pages' own style sheets pick up (``var(--brand-l, default)``).

    -l is for light pages, -d for dark ones; -ink is the text colour on a filled accent.
    """
    rgb = parse_hex(accent)
    light = readable_on(rgb, LIGHT_SURFACES)
    dark = readable_on(rgb, DARK_SURFACES)
    return (
        f":root{{--brand:{to_hex(rgb)};--brand-l:{to_hex(light)};"
        f"--brand-l-ink:{to_hex(ink_on(light))};--brand-d:{to_hex(dark)};"
        f"--brand-d-ink:{to_hex(ink_on(dark))}}}\n"
    )


# --- the logo ---------------------------------------------------------------------

LOGO_MAX_BYTES = 512 * 1024
# Raster formats only, told by their first bytes (never by name or the browser's word):
# an SVG is a document that can carry script.
LOGO_TYPES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


def logo_type_of(data: bytes) -> str | None:
    for magic, content_type in LOGO_TYPES:
        if data.startswith(magic):
            return content_type
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def logo_too_large(size: int) -> ValidationError:
    return ValidationError(
        _("The logo is %(size)s KB; at most %(max)s KB fits.")
        % {"size": (size + 1023) // 1024, "max": LOGO_MAX_BYTES // 1024},
        code="logo_too_large",
    )


def check_logo(data: bytes) -> str:
    """The logo's content type, or a ValidationError saying what is wrong with the file."""
    if not data:
        raise ValidationError(_("The logo file is empty."), code="empty_logo")
    if len(data) > LOGO_MAX_BYTES:
        raise logo_too_large(len(data))
    content_type = logo_type_of(data)
    if content_type is None:
        raise ValidationError(
            _("Upload the logo as a PNG, JPEG or WebP image (SVG is not accepted)."),
            code="bad_logo_type",
        )
    return content_type


def save_logo(event: Event, data: bytes | None) -> None:
    """Store (bytes) or remove (None) the saved event's logo, with the fields that version it."""
    if data is None:
        EventLogo.objects.filter(event=event).delete()
        event.logo_type = event.logo_digest = ""
    else:
        event.logo_type = check_logo(data)
        event.logo_digest = hashlib.sha256(data).hexdigest()[:16]
        EventLogo.objects.update_or_create(
            event=event, defaults={"digest": event.logo_digest, "data": bytes(data)}
        )
    event.save(update_fields=["logo_type", "logo_digest"])


# --- views -----------------------------------------------------------------------

YEAR = 365 * 24 * 3600


@require_safe
def logo(request: HttpRequest, code: str) -> HttpResponse:
    """GET /e/<code>/logo: the event's logo; ?v=<digest> (what the pages link) caches for good."""
    events = Event.objects.filter(code=normalise_code(code)).exclude(logo_digest="")
    row = events.values_list("logo_digest", "logo_type").first()
    if row is None:
        raise Http404
    digest, content_type = row
    etag = f'"{digest}"'
    headers = {
        "ETag": etag,
        "Cache-Control": (
            f"public, max-age={YEAR}, immutable"
            if request.GET.get("v") == digest
            else "public, max-age=300"
        ),
    }
    if etag in parse_etags(request.headers.get("If-None-Match", "")):
        response = HttpResponseNotModified()
    else:
        logos = EventLogo.objects.filter(event__code=normalise_code(code), digest=digest)
        data = logos.values_list("data", flat=True).first()
        if data is None:  # replaced or removed meanwhile
            raise Http404
        response = HttpResponse(bytes(data), content_type=content_type)
        # Whatever the bytes might also parse as, they never run as a document here.
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["X-Content-Type-Options"] = "nosniff"
    for name, value in headers.items():
        response[name] = value
    return response


@require_safe
async def brand_style(request: HttpRequest, accent: str) -> HttpResponse:
    """GET /brand/<rrggbb>.css: the accent's custom properties.

    The colour is in the URL (validated by its pattern), so the answer needs no database and
    never changes: thousands of phones joining at once cost nothing but the bytes.
    """
    response = HttpResponse(brand_css(accent), content_type="text/css; charset=utf-8")
    response["Cache-Control"] = f"public, max-age={YEAR}, immutable"
    return response

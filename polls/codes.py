"""Join codes: short, uppercase, and forgiving about characters people confuse."""

import re
import secrets

from django.urls import register_converter

# Generated codes avoid 0/O, 1/I/L and 5/S-like pairs entirely.
GENERATED_ALPHABET = "ABCDEFGHJKMNPQRTUVWXYZ2346789"
GENERATED_LENGTH = 6
# What a typed code is reduced to: the letters O and I never occur in a code, so reading them
# as the digits 0 and 1 is lossless (a hand-chosen code like KSF2018 keeps its digits).
_TYPED_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
CODE_PATTERN = re.compile(r"^[A-HJKMNP-Z0-9]{4,12}$")


def generate_code() -> str:
    return "".join(secrets.choice(GENERATED_ALPHABET) for _ in range(GENERATED_LENGTH))


def normalise_code(typed: str) -> str:
    """Uppercase, drop spaces and dashes, and read O/I/L as 0/1."""
    cleaned = re.sub(r"[\s\-_.]", "", typed or "").upper()
    return cleaned.translate(_TYPED_LOOKALIKES)


def is_valid_code(code: str) -> bool:
    return bool(CODE_PATTERN.match(code))


# How a code appears in a URL: typed variants too (``normalise_code`` finds the event's own), so
# every route matches it alike (pages, the join API, the HTTP fallback and the sockets).
URL_CODE_PATTERN = r"[^/]{1,32}"
# Where reversed URLs carry the code for ``path_pattern`` (it matches the pattern above).
PLACEHOLDER = "CODE"


class CodeConverter:
    """The ``<code:code>`` of every URL route."""

    regex = URL_CODE_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


# At import: polls.models imports this module, so the converter exists before any URLconf loads.
register_converter(CodeConverter, "code")


def path_pattern(reversed_path: str, tail: str = "") -> re.Pattern:
    """For the bare ASGI apps in front of Django: ``reversed_path`` (a URL reversed with
    ``PLACEHOLDER`` as the code) as a pattern whose group ``code`` is the code, ``tail`` (a
    regular expression) after it."""
    pattern = re.escape(reversed_path).replace(PLACEHOLDER, f"(?P<code>{URL_CODE_PATTERN})", 1)
    return re.compile(pattern + tail)

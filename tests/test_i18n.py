"""Dutch is first-class: the catalogue is complete and its placeholders match English."""

from pathlib import Path

from babel.messages.checkers import python_format
from babel.messages.pofile import read_po
from django.utils import translation

from polls.answers import ERROR_MESSAGES

CATALOGUE = Path(__file__).resolve().parent.parent / "locale" / "nl" / "LC_MESSAGES" / "django.po"


def test_every_message_has_a_dutch_translation_with_the_same_placeholders():
    with CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle)
    untranslated = [
        message.id
        for message in catalogue
        if message.id
        and (
            message.fuzzy
            or not all(message.string if isinstance(message.string, tuple) else [message.string])
        )
    ]
    assert untranslated == []
    for message in catalogue:
        if message.id and message.python_format:
            python_format(catalogue, message)  # raises on a placeholder mismatch


def rendered(language: str) -> dict[str, str]:
    with translation.override(language):
        return {code: str(text) for code, text in ERROR_MESSAGES.items()}


def test_every_error_code_reads_in_dutch():
    english, dutch = rendered("en"), rendered("nl")
    assert [code for code in ERROR_MESSAGES if english[code] == dutch[code]] == []

"""Open-text answers for word clouds: normalisation, stop words (nl, en) and profanity masking.

Pure functions; the words that come out are the tally's buckets, so they never contain the
separators the tally uses (only letters, digits, apostrophes and inner hyphens survive).
"""

from __future__ import annotations

import re
import unicodedata

MAX_WORDS_PER_ANSWER = 6

STOP_WORDS = frozenset(
    """
    a aan about after again al all als also an and any are as at be because been before being
    ben bent bij both but by can could daar dan dat de deed deze did die dit do doe doen does
    doet door down dus each een en er erg few for from further gaan gaat geen ging haar had has
    have he heb hebben hebt heeft heel hem hen her here het hier hij his hoe how hun i iets if
    ik in into is it its je jij jouw jullie just kan komen komt kun kunnen kunt kwam maar mag
    me meer meest met mij mijn moet moeten mogen more most my naar niet no nog not nu of off om
    on once onder only ons onze ook op or other our out over own same should so some such te
    ter than that the their them then there these they this those to toch too tot u uit up us
    uw van veel very voor waar waarom wanneer want waren was wat we wel welke werd were what
    when where which who why wie wij wil will willen with worden wordt would you your yours zal
    ze zeer zij zijn zo zou zouden zullen zult
    """.split()
)

# Words masked on every screen. Short on purpose: masking, not censorship of opinions.
PROFANITY = frozenset(
    """
    asshole bastard bitch bullshit crap cunt damn dick eikel fuck fucked fucking godverdomme
    hoer kanker kankerlijer klootzak klote kloten kut kutzooi lul lullen mongool shit sukkel
    tering teringlijer trut twat tyfus verdomme wanker
    """.split()
)

_HIDDEN_ELEMENTS = re.compile(r"<(script|style)\b.*?(</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]*>")
RIGHT_QUOTE = "\u2019"  # typographic apostrophe, as phones type it
_WORDS = re.compile(r"[^\W_]+(?:['\-][^\W_]+)*")


def clean_text(raw: str) -> str:
    """The answer as it is kept: NFC, control characters gone, whitespace collapsed."""
    text = unicodedata.normalize("NFC", raw)
    text = "".join(char for char in text if unicodedata.category(char)[0] != "C" or char == " ")
    return " ".join(text.split())


def words_of(text: str) -> list[str]:
    """Distinct words worth counting, in order: lowercase, no markup, no stop words."""
    text = _HIDDEN_ELEMENTS.sub(" ", clean_text(text))
    text = _TAGS.sub(" ", text).casefold().replace(RIGHT_QUOTE, "'")
    seen: list[str] = []
    for word in _WORDS.findall(text):
        if word in STOP_WORDS or word in seen or word.isdigit():
            continue
        seen.append(word)
        if len(seen) == MAX_WORDS_PER_ANSWER:
            break
    return seen


def mask(word: str) -> str:
    """``f***`` for a profane word, the word itself otherwise.

    Whole words only: matching inside words masked ordinary ones ("catering",
    "klantvriendelijkheidsverbeteringstraject").
    """
    if word in PROFANITY:
        return word[0] + "*" * (len(word) - 1)
    return word

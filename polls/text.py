"""Open-text answers for word clouds: normalisation, stop words (nl, en) and profanity masking.

Pure functions; the words that come out are the tally's buckets, normalised so that every way of
typing a word (capitals, full-width or look-alike letters) is one bucket. They never contain the
separators the tally uses (only letters, digits, apostrophes and inner hyphens survive).
"""

from __future__ import annotations

import functools
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
# Combining marks left over after NFKC: a Dutch é or ë has composed by then, so what is left is
# decoration stacked on a letter ("s̈hit", zalgo text), which would also split the word in two.
_DECORATION = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")

# Letters of other scripts drawn like Latin ones (from Unicode's confusables, only the near
# identical): they fold to Latin when the whole word then reads as Latin, so "shit" typed with
# a Cyrillic dze is the word "shit" for counting, masking and hiding. A real Russian or Greek
# word keeps its script, as it has letters with no Latin twin. Capitals are listed as well:
# case folding first would turn a Greek capital nu (N) into a small nu (v). Latin small
# capitals and IPA letters are decoration, never a language's spelling, and fold always.
# (The look-alike characters are the point of these tables, hence the noqa.)
LOOK_ALIKES = str.maketrans(
    {
        **dict(zip("аеорсухѕіјԁԛԝһӏүёї", "aeopcyxsijdqwhlyëï", strict=True)),
        **dict(zip("АВЕКМНОРСТУХЅІЈԚԜҺӀҮЁЇ", "ABEKMHOPCTYXSIJQWHIYËÏ", strict=True)),
        **dict(zip("αονρτιυκχϲϳ", "aovptiukxcj", strict=True)),
        **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX", strict=True)),  # noqa: RUF001
        **dict(zip("օսհո", "ouhn", strict=True)),  # noqa: RUF001
        **dict(zip("ᴀʙᴄᴅᴇɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢ", "abcdeghijklmnoprstuvwyz", strict=True)),
        **dict(zip("ɑɡɩ", "agi", strict=True)),  # noqa: RUF001
    }
)
# Only for recognising profanity, never for counting: letters that merely resemble Latin ones
# (Cyrillic ka, te, en; a Turkish dotless i) and digits typed for letters ("sh1t", "k4nker").
# As words these are real (a Turkish word, "covid19", "5g" must stay as typed), but a word that
# reads as a profanity once they are undone is meant as one. Whole words only, so an ordinary
# word with a digit is never masked by accident.
_ROUGH_LOOK_ALIKES = str.maketrans(
    {
        **dict(zip("кмтнвпгьиı", "kmthbnrbui", strict=True)),
        **dict(zip("03457", "oeast", strict=True)),
        "8": "b",
        "'": None,
        "-": None,
    }
)
# A letter typed three times or more ("fuuuck") is stretched: no Dutch or English word spells a
# letter thrice (Dutch writes "zeeën"), so such a word is compared with its runs collapsed.
_STRETCHED = re.compile(r"(.)\1\1")
_RUNS = re.compile(r"(.)\1+")


def clean_text(raw: str) -> str:
    """The answer as it is kept: NFC, control characters gone, whitespace collapsed."""
    text = unicodedata.normalize("NFC", raw)
    text = "".join(char for char in text if unicodedata.category(char)[0] != "C" or char == " ")
    return " ".join(text.split())


def _is_latin(word: str) -> bool:
    return all(
        not char.isalpha() or unicodedata.name(char, "").startswith("LATIN ") for char in word
    )


def _fold(word: str) -> str:
    """One word as it is counted: look-alikes folded when the word then reads as Latin, and
    case folded (Dutch diacritics stay: "één" and "ruïne" are words of their own)."""
    folded = word.translate(LOOK_ALIKES).casefold().translate(LOOK_ALIKES)
    return folded if _is_latin(folded) else word.casefold()


def _candidates(text: str) -> list[str]:
    """The text's words as counted, in order, before stop words and repeats are dropped."""
    text = _HIDDEN_ELEMENTS.sub(" ", clean_text(text))
    text = unicodedata.normalize("NFKC", _TAGS.sub(" ", text)).replace(RIGHT_QUOTE, "'")
    text = _DECORATION.sub("", text)
    return [_fold(word) for word in _WORDS.findall(text)]


def words_of(text: str) -> list[str]:
    """Distinct words worth counting, in order: normalised (NFKC, look-alikes folded, case
    folded), no markup, no stop words."""
    seen: list[str] = []
    for word in _candidates(text):
        if word in STOP_WORDS or word in seen or word.isdigit():
            continue
        seen.append(word)
        if len(seen) == MAX_WORDS_PER_ANSWER:
            break
    return seen


def word_key(text: str) -> str | None:
    """The form under which the tally counts a single word, or None if ``text`` is not one word.

    What a host hides is stored in this form, so one hide covers every way of typing the word.
    """
    words = _candidates(text)
    return words[0] if len(words) == 1 else None


def _collapsed(word: str) -> str:
    return _RUNS.sub(r"\1", word)


_PROFANITY_COLLAPSED = frozenset(_collapsed(word) for word in PROFANITY)


def _is_profane(word: str) -> bool:
    if word in PROFANITY:
        return True
    skeleton = word.translate(LOOK_ALIKES).translate(_ROUGH_LOOK_ALIKES)
    # A 1 stands for an i as often as for an l ("sh1t", "1u1").
    for reading in {skeleton.replace("1", "i"), skeleton.replace("1", "l")}:
        if reading in PROFANITY:
            return True
        if _STRETCHED.search(reading) and _collapsed(reading) in _PROFANITY_COLLAPSED:
            return True
    return False


@functools.lru_cache(maxsize=4096)
def mask(word: str) -> str:
    """``f***`` for a profane word, the word itself otherwise.

    Whole words only: matching inside words masked ordinary ones ("catering",
    "klantvriendelijkheidsverbeteringstraject").
    """
    if _is_profane(word):
        return word[0] + "*" * (len(word) - 1)
    return word

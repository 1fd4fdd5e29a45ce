"""Word normalisation: look-alike letters, full-width ones and decoration count (and are masked
and hidden) as the Latin word they imitate; Dutch diacritics and real words of other scripts
stay as typed. Characters are written as escapes: the point is that they look alike."""

from __future__ import annotations

import pytest

from polls.text import mask, word_key, words_of

CYRILLIC_DZE = "\u0455"  # looks like s
CYRILLIC_I = "\u0456"  # looks like i
FULL_WIDTH_SHIT = "\uff53\uff48\uff49\uff54"
CYRILLIC_CAPITALS_SHIT = "\u0405\u041d\u0406\u0422"  # S H I T in Cyrillic
SMALL_CAPITALS_SHIT = "\ua731\u029c\u026a\u1d1b"
GREEK_OMICRON = "\u03bf"


@pytest.mark.parametrize(
    "typed",
    [
        f"{CYRILLIC_DZE}hit",
        FULL_WIDTH_SHIT,
        f"sh{CYRILLIC_I}t",
        f"{CYRILLIC_DZE}h{CYRILLIC_I}t",
        CYRILLIC_CAPITALS_SHIT,
        SMALL_CAPITALS_SHIT,
        "s\u0308h\u0336it",  # decoration marks stacked on letters (no Dutch letter has them)
        "SHIT!",
    ],
)
def test_every_variant_of_a_word_counts_as_the_latin_word_and_is_masked(typed):
    assert words_of(typed) == ["shit"]
    assert [mask(word) for word in words_of(typed)] == ["s***"]
    assert word_key(typed) == "shit"


def test_dutch_diacritics_stay_and_count_as_typed():
    decomposed = "coo\u0308rdinatie rui\u0308ne e\u0301e\u0301n cafe\u0301"
    composed = "Coördinatie, ruïne, één café"
    expected = ["coördinatie", "ruïne", "één", "café"]
    assert words_of(composed) == words_of(decomposed) == expected
    assert words_of(f"{CYRILLIC_DZE}hit {composed}") == ["shit", *expected]
    assert [mask(word) for word in expected] == expected


def test_a_real_word_of_another_script_keeps_its_script():
    russian, greek = "спасибо", "ακαδημία"
    # A Greek capital NO reads as the English stop word; the real words stay what they are.
    assert words_of(f"{russian} \u039d\u039f {greek} b{GREEK_OMICRON}ek") == [
        russian,
        greek,
        "boek",
    ]


def test_digits_and_rough_look_alikes_typed_for_letters_are_masked_but_counted_as_typed():
    assert words_of("sh1t k4nker 1u1 covid19 5g") == ["sh1t", "k4nker", "1u1", "covid19", "5g"]
    assert [mask(word) for word in words_of("sh1t k4nker 1u1 covid19 5g")] == [
        "s***",
        "k*****",
        "1**",
        "covid19",
        "5g",
    ]
    cyrillic_ka_ut = "\u043aut"  # a Cyrillic ka: a real letter, yet the word reads as "kut"
    assert words_of(cyrillic_ka_ut) == [cyrillic_ka_ut]
    assert mask(cyrillic_ka_ut) == "\u043a**"
    assert mask("s-h-i-t") == "s******"


def test_a_stretched_profanity_is_masked_an_ordinary_double_letter_is_not():
    assert mask("fuuuuck") == "f******"
    assert mask("bulllshit") == "b********"
    assert mask("lull") == "lull"  # an English word, though "lul" is masked
    assert mask("catering") == "catering"


def test_word_key_is_one_counted_word_or_nothing():
    assert word_key(f"  {CYRILLIC_CAPITALS_SHIT} ") == "shit"
    assert word_key("Één") == "één"
    assert word_key("two words") is None
    assert word_key("!!") is None
    assert word_key("") is None

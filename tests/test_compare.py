"""Room versus research in numbers and words (benchmarks.compare)."""

from benchmarks.compare import OptionGap, compare_shares, compare_value


def test_split_in_both_languages_with_singular_and_plural():
    assert compare_value("split", 39, 53, "self-service")["words"] == {
        "en": "The room guessed 14 points more self-service than measured.",
        "nl": "De zaal schatte 14 procentpunt meer self-service dan gemeten.",
    }
    assert compare_value("split", 39, 38, "self-service")["words"]["en"] == (
        "The room guessed 1 point less self-service than measured."
    )


def test_nps_point_and_points():
    one = compare_value("nps", 13, 14)
    assert one["difference"] == 1.0
    assert one["words"] == {
        "en": "The room's NPS is 1 point above the research.",
        "nl": "De NPS van de zaal ligt 1 punt boven het onderzoek.",
    }
    assert compare_value("nps", 13, -2)["words"]["en"] == (
        "The room's NPS is 15 points below the research."
    )


def test_means_use_one_decimal_in_the_language_and_ces_direction():
    assert compare_value("mean", 7.5, 7.4)["words"]["nl"] == (
        "Het gemiddelde van de zaal is 0,1 lager dan gemeten."
    )
    less_effort = compare_value("ces", 1.6, 1.4, lower_is_better=True)
    assert less_effort["words"]["en"] == "The room reports 0.2 less effort than measured."
    more_effort = compare_value("ces", 1.6, 2.4, lower_is_better=True)
    assert more_effort["words"]["en"] == "The room reports 0.8 more effort than measured."


def test_no_answers_and_an_exact_match():
    assert compare_value("percentage", 18, None)["difference"] is None
    assert compare_value("percentage", 18, 18)["words"]["en"] == (
        "The room's answer matches what was measured."
    )


def test_shares_name_the_largest_gap_and_the_first_of_equal_gaps():
    gaps = [OptionGap("1", "Higher satisfaction", 50, 63), OptionGap("2", "More revenue", 27, 14)]
    compared = compare_shares(gaps, respondents=10)
    assert compared["option"] == 1 and compared["difference"] == -13.0
    assert compared["words"]["en"] == (
        "Biggest gap: Higher satisfaction, chosen 13 points less often than measured."
    )
    assert compare_shares(gaps, respondents=0)["room"] is None

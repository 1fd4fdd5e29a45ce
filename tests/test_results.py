"""Pure arithmetic: shares that sum to 100, means rounded half up, edge cases; and each kind's
summary of its counts (polls.kinds)."""

from polls import kinds
from polls.kinds import results_message, summarise
from polls.results import largest_remainder_percentages, percentages, scale_mean


def nps_summary(kind: str, counts: dict[str, int]) -> dict:
    return kinds.get(kind).nps_summary(counts)


def split_summary(counts: dict[str, int]) -> dict:
    return kinds.get("split").split_summary(counts)


def text_summary(counts: dict[str, int], hidden: frozenset[str]) -> dict:
    return kinds.get("text").text_summary(counts, hidden)


def ranking_summary(options: list[int], counts: dict[str, int]) -> dict:
    return kinds.get("ranking").ranking_summary(options, counts)


def quadrant_summary(options: list[int], counts: dict[str, int]) -> dict:
    return kinds.get("quadrant").quadrant_summary(options, counts)


def test_no_answers_gives_zero_shares_and_no_mean():
    assert largest_remainder_percentages({"1": 0, "2": 0}, 0) == {"1": 0, "2": 0}
    assert percentages({"1": 0}, 0) == {"1": 0}
    assert scale_mean({"1": 0, "2": 0}) is None


def test_one_answer_is_all_of_it():
    assert largest_remainder_percentages({"1": 1, "2": 0}, 1) == {"1": 100, "2": 0}
    assert scale_mean({"7": 1}) == 7.0


def test_thirds_still_sum_to_100():
    shares = largest_remainder_percentages({"a": 1, "b": 1, "c": 1}, 3)
    assert sum(shares.values()) == 100
    assert sorted(shares.values()) == [33, 33, 34]


def test_every_bucket_equal_sums_to_100():
    shares = largest_remainder_percentages({str(i): 5 for i in range(7)}, 35)
    assert sum(shares.values()) == 100
    assert max(shares.values()) - min(shares.values()) == 1


def test_mean_rounds_half_up():
    assert scale_mean({"7": 1, "8": 1}) == 7.5
    assert scale_mean({"7": 3, "8": 1}) == 7.3  # 7.25 -> 7.3
    assert scale_mean({"1": 1, "2": 1}) == 1.5
    assert scale_mean({"1": 1, "2": 2}) == 1.7  # 1.666... -> 1.7


def test_multiple_choice_shares_are_of_respondents():
    assert percentages({"a": 2, "b": 1}, 2) == {"a": 100, "b": 50}


def test_snapshot_carries_every_key():
    spec = {"id": 9, "kind": "scale", "options": [], "scale": {"min": 1, "max": 3}}
    message = results_message(spec, 4, 2, {"3": 2})
    assert message == {
        "type": "results",
        "question": 9,
        "version": 4,
        "total": 2,
        "counts": {"1": 0, "2": 0, "3": 2},
        "summary": {"percent": {"1": 0, "2": 0, "3": 100}, "mean": 3.0},
    }


# --- NPS and European NPS -------------------------------------------------------------------


def nps_counts(**by_score):
    counts = {str(score): 0 for score in range(11)}
    counts.update({key.removeprefix("s"): value for key, value in by_score.items()})
    return counts


def test_nps_without_answers_has_no_score():
    assert nps_summary("nps", nps_counts()) == {
        "score": None,
        "promoters": 0,
        "passives": 0,
        "detractors": 0,
        "groups": {"promoters": 0, "passives": 0, "detractors": 0},
    }


def test_nps_all_detractors_is_minus_100():
    assert nps_summary("nps", nps_counts(s0=3, s6=2))["score"] == -100


def test_nps_one_promoter_is_plus_100():
    summary = nps_summary("nps", nps_counts(s9=1))
    assert summary["score"] == 100 and summary["promoters"] == 100


def test_nps_and_european_nps_group_an_8_differently():
    counts = nps_counts(s8=2, s6=1, s10=1)
    assert nps_summary("nps", counts)["groups"] == {"promoters": 1, "passives": 2, "detractors": 1}
    assert nps_summary("enps", counts)["groups"] == {"promoters": 3, "passives": 1, "detractors": 0}
    assert nps_summary("nps", counts)["score"] == 0
    assert nps_summary("enps", counts)["score"] == 75


def test_nps_rounds_half_away_from_zero():
    # (3 promoters - 2 detractors) of 8 = 12.5 -> 13, and the mirror image -> -13
    assert nps_summary("nps", nps_counts(s10=3, s0=2, s7=3))["score"] == 13
    assert nps_summary("nps", nps_counts(s10=2, s0=3, s7=3))["score"] == -13


def test_nps_shares_agree_with_the_score():
    # 3 promoters, 2 passives, 2 detractors: 42.9 / 28.6 / 28.6 -> 43 / 29 / 29, score +14.
    summary = nps_summary("nps", nps_counts(s10=3, s7=2, s0=2))
    assert (summary["promoters"], summary["passives"], summary["detractors"]) == (43, 29, 29)
    assert summary["score"] == summary["promoters"] - summary["detractors"] == 14


# --- split ------------------------------------------------------------------------------------


def test_split_mean_and_bins():
    summary = split_summary({"50": 1, "55": 1, "100": 1, "0": 1})
    assert (summary["mean_a"], summary["mean_b"]) == (51, 49)  # 205 / 4 = 51.25
    assert summary["bins"]["50"] == 2 and summary["bins"]["90"] == 1 and summary["bins"]["0"] == 1


def test_split_rounds_half_up_and_is_empty_without_answers():
    assert split_summary({"52": 1, "53": 1})["mean_a"] == 53  # 52.5 -> 53
    empty = split_summary({})
    assert empty["mean_a"] is None and sum(empty["bins"].values()) == 0


# --- word cloud, ranking, quadrant -----------------------------------------------------------


def test_word_cloud_hides_masks_and_orders():
    summary = text_summary({"service": 3, "snel": 3, "kut": 2, "weg": 1}, frozenset({"weg"}))
    assert summary["words"] == [
        {"word": "service", "key": "service", "count": 3},
        {"word": "snel", "key": "snel", "count": 3},
        {"word": "k**", "key": "kut", "count": 2},
    ]


def test_a_word_hidden_as_typed_before_normalising_hides_its_normal_form():
    cyrillic_dze_hit = "\u0455hit"  # hidden by a host before words were normalised
    summary = text_summary({"shit": 2, "snel": 1}, frozenset({cyrillic_dze_hit}))
    assert summary["words"] == [{"word": "snel", "key": "snel", "count": 1}]


def test_ranking_mean_rank_and_points():
    counts = {"1@1": 2, "2@2": 2, "1@2": 1, "2@1": 1, "3@3": 3}
    summary = ranking_summary([1, 2, 3], counts)
    assert summary["items"] == [
        {"id": 1, "mean_rank": 1.3, "points": 8},
        {"id": 2, "mean_rank": 1.7, "points": 7},
        {"id": 3, "mean_rank": 3.0, "points": 3},
    ]


def test_ranking_ties_keep_the_option_order_and_no_answers_give_no_mean():
    summary = ranking_summary([5, 4], {})
    assert [item["id"] for item in summary["items"]] == [5, 4]
    assert summary["items"][0]["mean_rank"] is None


def test_quadrant_mean_points_and_counts():
    counts = {"7:x:80": 1, "7:x:30": 1, "7:y:60": 2, "7:q:tr": 1, "7:q:tl": 1}
    (item,) = quadrant_summary([7], counts)["items"]
    assert item == {
        "id": 7,
        "x": 55.0,
        "y": 60.0,
        "quadrants": {"tl": 1, "tr": 1, "bl": 0, "br": 0},
    }


def test_every_bucket_equal_on_a_scale():
    spec = {"id": 1, "kind": "ces", "options": [], "scale": {"min": 1, "max": 5}}
    _counts, summary = summarise(spec, 5, {str(v): 1 for v in range(1, 6)}, frozenset())
    assert summary["mean"] == 3.0
    assert sum(summary["percent"].values()) == 100

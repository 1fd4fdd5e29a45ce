"""Pure arithmetic: shares that sum to 100, means rounded half up, edge cases."""

from polls.results import (
    largest_remainder_percentages,
    percentages,
    results_message,
    scale_mean,
)


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

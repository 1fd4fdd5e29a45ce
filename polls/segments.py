"""Results by segment: who belongs where, and which segments may be shown on their own.

A profile question (``Question.segment``, single choice) puts each attendee who answers it with
an option in that option's segment; 0 is "rather not say". The tally counts every answer per
segment in the same script call that counts it (``polls.tally``); this module is the pure part:
the tags the tally keys segments by, and the privacy rule every face applies (``fold``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# A profile answer that puts its attendee in no segment.
RATHER_NOT_SAY = 0
# The key of the group of respondents in no segment shown on its own.
OTHER = "other"


def tag(profile_question_id: int, option_id: int) -> str:
    """A segment as the tally keys it: the profile question and the option."""
    return f"{profile_question_id}:{option_id}"


def tags_of(profile_answers: dict[int, object]) -> str:
    """Every segment an attendee is in, as the tally stores it with each answer: ``12:34,15:40``
    for their profile answers by question id (no segment for "rather not say" or none)."""
    return ",".join(
        tag(question_id, value)
        for question_id, value in sorted(profile_answers.items())
        if isinstance(value, int) and not isinstance(value, bool) and value != RATHER_NOT_SAY
    )


def option_of(tag_text: str, profile_question_id: int) -> str | None:
    """The option (as a string key) the tag puts its attendee in for this profile question."""
    question, _sep, option = tag_text.partition(":")
    return option if question == str(profile_question_id) else None


@dataclass
class Group:
    """Respondents of one segment (or of "other"): their count and the question's counts."""

    key: str
    label: str
    total: int
    counts: dict[str, int] = field(default_factory=dict)

    def absorb(self, other: Group) -> None:
        self.total += other.total
        for bucket, count in other.counts.items():
            self.counts[bucket] = self.counts.get(bucket, 0) + count


def rest_of(whole_total: int, whole_counts: dict[str, int], groups: list[Group], label: str):
    """The respondents in none of ``groups`` (rather not say, no profile answer): the whole
    minus the segments, bucket by bucket."""
    counts = dict(whole_counts)
    for group in groups:
        for bucket, count in group.counts.items():
            counts[bucket] = counts.get(bucket, 0) - count
    total = whole_total - sum(group.total for group in groups)
    return Group(OTHER, label, total, {bucket: n for bucket, n in counts.items() if n > 0})


def fold(segments: list[Group], rest: Group, smallest: int) -> tuple[list[Group], Group | None]:
    """(segments shown on their own, "other" or None) under the privacy rule.

    A segment of fewer than ``smallest`` respondents is never shown: it goes into "other" with
    the respondents in no segment. While "other" then holds some but fewer than ``smallest``,
    the smallest shown segment goes in too, since the whole minus the shown segments would
    otherwise single those few out. "Other" itself is shown only once it reaches ``smallest``.
    """
    other = Group(OTHER, rest.label, rest.total, dict(rest.counts))
    shown = []
    for segment in segments:
        if segment.total >= smallest:
            shown.append(segment)
        else:
            other.absorb(segment)
    while shown and 0 < other.total < smallest:
        least = min(shown, key=lambda segment: (segment.total, -shown.index(segment)))
        shown.remove(least)
        other.absorb(least)
    return shown, (other if other.total >= smallest else None)

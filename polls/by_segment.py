"""A result split by segment, as the stage and phones get it: the groups shown (privacy folded),
each one's counts, summary and research, and the largest difference between two in words."""

from __future__ import annotations

from decimal import Decimal

from benchmarks.compare import in_every_language
from benchmarks.numbers import number, round_half_up

from . import kinds, protocol, tally
from .figures import comparisons, same_segment
from .segments import OTHER, Group, fold, rest_of, tag


def groups_of(spec: protocol.QuestionSpec, snapshot: tally.Snapshot) -> list[Group]:
    """The groups that may be shown: the profile's segments that pass the privacy rule, in
    its options' order, then "other" when it may be shown."""
    split = spec["segments"]
    segments = []
    for option in split["options"]:
        total, counts = snapshot.segments.get(tag(split["question"], option["id"]), (0, {}))
        segments.append(Group(str(option["id"]), option["label"], total, dict(counts)))
    rest = rest_of(snapshot.total, snapshot.counts, segments, split["other"])
    shown, other = fold(segments, rest, split["min"])
    return shown + ([other] if other is not None else [])


def segments_message(
    spec: protocol.QuestionSpec, snapshot: tally.Snapshot
) -> protocol.Segments | None:
    split = spec.get("segments")
    if not split:
        return None
    labels = spec.get("labels", {})
    entries: list[protocol.SegmentGroup] = []
    for group in groups_of(spec, snapshot):
        counts, summary = kinds.summarise(spec, group.total, group.counts, snapshot.hidden)
        entry: protocol.SegmentGroup = {
            "key": group.key,
            "label": group.label,
            "total": group.total,
            "counts": counts,
            "summary": summary,
        }
        if group.key != OTHER and _has_figure_for(spec, group.label):
            entry["comparison"] = comparisons(spec, summary, group.total, labels, group.label)
        entries.append(entry)
    shown = [entry for entry in entries if entry["key"] != OTHER]
    return {
        "question": split["question"],
        "prompt": split["prompt"],
        "min": split["min"],
        "groups": entries,
        "words": largest_gap_words(spec, shown),
    }


def _has_figure_for(spec: protocol.QuestionSpec, label: str) -> bool:
    return any(
        (figure.get("segment") or "") and same_segment(figure["segment"], label)
        for figure in spec.get("figures") or []
    )


def largest_gap_words(
    spec: protocol.QuestionSpec, groups: list[protocol.SegmentGroup]
) -> dict[str, str] | None:
    """The widest gap between two segments shown, on any of the kind's measures, in words;
    None for fewer than two segments, a kind no one number sums up, or no gap."""
    kind = kinds.get(spec["kind"])
    best: tuple[Decimal, str, protocol.SegmentGroup, protocol.SegmentGroup] | None = None
    measures = [
        (group, kind.segment_measures(spec, group["summary"], group["total"])) for group in groups
    ]
    for index, (first, first_measures) in enumerate(measures):
        for second, second_measures in measures[index + 1 :]:
            # In the kind's order (options as listed), so an equal gap goes to the first.
            for key in dict.fromkeys([*first_measures, *second_measures]):
                values = (
                    first_measures.get(key, kind.absent_measure),
                    second_measures.get(key, kind.absent_measure),
                )
                if None in values:
                    continue
                gap = Decimal(str(values[0])) - Decimal(str(values[1]))
                more, less = (first, second) if gap > 0 else (second, first)
                gap = round_half_up(abs(gap), kind.measure_places)
                if gap > 0 and (best is None or gap > best[0]):
                    best = (gap, key, more, less)
    if best is None:
        return None
    gap, key, more, less = best
    count = int(round_half_up(gap))

    def say() -> str:
        text = number(gap, kind.measure_places)
        return kind.gap_words(spec, key, more["label"], less["label"], text, count)

    return in_every_language(say)

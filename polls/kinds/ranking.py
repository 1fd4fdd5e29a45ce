"""Ranking: every option exactly once, best first; per option its mean rank and Borda points
(an item ranked r of n gets n - r + 1)."""

from __future__ import annotations

from typing import TypedDict

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import results
from .base import ChosenValue, QuestionKind, Refused, is_int, option_ids


class RankedItem(TypedDict):
    id: int
    mean_rank: float | None
    points: int


class RankingSummary(TypedDict):
    items: list[RankedItem]


class Ranking(QuestionKind):
    name = "ranking"
    label = _("Ranking")
    position = 9
    has_options = True
    publishes_counts = False
    print_template = "polls/kinds/ranking/print.html"
    value_schema = ChosenValue  # every option id, best first
    summary_schema = RankingSummary

    def validate(self, spec, value):
        if not isinstance(value, list) or not all(is_int(item) for item in value):
            raise Refused()
        if len(value) != len(spec["options"]) or set(value) != set(spec["options"]):
            raise Refused()
        return value

    def buckets(self, value):
        return [f"{option}@{rank}" for rank, option in enumerate(value, start=1)]

    measure_places = 1

    def segment_measures(self, spec, summary, total):
        # Negated: the better place is the lower mean rank.
        return {
            str(item["id"]): -item["mean_rank"]
            for item in summary["items"]
            if item["mean_rank"] is not None
        }

    def gap_words(self, spec, key, more, less, gap, count):
        option = spec.get("labels", {}).get(key, key)
        return _("%(more)s ranked %(option)s %(gap)s places higher on average than %(less)s.") % {
            "more": more,
            "less": less,
            "option": option,
            "gap": gap,
        }

    def ranking_summary(self, options: list[int], counts: dict[str, int]) -> dict:
        size = len(options)
        items = []
        for position, option in enumerate(options):
            pairs = [(rank, counts.get(f"{option}@{rank}", 0)) for rank in range(1, size + 1)]
            points = sum((size - rank + 1) * count for rank, count in pairs)
            items.append(
                {
                    "id": option,
                    "mean_rank": results.mean(pairs, 1),
                    "points": points,
                    "_position": position,
                }
            )
        items.sort(key=lambda item: (-item["points"], item["_position"]))
        for item in items:
            del item["_position"]
        return {"items": items}

    def summarise(self, spec, total, counts, hidden):
        return {}, self.ranking_summary(spec["options"], counts)

    def export_lines(self, table) -> None:
        items = table.summary["items"]
        most = max([item["points"] for item in items] + [1])
        for position, item in enumerate(items, start=1):
            label = table.label(item["id"])
            mean_rank = item["mean_rank"]
            rank_display = "-" if mean_rank is None else table.number(mean_rank, 1)
            table.lines.append(
                table.line(
                    label,
                    measure=gettext("Points"),
                    value=item["points"],
                    key=str(item["id"]),
                    display=table.number(item["points"]),
                )
            )
            table.lines.append(
                table.line(
                    label,
                    measure=gettext("Mean rank"),
                    value=mean_rank,
                    key=str(item["id"]),
                    display=rank_display,
                )
            )
            table.items.append(
                {
                    "position": position,
                    "label": label,
                    "points": item["points"],
                    "mean_rank": mean_rank,
                    "mean_rank_display": rank_display,
                    "bar": f"{item['points'] * 100 / most:.1f}",
                }
            )

    def readable_answer(self, question, value, label):
        return "; ".join(f"{rank}. {label(option)}" for rank, option in enumerate(value, 1))

    def brief_answer(self, value, labels) -> str:
        if isinstance(value, list):
            return " > ".join(str(labels.get(item, item)) for item in value)
        return super().brief_answer(value, labels)

    def prepare_load_test(self, question) -> None:
        pass  # options only

    def draw(self, question, rng):
        options = option_ids(question)
        rng.shuffle(options)
        return options


KIND = Ranking()

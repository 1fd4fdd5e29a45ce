"""Word cloud / open text: a short text, normalised and counted by its words (stop words nl/en
left out); the most frequent words, the host's hidden ones gone and profanity masked."""

from __future__ import annotations

import heapq
from typing import TypedDict

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import results
from ..text import clean_text, mask, word_key, words_of
from .base import QuestionFields, QuestionKind, Refused, Section


class TextFields(QuestionFields):
    text_max_length = models.PositiveSmallIntegerField(_("longest answer"), default=40)


class TextLimit(TypedDict):
    """``state.question.text``."""

    max_length: int


TextValue = str


class Word(TypedDict):
    word: str
    key: str
    count: int


class TextSummary(TypedDict):
    words: list[Word]


TEXT = Section("text", 4, _("Word cloud"), TextLimit, TextFields, collapsed=True)
TOP_WORDS = 60
LONGEST_ANSWER = 200
# Load-test words: counted (no stop word, nothing masked), distinct once lowercased.
WORDS = (
    "snel",
    "vriendelijk",
    "eerlijk",
    "duidelijk",
    "persoonlijk",
    "betrouwbaar",
    "bereikbaar",
    "oplossing",
    "empathie",
    "geduld",
    "helpful",
    "friendly",
    "quick",
    "honest",
    "clear",
    "personal",
    "reliable",
    "patient",
    "kind",
    "warm",
)


class Text(QuestionKind):
    name = "text"
    label = _("Word cloud / open text")
    position = 8
    section = TEXT
    publishes_counts = False
    counts_words = True
    value_schema = TextValue
    summary_schema = TextSummary

    def validate(self, spec, value):
        if not isinstance(value, str):
            raise Refused()
        text = clean_text(value)
        if len(text) > spec["text"]["max_length"]:
            raise Refused("too_long")
        if not words_of(text):
            raise Refused("empty")
        return text

    def buckets(self, value):
        return words_of(value)

    def most_buckets(self) -> int:
        return settings.ZP_MAX_WORDS_PER_QUESTION

    def text_summary(self, counts: dict[str, int], hidden: frozenset[str]) -> dict:
        # A word hidden before words were normalised is stored as typed: it hides its normal
        # form.
        hidden = frozenset(word_key(word) or word for word in hidden)
        words = [
            (word, count) for word, count in counts.items() if count > 0 and word not in hidden
        ]
        # Only the top ones go to screens, so a cloud of thousands of words costs no full sort.
        top = heapq.nsmallest(TOP_WORDS, words, key=lambda pair: (-pair[1], pair[0]))
        # "key" is the word as counted: what the host's hide button posts back.
        return {"words": [{"word": mask(word), "key": word, "count": count} for word, count in top]}

    def summarise(self, spec, total, counts, hidden):
        return {}, self.text_summary(counts, hidden)

    absent_measure = 0.0

    def segment_measures(self, spec, summary, total):
        # Each shown word's share of the group's respondents, by the word as shown.
        if not total:
            return {}
        return {entry["word"]: entry["count"] * 100 / total for entry in summary["words"]}

    def gap_words(self, spec, key, more, less, gap, count):
        return ngettext(
            "%(more)s gave “%(word)s” %(gap)s point more often than %(less)s.",
            "%(more)s gave “%(word)s” %(gap)s points more often than %(less)s.",
            count,
        ) % {"more": more, "less": less, "word": key, "gap": gap}

    def payload_block(self, question) -> dict:
        return {"max_length": question.text_max_length}

    def check(self, question) -> dict:
        if not 1 <= question.text_max_length <= LONGEST_ANSWER:
            return {"text_max_length": _("Allow between 1 and 200 characters.")}
        return {}

    def export_lines(self, table) -> None:
        if table.screen:
            words = [(word["word"], word["count"]) for word in table.summary["words"]]
        else:
            words = sorted(
                ((word, count) for word, count in table.raw.items() if count > 0),
                key=lambda pair: (-pair[1], pair[0]),
            )
        # Keyed by position: two masked words ("f***") may read the same.
        percent = results.percentages(
            {str(index): count for index, (_word, count) in enumerate(words)}, table.total
        )
        for index, (word, count) in enumerate(words):
            table.lines.append(table.line(word, count=count, percent=percent[str(index)], key=word))

    def readable_answer(self, question, value, label):
        if isinstance(value, str):
            return value
        raise TypeError("not a text")

    def brief_answer(self, value, labels) -> str:
        if isinstance(value, str):
            return " ".join(mask(word) for word in words_of(value))
        return super().brief_answer(value, labels)

    def prepare_load_test(self, question) -> None:
        question.text_max_length = 40

    def draw(self, question, rng):
        limit = int((question.get("text") or {}).get("max_length") or 40)
        words = rng.sample(WORDS, rng.randint(1, 2))
        text = " ".join(words)
        if len(text) > limit:
            text = words[0][:limit]
        return text

    def same_answer(self, first, second) -> bool:
        return first.casefold().split() == second.casefold().split()


KIND = Text()

"""Suspicious bursts: many young tokens from one address, joined together, answering alike.

An open event's participant id carries its join second and a keyed tag of its address
(``polls.tokens``), so a question's stored answers alone say who joined when from where. The
hall behind one NAT shares one tag and joins over minutes; a script's tokens share one tag and
join within seconds. Neither a tag nor a join time is suspicious by itself, so the rule is about
answers: a group of participants (one tag, one ``SPAN_SECONDS`` of joining) is a burst when it is
large, nearly all of it gave one identical answer, and that agreement is beyond belief for a
sample of the rest of the room. Honest phones that joined in the same minute are such a sample
(when a phone joins says nothing about what its owner thinks), so they agree about as much as the
room does; a script agrees with itself. The test is a beta-binomial tail (the rest of the room is
a sample too, so a small one proves little). The reasoning and the measured figures are in
docs/reliability.md ("Suspicious bursts").

A burst's id is ``<tag>-<first bucket>-<answer digest>`` (hex): the same while its answers stand,
so a host's press still finds it after a few more answers arrived. Consecutive flagged minutes of
one tag with one answer are one burst. Nothing here writes; ``polls.actions`` sets aside.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from . import tally
from .tokens import origin_of

# The join-time bucket: a script makes its tokens within seconds; a minute keeps one of its runs
# together while a hall that joins over ten minutes is split into ten samples of itself.
SPAN_SECONDS = 60
# Fewer alike tokens than this do not move a result worth a host's attention.
MIN_SIZE = 20
# "Answer alike": at least this share of the group gave one identical answer. Lower than
# "everyone" so a script that adds a little noise is still seen.
MIN_SHARE = 0.8
# How unlikely the group's agreement must be for honest phones answering as the rest of the
# room did. Tiny, because friends who join together do agree a little more than strangers,
# and a real burst is far below it (300 alike on an answer a third of the room gives: 1e-140).
MOST_LIKELY = 1e-9
# The rest of the room is a baseline only when it is this large; with fewer others answering,
# an honest group is assumed to agree as much as an easy question makes people agree.
MIN_BASELINE = 20
EASY_QUESTION_SHARE = 0.9

BURST_ID = re.compile(r"([0-9a-f]{8})-([0-9a-f]{1,12})-([0-9a-f]{8})")
GROUP_ID = re.compile(r"([0-9a-f]{8})-([0-9a-f]{1,12})-([0-9a-f]{1,12})")


@dataclass(frozen=True)
class Burst:
    id: str
    tag: str
    first_bucket: int
    last_bucket: int
    joined_from: int  # unix seconds of the first and the last member's join
    joined_to: int
    value: Any  # the answer they gave (as the first of them spelt it)
    size: int
    share: float  # of the question's stored answers, 0..1
    participants: frozenset[str]
    aside: int = 0  # how many of them are set aside now

    @property
    def group(self) -> str:
        """What a restore names: every set-aside participant of this tag and these minutes."""
        return group_id(self.tag, self.first_bucket, self.last_bucket)

    @property
    def joined_within(self) -> int:
        return self.joined_to - self.joined_from

    @property
    def is_aside(self) -> bool:
        return self.aside >= self.size


@dataclass(frozen=True)
class AsideGroup:
    """Participants already set aside, gathered by tag and consecutive join minutes."""

    id: str
    tag: str
    first_bucket: int
    last_bucket: int
    joined_from: int
    joined_to: int
    size: int

    @property
    def joined_within(self) -> int:
        return self.joined_to - self.joined_from


def group_id(tag: str, first_bucket: int, last_bucket: int) -> str:
    return f"{tag}-{first_bucket:x}-{last_bucket:x}"


def parse_group_id(text: str) -> tuple[str, int, int] | None:
    match = GROUP_ID.fullmatch(text or "")
    if match is None:
        return None
    first, last = int(match[2], 16), int(match[3], 16)
    return (match[1], first, last) if first <= last else None


def is_burst_id(text: str) -> bool:
    return BURST_ID.fullmatch(text or "") is not None


def _answer_key(buckets: str) -> str:
    # What the answer counts for, order aside: [1, 2] and [2, 1] are one multiple choice.
    return ",".join(sorted(buckets.split(","))) if "," in buckets else buckets


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def _log_sum(terms: list[float]) -> float:
    top = max(terms)
    return top + math.log(sum(math.exp(term - top) for term in terms))


def _log_choose(n: int, i: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def log_tail(n: int, k: int, alike: int, others: int) -> float:
    """log P(X >= k), X how many of n honest phones give the answer that ``alike`` of ``others``
    in the rest of the room gave: beta-binomial, so a small rest of the room counts as the
    uncertain sample it is (with Laplace's one more of each, an answer nobody else gave is
    still possible). In log space: the numbers are tiny."""
    a, b = alike + 1, others - alike + 1
    return _log_sum(
        [_log_choose(n, i) + _log_beta(i + a, n - i + b) - _log_beta(a, b) for i in range(k, n + 1)]
    )


def _log_tail_at(n: int, k: int, share: float) -> float:
    """log P(X >= k) for X binomial (n, share)."""
    log_p, log_q = math.log(share), math.log1p(-share)
    return _log_sum([_log_choose(n, i) + i * log_p + (n - i) * log_q for i in range(k, n + 1)])


def is_beyond_belief(size: int, alike: int, others: int, others_alike: int) -> bool:
    """Would ``alike`` of ``size`` honest phones give the answer that ``others_alike`` of the
    ``others`` in the room gave? False when that is plausible."""
    if size < MIN_SIZE or alike < MIN_SHARE * size:
        return False
    if others >= MIN_BASELINE:
        tail = log_tail(size, alike, others_alike, others)
    else:  # no room to compare with: as alike as an easy question makes people, no more
        tail = _log_tail_at(size, alike, EASY_QUESTION_SHARE)
    return tail <= math.log(MOST_LIKELY)


def find_bursts(question_id: int, aside: set[str] | frozenset[str] = frozenset()) -> list[Burst]:
    """The question's suspicious bursts, largest first; ``aside`` (the event's set-aside
    participants) only says how many of each are set aside already. Reads the answers once."""
    records = tally.read_answer_records_sync(question_id)
    return bursts_in(records, aside)


def bursts_in(
    records: dict[str, tuple[str, str]], aside: set[str] | frozenset[str] = frozenset()
) -> list[Burst]:
    everyone = len(records)
    by_answer: Counter[str] = Counter()
    groups: dict[tuple[str, int], list[tuple[str, int, str, str]]] = defaultdict(list)
    for participant, (buckets, value) in records.items():
        key = _answer_key(buckets)
        by_answer[key] += 1
        origin = origin_of(participant)
        if origin is not None:
            bucket = origin.joined // SPAN_SECONDS
            groups[(origin.tag, bucket)].append((participant, origin.joined, key, value))
    # Groups that answer alike (honest ones on an easy question, or scripts) with another answer
    # than a group's own are left out of its baseline: a script pushing a minority answer must
    # not make the honest minutes that agree with the room look odd.
    alike_groups = {}
    size_by_top: Counter[str] = Counter()
    alike_by_top: Counter[str] = Counter()
    count_in_alike: Counter[str] = Counter()
    for place, members in groups.items():
        if len(members) < MIN_SIZE:
            continue
        answers = Counter(member[2] for member in members)
        key, alike = answers.most_common(1)[0]
        if alike >= MIN_SHARE * len(members):
            alike_groups[place] = (key, alike)
            size_by_top[key] += len(members)
            alike_by_top[key] += alike
            count_in_alike.update(answers)
    alike_size = sum(size_by_top.values())
    flagged: dict[tuple[str, str], dict[int, list[tuple[str, int, str, str]]]] = defaultdict(dict)
    for place, (key, alike) in alike_groups.items():
        members = groups[place]
        others = everyone - len(members) - (alike_size - size_by_top[key])
        others_alike = by_answer[key] - alike - (count_in_alike[key] - alike_by_top[key])
        if is_beyond_belief(len(members), alike, others, others_alike):
            tag, bucket = place
            flagged[(tag, key)][bucket] = [member for member in members if member[2] == key]
    bursts = []
    for (tag, key), by_bucket in flagged.items():
        for run in _runs(sorted(by_bucket)):
            members = [member for bucket in run for member in by_bucket[bucket]]
            participants = frozenset(member[0] for member in members)
            joined = [member[1] for member in members]
            first_value = min(members, key=lambda member: (member[1], member[0]))[3]
            bursts.append(
                Burst(
                    id=f"{tag}-{run[0]:x}-{_digest(key)}",
                    tag=tag,
                    first_bucket=run[0],
                    last_bucket=run[-1],
                    joined_from=min(joined),
                    joined_to=max(joined),
                    value=json.loads(first_value) if first_value else None,
                    size=len(members),
                    share=len(members) / everyone,
                    participants=participants,
                    aside=len(participants & aside),
                )
            )
    return sorted(bursts, key=lambda burst: (-burst.size, burst.id))


def _runs(buckets: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for bucket in buckets:
        if runs and bucket == runs[-1][-1] + 1:
            runs[-1].append(bucket)
        else:
            runs.append([bucket])
    return runs


def aside_groups(participants: set[str] | frozenset[str]) -> list[AsideGroup]:
    """The set-aside participants gathered as a restore names them: tag and consecutive minutes."""
    by_tag: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for participant in participants:
        origin = origin_of(participant)
        if origin is not None:
            by_tag[origin.tag][origin.joined // SPAN_SECONDS].append(origin.joined)
    groups = []
    for tag, by_bucket in by_tag.items():
        for run in _runs(sorted(by_bucket)):
            joined = [second for bucket in run for second in by_bucket[bucket]]
            groups.append(
                AsideGroup(
                    id=group_id(tag, run[0], run[-1]),
                    tag=tag,
                    first_bucket=run[0],
                    last_bucket=run[-1],
                    joined_from=min(joined),
                    joined_to=max(joined),
                    size=len(joined),
                )
            )
    return sorted(groups, key=lambda group: (-group.size, group.id))


def in_group(participant: str, tag: str, first_bucket: int, last_bucket: int) -> bool:
    origin = origin_of(participant)
    return (
        origin is not None
        and origin.tag == tag
        and first_bucket <= origin.joined // SPAN_SECONDS <= last_bucket
    )

"""The Q&A scenario's plan (pure functions): who asks, how many votes each item gets, who gives
them and when, which are taken back.

The room's votes are skewed as a room's are: the items ranked at random, item *k* (0-based)
getting a share proportional to 1 / (k + 1) ** skew (Zipf), no item more than the phones that
may vote on it (everyone but its author). Each item's voters are the phones with the fewest
votes so far (ties at random), so every phone gives about the same number and none runs into
the server's votes-per-second limit. A phone's actions are spread evenly over the voting
window: with *m* actions, action *j* lands at a random moment of the *j*-th of *m* equal slots,
so two of them are never closer than the slots allow on average and the whole room's votes are
uniform over the window.
"""

from __future__ import annotations

import random

VOTE = "vote"
UNVOTE = "unvote"


def askers(phones: list[int], items: int, rng: random.Random) -> list[int]:
    """``items`` distinct phones that ask one item each (the server allows a few a minute per
    phone: one each stays within it whatever the setting)."""
    if items > len(phones):
        raise ValueError(f"{items} items need as many phones, there are {len(phones)}")
    return sorted(rng.sample(phones, items))


def popularity(items: int, votes: int, cap: int, skew: float) -> list[int]:
    """Votes per item by rank (most first), summing to ``votes``, none above ``cap``: Zipf
    shares, the largest remainders rounded up, and what a capped item cannot take handed to the
    others in proportion (water-filling)."""
    if items < 1:
        raise ValueError("no items to vote on")
    if votes > items * cap:
        raise ValueError(f"{votes} votes do not fit {items} items of at most {cap} voters each")
    weights = [1.0 / (rank + 1) ** skew for rank in range(items)]
    counts = [0] * items
    free = list(range(items))
    left = votes
    while left > 0 and free:
        total = sum(weights[rank] for rank in free)
        shares = {rank: left * weights[rank] / total for rank in free}
        capped = [rank for rank in free if counts[rank] + shares[rank] > cap]
        if capped:
            for rank in capped:
                left -= cap - counts[rank]
                counts[rank] = cap
            free = [rank for rank in free if rank not in capped]
            continue
        floors = {rank: int(shares[rank]) for rank in free}
        rest = left - sum(floors.values())
        by_remainder = sorted(free, key=lambda rank: (floors[rank] - shares[rank], rank))
        for rank in free:
            counts[rank] += floors[rank]
        for rank in by_remainder[:rest]:
            counts[rank] += 1
        left = 0
    return counts


def plan_votes(
    phones: list[int],
    items: list[tuple[int, int]],
    votes: int,
    seconds: float,
    skew: float,
    unvote_share: float,
    rng: random.Random,
) -> tuple[dict[int, list[tuple[float, str, int]]], dict[int, int]]:
    """Each phone's actions: (seconds after the start, ``vote`` or ``unvote``, item id), in
    order; and the votes planned per item. ``items`` are (item id, the author's phone).

    No phone votes twice on an item or on its own item. ``unvote_share`` of the votes are taken
    back by the same phone, at a later place in its own sequence."""
    ranked = list(items)
    rng.shuffle(ranked)
    counts = popularity(len(ranked), votes, len(phones) - 1, skew)
    given: dict[int, int] = dict.fromkeys(phones, 0)
    order = {phone: rng.random() for phone in phones}  # the tie-break among equally loaded
    chosen: dict[int, list[int]] = {phone: [] for phone in phones}
    planned: dict[int, int] = {}
    for (item_id, author), count in zip(ranked, counts, strict=True):
        eligible = sorted(
            (phone for phone in phones if phone != author),
            key=lambda phone: (given[phone], order[phone]),
        )
        for phone in eligible[:count]:
            given[phone] += 1
            chosen[phone].append(item_id)
        planned[item_id] = count
        for phone in eligible[:count]:
            order[phone] = rng.random()  # the next item's ties fall elsewhere
    plan: dict[int, list[tuple[float, str, int]]] = {}
    for phone in phones:
        mine = chosen[phone]
        if not mine:
            continue
        rng.shuffle(mine)
        sequence: list[tuple[str, int]] = [(VOTE, item_id) for item_id in mine]
        for item_id in mine:
            if rng.random() < unvote_share:
                after = sequence.index((VOTE, item_id)) + 1
                sequence.insert(rng.randint(after, len(sequence)), (UNVOTE, item_id))
        slot = seconds / len(sequence)
        plan[phone] = [
            ((number + rng.random()) * slot, kind, item_id)
            for number, (kind, item_id) in enumerate(sequence)
        ]
    return plan, planned

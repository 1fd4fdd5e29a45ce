"""The Q&A's pump (polls.delivery.QaPump) under a room voting: the stage's board at the snapshot
pace, the phones' lists at their own slower one, and a fan-out that lets the loop turn.

Its members are plain senders here (the sockets are tests/test_qa.py's): what is measured is
which texts the pump hands out, and when."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

from polls import qa_tally
from polls.delivery import FANOUT_SLICE, QaPump

EVENT = 4242


async def open_qa(items: int) -> None:
    await asyncio.to_thread(qa_tally.set_config, EVENT, "open", True, True)
    for item in range(1, items + 1):
        payload = {"id": item, "text": f"Item {item}?", "name": "", "at": item}
        await qa_tally.add_item(EVENT, item, "visible", f"author-{item}", f"q{item}", payload)


class Room:
    """Members of the pump that keep what they got, with the loop's time."""

    def __init__(self, pump: QaPump) -> None:
        self.pump = pump
        self.got: dict[str, list[tuple[float, dict]]] = {}
        self.loop_turns = 0  # counted by a task that yields once a turn

    def sender(self, name: str):
        async def send(text: str) -> None:
            moment = (asyncio.get_running_loop().time(), self.loop_turns)
            self.got.setdefault(name, []).append((moment, json.loads(text)))

        return send

    async def join(self, name: str, participant: str | None) -> None:
        await self.pump.join(name, EVENT, participant, self.sender(name))

    def of(self, name: str, kind: str) -> list[tuple[tuple[float, int], dict]]:
        return [(moment, m) for moment, m in self.got.get(name, []) if m["type"] == kind]

    async def close(self) -> None:
        """Everyone leaves, and the pump's task ends by itself (not cancelled: a cancel landing
        in redis-py's read can be retried away, and the loop would end normally anyway)."""
        for name in list(self.got):
            self.pump.leave(name)
        if self.pump.task is not None:
            await asyncio.wait_for(self.pump.task, timeout=5)


async def test_phones_lists_follow_at_their_own_pace_and_end_where_the_board_ends(settings):
    settings.ZP_SNAPSHOT_INTERVAL = 0.02
    settings.ZP_QA_LIST_INTERVAL = 0.25
    await open_qa(2)
    room = Room(QaPump())
    await room.join("stage", None)
    for n in range(3):
        await room.join(f"phone-{n}", f"p{n}")
    began = time.monotonic()
    for n in range(100):  # a vote every 10 ms for a second (longer on a busy machine)
        await qa_tally.vote(EVENT, f"voter-{n}", f"v{n}", 1 + n % 2, True, 5)
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.4)
    await room.close()
    lasted = time.monotonic() - began

    boards = room.of("stage", "qa_board")
    changes = room.of("phone-0", "qa_changes")
    assert len(boards) >= 15, "the stage follows at the snapshot pace"
    # At most one list per interval of the time the votes took, not one per vote (100).
    assert 3 <= len(changes) <= lasted / 0.25 + 1, ("each phone at the list's", lasted)
    times = [moment[0] for moment, _message in changes]
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.25 - 0.005
    listed: dict[int, int] = {}
    for _moment, message in changes:
        listed.update({int(item): votes for item, votes in message["votes"].items()})
    assert listed == {1: 50, 2: 50}
    assert {item["id"]: item["votes"] for item in boards[-1][1]["top"]} == {1: 50, 2: 50}
    # one text for every phone
    assert [m for _t, m in room.of("phone-2", "qa_changes")] == [m for _t, m in changes]


async def test_a_push_to_many_phones_tells_the_stage_first_and_lets_the_loop_turn(settings):
    settings.ZP_SNAPSHOT_INTERVAL = 0.02
    settings.ZP_QA_LIST_INTERVAL = 0.02
    await open_qa(1)
    room = Room(QaPump())
    phones = 2 * FANOUT_SLICE + 50
    for n in range(phones):
        await room.join(f"phone-{n}", f"p{n}")
    await room.join("stage", None)

    async def turns() -> None:
        while True:
            room.loop_turns += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(turns())
    await qa_tally.vote(EVENT, "voter", "v1", 1, True, 5)
    await asyncio.sleep(0.3)
    counter.cancel()
    await room.close()

    board_at, board = room.of("stage", "qa_board")[-1]
    assert board["top"][0]["votes"] == 1
    sent = [room.of(f"phone-{n}", "qa_changes")[0][0] for n in range(phones)]
    assert all(moment >= board_at for moment in sent), "the stage's board goes first"
    assert sent[-1][1] - sent[0][1] >= 2, "the loop turned while the phones were sent to"

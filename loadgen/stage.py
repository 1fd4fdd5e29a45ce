"""A stage screen's socket, keeping the receipt time and version of every results snapshot and
every Q&A board, and (the quiz) the wall-clock receipt of every scored question's state and
every leaderboard."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import defaultdict

from .wsclient import HandshakeError, reconnect_delay, tls_of, ws_connect

# A stage's reconnect jitter: no seed needed, the phones' own are what a run repeats.
_jitter = random.Random()  # noqa: S311


class StageClient:
    """A stage screen: keeps every results snapshot's receipt time and version, and every Q&A
    board's (with the counts of the items it shows)."""

    def __init__(self, target: dict, path: str, reconnect: bool = False) -> None:
        self.target = target
        self.path = path
        self.reconnect = reconnect  # as the stage page: a dropped socket connects again
        self.reconnects = 0
        self.closing = False
        self.again: asyncio.Task | None = None
        self.ws = None
        self.series: dict[int, list[tuple[float, int]]] = defaultdict(list)
        self.latest: dict[int, dict] = {}
        self.states = 0
        self.boards: list[tuple[float, int, dict[int, int], bool]] = []
        self.board: dict | None = None  # the newest Q&A board
        self.question_id: int | None = None
        # the quiz: (time.time(), question id, open, results shown) of each scored question's
        # state, and (time.time(), message) of each leaderboard
        self.quiz_states: list[tuple[float, int, bool, bool]] = []
        self.leaderboards: list[tuple[float, dict]] = []
        self.first_results = asyncio.get_running_loop().create_future()
        self.closed_code: int | None = None

    async def connect(self, timeout: float = 15.0) -> None:
        self.ws = await ws_connect(
            self.target["ip"],
            self.target["port"],
            self.path,
            host_header=self.target["host_header"],
            origin=self.target["origin"],
            on_text=self.on_text,
            on_close=self.on_close,
            timeout=timeout,
            tls=tls_of(self.target),
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.first_results), timeout)

    def on_text(self, payload: bytes) -> None:
        now = time.monotonic()
        message = json.loads(payload)
        kind = message.get("type")
        if kind == "results":
            question = message["question"]
            self.series[question].append((now, message["version"]))
            latest = self.latest.get(question)
            if latest is None or message["version"] >= latest["version"]:
                self.latest[question] = message
            if not self.first_results.done():
                self.first_results.set_result(True)
        elif kind == "qa_board":
            shown = {item["id"]: item["votes"] for item in message["top"]}
            if message.get("pinned"):
                shown[message["pinned"]["id"]] = message["pinned"]["votes"]
            self.boards.append((now, message["version"], shown, True))
            if self.board is None or message["version"] >= self.board["version"]:
                self.board = message
        elif kind == "state":
            self.states += 1
            question = message.get("question")
            self.question_id = question["id"] if question else None
            if question and question.get("quiz"):
                self.quiz_states.append(
                    (time.time(), question["id"], question["open"], question["show_results"])
                )
        elif kind == "leaderboard":
            self.leaderboards.append((time.time(), message))

    def on_close(self, code: int, by_us: bool) -> None:
        if not by_us:
            self.closed_code = code
        if not self.first_results.done():
            self.first_results.set_result(False)
        if self.reconnect and not by_us and not self.closing:
            task = asyncio.get_running_loop().create_task(self._again())
            self.again = task  # held: a task nobody holds may be collected mid-run

    async def _again(self) -> None:
        """socket.js's backoff; the new socket's first snapshot is the tally as it is now."""
        tries = 0
        while not self.closing:
            tries += 1
            await asyncio.sleep(reconnect_delay(tries, _jitter))
            try:
                await self.connect()
            except (HandshakeError, OSError, TimeoutError, ConnectionError):
                continue
            self.reconnects += 1
            return

    def shown_version(self, question_id: int) -> int:
        latest = self.latest.get(question_id)
        return latest["version"] if latest else -1

    def shown_qa_version(self) -> int:
        return self.board["version"] if self.board else -1

    def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            self.ws.close()

"""Word flood: plant word-cloud words up to the cap, keep changing answers with new words, and
measure what that leaves for everyone else: a bystander phone's ping every 200 ms.

    python -m loadgen.wordflood --url http://127.0.0.1:8000 --code CODE \\
        [--stage-key KEY] [--redis-url unix:///path/redis.sock] [--seconds 30]

The event's current question must be an open word cloud. Every phone is a real one: a join for
a token, the phone socket, ``answer`` -> ``ack``. In order:

1. planters answer six fresh words each (400 of them plant 2,400 words), honest phones answer
   everyday words;
2. the bystander pings with the cloud planted and quiet, a control taken on the same machine
   at the same moment;
3. the flood: every planter changes its answer with fresh words until the tally's limit on
   changes stops it, the bystander pinging;
4. the rest of the night (``--seconds``): honest phones change their answers now and then
   (``--trickle-rate``), so the tally moves and the results pump reads a snapshot each time;
   the bystander's ping here is what the planted words cost everyone.

A stage screen (``--stage-key``) keeps the results pump running, as on a real night. With
``--redis-url`` (the server's Redis) it also reports the distinct words the tally holds and
what one snapshot costs at that size: the Redis read, the summary and its encoding, as the pump
does them. No Django in here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import string
import sys
import time
from urllib.parse import quote, urlsplit

from .stats import percentile
from .wsclient import http_request, ws_connect

WORDS_PER_ANSWER = 6
WORD_LETTERS = 5  # six words of five letters and their spaces fit a 40-character answer
HONEST_WORDS = "snel service chat vriendelijk wachten duur helder makkelijk traag eerlijk".split()


async def _for(work, seconds: float) -> None:
    """Run ``work`` for at most ``seconds``."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(work, seconds)


class Socket:
    """One phone (or stage) socket: JSON messages in a queue, sends as JSON text."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue = asyncio.Queue()
        self.ws = None
        self.closed = asyncio.Event()

    def _text(self, payload: bytes) -> None:
        with contextlib.suppress(ValueError):
            self.messages.put_nowait(json.loads(payload))

    def _close(self, _code: int, _by_us: bool) -> None:
        self.closed.set()

    async def open(self, target: dict, path: str) -> Socket:
        self.ws = await ws_connect(
            target["host"],
            target["port"],
            path,
            host_header=target["host_header"],
            origin=target["origin"],
            on_text=self._text,
            on_close=self._close,
        )
        return self

    def send(self, message: dict) -> None:
        self.ws.send_text(json.dumps(message, separators=(",", ":")))

    async def next(self, kind: str, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = await asyncio.wait_for(self.messages.get(), deadline - time.monotonic())
            if message.get("type") == kind or message.get("type") == "error":
                return message


def parse_target(url: str) -> dict:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname:
        raise SystemExit(f"{url}: give the server's http:// address (Daphne, no TLS)")
    return {
        "host": parts.hostname,
        "port": parts.port or 80,
        "host_header": parts.netloc,
        "origin": f"http://{parts.netloc}",
    }


async def join_phone(target: dict, code: str) -> Socket:
    response = await http_request(
        target["host"],
        target["port"],
        "POST",
        f"/api/e/{code}/join",
        host_header=target["host_header"],
        headers={"Origin": target["origin"]},
    )
    if response.status != 200:
        raise RuntimeError(f"join refused: HTTP {response.status} {response.body[:200]!r}")
    token = json.loads(response.body)["token"]
    return await Socket().open(target, f"/ws/e/{code}/?token={quote(token, safe='')}&lang=en")


def fresh_words(rng: random.Random) -> str:
    return " ".join(
        "".join(rng.choices(string.ascii_lowercase, k=WORD_LETTERS))
        for _ in range(WORDS_PER_ANSWER)
    )


class Flood:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.target = parse_target(options.url)
        self.rng = random.Random(options.seed)  # noqa: S311 - made-up words, not secrets
        self.outcomes: dict[str, int] = {}
        self.pings: list[float] = []
        self.question_id: int | None = None
        self.sequence = 0
        self.next_slot = 0.0

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    async def answer(self, phone: Socket, text: str) -> None:
        self.sequence += 1
        message_id = f"w{self.sequence}"
        phone.send(
            {"type": "answer", "id": message_id, "question": self.question_id, "value": text}
        )
        reply = await phone.next("ack")
        self.count("ack" if reply["type"] == "ack" else reply.get("code", "error"))

    async def paced(self, rate: float) -> None:
        """Phones sharing a rate send that many answers a second together (0: no pacing)."""
        if not rate:
            return
        now = time.monotonic()
        self.next_slot = max(self.next_slot + 1 / rate, now)
        await asyncio.sleep(self.next_slot - now)

    async def change_all(self, phones: list[Socket], changes: int, rate: float, words) -> None:
        async def one(phone: Socket) -> None:
            for _change in range(changes):
                await self.paced(rate)
                await self.answer(phone, words())

        await asyncio.gather(*[one(phone) for phone in phones])

    async def bystander(self, phone: Socket, stop: asyncio.Event) -> list[float]:
        pings, number = [], 0
        while not stop.is_set():
            number += 1
            sent = time.monotonic()
            phone.send({"type": "ping", "id": number})
            with contextlib.suppress(TimeoutError):
                await phone.next("pong", timeout=10)
                pings.append(time.monotonic() - sent)
            await asyncio.sleep(max(0.0, self.options.ping_every - (time.monotonic() - sent)))
        return sorted(pings)

    async def pinged(self, phone: Socket, work) -> tuple[list[float], float]:
        """The bystander's pings while ``work`` runs, and how long it ran."""
        stop = asyncio.Event()
        pinging = asyncio.create_task(self.bystander(phone, stop))
        started = time.monotonic()
        try:
            await work
        finally:
            stop.set()
        return await pinging, time.monotonic() - started

    async def phones(self, count: int) -> list[Socket]:
        joined: list[Socket] = []
        for start in range(0, count, 50):  # joins in small waves, as a script would
            wave = min(50, count - start)
            joined += await asyncio.gather(
                *[join_phone(self.target, self.options.code) for _ in range(wave)]
            )
        for phone in joined:
            await phone.next("state")
        return joined

    def honest_words(self) -> str:
        return " ".join(self.rng.sample(HONEST_WORDS, 2))

    async def run(self) -> dict:
        options = self.options
        bystander = await join_phone(self.target, options.code)
        state = await bystander.next("state")
        question = state.get("question") or {}
        if question.get("kind") != "text" or not question.get("open"):
            raise SystemExit("the event's current question must be an open word cloud")
        self.question_id = question["id"]
        if options.stage_key:
            stage = Socket()
            await stage.open(
                self.target, f"/ws/e/{options.code}/stage/?key={quote(options.stage_key)}"
            )
        planters = await self.phones(options.planters)
        honest = await self.phones(options.honest)
        await asyncio.gather(*[self.answer(phone, fresh_words(self.rng)) for phone in planters])
        await asyncio.gather(*[self.answer(phone, self.honest_words()) for phone in honest])
        report: dict = {"planters": options.planters, "honest_phones": options.honest}
        report["planting"], self.outcomes = self.outcomes, {}
        report["after_planting"] = await self.redis_figures()
        # A control on the same machine at the same moment: a shared machine's load varies.
        pings, _seconds = await self.pinged(bystander, asyncio.sleep(options.quiet_seconds))
        report["quiet_ping_ms"] = ping_summary(pings)
        # The flood: every planter changes its answer with fresh words until its changes are
        # used up.
        flood = self.change_all(
            planters, options.changes, options.rate, lambda: fresh_words(self.rng)
        )
        pings, seconds = await self.pinged(bystander, flood)
        report["flood"] = {"seconds": round(seconds, 1), "answers": self.outcomes}
        report["flood_ping_ms"] = ping_summary(pings)
        self.outcomes = {}
        report["after_flood"] = await self.redis_figures()
        # The rest of the night: the planted words stay (or not), honest phones keep changing
        # their answers now and then, so the tally moves and every snapshot is read again.
        changes = max(1, int(options.trickle_rate * options.seconds / max(1, options.honest)) + 1)
        trickle = self.change_all(honest, changes, options.trickle_rate, self.honest_words)
        pings, seconds = await self.pinged(bystander, _for(trickle, options.seconds))
        report["after"] = {"seconds": round(seconds, 1), "answers": self.outcomes}
        report["ping_ms"] = ping_summary(pings)
        return report

    async def redis_figures(self) -> dict | None:
        if not self.options.redis_url:
            return None
        return await asyncio.to_thread(snapshot_cost, self.options.redis_url, self.question_id)


def snapshot_cost(redis_url: str, question_id: int, runs: int = 20) -> dict:
    """Distinct words in the tally and one snapshot's cost, as the results pump pays it."""
    import redis

    from polls.kinds import results_message
    from polls.tally import question_keys

    keys = question_keys(question_id)
    client = redis.Redis.from_url(redis_url)
    spec = {"id": question_id, "kind": "text", "options": []}
    reads, totals = [], []
    for _run in range(runs):
        started = time.perf_counter()
        pipe = client.pipeline(transaction=True)
        pipe.hgetall(keys["meta"])
        pipe.hgetall(keys["counts"])
        pipe.smembers(keys["hidden"])
        meta, counts, hidden = pipe.execute()
        read = time.perf_counter()
        message = results_message(
            spec,
            int(meta.get(b"version", 0)),
            int(meta.get(b"total", 0)),
            {key.decode(): int(value) for key, value in counts.items()},
            frozenset(word.decode() for word in hidden),
        )
        json.dumps(message, separators=(",", ":"), ensure_ascii=False)
        reads.append(read - started)
        totals.append(time.perf_counter() - started)
    reads.sort()
    totals.sort()
    return {
        "distinct_words": client.hlen(keys["counts"]),
        "respondents": int(client.hget(keys["meta"], "total") or 0),
        "snapshot_redis_ms": _ms(percentile(reads, 0.5)),
        "snapshot_total_ms": _ms(percentile(totals, 0.5)),
        "snapshot_total_max_ms": _ms(totals[-1]),
    }


def ping_summary(ordered: list[float]) -> dict:
    return {
        "n": len(ordered),
        "p50": _ms(percentile(ordered, 0.5)),
        "p95": _ms(percentile(ordered, 0.95)),
        "max": _ms(ordered[-1] if ordered else None),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadgen.wordflood",
        description="Plant word-cloud words up to the cap and keep changing answers with new "
        "words; report a bystander phone's ping (p50/p95/max) meanwhile.",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server (Daphne)")
    parser.add_argument(
        "--code", required=True, help="event code; its current question must be an open word cloud"
    )
    parser.add_argument(
        "--stage-key",
        help="the event's stage key: a stage screen watches, so "
        "the results pump reads snapshots as on a real night",
    )
    parser.add_argument(
        "--redis-url", help="the server's Redis: report distinct words and what a snapshot costs"
    )
    parser.add_argument(
        "--planters",
        type=int,
        default=400,
        help="phones planting words (six each; 334 fill a 2,000-word cap)",
    )
    parser.add_argument(
        "--changes",
        type=int,
        default=49,
        help="changes per planter after its first answer (the tally allows 50 "
        "answers per participant per question)",
    )
    parser.add_argument(
        "--honest", type=int, default=100, help="phones answering with everyday words"
    )
    parser.add_argument(
        "--trickle-rate",
        type=float,
        default=20.0,
        help="changes per second the honest phones make after the flood",
    )
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="how long to ping after the flood"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="the flood's changes per second in all (0: as fast as they are acknowledged)",
    )
    parser.add_argument(
        "--quiet-seconds",
        type=float,
        default=10.0,
        help="pings with the cloud planted and no flood first, as a control",
    )
    parser.add_argument("--ping-every", type=float, default=0.2, help="seconds between pings")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the words")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    report = asyncio.run(Flood(parse_args(argv)).run())
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

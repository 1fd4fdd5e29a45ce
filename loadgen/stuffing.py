"""The ballot-stuffing attack of the safety issue, and the hall that arrives after it.

    python -m loadgen.stuffing --url http://127.0.0.1:8000 --code KSF2018 \\
        --seconds 60 --hall 500 [--concurrency 1]

First an attacker on one core loops for ``--seconds``: join for a new token (solving the proof
of work when the join asks for one, with the fastest pure-Python solver), then POST one answer
over the HTTP fallback. ``--concurrency`` > 1 runs that many such loops at once in the same
process (still one core), the stronger script. Then ``--hall`` phones from the same address
join at once, as a hall behind the venue NAT would right after: each joins (solving its own
work, as the phone page does), opens its socket and waits for the first state. Prints one JSON
report: answers counted for the attacker, joins it paid work for, and the hall's join times.
Every address is the one the server sees this client on; nothing is sent elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import statistics
import time
from urllib.parse import quote, urlsplit

from polls import joinguard, kinds

from .wsclient import HandshakeError, http_request, ws_connect


class Target:
    def __init__(self, url: str, code: str) -> None:
        parts = urlsplit(url)
        self.ip, self.port = parts.hostname, parts.port or 80
        self.host_header = parts.netloc
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.code = code

    async def post(self, path: str, body: bytes = b"", timeout: float = 30.0):
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "Origin": self.origin,
        }
        return await http_request(
            self.ip, self.port, "POST", path, host_header=self.host_header,
            headers=headers, timeout=timeout, body=body,
        )  # fmt: skip

    async def join(self) -> tuple[str | None, int]:
        """A token (or None), and how many proofs of work it took."""
        body, solved = b"", 0
        for _ in range(5):
            response = await self.post(f"/api/e/{self.code}/join", body)
            reply = json.loads(response.body or b"{}")
            if response.status == 200:
                return reply["token"], solved
            if response.status != 428:
                return None, solved
            work = reply["work"]
            solution = {"challenge": work["challenge"], "nonce": joinguard.solve(work)}
            body, solved = json.dumps({"work": solution}).encode(), solved + 1
        return None, solved

    async def first_state(self, token: str, timeout: float = 30.0) -> dict:
        state: asyncio.Future = asyncio.get_running_loop().create_future()

        def on_text(text: str) -> None:
            message = json.loads(text)
            if message.get("type") == "state" and not state.done():
                state.set_result(message)

        def on_close(code: int | None, _by_us: bool = False) -> None:
            if not state.done():
                state.set_exception(ConnectionError(f"closed {code}"))

        socket = await ws_connect(
            self.ip, self.port, f"/ws/e/{self.code}/?token={quote(token, safe='')}",
            host_header=self.host_header, origin=self.origin, on_text=on_text,
            on_close=on_close, timeout=timeout,
        )  # fmt: skip
        try:
            return await asyncio.wait_for(state, timeout)
        finally:
            socket.close()


def answer_for(question: dict):
    """A valid answer to the open question: the kind's load-test value, always the same one
    (the attacker always votes the same)."""
    same = random.Random(0)  # noqa: S311 - a fixed vote, no secret
    return kinds.get(question["kind"]).draw(question, same)


async def attack(target: Target, seconds: float, concurrency: int, question: dict) -> dict:
    deadline = time.monotonic() + seconds
    counted, refused, joins, worked = 0, {}, 0, 0
    ids = itertools.count()

    async def loop() -> None:
        nonlocal counted, joins, worked
        while time.monotonic() < deadline:
            token, solved = await target.join()
            joins, worked = joins + 1, worked + solved
            if token is None:
                refused["join"] = refused.get("join", 0) + 1
                continue
            message = {
                "type": "answer",
                "id": f"x{next(ids)}",
                "question": question["id"],
                "value": answer_for(question),
            }
            path = f"/api/e/{target.code}/answer?token={quote(token, safe='')}"
            reply = json.loads((await target.post(path, json.dumps(message).encode())).body)
            if reply.get("type") == "ack":
                counted += 1
            else:
                code = reply.get("code") or reply.get("error", {}).get("code", "?")
                refused[code] = refused.get(code, 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return {
        "seconds": round(time.monotonic() - started, 1),
        "concurrency": concurrency,
        "joins": joins,
        "joins_with_work": worked,
        "answers_counted": counted,
        "refused": refused,
    }


async def hall(target: Target, phones: int) -> dict:
    started = time.monotonic()

    async def phone() -> float | str:
        try:
            token, _solved = await target.join()
            if token is None:
                return "join refused"
            await target.first_state(token)
        except (OSError, TimeoutError, ConnectionError, HandshakeError) as error:
            return type(error).__name__
        return time.monotonic() - started

    results = await asyncio.gather(*(phone() for _ in range(phones)))
    times = sorted(r for r in results if isinstance(r, float))
    failures = [r for r in results if not isinstance(r, float)]
    return {
        "phones": phones,
        "joined": len(times),
        "failed": dict((reason, failures.count(reason)) for reason in set(failures)),
        "first_state_p50_s": round(statistics.median(times), 2) if times else None,
        "first_state_p99_s": round(times[int(len(times) * 0.99) - 1], 2) if times else None,
        "all_joined_within_s": round(times[-1], 2) if times else None,
    }


async def main(args) -> dict:
    target = Target(args.url, args.code)
    token, _solved = await target.join()
    if token is None:
        raise SystemExit("could not join to read the open question")
    question = (await target.first_state(token))["question"]
    if not question or not question.get("open"):
        raise SystemExit("the event has no open question")
    report = {"attack": await attack(target, args.seconds, args.concurrency, question)}
    if args.hall:
        report["hall"] = await hall(target, args.hall)
    return report


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--code", default="KSF2018")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--hall", type=int, default=500)
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse())), indent=2))

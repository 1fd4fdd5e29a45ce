"""Two server processes, one event, a host action at each at the same moment (two hosts, a double
tap, an admin save beside a remote press): every phone and stage screen, on either process, ends
on the state of the action committed last, and the state cache holds that state's revision.

The remote page's buttons are form POSTs to /e/<code>/host/, sent here over bare HTTP/1.1 with
the demo host's session, to each Daphne on its own port.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse

import pytest
from websockets.asyncio.client import connect

from polls import push
from polls.demo import DEMO_HOST_USERNAME
from polls.redis_client import get_sync_redis
from tests.servers import DEMO_PASSWORD, http_post, make_stack

pytestmark = [pytest.mark.e2e]

CODE = "KSF2018"
ROUNDS = 30
# Pairs whose two orders end differently, so a state published out of order shows.
PAIRS = [
    ("next", "prev"),
    ("open", "close"),
    ("show_results", "hide_results"),
    ("reveal", "unreveal"),
    ("next", "close"),
    ("open", "prev"),
]
SETTLE_SECONDS = 3.0
# The second press's delay, in turn (seconds).
LAGS = [0.0, 0.002, 0.005, 0.008, 0.012, 0.016, 0.020]


class Browser:
    """Cookies and the CSRF token of one logged-in host, as a browser keeps them."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def request_bytes(self, port: int, method: str, path: str, form: dict | None = None) -> bytes:
        body = urllib.parse.urlencode(form or {}).encode()
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        head = [
            f"{method} {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Connection: close",
            f"Content-Length: {len(body)}",
        ]
        if form is not None:
            head.append("Content-Type: application/x-www-form-urlencoded")
        if cookie:
            head.append(f"Cookie: {cookie}")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body

    def take_cookies(self, head: bytes) -> None:
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "set-cookie":
                pair = value.strip().split(";", 1)[0]
                key, _, cookie = pair.partition("=")
                self.cookies[key] = cookie

    async def send(self, port: int, method: str, path: str, form: dict | None = None):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(self.request_bytes(port, method, path, form))
        await writer.drain()
        return await self.answer(reader, writer)

    async def answer(self, reader, writer) -> tuple[int, str]:
        raw = await reader.read()
        writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        self.take_cookies(head)
        return int(head.split(b" ", 2)[1]), body.decode(errors="replace")

    async def log_in(self, port: int) -> None:
        status, page = await self.send(port, "GET", "/admin/login/")
        assert status == 200, page
        assert re.search(r'name="csrfmiddlewaretoken"', page)
        status, page = await self.send(
            port,
            "POST",
            "/admin/login/",
            {
                "username": DEMO_HOST_USERNAME,
                "password": DEMO_PASSWORD,
                "csrfmiddlewaretoken": self.cookies["csrftoken"],
                "next": f"/e/{CODE}/host/",
            },
        )
        assert status == 302 and "sessionid" in self.cookies, page

    def press_bytes(self, port: int, action: str) -> bytes:
        form = {"action": action, "csrfmiddlewaretoken": self.cookies["csrftoken"]}
        return self.request_bytes(port, "POST", f"/e/{CODE}/host/", form)


async def press_together(browser: Browser, presses: list[tuple[int, str]], lag: float) -> None:
    """Each (port, action) on its own connection, the second request ``lag`` seconds after the
    first: at 0 the two transactions queue for the database, a little later the second commits
    while the first process is still pushing its own change."""
    connections = [await asyncio.open_connection("127.0.0.1", port) for port, _ in presses]
    for index, ((port, action), (_reader, writer)) in enumerate(
        zip(presses, connections, strict=True)
    ):
        if index:
            await asyncio.sleep(lag)
        writer.write(browser.press_bytes(port, action))
    answers = await asyncio.gather(
        *(browser.answer(reader, writer) for reader, writer in connections)
    )
    for (_port, action), (status, page) in zip(presses, answers, strict=True):
        assert status == 302, f"{action}: {status} {page[:500]}"


class Watcher:
    """One phone or screen: the last ``state`` it was sent is what it shows."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.latest: dict | None = None
        self.count = 0

    async def run(self, url: str, origin: str, ready: asyncio.Event) -> None:
        async with connect(url, origin=origin) as ws:
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "state":
                    self.latest = message
                    self.count += 1
                    ready.set()


def shown(state: dict | None) -> tuple | None:
    question = (state or {}).get("question")
    if question is None:
        return None
    return question["id"], question["open"], question["show_results"], question["revealed"]


def committed(stack) -> tuple[int, int, tuple | None]:
    """What the database says: the event's id, revision and current question as shown."""
    event_id, revision, current = stack.query_one(
        "SELECT id, revision, current_question_id FROM polls_event WHERE code = %s", CODE
    )
    if current is None:
        return event_id, revision, None
    state, show_results, revealed = stack.query_one(
        "SELECT state, show_results, revealed FROM polls_question WHERE id = %s", current
    )
    return event_id, revision, (current, state == "open", bool(show_results), bool(revealed))


def cached(event_id: int) -> tuple[int | None, tuple | None]:
    text = get_sync_redis().get(push.state_cache_key(event_id))
    state = json.loads(text) if text else {}
    return state.get("revision"), shown(state)


async def settled(watchers: list[Watcher], expected: tuple | None, event_id: int, revision: int):
    """Wait until every client shows ``expected`` and the cache holds it at ``revision``; the
    differences left at the deadline otherwise."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        wrong = [w.name for w in watchers if shown(w.latest) != expected]
        cache = cached(event_id)
        if not wrong and cache == (revision, expected):
            return []
        if time.monotonic() > deadline:
            found = {w.name: shown(w.latest) for w in watchers}
            return (
                [f"clients {wrong} of {found}", f"cache {cache}"] if wrong else [f"cache {cache}"]
            )
        await asyncio.sleep(0.01)


@pytest.fixture
def two_processes(tmp_path, redis_server):
    stack = make_stack(tmp_path)
    ports = []
    for _ in range(2):
        stack.start_daphne()
        ports.append(stack.port)
    yield stack, ports
    stack.stop()


async def test_every_phone_and_screen_ends_on_the_last_committed_action(two_processes):
    stack, ports = two_processes
    (stage_key,) = stack.query_one("SELECT stage_key FROM polls_event WHERE code = %s", CODE)
    browser = Browser()
    await browser.log_in(ports[0])

    watchers, tasks = [], []
    for index, port in enumerate(ports):
        base = f"http://127.0.0.1:{port}"
        paths = {f"stage@{index}": f"/ws/e/{CODE}/stage/?key={stage_key}"}
        for phone in range(2):
            status, body = await http_post("127.0.0.1", port, f"/api/e/{CODE}/join")
            assert status == 200, body
            paths[f"phone{phone}@{index}"] = f"/ws/e/{CODE}/?token={body['token']}"
        for name, path in paths.items():
            watcher, ready = Watcher(name), asyncio.Event()
            tasks.append(
                asyncio.create_task(watcher.run(f"ws://127.0.0.1:{port}{path}", base, ready))
            )
            await asyncio.wait_for(ready.wait(), 10)
            watchers.append(watcher)

    failures = []
    try:
        for round_number in range(ROUNDS):
            first, second = PAIRS[round_number % len(PAIRS)]
            if (round_number // len(PAIRS)) % 2:
                first, second = second, first  # the other process gets each action
            presses = [(ports[0], first), (ports[1], second)]
            if round_number % 2:
                presses.reverse()  # the other process presses first
            await press_together(browser, presses, LAGS[round_number % len(LAGS)])
            event_id, revision, expected = committed(stack)
            differences = await settled(watchers, expected, event_id, revision)
            if differences:
                failures.append(f"round {round_number} ({first} | {second}): {differences}")
        await asyncio.sleep(0.5)  # nothing stale arrives late either
        event_id, revision, expected = committed(stack)
        differences = await settled(watchers, expected, event_id, revision)
        if differences:
            failures.append(f"after the last round: {differences}")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert "database is locked" not in stack.log_text()
    assert all(watcher.count > ROUNDS // 2 for watcher in watchers), "few states reached anyone"
    assert not failures, f"{len(failures)} checks of {ROUNDS + 1} ended wrong:\n" + "\n".join(
        failures
    )

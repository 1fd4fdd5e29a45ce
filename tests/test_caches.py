"""Process-local caches that cannot lie: what a host changes, or deletes and makes again under
the same code, is what the next join on every server process sees.

Two Daphne processes share one listening socket, as ``dev.py serve`` runs them; which of them
answered a join is read from /proc (the process holding the accepted end of the connection), so
each test first makes sure both have served one (both have cached the event), then changes the
event through a Django process of the stack's own (``manage.py shell``, started beforehand so the
change lands well within the caches' time bound), and joins fresh phones until both processes
have answered several. The listener's own rules (a published message drops an entry however
long it had to live, a read overtaken by a drop is not kept) are checked in this process.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from polls import caches, push
from polls.redis_client import get_sync_redis
from polls.tokens import read_participant_token
from tests.live_helpers import profile_then_state
from tests.servers import ROOT, make_stack

pytestmark = pytest.mark.e2e

CODE = "KSF2018"
RENAMED = "KSF2019"
# Fresh joins each process must answer after a change (both processes are asked).
JOINS_PER_PROCESS = 4
# How long a committed change may take to reach every process (see once_heard).
HEARD_WITHIN = 1.0

# Runs in the stack's own Django: one change per line read, "done" once it is committed (and
# its on_commit messages published). The host's edit is the admin's: save, then
# record_admin_save with restore_live_state as its announcement.
HOST = """
import io, sys
from django.core.management import call_command
from django.db import transaction
from polls import actions
from polls.models import Event

def edit(**fields):
    with transaction.atomic():
        event = Event.objects.select_for_update().get(code=fields.pop("old", "KSF2018"))
        for name, value in fields.items():
            setattr(event, name, value)
        event.save()
        actions.record_admin_save(event.id, actions.restore_live_state)

print("ready", flush=True)
for line in sys.stdin:
    action, *args = line.split()
    if action == "reset":
        call_command("seed_demo", "--reset", stdout=io.StringIO())
    elif action == "voice":
        edit(voice=args[0])
    elif action == "code":
        edit(old=args[0], code=args[1])
    elif action == "title":
        edit(title=" ".join(args))
    print("done", flush=True)
"""


class Host:
    """A Django process on the stack's database and Redis that changes the demo event on cue."""

    def __init__(self, env: dict) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "shell", "--no-imports", "-c", HOST],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.expect("ready")

    def expect(self, word: str) -> None:
        line = self.process.stdout.readline()
        assert line.strip() == word, f"the host process said {line!r}"

    def do(self, *words: str) -> None:
        self.process.stdin.write(" ".join(words) + "\n")
        self.process.stdin.flush()
        self.expect("done")

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def two(tmp_path_factory, redis_server):
    """Two Daphne processes on one port, the writer, and the host's process."""
    stack = make_stack(tmp_path_factory.mktemp("caches"))
    try:
        stack.pids = [process.pid for process in stack.start_daphnes(2)]
        stack.start_writer()
        stack.host = Host(stack.env)
        listening_first = subscribers()
        warm(stack)  # each process's first join starts its listener ...
        deadline = time.monotonic() + 10
        while subscribers() < listening_first + 2:  # ... which drops what it cached before
            assert time.monotonic() < deadline, "the processes do not listen to the live channel"
            time.sleep(0.05)
        yield stack
        stack.host.stop()
        assert "Traceback" not in stack.log_text()
    finally:
        stack.stop()


def subscribers() -> int:
    """Listeners of the live channel on the tests' Redis (the stack's processes use it too)."""
    return get_sync_redis().pubsub_numsub(push.LIVE_CHANNEL)[0][1]


def accepted_inode(server_port: int, client_port: int) -> str | None:
    """The socket inode of the server's end of the connection from ``client_port``."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
        if (local, remote) == (server_port, client_port):
            return fields[9]
    return None


def owner_of(inode: str, pids: list[int]) -> int | None:
    wanted = f"socket:[{inode}]"
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == wanted:
                    return pid
            except OSError:
                continue  # closed meanwhile
    return None


def ask(stack, method: str, path: str) -> tuple[int, int, bytes]:
    """One request on a connection of its own: (the pid that answered, status, body).

    The kernel hands the connection to one of the processes when it accepts it, before any
    byte is read: the process holding it then is the one that answers."""
    with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as sock:
        client_port = sock.getsockname()[1]
        deadline, pid = time.monotonic() + 10, None
        while pid is None:
            assert time.monotonic() < deadline, "no server process accepted the connection"
            inode = accepted_inode(stack.port, client_port)
            pid = owner_of(inode, stack.pids) if inode else None
            if pid is None:
                time.sleep(0.002)
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{stack.port}\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    return pid, int(head.split(b" ", 2)[1]), body


def join(stack, code: str = CODE) -> tuple[int, int, dict]:
    """One phone's join: (the pid that answered, status, body)."""
    pid, status, body = ask(stack, "POST", f"/api/e/{code}/join")
    return pid, status, json.loads(body or b"{}")


def on_both(stack, request, each: int = 1) -> list[tuple]:
    """``request(stack)`` again on fresh connections until each of the two processes has
    answered ``each`` of them."""
    answered: list[tuple] = []
    deadline = time.monotonic() + 30
    while any(sum(1 for a in answered if a[0] == pid) < each for pid in stack.pids):
        assert time.monotonic() < deadline, f"one process answered nothing: {answered}"
        answered.append(request(stack))
    return answered


def joins_on_both(stack, code: str = CODE, each: int = 1) -> list[tuple[int, int, dict]]:
    """Fresh joins until each of the two processes has answered ``each`` of them."""
    return on_both(stack, lambda stack: join(stack, code), each)


def page_of(stack) -> tuple[int, int, str]:
    """The phone page, as a phone opening the join link asks for it."""
    pid, status, body = ask(stack, "GET", f"/e/{CODE}/")
    return pid, status, body.decode()


def pages_on_both(stack, each: int = 1) -> list[tuple[int, int, str]]:
    """The phone page from both processes."""
    return on_both(stack, page_of, each)


def warm(stack, code: str = CODE) -> None:
    """Both processes have answered a join of ``code``: each holds its event in its cache."""
    for _pid, status, body in joins_on_both(stack, code):
        assert status == 200, body


async def first_states(stack, tokens: list[str], code: str = CODE) -> list[dict | int]:
    """Each phone's socket: its first state (after its profile message, the demo asking the
    generation), or the close code it was refused with."""

    async def first(token: str) -> dict | int:
        url = f"ws://127.0.0.1:{stack.port}/ws/e/{code}/?token={token}"
        async with connect(url, origin=stack.base) as ws:
            try:
                _profile, state = await profile_then_state(
                    lambda: asyncio.wait_for(ws.recv(), 10), ws
                )
                return state
            except Exception:  # closed: the close code says why
                if ws.close_code is None:
                    raise
                return ws.close_code

    return await asyncio.gather(*(first(token) for token in tokens))


def once_heard(stack, request, is_new, each: int = JOINS_PER_PROCESS) -> list[tuple]:
    """``each`` fresh answers of ``request`` from both processes, asked once each of them has
    heard the change just committed. Its message reaches a process's listener thread in
    milliseconds, so a request sent at the moment of the commit may still beat it: each process
    must answer the new way within HEARD_WITHIN (far below the caches' own 5 s bound, so a
    cache that never hears fails), and every answer after that must be new."""
    deadline = time.monotonic() + HEARD_WITHIN
    waiting, old = set(stack.pids), []
    while waiting:
        answer = request(stack)
        if is_new(answer):
            waiting.discard(answer[0])
        else:
            old.append(answer)
        assert time.monotonic() < deadline, (
            f"not heard within {HEARD_WITHIN} s: {len(old)} old answers, first {old[:3]}"
        )
    return on_both(stack, request, each)


def for_event(event_id: int):
    """Whether a join answered with a token for this event."""

    def is_new(answer: tuple) -> bool:
        _pid, status, body = answer
        token = read_participant_token(body.get("token"), CODE) if status == 200 else None
        return token is not None and token.event_id == event_id

    return is_new


def refused_with(status: int, code: str):
    return lambda answer: (answer[1], answer[2].get("error", {}).get("code")) == (status, code)


def current_question(stack, code: str = CODE) -> int:
    (question_id,) = stack.query_one(
        "SELECT current_question_id FROM polls_event WHERE code = %s", code
    )
    return question_id


def test_a_join_after_the_event_is_made_again_under_its_code_gets_the_new_event(two):
    two.host.do("reset")
    warm(two)
    old_question = current_question(two)
    two.host.do("reset")  # seed_demo --reset: deleted and made again as KSF2018
    new_question = current_question(two)
    assert new_question != old_question
    (new_event,) = two.query_one("SELECT id FROM polls_event WHERE code = %s", CODE)

    answered = once_heard(two, lambda stack: join(stack), for_event(new_event))
    assert all(for_event(new_event)(answer) for answer in answered), answered
    frames = asyncio.run(first_states(two, [body["token"] for _pid, _status, body in answered]))
    refused = [frame for frame in frames if isinstance(frame, int)]
    assert refused == [], f"{len(refused)} of {len(frames)} fresh phones refused: {refused}"
    assert {frame["type"] for frame in frames} == {"state"}
    assert {frame["question"]["id"] for frame in frames} == {new_question}


def test_an_event_closed_to_its_attendee_list_takes_no_open_join_on_any_process(two):
    two.host.do("reset")
    warm(two)
    two.host.do("voice", "attendees")

    answered = once_heard(two, lambda stack: join(stack), refused_with(403, "attendee_code"))
    refusals = {(status, body.get("error", {}).get("code")) for _pid, status, body in answered}
    assert refusals == {(403, "attendee_code")}, answered


def test_a_renamed_event_is_not_found_under_its_old_code_on_any_process(two):
    two.host.do("reset")
    warm(two)
    two.host.do("code", CODE, RENAMED)

    answered = once_heard(two, lambda stack: join(stack), refused_with(404, "unknown_event"))
    refusals = {(status, body.get("error", {}).get("code")) for _pid, status, body in answered}
    assert refusals == {(404, "unknown_event")}, answered
    warm(two, RENAMED)  # and found under its new one
    two.host.do("reset")


def test_the_phone_page_shows_a_host_edit_at_once_on_every_process(two):
    two.host.do("reset")
    for _pid, status, page in pages_on_both(two):  # each process has made the page once
        assert status == 200 and "Zaal B" not in page
    two.host.do("title", "Zaal B, na de pauze")

    def is_new(answer: tuple) -> bool:
        return answer[1] == 200 and "Zaal B, na de pauze" in answer[2]

    for answer in once_heard(two, page_of, is_new):
        assert is_new(answer), answer[:2]


# -- the listener, in this process ------------------------------------------------------------


def listening_here() -> None:
    caches.listen()
    deadline = time.monotonic() + 10
    while not caches.listening():
        assert time.monotonic() < deadline, "the listener did not subscribe"
        time.sleep(0.01)


def dropped(code: str) -> bool:
    """Whether ``code``'s entry goes (a message takes milliseconds; an entry lives an hour)."""
    deadline = time.monotonic() + 10
    while code in caches._entries and time.monotonic() < deadline:
        time.sleep(0.01)
    return code not in caches._entries


@pytest.mark.parametrize("published", ["event.gone", "event.state"])
def test_a_published_change_drops_the_entry_however_long_it_had_to_live(published):
    listening_here()
    an_hour = time.monotonic() + 3600
    caches._entries.update({"GONE1": (901, "GONE1", "open", an_hour)})
    caches._entries.update({"KEPT1": (902, "KEPT1", "open", an_hour)})
    before = caches.version()
    if published == "event.gone":
        push.publish(901, {"type": "event.gone", "event": 901})
    else:  # renamed: the state names its new code only (every hub on this Redis hears it too)
        event = {"id": 901, "code": "NEW901", "title": "Renamed", "look": ""}
        state = {"event": event, "question": None, "spec": {}, "revision": 1}
        push.publish(901, {"type": "event.state", "state": state})
    assert dropped("GONE1")
    assert "KEPT1" in caches._entries  # another event's entry stays
    assert caches.version() > before  # and every versioned cache sees something moved


def test_a_read_overtaken_by_a_drop_is_answered_but_not_kept(monkeypatch):
    async def read_while_the_event_goes(code: str):
        caches.forget_event(903)  # its message arrives while the database answers
        return 903, code, "open"

    monkeypatch.setattr(caches, "_find_event", read_while_the_event_goes)
    assert asyncio.run(caches.event_for_join("RACE1")) == (903, "RACE1", "open")
    assert "RACE1" not in caches._entries

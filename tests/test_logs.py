"""Logs an operator can use (polls.logs): with ZP_LOG_FORMAT=json every line Daphne and the
writer write is one JSON object; no line holds a token, a stage key, a password, a cookie or a
personal code, whatever flow touched them; each refusal is one line with its event, participant
and code, however often a phone repeats it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import time
import urllib.parse

import pytest
from django.core import signing
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from polls.attendees import display_code
from polls.demo import DEMO_HOST_USERNAME
from polls.logs import JsonFormatter, RefusalThrottle, participant_prefix
from polls.tokens import SALT, read_participant_token
from tests.live_helpers import profile_then_state
from tests.servers import DEMO_PASSWORD, ROOT, http_post, make_stack

CODE = "KSF2018"
BADGES = "BADGE7"  # an attendee-list event the test makes
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
MAKE_BADGE_EVENT = f"""
import json
from polls import attendees
from polls.models import Event
event = Event.objects.create(title="Badges", code="{BADGES}", voice=Event.Voice.ATTENDEES)
codes = [made.code for made in attendees.make_codes(event, 2)]
demo_key = Event.objects.get(code="{CODE}").stage_key
print(json.dumps({{"codes": codes, "key": event.stage_key, "demo_key": demo_key}}))
"""


# -- the whole stack, every flow that touches a secret ----------------------------------------


class Browser:
    """Cookies of one visitor over raw HTTP/1.1, as a browser keeps them."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    async def send(
        self, method: str, target: str, body: bytes = b"", headers: dict | None = None
    ) -> tuple[int, str]:
        head = {
            "Host": f"127.0.0.1:{self.port}",
            "Connection": "close",
            "Content-Length": str(len(body)),
            **(headers or {}),
        }
        if self.cookies:
            head["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        lines = [
            f"{method} {target} HTTP/1.1",
            *(f"{name}: {value}" for name, value in head.items()),
        ]
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        response_head, _, response_body = raw.partition(b"\r\n\r\n")
        for line in response_head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "set-cookie":
                cookie, _, cookie_value = value.strip().split(";", 1)[0].partition("=")
                self.cookies[cookie] = cookie_value
        return int(response_head.split(b" ", 2)[1]), response_body.decode(errors="replace")

    async def post_form(self, target: str, form: dict) -> tuple[int, str]:
        body = urllib.parse.urlencode(form).encode()
        content = {"Content-Type": "application/x-www-form-urlencoded"}
        return await self.send("POST", target, body, content)

    async def post_json(self, target: str, message: dict, origin: str = "") -> tuple[int, dict]:
        headers = {"Content-Type": "application/json", **({"Origin": origin} if origin else {})}
        status, body = await self.send("POST", target, json.dumps(message).encode(), headers)
        return status, json.loads(body)

    async def first_event(self, target: str) -> str:
        """The head and first event of a server-sent-events stream, then the stream dropped."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode())
        await writer.drain()
        received = b""
        while b"data:" not in received and b"content-length" not in received.lower():
            received += await asyncio.wait_for(reader.read(4096), 10)
        writer.close()
        return received.decode(errors="replace")


def expired_token(token: str) -> str:
    """The payload of a real token, signed as it would have been three days ago."""

    class ThreeDaysAgo(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - 3 * 24 * 3600)

    payload = signing.loads(token, salt=SALT)
    return ThreeDaysAgo(salt=SALT).sign_object(payload, compress=False)


def forged(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


async def closed_code(url: str, origin: str) -> int:
    async with connect(url, origin=origin) as ws:
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        except ConnectionClosed as closed:
            return closed.rcvd.code


async def replies_to(ws, messages: list[str], wanted: int | None = None) -> list[dict]:
    """Send every frame, then the replies (acks, errors): ``wanted`` of them, else all until
    the server closes the socket."""
    for message in messages:
        await ws.send(message)
    replies = []
    try:
        while wanted is None or len(replies) < wanted:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if reply["type"] in ("ack", "error"):
                replies.append(reply)
    except ConnectionClosed:
        pass
    return replies


async def drive_every_flow(stack, badges: dict) -> dict:
    """Each flow that carries a secret, with the secrets it saw."""
    base, ws_base = stack.base, f"ws://127.0.0.1:{stack.port}"
    key = badges["demo_key"]
    question_id, options = stack.current_question(CODE)
    answer = json.dumps(
        {"type": "answer", "id": "a1", "question": question_id, "value": options[0]}
    )
    seen: dict[str, list[str]] = {"tokens": [], "keys": [key, badges["key"]], "cookies": []}

    # Joins and answers with real tokens: in the query, then in the cookie the join set.
    status, body = await http_post("127.0.0.1", stack.port, f"/api/e/{CODE}/join")
    assert status == 200, body
    token = body["token"]
    phone = Browser(stack.port)
    status, joined = await phone.post_json(f"/api/e/{CODE}/join", {})
    assert status == 200, joined
    cookie_token = joined["token"]
    assert phone.cookies[f"zp_p_{CODE}"] == cookie_token
    seen["tokens"] += [token, cookie_token]
    async with connect(f"{ws_base}/ws/e/{CODE}/?token={token}", origin=base) as ws:
        _profile, state = await profile_then_state(ws.recv, ws)
        assert state["type"] == "state"
        assert (await replies_to(ws, [answer], 1))[0]["type"] == "ack"
        # A flood of bad frames: about 20 bad_json (the burst), 50 rate_limited, then the close
        # for flooding; three lines in the log, not seventy.
        replies = await replies_to(ws, ["{not json"] * 80)
        assert ws.close_code == 4429
    codes = [reply.get("code") for reply in replies]
    assert codes.count("bad_json") >= 15 and codes.count("rate_limited") == 50, codes
    cookie_header = {"Cookie": f"zp_p_{CODE}={cookie_token}"}
    async with connect(
        f"{ws_base}/ws/e/{CODE}/", origin=base, additional_headers=cookie_header
    ) as ws:
        _profile, state = await profile_then_state(ws.recv, ws)
        assert state["type"] == "state"
        assert (await replies_to(ws, [answer], 1))[0]["type"] == "ack"

    # A forged token and two expired ones: each socket closed with 4401.
    stale = [forged(token), expired_token(token), expired_token(cookie_token)]
    seen["tokens"] += stale
    for bad in stale:
        assert await closed_code(f"{ws_base}/ws/e/{CODE}/?token={bad}", base) == 4401
    # A socket from another site's page: refused at the handshake.
    with pytest.raises(InvalidStatus):
        async with connect(f"{ws_base}/ws/e/{CODE}/?token={token}", origin="http://evil.example"):
            pass

    # The stage screen: its page and its socket with the right key, and with a wrong one.
    screen = Browser(stack.port)
    assert (await screen.send("GET", f"/e/{CODE}/stage/?key={key}"))[0] == 200
    assert (await screen.send("GET", f"/e/{CODE}/stage/?key={key[:-2]}xy"))[0] == 404
    async with connect(f"{ws_base}/ws/e/{CODE}/stage/?key={key}", origin=base) as ws:
        assert json.loads(await ws.recv())["type"] == "state"
    assert await closed_code(f"{ws_base}/ws/e/{CODE}/stage/?key={key[:-2]}xy", base) == 4403

    # The fallback: the stream and a POSTed answer with the token, by query and by cookie.
    stream = await phone.first_event(f"/api/e/{CODE}/events?token={token}")
    assert " 200 " in stream.split("\r\n", 1)[0] and "data:" in stream, stream[:300]
    refused = await phone.first_event(f"/api/e/{CODE}/events?token={forged(token)}")
    assert " 401 " in refused.split("\r\n", 1)[0], refused[:300]
    status, reply = await phone.post_json(
        f"/api/e/{CODE}/answer?token={token}", json.loads(answer), origin=base
    )
    assert status == 200 and reply["type"] == "ack", reply
    status, reply = await phone.post_json(f"/api/e/{CODE}/answer", json.loads(answer), origin=base)
    assert status == 200 and reply["type"] == "ack", reply
    status, reply = await phone.post_json(
        f"/api/e/{CODE}/answer?token={token}", json.loads(answer), origin="http://evil.example"
    )
    assert status == 403 and reply["error"]["code"] == "bad_origin", reply

    # The remote control: the host logs in with the demo password (once wrongly), presses.
    host = Browser(stack.port)
    assert (await host.send("GET", "/admin/login/"))[0] == 200
    login = {"username": DEMO_HOST_USERNAME, "csrfmiddlewaretoken": host.cookies["csrftoken"]}
    status, _page = await host.post_form(
        "/admin/login/", {**login, "password": "x" + DEMO_PASSWORD}
    )
    assert status == 200
    status, page = await host.post_form(
        "/admin/login/", {**login, "password": DEMO_PASSWORD, "next": f"/e/{CODE}/host/"}
    )
    assert status == 302 and "sessionid" in host.cookies, page[:500]
    assert (await host.send("GET", f"/e/{CODE}/host/"))[0] == 200
    press = {"action": "show_results", "csrfmiddlewaretoken": host.cookies["csrftoken"]}
    assert (await host.post_form(f"/e/{CODE}/host/", press))[0] == 302
    seen["cookies"] += [host.cookies["sessionid"], host.cookies["csrftoken"]]
    seen["passwords"] = [DEMO_PASSWORD, "x" + DEMO_PASSWORD]

    # Personal codes: the badge's link, a join with a code, without one, with a wrong one.
    badge_code = badges["codes"][0]
    visitor = Browser(stack.port)
    assert (await visitor.send("GET", f"/e/{BADGES}/?a={badge_code}"))[0] == 200
    status, joined = await visitor.post_json(f"/api/e/{BADGES}/join", {"attendee": badge_code})
    assert status == 200, joined
    seen["tokens"].append(joined["token"])
    async with connect(f"{ws_base}/ws/e/{BADGES}/?token={joined['token']}", origin=base) as ws:
        assert json.loads(await ws.recv())["type"] == "state"
    for typed in ({}, {"attendee": badges["codes"][1][::-1]}):
        status, refused_join = await visitor.post_json(f"/api/e/{BADGES}/join", typed)
        assert status == 403 and refused_join["error"]["code"] == "attendee_code", refused_join
    seen["codes"] = badges["codes"]
    seen["participant"] = [read_participant_token(token, CODE).participant_id]
    return seen


def forms_of(secret: str) -> set[str]:
    """A secret as a line could hold it: as it is, URL-encoded, and (a token) its signature."""
    forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}
    if secret.count(":") == 2:
        forms.add(secret.rsplit(":", 1)[1])
    return forms


def written_lines(stack) -> list[str]:
    return [line for line in stack.log_text().splitlines() if line.strip()]


@pytest.fixture
def json_stack(tmp_path, redis_server):
    stack = make_stack(tmp_path)
    stack.env.update(ZP_LOG_FORMAT="json", ZP_LOG_LEVEL="DEBUG")
    badges = json.loads(stack.manage("shell", "-c", MAKE_BADGE_EVENT).strip().splitlines()[-1])
    stack.start_daphne()
    stack.start_writer()
    yield stack, badges
    stack.stop()


def test_every_line_is_json_and_none_holds_a_secret(json_stack, settings):
    stack, badges = json_stack
    seen = asyncio.run(drive_every_flow(stack, badges))
    (count,) = stack.query_one("SELECT COUNT(*) FROM polls_answer")
    deadline = time.monotonic() + 10
    while count < 2 and time.monotonic() < deadline:  # the writer's lines are in its log too
        time.sleep(0.1)
        (count,) = stack.query_one("SELECT COUNT(*) FROM polls_answer")
    database_password = urllib.parse.urlsplit(stack.env["DATABASE_URL"]).password
    stack.stop()  # every line written, the last socket's disconnect too

    lines = written_lines(stack)
    records = []
    for line in lines:
        record = json.loads(line)  # raises on a line that is not one JSON value
        assert isinstance(record, dict) and TIME.fullmatch(record["time"]), line
        assert {"level", "logger", "message", "pid"} <= set(record), line
        records.append(record)
    loggers = {record["logger"] for record in records}
    assert {"daphne.access", "polls.refusals", "polls.writer", "django.request"} <= loggers
    assert len({record["pid"] for record in records}) == 2  # Daphne's and the writer's

    secrets_seen = {
        "a token": seen["tokens"],
        "a stage key": seen["keys"],
        "SECRET_KEY": [settings.SECRET_KEY],
        "a password": [*seen["passwords"], database_password],
        "a session or CSRF cookie": seen["cookies"],
        "a personal code": [*seen["codes"], *map(display_code, seen["codes"])],
    }
    text = "\n".join(lines)
    for what, values in secrets_seen.items():
        for value in values:
            assert len(value) >= 6, (what, value)  # long enough not to match by chance
            for form in forms_of(value):
                assert form not in text, f"{what} in the log: {form}"
    access = [record for record in records if record["logger"] == "daphne.access"]
    assert any("token=***" in record["path"] for record in access)
    assert any("key=***" in record["path"] for record in access)
    assert any("a=***" in record["path"] for record in access)

    refusals = [record for record in records if record["logger"] == "polls.refusals"]
    (participant_id,) = seen["participant"]
    prefix = participant_prefix(participant_id)
    assert participant_id not in text and participant_id.startswith(prefix)

    def refused(action: str, code: str, event: str = CODE) -> list[dict]:
        return [
            record
            for record in refusals
            if (record["action"], record["code"], record.get("event")) == (action, code, event)
        ]

    for code in ("bad_json", "rate_limited", "flood"):  # 20, 50 and 1 of them sent
        assert [record["participant"] for record in refused("answer", code)] == [prefix], code
    assert len(refused("connect", "bad_token")) == 1  # three stale tokens, one address
    assert len(refused("connect", "bad_key")) == 1
    assert len(refused("join", "attendee_code", BADGES)) == 1  # two refused joins
    assert len(refused("answer", "bad_origin")) == 1
    (origin,) = [
        record for record in refusals if record["code"] == "bad_origin" and "path" in record
    ]
    assert origin["path"] == f"/ws/e/{CODE}/" and origin["level"] == "WARNING"


# -- the parts on their own -------------------------------------------------------------------


def test_an_unknown_log_format_is_refused_at_start():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "ZP_LOG_FORMAT": "yaml"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured: ZP_LOG_FORMAT must be 'text' or 'json', not 'yaml'" in (
        result.stderr
    )


def test_a_record_is_one_line_with_its_fields_and_without_secrets():
    try:
        raise ValueError("two\nlines")
    except ValueError:
        record = logging.LogRecord(
            "polls.test", logging.WARNING, "", 0, "GET /e/X/?token=%s&lang=nl", ("t0k3n",), True
        )
        record.exc_info = sys.exc_info()
    record.__dict__.update(event="KSF2018", participant="6650a1b2-1a2b3c4d-0123456789abcdef")
    record.__dict__.update(code="bad_json", path="/ws/e/X/?key=s3cr3t")
    line = JsonFormatter().format(record)
    assert "\n" not in line and "t0k3n" not in line and "s3cr3t" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "GET /e/X/?token=***&lang=nl"
    assert parsed["participant"] == "6650a1b2-1a2b3c4d"
    assert parsed["path"] == "/ws/e/X/?key=***"
    assert (parsed["event"], parsed["code"], parsed["level"]) == ("KSF2018", "bad_json", "WARNING")
    assert "ValueError: two\nlines" in parsed["exception"]


def test_a_senders_refusals_get_one_line_a_window_and_then_their_count(settings):
    settings.ZP_REFUSAL_LOG_SECONDS = 60
    throttle = RefusalThrottle()
    fields = {"code": "bad_json"}
    assert throttle.take("phone-1", "bad_json", fields, 0.0) == (0, [])
    for moment in range(1, 30):
        assert throttle.take("phone-1", "bad_json", fields, float(moment)) == (None, [])
    # Another code, another sender: lines of their own.
    assert throttle.take("phone-1", "rate_limited", fields, 30.0) == (0, [])
    assert throttle.take("phone-2", "bad_json", fields, 30.0) == (0, [])
    # The window over: the next refusal's line carries the 29 only counted ...
    assert throttle.take("phone-1", "bad_json", fields, 61.0) == (29, [])
    # ... and a sender gone quiet gets a summary with the next line anyone else gets.
    assert throttle.take("phone-2", "bad_json", fields, 62.0) == (None, [])
    assert throttle.take("phone-3", "bad_json", fields, 95.0) == (0, [(fields, 1)])

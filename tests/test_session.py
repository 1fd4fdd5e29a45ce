"""One session for both transports (polls.session): the socket, the HTTP fallback and the join
API negotiate the language alike, and every line spends one message budget by one rule."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver

from polls import ratelimit, session
from polls.codes import CodeConverter
from polls.limits import MESSAGE_BURST, MESSAGES_PER_SECOND, MOST_STRIKES
from polls.routing import websocket_urlpatterns
from polls.transport import http_stream
from tests.factories import make_event, make_open_question, token_for
from tests.http_helpers import ORIGIN, Exchange
from tests.live_helpers import ORIGIN as SOCKET_HEADERS
from tests.live_helpers import connect, refused_with, send

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("disconnect_sockets"),
]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def event():
    event = make_event(code="SESS42")
    make_open_question(event)
    return event


@pytest.fixture
async def token(event):
    return await sync_to_async(token_for)(event)


# -- language ----------------------------------------------------------------------------------

LANGUAGE = settings.LANGUAGE_COOKIE_NAME.encode()
# (query, headers, the language every transport answers in)
LANGUAGE_CASES = [
    ("", [], "en"),
    ("lang=nl", [], "nl"),
    ("", [(b"cookie", LANGUAGE + b"=nl")], "nl"),
    ("lang=en", [(b"cookie", LANGUAGE + b"=nl")], "en"),  # a page's ?lang= wins, as on pages
    ("", [(b"accept-language", b"en;q=0.5, nl;q=0.9")], "nl"),  # by weight, not by order
    ("", [(b"accept-language", b"nl-NL,nl;q=0.9")], "nl"),
    ("", [(b"cookie", LANGUAGE + b"=xx"), (b"accept-language", b"nl")], "nl"),
    ("lang=xx", [(b"accept-language", b"de, en")], "en"),
]
NOT_JSON = {"en": "The message is not valid JSON.", "nl": "Het bericht is geen geldige JSON."}
NO_EVENT = {"en": "There is no session with this code.", "nl": "Er is geen sessie met deze code."}


@pytest.mark.parametrize(("query", "headers", "language"), LANGUAGE_CASES)
async def test_every_transport_and_the_join_api_negotiate_the_language_alike(
    event, token, query, headers, language
):
    named = {name.decode(): value.decode() for name, value in headers}
    parameters = dict(part.split("=") for part in query.split("&") if part)
    assert session.negotiate_language(parameters, named) == language

    socket, connected, _code = await connect(
        f"/ws/e/{event.code}/?token={token}&{query}", headers=[*SOCKET_HEADERS, *headers]
    )
    assert connected
    await socket.receive_from(timeout=3)  # the state
    await send(socket, "{oops")
    assert json.loads(await socket.receive_from(timeout=3))["message"] == NOT_JSON[language]

    post = Exchange(
        "POST", f"/api/e/{event.code}/answer", f"token={token}&{query}", [ORIGIN, *headers], b"{"
    )
    assert (await post.start())[0] == 200
    assert json.loads(await post.body())["message"] == NOT_JSON[language]

    join = Exchange("POST", "/api/e/NOPE99/join", query, headers)
    assert (await join.start())[0] == 404
    assert json.loads(await join.body())["error"]["message"] == NO_EVENT[language]


# -- the message budget ------------------------------------------------------------------------

CLOSED = "closed 4429"
# (what happens, messages sent [at a moment, in seconds], the replies on a line that stays
# open, and over a POST: there is no socket to close, so its last reply differs)
BUDGET_CASES = [
    ("a burst goes through", [(0, MESSAGE_BURST)], ["pong"] * MESSAGE_BURST, None),
    (
        "past the burst a message waits",
        [(0, MESSAGE_BURST + 2)],
        ["pong"] * MESSAGE_BURST + ["rate_limited"] * 2,
        None,
    ),
    (
        "the budget refills at its rate",
        [(0, MESSAGE_BURST), (1, MESSAGES_PER_SECOND + 1)],
        ["pong"] * (MESSAGE_BURST + MESSAGES_PER_SECOND) + ["rate_limited"],
        None,
    ),
    (
        "refused messages count as strikes",
        [(0, MESSAGE_BURST + MOST_STRIKES)],
        ["pong"] * MESSAGE_BURST + ["rate_limited"] * MOST_STRIKES,
        None,
    ),
    (
        "one strike more is a flood",
        [(0, MESSAGE_BURST + MOST_STRIKES + 1)],
        ["pong"] * MESSAGE_BURST + ["rate_limited"] * MOST_STRIKES + [CLOSED],
        "rate_limited",
    ),
]


async def over_a_socket(path: str, moments, clock: list[float]) -> list[str]:
    socket, connected, code = await connect(path)
    assert connected, code
    replies: list[str] = []
    for moment, count in moments:
        clock[0] = 1000.0 + moment
        for number in range(count):
            await send(socket, {"type": "ping", "id": f"p{number}"})
        expected = len(replies) + count
        while len(replies) < expected:
            output = await socket.receive_output(timeout=3)
            if output["type"] == "websocket.close":
                replies.append(f"closed {output['code']}")
                break
            message = json.loads(output["text"])
            if message["type"] in ("pong", "error"):  # not the state or a results snapshot
                replies.append(message.get("code", "pong"))
    return replies


async def over_posts(path: str, query: str, moments, clock: list[float]) -> list[str]:
    replies = []
    for moment, count in moments:
        clock[0] = 1000.0 + moment
        for number in range(count):
            body = json.dumps({"type": "ping", "id": f"p{number}"}).encode()
            exchange = Exchange("POST", path, query, [ORIGIN], body)
            assert (await exchange.start())[0] == 200
            message = json.loads(await exchange.body())
            replies.append(message.get("code", "pong"))
    return replies


@pytest.mark.parametrize(("case", "moments", "on_a_line", "last_over_http"), BUDGET_CASES)
async def test_phones_and_screens_spend_one_budget_on_either_transport(
    event, token, monkeypatch, case, moments, on_a_line, last_over_http
):
    clock = [1000.0]  # stopped: only the table moves it
    monkeypatch.setattr(ratelimit, "clock", lambda: clock[0])
    monkeypatch.setattr(http_stream, "budgets", ratelimit.KeptBudgets())
    over_http = [*on_a_line[:-1], last_over_http] if last_over_http else on_a_line
    phone, stage = f"/api/e/{event.code}/answer", f"/api/e/{event.code}/stage/answer"
    key = f"key={event.stage_key}"
    transports = {
        "phone socket": (over_a_socket, (f"/ws/e/{event.code}/?token={token}",), on_a_line),
        "stage socket": (over_a_socket, (f"/ws/e/{event.code}/stage/?{key}",), on_a_line),
        "phone POST": (over_posts, (phone, f"token={token}"), over_http),
        "stage POST": (over_posts, (stage, key), over_http),
    }
    for transport, (drive, where, expected) in transports.items():
        clock[0] = 1000.0  # each line's budget starts full at the table's first moment
        assert await drive(*where, moments, clock) == expected, (case, transport)


# -- one code pattern, no private borrowing ----------------------------------------------------


def routes_with_a_code(patterns, prefix=""):
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from routes_with_a_code(entry.url_patterns, route)
        elif isinstance(entry, URLPattern) and "code" in entry.pattern.regex.groupindex:
            yield route, entry.pattern


def test_every_route_takes_the_code_through_one_converter():
    routes = [*routes_with_a_code(get_resolver().url_patterns)]
    routes += [*routes_with_a_code(websocket_urlpatterns)]
    assert len(routes) >= 12
    for route, pattern in routes:
        converters = getattr(pattern, "converters", {})
        assert isinstance(converters.get("code"), CodeConverter), route


async def test_the_socket_takes_a_code_as_the_other_routes_do():
    """A code the pages route (lower case: a typed variant) reaches the socket's session too,
    which refuses it as an unknown event instead of the router failing."""
    assert await refused_with("/ws/e/nope99/?token=x") == 4404
    assert await refused_with("/ws/e/nope99/stage/?key=x") == 4404


@pytest.mark.parametrize("path", ["/ws/e/" + "A" * 40 + "/", "/ws/e/KSF2018/../x/", "/ws/x/"])
async def test_a_socket_to_a_path_no_route_knows_is_refused_at_the_handshake(path, caplog):
    _communicator, connected, _code = await connect(path)
    assert not connected
    assert not [record for record in caplog.records if record.exc_info], caplog.text


def test_no_module_imports_another_modules_private_names():
    borrowed = []
    for path in sorted((ROOT / "polls").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (
                node.level or (node.module or "").startswith("polls")
            ):
                names = [alias.name for alias in node.names]
                borrowed += [f"{path.name}: {name}" for name in names if name.startswith("_")]
    assert borrowed == []

"""The bare consumer: the calibration baseline of issue 4, driven by the same load test.

A Channels ``AsyncWebsocketConsumer`` on channels_redis' ``RedisChannelLayer`` that only joins
one group, sends a fixed ``state``, and for every message does one Redis ``HINCRBY`` and sends
an ``ack``. No validation, no tally, no token check, no database. Run it as::

    daphne -b 127.0.0.1 -p 8100 loadgen.baseline:application
    python manage.py loadtest --baseline --url http://127.0.0.1:8100 ...

(``DJANGO_SETTINGS_MODULE`` defaults to ``loadgen.baseline_settings``; ``REDIS_URL`` as
for the product.) Plain ASGI HTTP endpoints, so the same client code drives it:

- ``POST /api/e/<CODE>/join`` -> ``{"token": "<random>"}``
- ``GET /api/e/<CODE>/counts`` -> ``{"counts": {...}, "total": n}`` (the HINCRBY hash)
- ``POST /api/e/<CODE>/broadcast?question=<id>&kind=<kind>`` -> one ``group_send`` of a new
  ``state`` to every socket of the event (the host's "next question")
"""

from __future__ import annotations

import json
import os
import re
import uuid
from urllib.parse import parse_qs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loadgen.baseline_settings")

import django

django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from loadgen.bare import state_text  # noqa: E402
from polls.redis_client import get_async_redis  # noqa: E402

API = re.compile(r"^/api/e/(?P<code>[A-Z0-9]{4,12})/(?P<what>join|counts|broadcast)$")


def redis():
    """The product's own client (a bounded, blocking pool per event loop): a bare
    ``Redis.from_url`` runs out of connections (``MaxConnectionsError``) at a few thousand
    sockets answering at once, which would measure the trap, not the consumer."""
    return get_async_redis()


def group(code: str) -> str:
    return f"baseline.{code}"


def counts_key(code: str) -> str:
    return f"zp:baseline:{code}:counts"


def bucket(value) -> str:
    return str(value) if isinstance(value, int | str) and len(str(value)) <= 40 else "other"


class BareConsumer(AsyncWebsocketConsumer):
    """Acks each message after one HINCRBY; hears broadcasts through the channel layer."""

    async def connect(self):
        self.code = self.scope["url_route"]["kwargs"]["code"]
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        kind = query.get("kind", ["single"])[-1]
        await self.channel_layer.group_add(group(self.code), self.channel_name)
        await self.accept()
        await self.send(text_data=state_text(self.code, 1, kind))

    async def disconnect(self, code):
        await self.channel_layer.group_discard(group(self.code), self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        message = json.loads(text_data or bytes_data or b"{}")
        if message.get("type") == "ping":
            await self.send(text_data=json.dumps({"type": "pong", "id": message.get("id")}))
            return
        value = message.get("value")
        await redis().hincrby(counts_key(self.code), bucket(value), 1)
        await self.send(
            text_data=json.dumps(
                {
                    "type": "ack",
                    "id": message.get("id"),
                    "question": message.get("question"),
                    "answer": value,
                }
            )
        )

    async def baseline_state(self, event):
        await self.send(text_data=event["text"])


async def _body(receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


async def _respond(send, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def http_app(scope, receive, send):
    await _body(receive)
    match = API.match(scope["path"])
    if match is None:
        await _respond(send, 404, {"error": {"code": "not_found"}})
        return
    code, what = match["code"], match["what"]
    if what == "counts":
        raw = await redis().hgetall(counts_key(code))
        counts = {key.decode(): int(value) for key, value in raw.items()}
        await _respond(send, 200, {"counts": counts, "total": sum(counts.values())})
        return
    if scope["method"] != "POST":
        await _respond(send, 405, {"error": {"code": "not_allowed"}})
        return
    if what == "join":
        await _respond(send, 200, {"token": uuid.uuid4().hex})
        return
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    question_id = int(query.get("question", ["2"])[-1])
    kind = query.get("kind", ["single"])[-1]
    await get_channel_layer().group_send(
        group(code), {"type": "baseline.state", "text": state_text(code, question_id, kind)}
    )
    await _respond(send, 200, {"ok": True})


application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": URLRouter(
            [re_path(r"^ws/e/(?P<code>[A-Z0-9]{4,12})/$", BareConsumer.as_asgi())]
        ),
    }
)

"""The operator's URLs, answered in front of Django (``config.asgi`` wraps the HTTP app in this):

- ``GET /healthz``: the process is up and its event loop turns (200 ``ok``); nothing else is
  touched, so a check every second costs next to nothing.
- ``GET /readyz``: Redis answers a PING and the database a ``SELECT 1``, both within
  ``ZP_READY_TIMEOUT`` seconds (default 1) at once: 200; else 503 with a JSON body naming the
  part that failed (``{"ready": false, "failed": ["redis"], "redis": "error", ...}``: ``error``
  or ``timeout``, never the driver's message, which may name hosts and users).
- ``GET /metrics``: the Prometheus text (polls.metrics), only with the token; off without one.

Any ``Host`` header is answered: a load balancer checks each server by its address, and these
answers build no link from the host and show nothing of an event, which is what
``ALLOWED_HOSTS`` guards. Plain http is answered under ``SECURE_SSL_REDIRECT`` too: a check
over http must not be sent to https. They carry the security headers of the other bare ASGI
apps (polls.transport.responses), with a policy for a response that is never a page.

Nothing here blocks the event loop: the PING is async, the ``SELECT 1`` runs in a thread of its
own (one: a database that hangs holds one thread, and later checks report ``timeout`` at once
instead of queueing more), and the scrape reads its files and Redis in a worker thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
import weakref

from django.conf import settings
from django.db import connections
from django.http import HttpResponse
from redis.exceptions import TimeoutError as RedisTimeout

from . import metrics, redis_client
from .transport.responses import Door, send_response

HEALTH_PATH, READY_PATH, METRICS_PATH = "/healthz", "/readyz", "/metrics"
METHODS = ("GET", "HEAD")
JSON = "application/json"
# Not a page: nothing to load, nothing to frame.
POLICY = "default-src 'none'; frame-ancestors 'none'"


class OpsPaths:
    """ASGI middleware: the three URLs answered here, every other request goes on."""

    def __init__(self, app) -> None:
        self.app = app
        self.answers = {HEALTH_PATH: healthz, READY_PATH: readyz, METRICS_PATH: metrics_text}

    async def __call__(self, scope, receive, send):
        answer = self.answers.get(scope["path"]) if scope["type"] == "http" else None
        if answer is None or (answer is metrics_text and not settings.ZP_METRICS_TOKEN):
            return await self.app(scope, receive, send)
        door = Door.of(scope)
        if scope["method"] in METHODS:
            response = await answer(door)
        else:
            response = HttpResponse(status=405, content_type="text/plain")
            response["Allow"] = ", ".join(METHODS)
        response["Content-Security-Policy"] = POLICY
        await send_response(send, response, door.host, door.secure)


async def healthz(door: Door) -> HttpResponse:
    return HttpResponse("ok\n", content_type="text/plain")


async def readyz(door: Door) -> HttpResponse:
    parts = await readiness()
    failed = [name for name, outcome in parts.items() if outcome != "ok"]
    body = {"ready": not failed, **({"failed": failed} if failed else {}), **parts}
    return HttpResponse(json.dumps(body), status=503 if failed else 200, content_type=JSON)


async def metrics_text(door: Door) -> HttpResponse:
    if not metrics.token_matches(door.headers.get("authorization", "")):
        response = HttpResponse("unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = "Bearer"
        return response
    body, content_type = await asyncio.to_thread(metrics.exposition)
    return HttpResponse(body, content_type=content_type)


# -- readiness -------------------------------------------------------------------------------


# A stranger may ask /readyz as often as they like: each process asks Redis and the database
# at most once a second, checks arriving meanwhile wait for that one's outcome, and checks in
# the second after it get the same outcome.
READY_REUSE_SECONDS = 1.0
_last_readiness: tuple[float, dict[str, str]] | None = None
_asking: asyncio.Task | None = None


async def readiness() -> dict[str, str]:
    """Each part's outcome: ``ok``, ``error`` or ``timeout``, both asked at once (or those of a
    check under way, or of one less than ``READY_REUSE_SECONDS`` ago)."""
    global _last_readiness, _asking
    if _last_readiness and time.monotonic() - _last_readiness[0] < READY_REUSE_SECONDS:
        return _last_readiness[1]
    loop = asyncio.get_running_loop()
    if _asking is None or _asking.done() or _asking.get_loop() is not loop:
        _asking = loop.create_task(_ask_both())
    outcome = await asyncio.shield(_asking)
    _last_readiness = (time.monotonic(), outcome)
    return outcome


async def _ask_both() -> dict[str, str]:
    timeout = settings.ZP_READY_TIMEOUT
    probes = {"redis": _redis_answers(timeout), "database": _database_answers()}
    outcomes = await asyncio.gather(
        *(asyncio.wait_for(probe, timeout) for probe in probes.values()), return_exceptions=True
    )
    return {name: _outcome(result) for name, result in zip(probes, outcomes, strict=True)}


def _outcome(result: object) -> str:
    if result is True:
        return "ok"
    return "timeout" if isinstance(result, TimeoutError | RedisTimeout) else "error"


# Per event loop (asyncio connections belong to one): a client of the probe's own, so a pool
# the answers have exhausted does not make a healthy Redis look away, and with short timeouts.
_probe_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def _redis_answers(timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    made_for, client = _probe_clients.get(loop, (None, None))
    if client is None or made_for != redis_client.config_key():
        # Under Sentinel: the PING goes to the node the sentinels name primary now, so a
        # process is ready again after a failover without a restart.
        client = redis_client.async_client(
            blocking=False,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            max_connections=4,
        )
        _probe_clients[loop] = (redis_client.config_key(), client)
    return bool(await client.ping())


_database_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="zp-readyz")
_database_probe: concurrent.futures.Future | None = None


async def _database_answers() -> bool:
    """A ``SELECT 1`` in the probe's thread; one still running (a database that hangs) is
    waited for again rather than joined by another."""
    global _database_probe
    if _database_probe is None or _database_probe.done():
        _database_probe = _database_thread.submit(_select_one)
    return await asyncio.wrap_future(_database_probe)


def _select_one() -> bool:
    connection = connections["default"]
    try:
        connection.close_if_unusable_or_obsolete()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        # CONN_MAX_AGE decides, as after a request: 0 closes it now; a broken one is dropped.
        connection.close_if_unusable_or_obsolete()
    return True

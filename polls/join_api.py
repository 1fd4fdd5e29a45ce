"""The join API as a bare ASGI app: the one HTTP request every phone makes in the same minute.

Through Django's handler, each join crossed the MiddlewareMixin middlewares (security, session,
locale, CSRF, auth, messages ...), and under an async server each of those runs its hooks in
Django's one shared sync thread: a 2,000-phone join storm queued there at about 70 joins/s on
one process (docs/performance.md). A join needs none of them (no session, no CSRF: the answer
is a fresh anonymous token), so ``config.asgi`` routes ``POST /api/e/<code>/join`` here. The
response is built by the same ``views.join_response`` the Django view uses, and carries the
headers the middlewares would have added.
"""

from __future__ import annotations

import json
import logging

from django.http import JsonResponse
from django.urls import reverse

from . import metrics
from .clientaddr import address_of_scope
from .codes import PLACEHOLDER, path_pattern
from .session import negotiate_language, query_of
from .transport.responses import Door, read_body, send_response
from .views import MAX_JOIN_BODY_BYTES, join_response

logger = logging.getLogger("django.request")


class JoinFastPath:
    """ASGI middleware: joins answered here, every other request goes on to Django."""

    def __init__(self, django_app) -> None:
        self.django_app = django_app
        self.pattern = None

    def _join_code(self, scope) -> str | None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        if self.pattern is None:
            self.pattern = path_pattern(reverse("polls:join", args=[PLACEHOLDER]))
        match = self.pattern.fullmatch(scope["path"])
        return match["code"] if match else None

    async def __call__(self, scope, receive, send):
        code = self._join_code(scope)
        if code is None:
            return await self.django_app(scope, receive, send)
        door = Door.of(scope)
        if door.for_django:
            return await self.django_app(scope, receive, send)
        headers, host, secure = door.headers, door.host, door.secure
        if not door.host_allowed:
            logger.warning("Invalid HTTP_HOST header for the join API: %r", host)
            return await _send_plain(send, 400, host, secure)
        # The body is empty on a free join, a little JSON otherwise.
        body = await read_body(receive, MAX_JOIN_BODY_BYTES)
        if body is None or len(body) > MAX_JOIN_BODY_BYTES:
            return await _send_plain(send, 400, host, secure)
        address = address_of_scope(scope)
        try:
            response = await join_response(
                address,
                code,
                secure=secure,
                raw_body=body,
                content_type=headers.get("content-type", ""),
                language=negotiate_language(query_of(scope), headers),
            )
        except Exception:
            logger.exception("Internal Server Error: %s", scope["path"])
            return await _send_plain(send, 500, host, secure)
        if response.status_code != 200:
            metrics.join_refused(json.loads(response.content)["error"]["code"])
        await send_response(send, response, host, secure)


async def _send_plain(send, status: int, host: str, secure: bool) -> None:
    code = "bad_request" if status == 400 else "server"
    metrics.join_refused(code)
    response = JsonResponse({"error": {"code": code}})
    response.status_code = status
    await send_response(send, response, host, secure)

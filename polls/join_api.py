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

import logging
import re

from django.conf import settings
from django.http import JsonResponse
from django.urls import reverse
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header

from .clientaddr import address_of_scope
from .middleware import content_security_policy
from .origin import allowed_host, headers_of, is_secure
from .views import MAX_JOIN_BODY_BYTES, join_response

logger = logging.getLogger("django.request")

MAX_BODY_BYTES = MAX_JOIN_BODY_BYTES

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _language(headers: dict[str, str]) -> str:
    """As LocaleMiddleware decides for a page: the language cookie, else Accept-Language."""
    supported = {code for code, _name in settings.LANGUAGES}
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == settings.LANGUAGE_COOKIE_NAME and value in supported:
            return value
    for code, _quality in parse_accept_lang_header(headers.get("accept-language", "")):
        base = code.split("-")[0]
        if base in supported:
            return base
    return settings.LANGUAGE_CODE


async def _read_body(receive) -> bytes | None:
    """The request's body (empty on a free join, a little JSON otherwise); None if it is too
    big or the client went away."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            return None
        if not message.get("more_body", False):
            return body


async def _send(send, response: JsonResponse, host: str, secure: bool) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if secure and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        response.headers.setdefault("Strict-Transport-Security", hsts)
    response.headers.setdefault("Content-Security-Policy", content_security_policy(host))
    response.headers["Content-Length"] = str(len(response.content))  # else Daphne chunks it
    headers = [(name.encode("latin-1"), text.encode("latin-1")) for name, text in response.items()]
    for cookie in response.cookies.values():
        headers.append((b"set-cookie", cookie.output(header="").strip().encode("ascii")))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})


class JoinFastPath:
    """ASGI middleware: joins answered here, every other request goes on to Django."""

    def __init__(self, django_app) -> None:
        self.django_app = django_app
        self.pattern: re.Pattern | None = None

    def _join_code(self, scope) -> str | None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        if self.pattern is None:
            example = reverse("polls:join", args=["CODE"])
            self.pattern = re.compile(re.escape(example).replace("CODE", "(?P<code>[^/]{1,32})"))
        match = self.pattern.fullmatch(scope["path"])
        return match["code"] if match else None

    async def __call__(self, scope, receive, send):
        code = self._join_code(scope)
        if code is None:
            return await self.django_app(scope, receive, send)
        headers = headers_of(scope)
        secure = is_secure(scope, headers)
        if settings.SECURE_SSL_REDIRECT and not secure:
            return await self.django_app(scope, receive, send)  # Django redirects to https
        host = headers.get("host", "")
        if not allowed_host(host):
            logger.warning("Invalid HTTP_HOST header for the join API: %r", host)
            return await _send_plain(send, 400, host, secure)
        body = await _read_body(receive)
        if body is None:
            return await _send_plain(send, 400, host, secure)
        address = address_of_scope(scope)
        try:
            with translation.override(_language(headers)):
                response = await join_response(
                    address,
                    code,
                    secure=secure,
                    raw_body=body,
                    content_type=headers.get("content-type", ""),
                )
        except Exception:
            logger.exception("Internal Server Error: %s", scope["path"])
            return await _send_plain(send, 500, host, secure)
        await _send(send, response, host, secure)


async def _send_plain(send, status: int, host: str, secure: bool) -> None:
    response = JsonResponse({"error": {"code": "bad_request" if status == 400 else "server"}})
    response.status_code = status
    await _send(send, response, host, secure)

"""The phone page as a bare ASGI app in front of Django: the page a whole hall opens at once.

Through Django each phone page crossed the middleware chain (session, CSRF, auth, messages,
locale ...), whose hooks under an async server each take a turn in Django's one shared sync
thread, and rendered the template again, all for the same bytes: the page holds nothing of the
request (no session, no CSRF token; the participant's token comes with the join). Here the page
of one event in one language is rendered once per process, gzipped once, and served from memory
with the headers Django's middlewares would have added.

A rendered page is kept while its event is the one the code names: ``polls.caches`` drops it
when the event changes or goes, on every process, and a time bound backs that up. Anything
else (a code typed in another form, which Django redirects; an unknown code's 404; DEBUG) goes
on to Django.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from .. import caches
from ..codes import PLACEHOLDER, path_pattern
from ..models import Event
from ..session import negotiate_language, query_of
from .responses import Door, encode_headers, security_headers

# How long a rendered page may be served without a word from the database: the backstop for
# a change whose message did not arrive (Redis away), as the code -> event cache has.
PAGE_SECONDS = 5.0
MAX_PAGES = 2000  # events x languages a process keeps; more (a code scan) renders again


@dataclass(frozen=True)
class RenderedPage:
    plain: bytes
    gzipped: bytes
    etag: str
    expires: float
    version: int  # caches.version() before the render: current while it has not moved


@database_sync_to_async  # closes stale database connections, as a request's end would
def _render(code: str, language: str, version: int) -> RenderedPage | None:
    from ..views import phone_page_context  # the view's own context: one page, two doors

    event = Event.objects.filter(code=code).first()
    if event is None:
        return None
    with translation.override(language):
        html = render_to_string("polls/phone.html", phone_page_context(event)).encode()
    etag = f'"{hashlib.sha1(html).hexdigest()[:16]}"'  # noqa: S324 - a name, not a seal
    expires = time.monotonic() + PAGE_SECONDS
    return RenderedPage(html, gzip.compress(html, 6), etag, expires, version)


class PhonePages:
    """Rendered pages by (code, language), one render at a time per page."""

    def __init__(self) -> None:
        self.pages: dict[tuple[str, str], RenderedPage] = {}
        self.rendering: dict[tuple[str, str], asyncio.Future] = {}

    def forget(self, code: str | None = None) -> None:
        """Drop the pages of one event code (None: all), as its event changed or went."""
        if code is None:
            self.pages.clear()
        else:
            for key in [key for key in self.pages if key[0] == code]:
                del self.pages[key]

    async def get(self, code: str, language: str) -> RenderedPage | None:
        key = (code, language)
        page = self.pages.get(key)
        if (
            page is not None
            and page.version == caches.version()
            and page.expires > time.monotonic()
        ):
            return page
        pending = self.rendering.get(key)
        if pending is not None:  # a hall asks at once: one render, every phone waits for it
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self.rendering[key] = future
        try:
            caches.listen()
            page = await _render(code, language, caches.version())
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self.rendering[key]
        if not future.done():
            future.set_result(page)
        if page is not None:
            if len(self.pages) >= MAX_PAGES:
                self.pages.clear()
            self.pages[key] = page
        return page


phone_pages = PhonePages()


class PhonePagePath:
    """ASGI middleware: ``GET /e/<code>/`` answered here, every other request goes on."""

    def __init__(self, app) -> None:
        self.app = app
        self.pattern = None

    def _code(self, scope) -> str | None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or settings.DEBUG:
            return None
        if self.pattern is None:
            self.pattern = path_pattern(reverse("polls:phone", args=[PLACEHOLDER]))
        match = self.pattern.fullmatch(scope["path"])
        return match["code"] if match else None

    async def __call__(self, scope, receive, send):
        code = self._code(scope)
        if code is None:
            return await self.app(scope, receive, send)
        door = Door.of(scope)
        if door.for_django or not door.host_allowed:
            return await self.app(scope, receive, send)
        query = query_of(scope)
        language = negotiate_language(query, door.headers)
        page = await phone_pages.get(code, language)
        if page is None:  # no such event, or the code in another form: Django answers
            return await self.app(scope, receive, send)
        headers = security_headers(door.host, door.secure)
        headers.update(
            {
                "Content-Type": "text/html; charset=utf-8",
                "Cache-Control": "no-cache",  # revalidated: a changed event shows at once
                "ETag": page.etag,
                "Content-Language": language,
                "Vary": "Accept-Language, Cookie, Accept-Encoding",
            }
        )
        encoded = encode_headers({name.lower(): value for name, value in headers.items()})
        if query.get("lang") == language:  # as LanguageParameterMiddleware keeps the choice
            cookie = (
                f"{settings.LANGUAGE_COOKIE_NAME}={language}; Max-Age={365 * 24 * 3600}; "
                "Path=/; SameSite=Lax"
            )
            encoded.append((b"set-cookie", cookie.encode("latin-1")))
        if page.etag in door.headers.get("if-none-match", ""):
            await send({"type": "http.response.start", "status": 304, "headers": encoded})
            await send({"type": "http.response.body", "body": b""})
            return
        body = page.gzipped if "gzip" in door.headers.get("accept-encoding", "") else page.plain
        if body is page.gzipped:
            encoded.append((b"content-encoding", b"gzip"))
        encoded.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": encoded})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

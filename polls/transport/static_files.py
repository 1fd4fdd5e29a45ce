"""Static files as a bare ASGI app in front of Django: what every arriving phone fetches.

A phone's first visit fetches the page's scripts and styles, a dozen files, all at once with the
rest of the hall. Through Django each of them crossed the middleware chain and WhiteNoise, with
two hops into Django's one shared sync thread per file (``polls.middleware``), so a join storm's
static files queued there (docs/performance.md, "A hall arriving at once"). Here a file is read
from ``STATIC_ROOT`` once per process, with its gzip variant from collectstatic, and every later
request is a dictionary lookup and two ASGI messages.

What WhiteNoise would answer, it answers: the hashed names of the manifest are immutable for a
year, the others may be kept a minute; an ETag answers a revalidation with 304; gzip when asked.
Anything it does not know (a range request, a method other than GET and HEAD, a missing file, a
development server whose files change under it, ``DEBUG`` or WhiteNoise's autorefresh) goes on to
Django unchanged.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from ..origin import headers_of
from .responses import SECURITY_HEADERS, encode_headers

IMMUTABLE = "max-age=315360000, public, immutable"
REVALIDATE = "max-age=60, public"
# Of the security headers: a static file is cached, and framed or not by the page that uses it.
STATIC_SECURITY_HEADERS = {
    name: value
    for name, value in SECURITY_HEADERS.items()
    if name not in ("Cache-Control", "X-Frame-Options")
}


@dataclass(frozen=True)
class Variant:
    """One encoding of a file, with the headers of its 200."""

    body: bytes
    headers: list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class StaticFile:
    etag: bytes
    plain: Variant
    gzip: Variant | None

    def variant(self, accept_encoding: str) -> Variant:
        if self.gzip is not None and "gzip" in accept_encoding:
            return self.gzip
        return self.plain


def _content_type(name: str) -> str:
    guessed, _encoding = mimetypes.guess_type(name)
    if name.endswith((".js", ".mjs")):
        guessed = "text/javascript"
    guessed = guessed or "application/octet-stream"
    if guessed.startswith("text/") or guessed in ("application/json", "image/svg+xml"):
        guessed += "; charset=utf-8"
    return guessed


def load_static_file(root: Path, name: str, immutable: bool) -> StaticFile | None:
    """The file ``name`` under ``root`` ready to serve, or None when there is no such file (or
    the name leads out of ``root``)."""
    path = (root / name).resolve()
    if root not in path.parents or not path.is_file():
        return None
    body = path.read_bytes()
    etag = f'"{hashlib.sha1(body).hexdigest()[:16]}"'.encode()  # noqa: S324 - a name, not a seal
    gzipped = path.with_name(path.name + ".gz")
    common = {
        "Content-Type": _content_type(name),
        "Cache-Control": IMMUTABLE if immutable else REVALIDATE,
        "ETag": etag.decode(),
        **STATIC_SECURITY_HEADERS,
    }
    if gzipped.is_file():
        common["Vary"] = "Accept-Encoding"

    def variant(data: bytes, encoding: str | None) -> Variant:
        headers = dict(common, **({"Content-Encoding": encoding} if encoding else {}))
        headers["Content-Length"] = str(len(data))
        return Variant(data, encode_headers({name.lower(): v for name, v in headers.items()}))

    gzip = variant(gzipped.read_bytes(), "gzip") if gzipped.is_file() else None
    return StaticFile(etag, variant(body, None), gzip)


class StaticPath:
    """ASGI middleware: files under ``STATIC_URL`` answered here, the rest goes on."""

    def __init__(self, app) -> None:
        self.app = app
        self.files: dict[str, StaticFile | None] = {}
        self._immutable: frozenset[str] | None = None

    def _hashed_names(self) -> frozenset[str]:
        if self._immutable is None:
            manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
            try:
                paths = json.loads(manifest.read_text())["paths"]
            except (OSError, ValueError, KeyError):
                paths = {}
            self._immutable = frozenset(paths.values())
        return self._immutable

    def _file(self, name: str) -> StaticFile | None:
        # Only names that exist enter, once each: a stranger's made-up paths cannot grow this.
        if name in self.files:
            return self.files[name]
        root = Path(settings.STATIC_ROOT).resolve()
        found = load_static_file(root, name, name in self._hashed_names())
        if found is not None:
            self.files[name] = found
        return found

    def _wanted(self, scope) -> str | None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return None
        if not settings.STATIC_ROOT or getattr(settings, "WHITENOISE_AUTOREFRESH", settings.DEBUG):
            return None  # files that change under the server: WhiteNoise looks each time
        path, prefix = scope["path"], settings.STATIC_URL
        if not path.startswith(prefix) or settings.SECURE_SSL_REDIRECT:
            return None  # plain http under SECURE_SSL_REDIRECT: Django redirects it
        return path[len(prefix) :]

    async def __call__(self, scope, receive, send):
        name = self._wanted(scope)
        found = self._file(name) if name else None
        if found is None:
            return await self.app(scope, receive, send)
        headers = headers_of(scope)
        if "range" in headers:
            return await self.app(scope, receive, send)
        if found.etag in headers.get("if-none-match", "").encode("latin-1", "replace"):
            not_modified = [(b"etag", found.etag), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 304, "headers": not_modified})
            await send({"type": "http.response.body", "body": b""})
            return
        variant = found.variant(headers.get("accept-encoding", ""))
        await send({"type": "http.response.start", "status": 200, "headers": variant.headers})
        body = b"" if scope["method"] == "HEAD" else variant.body
        await send({"type": "http.response.body", "body": body})

"""What a phone downloads to be ready to answer: the phone page and every file it pulls in,
fetched as a browser does (``visit``): up to six keep-alive connections, the references found in
the page, its stylesheets and its scripts (ES module imports followed), and an HTTP cache per
phone that follows the response headers.

The cache (``freshness``): a response is reused without asking while it is fresh (Cache-Control
``max-age``, else ``Expires`` - ``Date``, else the heuristic browsers apply to a response with
``Last-Modified`` and no explicit lifetime: a tenth of its age, RFC 9111 4.2.2); ``no-cache``
makes it stale at once, ``no-store`` keeps it out. A stale entry with an ``ETag`` or
``Last-Modified`` is revalidated (``If-None-Match`` / ``If-Modified-Since``; a ``304`` costs
headers only). ``immutable`` only matters when the user reloads, which a phone arriving through
the QR code does not, so a fresh entry is used either way. Redirects are cached only with an
explicit lifetime. Cookies are not kept (the phone page sets none).
"""

from __future__ import annotations

import asyncio
import gzip
import re
import time
import zlib
from collections import Counter
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

from .wsclient import HttpPool

try:  # a browser takes brotli; offer it only when its bodies can be read for references
    import brotli
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None

ACCEPT_ENCODING = "gzip, deflate, br" if brotli is not None else "gzip, deflate"
BROWSER_HEADERS = {"Accept-Encoding": ACCEPT_ENCODING, "Accept": "*/*"}
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5

LINK = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
SCRIPT = re.compile(r"<script\b[^>]*\bsrc=[\"']([^\"']+)[\"']", re.IGNORECASE)
ATTRIBUTE = re.compile(r"\b(rel|href)=[\"']([^\"']*)[\"']", re.IGNORECASE)
JS_IMPORT = re.compile(
    r"""(?:\bimport\s*(?:[\w*{}\s,]+from\s*)?|\bimport\s*\(\s*|\bexport\s*[\w*{}\s,]+from\s*)"""
    r"""["']([^"']+\.m?js)["']"""
)
CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)""")
FETCHED_RELS = {"stylesheet", "icon", "modulepreload", "preload", "manifest"}


def _decoded(body: bytes, encoding: str) -> str:
    try:
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br" and brotli is not None:
            body = brotli.decompress(body)
        elif encoding not in ("", "identity"):
            return ""  # br and friends: no references followed
    except (OSError, zlib.error, ValueError):
        return ""
    return body.decode("utf-8", errors="replace")


def _references(kind: str, text: str) -> list[str]:
    found = []
    if kind == "html":
        for tag in LINK.findall(text):
            attributes = {name.lower(): value for name, value in ATTRIBUTE.findall(tag)}
            rels = set(attributes.get("rel", "").lower().split())
            if rels & FETCHED_RELS and attributes.get("href"):
                found.append(attributes["href"])
        found += SCRIPT.findall(text)
    elif kind == "js":
        found += JS_IMPORT.findall(text)
    elif kind == "css":
        found += [url for url in CSS_URL.findall(text) if not url.startswith("data:")]
    return found


def _kind(path: str, content_type: str) -> str:
    if "html" in content_type:
        return "html"
    if path.endswith((".js", ".mjs")) or "javascript" in content_type:
        return "js"
    if path.endswith(".css") or "css" in content_type:
        return "css"
    return "other"


class Entry:
    """One cached response: what is needed to reuse it (no body: only the references in it)."""

    __slots__ = ("etag", "fresh_until", "kind", "last_modified", "location", "references")

    def __init__(self, headers: dict, kind: str, references: list[str], fresh_until: float):
        self.etag = headers.get("etag")
        self.last_modified = headers.get("last-modified")
        self.location = headers.get("location")
        self.kind = kind
        self.references = references
        self.fresh_until = fresh_until  # wall clock (time.time()): caches cross processes

    def __getstate__(self):
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state):
        for name, value in state.items():
            setattr(self, name, value)


def _http_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def cache_directives(value: str) -> dict[str, str]:
    directives = {}
    for part in value.split(","):
        name, _, argument = part.strip().partition("=")
        if name:
            directives[name.lower()] = argument.strip().strip('"')
    return directives


def freshness(status: int, headers: dict, now: float) -> tuple[bool, float]:
    """(whether a browser stores the response, until when it is fresh: a wall-clock time)."""
    directives = cache_directives(headers.get("cache-control", ""))
    if "no-store" in directives or status not in (200, *REDIRECTS):
        return False, now
    lifetime = None
    if "max-age" in directives:
        try:
            lifetime = max(0.0, float(directives["max-age"]))
        except ValueError:
            lifetime = 0.0
    elif "expires" in headers:
        expires = _http_time(headers["expires"])
        date = _http_time(headers.get("date")) or now
        lifetime = max(0.0, expires - date) if expires is not None else 0.0
    if "no-cache" in directives:
        lifetime = 0.0
    if status in REDIRECTS:
        return bool(lifetime), now + (lifetime or 0.0)
    if lifetime is None:
        modified = _http_time(headers.get("last-modified"))
        date = _http_time(headers.get("date")) or now
        lifetime = max(0.0, (date - modified) / 10) if modified is not None else 0.0
    validated = "etag" in headers or "last-modified" in headers
    return bool(lifetime) or validated, now + lifetime


class Visit:
    """What one phone's browser did to show the page: its requests and the time they took."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()  # "page:200", "asset:304", "asset:cached" ...
        self.files: list[dict] = []
        self.third_party: list[str] = []
        self.page_seconds: float | None = None
        self.assets_seconds: float | None = None
        self.failed: str | None = None


class Browser:
    """One phone's browser: its connections to the server and its HTTP cache."""

    def __init__(self, target: dict, cache: dict[str, Entry] | None = None) -> None:
        self.target = target
        self.pool = HttpPool(target)
        self.cache: dict[str, Entry] = dict(cache) if cache else {}
        self.base = target["url"]

    async def fetch(
        self, url: str, role: str, visit: Visit, deadline: float
    ) -> tuple[Entry | None, int]:
        """One URL through the cache: (the entry, for its references, or None on a 4xx/5xx;
        the HTTP status, 0 when the cache answered). Raises OSError and friends."""
        now = time.time()
        cached = self.cache.get(url)
        if cached is not None and cached.fresh_until > now:
            visit.requests[f"{role}:cached"] += 1
            return cached, 0
        headers = dict(BROWSER_HEADERS)
        if cached is not None and cached.etag:
            headers["If-None-Match"] = cached.etag
        if cached is not None and cached.last_modified:
            headers["If-Modified-Since"] = cached.last_modified
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = await self.pool.request(
            "GET", path, headers=headers, timeout=max(0.1, deadline - time.monotonic())
        )
        visit.requests[f"{role}:{response.status}"] += 1
        encoding = response.headers.get("content-encoding", "identity").lower()
        kind = _kind(parts.path, response.headers.get("content-type", ""))
        visit.files.append(
            {
                "path": path,
                "status": response.status,
                "type": kind,
                "encoding": encoding,
                "bytes": len(response.body),
                "wire_bytes": response.wire_bytes,
            }
        )
        if response.status == 304 and cached is not None:
            _store, cached.fresh_until = freshness(200, response.headers, time.time())
            return cached, 304
        if response.status >= 400:
            return None, response.status
        references = []
        if response.status in REDIRECTS and "location" in response.headers:
            references = [urljoin(url, response.headers["location"])]
        elif response.status == 200 and kind in ("html", "js", "css"):
            text = _decoded(response.body, encoding)
            references = [urljoin(url, found) for found in _references(kind, text)]
        store, fresh_until = freshness(response.status, response.headers, time.time())
        entry = Entry(response.headers, kind, references, fresh_until)
        if response.status in REDIRECTS:
            entry.kind = "redirect"
        if store:
            self.cache[url] = entry
        else:
            self.cache.pop(url, None)
        return entry, response.status

    async def visit(self, start: str, deadline: float) -> Visit:
        """Open ``start`` (a path) and everything it pulls in, as a browser would."""
        visit = Visit()
        started = time.monotonic()
        url = self.base + start
        for _hop in range(MAX_REDIRECTS + 1):
            entry, status = await self.fetch(url, "page", visit, deadline)
            if entry is None:
                visit.failed = f"page:{status}"
                return visit
            if entry.kind != "redirect":
                break
            url = entry.references[0]
        else:
            visit.failed = "page:redirects"
            return visit
        page_done = time.monotonic()
        visit.page_seconds = page_done - started
        seen = {url}
        failures: list[str] = []

        async def one(reference: str) -> None:
            if urlsplit(reference).netloc != self.target["host_header"]:
                visit.third_party.append(reference)
                return
            try:
                found, status = await self.fetch(reference, "asset", visit, deadline)
            except (OSError, TimeoutError, ConnectionError) as error:
                failures.append(f"asset:{type(error).__name__}")
                return
            if found is None:
                failures.append(f"asset:{status}")
                return
            await follow(found.references)

        async def follow(references: list[str]) -> None:
            fresh = [r for r in references if r not in seen]
            seen.update(fresh)
            if fresh:
                await asyncio.gather(*(one(reference) for reference in fresh))

        await follow(entry.references)
        visit.assets_seconds = time.monotonic() - page_done
        if failures:
            visit.failed = failures[0]
        return visit

    def close(self) -> None:
        self.pool.close()


async def measure_phone_page(
    target: dict, code: str, timeout: float = 10.0
) -> tuple[dict, dict[str, Entry]]:
    """A first visit to the phone page (see ``Browser``), summed as served, and the cache it
    leaves (what a phone arriving a second time starts with)."""
    browser = Browser(target)
    try:
        visit = await browser.visit(f"/e/{code}/", time.monotonic() + timeout)
    finally:
        browser.close()
    files = visit.files
    ok = all(item["status"] < 400 for item in files) and visit.failed is None
    measured = {
        "ok": ok and bool(files),
        "bytes": sum(item["bytes"] for item in files),
        "wire_bytes": sum(item["wire_bytes"] for item in files),
        "all_gzipped": all(
            item["encoding"] in ("gzip", "br") for item in files if item["type"] != "other"
        ),
        "accept_encoding": ACCEPT_ENCODING,
        "connections": browser.pool.opened,
        "files": files,
        "third_party": visit.third_party,
    }
    return measured, browser.cache

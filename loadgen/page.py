"""What a phone downloads to be ready to answer: the phone page and every file it pulls in."""

from __future__ import annotations

import gzip
import re
import zlib
from urllib.parse import urljoin, urlsplit

from .wsclient import http_request

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
        elif encoding not in ("", "identity"):
            return ""  # br and friends: no references followed
    except (OSError, zlib.error):
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


async def measure_phone_page(target: dict, code: str, timeout: float = 10.0) -> dict:
    """GET the phone page as a browser would (``Accept-Encoding: gzip``), then its CSS, scripts
    (following ES module imports), icons and CSS ``url()``\\s; sum the bytes as served."""
    base = f"http://{target['host_header']}"
    queue = [f"{base}/e/{code}/"]
    seen: set[str] = set()
    files = []
    third_party = []
    while queue:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        parts = urlsplit(url)
        if parts.netloc != target["host_header"]:
            third_party.append(url)
            continue
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = await http_request(
            target["ip"],
            target["port"],
            "GET",
            path,
            host_header=target["host_header"],
            headers={"Accept-Encoding": "gzip", "Accept": "*/*"},
            timeout=timeout,
        )
        encoding = response.headers.get("content-encoding", "identity").lower()
        kind = _kind(parts.path, response.headers.get("content-type", ""))
        files.append(
            {
                "path": path,
                "status": response.status,
                "type": kind,
                "encoding": encoding,
                "bytes": len(response.body),
                "wire_bytes": response.wire_bytes,
            }
        )
        if response.status in (301, 302, 303, 307, 308) and "location" in response.headers:
            if len(files) < 10:
                queue.insert(0, urljoin(url, response.headers["location"]))
            continue
        if response.status == 200 and kind in ("html", "js", "css"):
            for reference in _references(kind, _decoded(response.body, encoding)):
                queue.append(urljoin(url, reference))
    ok = all(item["status"] < 400 for item in files)
    return {
        "ok": ok and bool(files),
        "bytes": sum(item["bytes"] for item in files),
        "wire_bytes": sum(item["wire_bytes"] for item in files),
        "all_gzipped": all(item["encoding"] == "gzip" for item in files if item["type"] != "other"),
        "files": files,
        "third_party": third_party,
    }

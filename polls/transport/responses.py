"""What every HTTP answer of the bare ASGI apps in front of Django carries (the join API, the
HTTP fallback): the headers Django's middlewares would have added, built once."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpResponse

from ..middleware import content_security_policy
from ..origin import allowed_host, headers_of, is_secure


@dataclass(frozen=True)
class Door:
    """A request at a bare ASGI app's door: its headers, its host and whether it came over https,
    read once, with the two checks Django's middlewares would make before any view."""

    headers: dict[str, str]
    host: str
    secure: bool

    @classmethod
    def of(cls, scope) -> Door:
        headers = headers_of(scope)
        return cls(headers, headers.get("host", ""), is_secure(scope, headers))

    @property
    def for_django(self) -> bool:
        """Plain http under SECURE_SSL_REDIRECT: Django's SecurityMiddleware redirects it."""
        return settings.SECURE_SSL_REDIRECT and not self.secure

    @property
    def host_allowed(self) -> bool:
        return allowed_host(self.host)


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def security_headers(host: str, secure: bool) -> dict[str, str]:
    """As SecurityMiddleware and ours would set them, HSTS only over https."""
    headers = dict(SECURITY_HEADERS)
    if secure and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers["Strict-Transport-Security"] = hsts
    headers["Content-Security-Policy"] = content_security_policy(host)
    return headers


def encode_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


async def send_response(send, response: HttpResponse, host: str, secure: bool) -> None:
    """A whole Django response over ASGI, with the security headers it does not set itself."""
    for name, value in security_headers(host, secure).items():
        response.headers.setdefault(name, value)
    response.headers["Content-Length"] = str(len(response.content))  # else Daphne chunks it
    headers = encode_headers(dict(response.items()))
    for cookie in response.cookies.values():
        headers.append((b"set-cookie", cookie.output(header="").strip().encode("ascii")))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})


async def read_body(receive, limit: int) -> bytes | None:
    """The request body, cut after ``limit`` bytes (longer is too large anyway, and the rest is
    not read); None: the client went away."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > limit or not message.get("more_body", False):
            return body[: limit + 1]

from django.urls import path, re_path

from .transport.websocket import PhoneSocket, StageSocket


async def refuse_unknown_path(scope, receive, send) -> None:
    """A socket to a path no page opens (a code too long for one, a made-up path): refused at
    the handshake (HTTP 403), where the router would fail with a traceback in the log for each."""
    await receive()  # websocket.connect
    await send({"type": "websocket.close"})


websocket_urlpatterns = [
    path("ws/e/<code:code>/stage/", StageSocket.as_asgi()),
    path("ws/e/<code:code>/", PhoneSocket.as_asgi()),
    re_path(r"", refuse_unknown_path),
]

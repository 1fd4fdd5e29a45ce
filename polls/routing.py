from django.urls import path

from .transport.websocket import PhoneSocket, StageSocket

websocket_urlpatterns = [
    path("ws/e/<code:code>/stage/", StageSocket.as_asgi()),
    path("ws/e/<code:code>/", PhoneSocket.as_asgi()),
]

"""ASGI entry point: HTTP through Django (the operator's URLs, the join API and the HTTP fallback
in front of it), WebSockets through polls.transport."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.prod")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from polls.health import OpsPaths  # noqa: E402
from polls.join_api import JoinFastPath  # noqa: E402
from polls.origin import OriginCheck  # noqa: E402
from polls.routing import websocket_urlpatterns  # noqa: E402
from polls.transport.http_stream import FallbackPath  # noqa: E402
from polls.transport.phone_page import PhonePagePath  # noqa: E402
from polls.transport.static_files import StaticPath  # noqa: E402

application = ProtocolTypeRouter(
    {
        # What a join storm asks, the phone page, its static files and the join, skips Django's
        # middleware stack (polls.transport.phone_page, .static_files, polls.join_api); health
        # checks and scrapes, with any Host header, reach no part of it (polls.health).
        "http": OpsPaths(StaticPath(PhonePagePath(FallbackPath(JoinFastPath(django_asgi_app))))),
        "websocket": OriginCheck(URLRouter(websocket_urlpatterns)),
    }
)

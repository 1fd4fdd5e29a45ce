from django.urls import re_path

from .consumers import PhoneConsumer, StageConsumer

websocket_urlpatterns = [
    re_path(r"^ws/e/(?P<code>[A-Z0-9]{4,12})/stage/$", StageConsumer.as_asgi()),
    re_path(r"^ws/e/(?P<code>[A-Z0-9]{4,12})/$", PhoneConsumer.as_asgi()),
]

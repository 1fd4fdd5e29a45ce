"""URLs of an event's look (polls.branding); included at the site root."""

from django.urls import path, re_path

from . import branding

app_name = "branding"

urlpatterns = [
    path("e/<code:code>/logo", branding.logo, name="logo"),
    re_path(r"^brand/(?P<accent>[0-9A-Fa-f]{6})\.css$", branding.brand_style, name="style"),
]

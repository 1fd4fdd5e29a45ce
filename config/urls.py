from django.contrib import admin
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("favicon.ico", lambda request: redirect(static("polls/icon.svg"), permanent=True)),
    path("", include("polls.export_urls")),
    path("", include("polls.urls")),
    path("", include("polls.branding_urls")),
    path("", include("polls.attendee_urls")),
]

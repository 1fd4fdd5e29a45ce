from django.urls import path

from . import views

app_name = "polls"

urlpatterns = [
    path("", views.home, name="home"),
    path("e/<code:code>/", views.phone, name="phone"),
    path("e/<code:code>/stage/", views.stage, name="stage"),
    path("e/<code:code>/host/", views.host, name="host"),
    path("api/e/<code:code>/join", views.join, name="join"),
]

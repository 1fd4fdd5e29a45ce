from django.urls import path

from . import views

app_name = "polls"

urlpatterns = [
    path("", views.home, name="home"),
    path("e/<str:code>/", views.phone, name="phone"),
    path("e/<str:code>/stage/", views.stage, name="stage"),
    path("e/<str:code>/host/", views.host, name="host"),
    path("api/e/<str:code>/join", views.join, name="join"),
]

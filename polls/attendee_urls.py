"""The printable badges of an attendee-list event; included at the site root."""

from django.urls import path

from . import attendee_admin

app_name = "attendees"

urlpatterns = [
    path("e/<code:code>/badges/", attendee_admin.badges, name="badges"),
]

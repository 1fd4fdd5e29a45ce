from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PollsConfig(AppConfig):
    name = "polls"
    verbose_name = _("Live polls")

    def ready(self) -> None:
        from . import qa_admin, signals  # noqa: F401 - connects the receivers; the Q&A's admin

"""Research figures edited while revealed reach the screens at once.

The benchmarks app knows nothing of polls, so polls listens for its saves.
"""

from django.db.models.signals import post_save
from django.dispatch import receiver

from benchmarks.models import Figure

from . import live
from .models import Question


@receiver(post_save, sender=Figure, dispatch_uid="polls.figure_saved")
def figure_saved(sender, instance: Figure, **kwargs) -> None:
    events = (
        Question.objects.filter(figure_links__figure=instance, revealed=True)
        .values_list("event_id", flat=True)
        .distinct()
    )
    for event_id in events:
        live.notify_event_changed(event_id)

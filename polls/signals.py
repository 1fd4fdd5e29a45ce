"""Model changes made outside the host actions that screens must hear of.

The benchmarks app knows nothing of polls, so polls listens for its saves.
"""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from benchmarks.models import Figure

from . import push
from .models import Event, Question


@receiver(post_save, sender=Figure, dispatch_uid="polls.figure_saved")
def figure_saved(sender, instance: Figure, **kwargs) -> None:
    events = (
        Question.objects.filter(figure_links__figure=instance, revealed=True)
        .values_list("event_id", flat=True)
        .distinct()
    )
    for event_id in events:
        push.notify_event_changed(event_id)


@receiver(post_delete, sender=Event, dispatch_uid="polls.event_deleted")
def event_deleted(sender, instance: Event, **kwargs) -> None:
    """Its sockets close, and tokens for it stop working, once the deletion is committed (before
    that, a process reading the event would cache it again)."""
    event_id = instance.id
    transaction.on_commit(lambda: push.forget_event(event_id))

"""Model changes made outside the host actions that screens must hear of.

The benchmarks app knows nothing of polls, so polls listens for its saves.
"""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from benchmarks.models import Figure

from . import actions, push
from .models import Event, Question


@receiver(post_save, sender=Figure, dispatch_uid="polls.figure_saved")
def figure_saved(sender, instance: Figure, **kwargs) -> None:
    """The events revealing the figure get a new revision in the save's transaction, and their
    screens the new figure once it is committed."""
    events = (
        Question.objects.filter(figure_links__figure=instance, revealed=True)
        .values_list("event_id", flat=True)
        .distinct()
    )
    with transaction.atomic():
        actions.figure_changed(list(events))


@receiver(post_delete, sender=Event, dispatch_uid="polls.event_deleted")
def event_deleted(sender, instance: Event, **kwargs) -> None:
    """Its sockets close, and tokens for it stop working, once the deletion is committed (before
    that, a process reading the event would cache it again)."""
    event_id = instance.id
    transaction.on_commit(lambda: push.forget_event(event_id))

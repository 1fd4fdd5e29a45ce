from django.core.management.base import BaseCommand
from django.db.models import Q

from polls import qa, writer
from polls.models import Event


class Command(BaseCommand):
    help = (
        "Rebuild every event's audience Q&A in Redis (items, votes, pin, settings, who is set "
        "aside) from the database; drains the vote log first."
    )

    def handle(self, *args, **options):
        drained = writer.drain_all()
        self.stdout.write(f"drained {drained} pending answers and votes first")
        events = Event.objects.filter(Q(qa_config__isnull=False) | Q(qa_items__isnull=False))
        event_ids = sorted(set(events.values_list("pk", flat=True)))
        for event_id in event_ids:
            qa.rebuild_from_db(event_id)
        self.stdout.write(f"rebuilt the Q&A of {len(event_ids)} events")

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from polls.codes import normalise_code
from polls.models import Event
from polls.views import stage_url


class Command(BaseCommand):
    help = "Print an event's phone, stage (with its key) and remote-control URLs."

    def add_arguments(self, parser):
        parser.add_argument("code", nargs="+", help="One or more event codes.")
        parser.add_argument("--base", default="http://127.0.0.1:8000")

    def handle(self, *args, code, base, **options):
        base = base.rstrip("/")
        for number, each in enumerate(code):
            event = Event.objects.filter(code=normalise_code(each)).first()
            if event is None:
                raise CommandError(f"No event with the code {each}")
            if len(code) > 1:
                self.stdout.write(("\n" if number else "") + f"{event.code}: {event.title}")
            self.stdout.write(f"phone:  {base}{reverse('polls:phone', args=[event.code])}")
            self.stdout.write(f"stage:  {base}{stage_url(event)}")
            self.stdout.write(f"remote: {base}{reverse('polls:host', args=[event.code])}")

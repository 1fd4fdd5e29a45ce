from django.core.management.base import BaseCommand

from polls import demo, show


class Command(BaseCommand):
    help = "Create the demo event KSF2018 (idempotent) with its first question current and open."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Delete and recreate the demo.")

    def handle(self, *args, reset=False, **options):
        event, created = demo.ensure_demo(reset=reset)
        if created:
            first = event.questions.first()
            show.do_set_current(event, first, open_it=True)
            self.stdout.write(f"demo event {event.code} created; its first question is open")
        else:
            self.stdout.write(f"demo event {event.code} already present")

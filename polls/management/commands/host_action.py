from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from polls import show
from polls.codes import normalise_code
from polls.models import Event


class Command(BaseCommand):
    help = "Run one remote-control action on an event from the terminal (prev, next, open, ...)."

    def add_arguments(self, parser):
        parser.add_argument("code")
        parser.add_argument("action", choices=show.HOST_ACTIONS)
        parser.add_argument("--word", default="", help="For hide_word / show_word.")

    def handle(self, *args, code, action, word, **options):
        event = Event.objects.filter(code=normalise_code(code)).first()
        if event is None:
            raise CommandError(f"No event with the code {code}")
        try:
            show.do_host_action(event, action, word=word)
        except ValidationError as error:
            raise CommandError(error.messages[0]) from error
        event.refresh_from_db()
        self.stdout.write(f"{action}: current question is {event.current_question_id}")

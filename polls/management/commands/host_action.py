from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from polls import actions, consistency, voice
from polls.codes import normalise_code
from polls.models import Event


class Command(BaseCommand):
    help = "Run one remote-control action on an event from the terminal (prev, next, open, ...)."

    def add_arguments(self, parser):
        parser.add_argument("code")
        parser.add_argument("action", choices=actions.HOST_ACTIONS)
        parser.add_argument("--word", default="", help="For hide_word / show_word.")
        parser.add_argument(
            "--burst",
            default="",
            help="For set_aside: a burst id; for restore: a set-aside group id. Without it, "
            "set_aside and restore list the ids and change nothing.",
        )

    def handle(self, *args, code, action, word, burst, **options):
        event = Event.objects.filter(code=normalise_code(code)).first()
        if event is None:
            raise CommandError(f"No event with the code {code}")
        if action in ("set_aside", "restore") and not burst:
            self._list_bursts(event)
            return
        try:
            actions.do_host_action(event, action, word=word, burst=burst)
        except ValidationError as error:
            raise CommandError(error.messages[0]) from error
        event.refresh_from_db()
        self.stdout.write(f"{action}: current question is {event.current_question_id}")

    def _list_bursts(self, event: Event) -> None:
        aside = consistency.set_aside_of(event.id)
        question = event.current_question
        bursts = voice.find_bursts(question.id, aside) if question else []
        self.stdout.write(f"suspicious bursts on question {getattr(question, 'id', None)}:")
        for burst in bursts:
            self.stdout.write(
                f"  set_aside --burst {burst.id}: {burst.size} joined within "
                f"{burst.joined_within} s, answer {burst.value!r}, {burst.share:.0%} of answers, "
                f"{burst.aside} set aside"
            )
        self.stdout.write("set aside:")
        for group in voice.aside_groups(aside):
            self.stdout.write(
                f"  restore --burst {group.id}: {group.size} joined within {group.joined_within} s"
            )

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from polls import attendees
from polls.codes import normalise_code
from polls.models import Event


class Command(BaseCommand):
    help = (
        "Make personal codes for an attendee-list event and print one per line: "
        "code<TAB>link (the phone page with the code)."
    )

    def add_arguments(self, parser):
        parser.add_argument("code", help="the event's join code")
        parser.add_argument("--count", type=int, required=True, help="how many codes to make")
        parser.add_argument(
            "--base", default="", help="site address for absolute links, e.g. https://host"
        )

    def handle(self, *args, code, count, base, **options):
        event = Event.objects.filter(code=normalise_code(code)).first()
        if event is None:
            raise CommandError(f"No event with the code {code}")
        if base:
            parts = urlsplit(base)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
                raise CommandError(
                    f"--base must be an http(s) address such as https://host: {base}"
                )
        try:
            made = attendees.make_codes(event, count)
        except ValidationError as error:
            raise CommandError(error.messages[0]) from error
        if event.voice != Event.Voice.ATTENDEES:
            # Allowed, so codes can be printed before the switch; but until then they keep
            # nobody out.
            self.stderr.write(
                f"Warning: {event.code} is open to anyone with its join code; these codes only "
                "count once its 'who may answer' is the attendee list."
            )
        for attendee in made:
            link = attendees.phone_link(event, attendee.code, base)
            self.stdout.write(f"{attendees.display_code(attendee.code)}\t{link}")

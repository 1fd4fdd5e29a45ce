from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from redis.exceptions import RedisError

from polls import actions, demo, tally
from polls.redis_client import get_sync_redis


class Command(BaseCommand):
    help = (
        "Create the demo event KSF2018 (idempotent) with its first question current and open "
        "and its audience Q&A open with a few sample items (in Redis too), the quiz demo "
        f"{demo.QUIZ_DEMO_CODE} (quiz mode, its first question current, opened by the host), "
        f"and its host account 'host' (password: {demo.DEMO_PASSWORD_VARIABLE}, else random "
        "and printed once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Delete and recreate the demo.")
        parser.add_argument(
            "--new-password",
            action="store_true",
            help="Give the demo host a new random password and print it.",
        )
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Create the demo and its host account under production settings too.",
        )

    def handle(self, *args, reset=False, new_password=False, allow_production=False, **options):
        # Only development and test settings say the demo host may exist; anything else is a
        # server where an account nobody chose would be a way in.
        if not getattr(settings, "ZP_DEMO_ALLOWED", False) and not allow_production:
            raise CommandError(
                "seed_demo makes a host account with every polls permission: not under "
                "production settings unless you pass --allow-production."
            )
        try:
            demo.demo_password_from_environment()
            # Without Redis the first question cannot be opened; finding out before anything
            # is written keeps the demo as it was.
            get_sync_redis().ping()
        except demo.DemoPasswordTooShort as error:
            raise CommandError(f"{error}; nothing was changed.") from error
        except (RedisError, OSError) as error:
            raise CommandError(
                f"Redis is not reachable at {settings.REDIS_URL} ({error}); nothing was changed."
            ) from error
        try:
            with transaction.atomic():
                host, password = demo.ensure_demo_host(new_password=new_password)
                event, created = demo.ensure_demo(reset=reset, host=host)
                first = event.questions.first()
                # A demo left with no current question (an interrupted reset of an older
                # version, an admin edit) is mended, as the README promises its first question.
                mended = not created and event.current_question_id is None and first is not None
                if created or mended:
                    actions.do_set_current(event, first, open_it=True)
                quiz, quiz_created = demo.ensure_quiz_demo(reset=reset, host=host)
                if quiz_created:
                    # Current but not open: a timed question's clock starts as the host opens it.
                    actions.do_set_current(quiz, quiz.questions.first())
        except (ValidationError, tally.TallyUnavailable, RedisError, OSError) as error:
            # Redis went away after the check: the whole transaction is undone.
            raise CommandError(
                f"Redis is not reachable at {settings.REDIS_URL}; nothing was changed."
            ) from error
        if created:
            self.stdout.write(f"demo event {event.code} created; its first question is open")
        elif mended:
            self.stdout.write(f"demo event {event.code} had no current question; the first is open")
        else:
            self.stdout.write(f"demo event {event.code} already present")
        if quiz_created:
            self.stdout.write(
                f"demo quiz {quiz.code} created; open its first question from the remote"
            )
        else:
            self.stdout.write(f"demo quiz {quiz.code} already present")
        if password:
            self.stdout.write(
                f"demo host '{host.get_username()}' password: {password}  (shown only now; "
                "seed_demo --new-password makes another)"
            )

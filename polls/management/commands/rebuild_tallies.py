from django.core.management.base import BaseCommand

from polls import tally, writer
from polls.consistency import set_aside_of
from polls.models import Answer, Question


class Command(BaseCommand):
    help = (
        "Rebuild every question's Redis tally from the Answer table (drains the log first); "
        "participants the host set aside stay uncounted."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--flags-only",
            action="store_true",
            help="Only set each question's open/closed flag in Redis from the database.",
        )

    def handle(self, *args, flags_only=False, **options):
        if not flags_only:
            drained = writer.drain_all()
            self.stdout.write(f"drained {drained} pending answers first")
        asides: dict[int, set[str]] = {}
        for question in Question.objects.order_by("id"):
            is_open = question.state == Question.State.OPEN
            if question.event_id not in asides:
                asides[question.event_id] = set_aside_of(question.event_id)
            if flags_only:
                # A Redis that lost everything must not count set-aside participants again.
                tally.sync_aside([question.id], asides[question.event_id])
                tally.set_open(question.id, is_open)
                continue
            answers = dict(
                Answer.objects.filter(question=question).values_list("participant", "value")
            )
            snapshot = tally.rebuild(
                question.id, question.kind, is_open, answers, asides[question.event_id]
            )
            self.stdout.write(f"question {question.id}: {snapshot.total} respondents")

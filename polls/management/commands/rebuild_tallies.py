from django.core.management.base import BaseCommand

from polls import consistency, tally, writer
from polls.models import Question


class Command(BaseCommand):
    help = "Rebuild every question's Redis tally from the Answer table (drains the log first)."

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
        for question in Question.objects.order_by("id"):
            is_open = question.state == Question.State.OPEN
            if flags_only:
                tally.set_open(question.id, is_open)
                continue
            # In answered order: a capped word cloud counts its words as the script did.
            answers = consistency.answers_in_answered_order(question)
            snapshot = tally.rebuild(question.id, question.kind, is_open, answers)
            self.stdout.write(f"question {question.id}: {snapshot.total} respondents")

from django.core.management.base import BaseCommand

from polls import consistency, quiz_board, tally, writer
from polls.models import Question


class Command(BaseCommand):
    help = (
        "Rebuild every question's Redis tally from the Answer table (drains the log first), and "
        "every quiz's scores; participants the host set aside stay uncounted."
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
        segments: dict[int, dict[str, str]] = {}
        for question in Question.objects.order_by("id"):
            is_open = question.state == Question.State.OPEN
            if question.event_id not in asides:
                asides[question.event_id] = consistency.set_aside_of(question.event_id)
                segments[question.event_id] = consistency.segments_of(question.event_id)
            if flags_only:
                # A Redis that lost everything must not count set-aside participants again.
                tally.sync_aside({question.id: question.kind}, asides[question.event_id])
                tally.set_open(question.id, is_open)
                continue
            # In answered order: a capped word cloud counts its words as the script did.
            answers = consistency.answers_in_answered_order(question)
            snapshot = tally.rebuild(
                question.id,
                question.kind,
                is_open,
                answers,
                asides[question.event_id],
                segments[question.event_id],
                quiz_board.clock_of(question),
            )
            self.stdout.write(f"question {question.id}: {snapshot.total} respondents")
        if flags_only:
            return
        # The quiz's scores and leaderboards, from the same rows.
        for event_id in sorted(asides):
            recomputed = quiz_board.recompute(event_id)
            if recomputed:
                tally.write_scores(event_id, recomputed)
                self.stdout.write(f"event {event_id}: {len(recomputed)} scored questions rescored")

from django.core.management.base import BaseCommand

from polls import quiz_board, tally, writer
from polls.models import Event


class Command(BaseCommand):
    help = (
        "Recompute every quiz score from the Answer table (drains the answer log first) and "
        "compare it with the live leaderboard in Redis; --write puts the recomputed ones there."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--write",
            action="store_true",
            help="Replace the scores and leaderboards in Redis with the recomputed ones (after a "
            "loss of Redis, or a set-aside participant's points to take off).",
        )
        parser.add_argument(
            "--exit-status",
            action="store_true",
            help="Exit with status 1 when a live score differs and was not rewritten.",
        )

    def handle(self, *args, write=False, exit_status=False, **options):
        drained = writer.drain_all()
        self.stdout.write(f"drained {drained} pending answers first")
        differences = 0
        events = Event.objects.filter(questions__scored=True).distinct().order_by("id")
        for event in events:
            recomputed = quiz_board.recompute(event.id)
            differing = 0
            for question_id, scores in recomputed.items():
                live = tally.read_scores_sync(question_id)
                differing += sum(
                    1 for p in live.keys() | scores.keys() if live.get(p) != scores.get(p)
                )
            players = len({p for scores in recomputed.values() for p in scores})
            if write:
                tally.write_scores(event.id, recomputed)
            differences += differing
            self.stdout.write(
                f"event {event.code}: {len(recomputed)} scored questions, {players} players, "
                f"{differing} scores differ" + (" (rewritten)" if write else "")
            )
        self.stdout.write(f"{events.count()} quiz events checked, {differences} differences")
        if exit_status and differences and not write:
            raise SystemExit(1)

from django.core.management.base import BaseCommand

from polls.consistency import check_all, check_qa


class Command(BaseCommand):
    help = (
        "Check every Redis tally against the Answer table, and every event's Q&A vote counts "
        "against the QaVote rows (drains the logs first)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--repair",
            action="store_true",
            help="Make the table mirror Redis and recount tallies from their stored answers; "
            "rebuild a Q&A whose counts differ in Redis from its rows.",
        )
        parser.add_argument(
            "--exit-status",
            action="store_true",
            help="Exit with status 1 when differences are found and not repaired (for a timer: "
            "the run shows as failed).",
        )

    def handle(self, *args, repair=False, exit_status=False, **options):
        checks = check_all(repair=repair)
        qa_checks = check_qa(repair=repair)
        total = 0
        for check in checks:
            total += check.differences
            if check.differences:
                self.stdout.write(
                    f"question {check.question_id}: {len(check.missing_rows)} missing rows, "
                    f"{len(check.extra_rows)} extra rows, {len(check.different_rows)} different "
                    f"rows, counts {'wrong' if check.counts_wrong else 'right'}"
                    + (", set-aside list wrong" if check.aside_wrong else "")
                    + (" (repaired)" if repair else "")
                )
        qa_total = 0
        for check in qa_checks:
            qa_total += check.differences
            if check.differences:
                items = ", ".join(
                    f"item {item_id} Redis {_shown(held)} rows {_shown(rows)}"
                    for item_id, (held, rows) in check.votes_wrong.items()
                )
                plural = "" if check.differences == 1 else "s"
                self.stdout.write(
                    f"Q&A of event {check.event_id}: votes differ on {check.differences} "
                    f"item{plural} ({items})" + (" (repaired)" if repair else "")
                )
        self.stdout.write(
            f"Q&A of {len(qa_checks)} events checked: votes differ on {qa_total} items"
        )
        # The last line keeps its shape (a timer's log is read for it); its total is everything.
        total += qa_total
        self.stdout.write(f"{len(checks)} questions checked, {total} differences")
        if exit_status and total and not repair:
            raise SystemExit(1)


def _shown(count: int | None) -> str:
    return "none" if count is None else str(count)

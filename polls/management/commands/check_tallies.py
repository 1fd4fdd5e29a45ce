from django.core.management.base import BaseCommand

from polls.consistency import check_all


class Command(BaseCommand):
    help = "Check every Redis tally against the Answer table (drains the log first)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--repair",
            action="store_true",
            help="Make the table mirror Redis and recount tallies from their stored answers.",
        )
        parser.add_argument(
            "--exit-status",
            action="store_true",
            help="Exit with status 1 when differences are found and not repaired (for a timer: "
            "the run shows as failed).",
        )

    def handle(self, *args, repair=False, exit_status=False, **options):
        checks = check_all(repair=repair)
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
        self.stdout.write(f"{len(checks)} questions checked, {total} differences")
        if exit_status and total and not repair:
            raise SystemExit(1)

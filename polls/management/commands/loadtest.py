import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


def _pids(values: list[str], option: str = "--server-pids") -> list[int]:
    pids = []
    for value in values:
        for part in value.split(","):
            if part.strip():
                try:
                    pids.append(int(part))
                except ValueError as error:
                    raise CommandError(f"{option}: {part!r} is not a process id") from error
    return pids


class Command(BaseCommand):
    help = (
        "Drive a running server with simulated phones, stage screens and a host; report "
        "join, answer, stage and broadcast figures and check every acknowledged answer was "
        "counted exactly once. See docs/loadtest.md."
    )

    def add_arguments(self, parser):
        # The server never imports the load generator: only this command, when it runs.
        from loadgen.options import DEFAULT_URL
        from loadgen.values import KINDS

        parser.add_argument(
            "--url",
            action="append",
            dest="urls",
            help=f"Server address, http:// or https:// (default {DEFAULT_URL}); repeat for "
            "several server processes: phones are spread round-robin.",
        )
        parser.add_argument("--phones", type=int, default=100, help="Simulated phones.")
        parser.add_argument(
            "--join-rate", type=float, default=200.0, help="Joins per second (the join storm)."
        )
        parser.add_argument(
            "--burst", type=float, default=5.0, help="Seconds over which the phones answer."
        )
        parser.add_argument(
            "--change-share",
            type=float,
            default=0.2,
            help="Share of phones (0..1) that change their answer after the ack.",
        )
        parser.add_argument(
            "--kind",
            choices=KINDS,
            default="single",
            help="Question kind of the throwaway event (ignored with --code).",
        )
        parser.add_argument(
            "--code",
            help="Answer an existing event's current question instead of the throwaway "
            "event DRUKTEST (which is deleted and recreated each run).",
        )
        parser.add_argument(
            "--hold", type=float, default=0.0, help="Seconds to hold the phones idle after joining."
        )
        parser.add_argument(
            "--processes",
            type=int,
            default=0,
            help="Load-generator processes (default: one per 2,500 phones, at most one per CPU).",
        )
        parser.add_argument(
            "--baseline",
            action="store_true",
            help="Drive the bare consumer (daphne loadgen.baseline:application).",
        )
        parser.add_argument("--report", help="Write the JSON report to this path.")
        parser.add_argument(
            "--server-pids",
            action="append",
            default=[],
            help="Server process ids for RSS/CPU (comma-separated, repeatable); processes "
            "listening on local --url ports are found by themselves.",
        )
        parser.add_argument(
            "--stages", type=int, default=0, help="Stage screens (default: one per --url)."
        )
        parser.add_argument(
            "--stage-key", help="The event's stage key (read from the database when shared)."
        )
        parser.add_argument(
            "--host-actions",
            help="Comma-separated remote-control actions for the broadcast test "
            "(default next,prev,next on the throwaway event; none on an existing one).",
        )
        parser.add_argument("--ack-timeout", type=float, default=30.0)
        parser.add_argument("--join-timeout", type=float, default=60.0)
        parser.add_argument("--drain-timeout", type=float, default=30.0)
        parser.add_argument("--settle-timeout", type=float, default=10.0)
        parser.add_argument("--broadcast-timeout", type=float, default=30.0)
        parser.add_argument(
            "--ping-interval",
            type=float,
            default=25.0,
            help="Seconds between a phone's pings, as the phone page (0: none).",
        )
        parser.add_argument(
            "--forwarded-for",
            type=int,
            default=0,
            help="Spread joins over this many X-Forwarded-For addresses (only for a server "
            "run with ZP_TRUST_X_FORWARDED_FOR=1).",
        )
        parser.add_argument("--seed", type=int, default=2018)
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument(
            "--arrival",
            choices=("page", "api"),
            default="page",
            help="page: each phone loads the phone page and its assets through its own browser "
            "cache, then joins (default); api: from the join POST on (always so with "
            "--baseline, which serves no page).",
        )
        parser.add_argument(
            "--cached-share",
            type=float,
            default=0.0,
            help="Share of phones (0..1) arriving with a warm browser cache (a second visit).",
        )
        parser.add_argument(
            "--home-share",
            type=float,
            default=0.0,
            help="Share of phones (0..1) that start at the join page /?code=<CODE> (typing the "
            "code) instead of the QR code's /e/<CODE>/.",
        )
        parser.add_argument(
            "--profile",
            metavar="DIR",
            help="Record the server with py-spy during the join phase into DIR "
            "(profile-<pid>.txt) and attribute its CPU to the steps of arriving.",
        )
        parser.add_argument(
            "--profile-pids",
            action="append",
            default=[],
            help="Processes to profile (comma-separated, repeatable; default: the processes "
            "listening on local --url ports).",
        )
        parser.add_argument(
            "--ca-file",
            help="Certificate authorities (PEM) an https:// --url's certificate is checked "
            "against, instead of the system's (a proxy with a private certificate).",
        )
        parser.add_argument(
            "--reconnect",
            action="store_true",
            help="A dropped phone or stage screen connects again (the page's backoff) and "
            "resends its unacknowledged answers, as the phone page does.",
        )
        parser.add_argument(
            "--segments",
            type=int,
            default=0,
            help="Give the throwaway event a profile question with this many options (asked on "
            "join, the stage's results split by it); the phones answer it before the burst and "
            "the check is exact per segment too (default 0: none).",
        )
        parser.add_argument(
            "--segment-none-share",
            type=float,
            default=0.1,
            help='Share of phones (0..1) answering a profile question with "rather not say".',
        )
        parser.add_argument(
            "--no-split",
            action="store_true",
            help="With --segments: leave the stage's results whole (no segments_on), so the "
            "tally counts per segment but no snapshot is split.",
        )
        parser.add_argument(
            "--qa",
            action="store_true",
            help="The audience Q&A instead of the answer burst: the throwaway event's Q&A open "
            "and on the stage, phones ask items, then vote on them; every vote checked counted "
            "once (docs/loadtest.md, 'The Q&A').",
        )
        parser.add_argument(
            "--qa-items", type=int, default=300, help="With --qa: items, one per phone."
        )
        parser.add_argument(
            "--qa-ask-seconds",
            type=float,
            default=3.0,
            help="With --qa: seconds over which the items are asked.",
        )
        parser.add_argument("--qa-votes", type=int, default=20000, help="With --qa: votes.")
        parser.add_argument(
            "--qa-vote-seconds",
            type=float,
            default=10.0,
            help="With --qa: seconds over which the votes are given.",
        )
        parser.add_argument(
            "--qa-skew",
            type=float,
            default=1.0,
            help="With --qa: Zipf exponent of the items' popularity (0: all alike).",
        )
        parser.add_argument(
            "--qa-unvote-share",
            type=float,
            default=0.05,
            help="With --qa: share of the votes (0..1) taken back later by the same phone.",
        )
        parser.add_argument(
            "--qa-observers",
            type=int,
            default=100,
            help="With --qa: phones that keep every list change they get (the list latency).",
        )
        parser.add_argument(
            "--quiz",
            action="store_true",
            help="The research quiz instead of the answer burst: a quiz-mode throwaway event, "
            "scored timed questions opened by the host, every phone answering soon after the "
            "opening, the server closing each at its deadline; every answer checked scored "
            "once and every score and leaderboard against the database (docs/performance.md, "
            "'The research quiz').",
        )
        parser.add_argument(
            "--quiz-questions",
            type=int,
            default=2,
            help="With --quiz: 1 (a single choice) or 2 (then a split estimate: places move).",
        )
        parser.add_argument(
            "--quiz-limit",
            type=int,
            default=10,
            help="With --quiz: each question's time limit (s).",
        )
        parser.add_argument(
            "--quiz-spread",
            type=float,
            default=3.0,
            help="With --quiz: seconds after the opening within which every phone answers.",
        )
        parser.add_argument(
            "--quiz-right-share",
            type=float,
            default=0.6,
            help="With --quiz: share of phones (0..1) choosing the correct option.",
        )
        parser.add_argument(
            "--quiz-results-timeout",
            type=float,
            default=15.0,
            help="With --quiz: seconds past the deadline to wait for every phone's score.",
        )
        parser.add_argument("--profile-rate", type=int, default=250, help="py-spy samples/s.")
        parser.add_argument(
            "--profile-blocking",
            action="store_true",
            help="Let py-spy pause the server for each sample (default: --nonblocking; paused, "
            "py-spy 0.4.3 counted threads idle in a queue as running).",
        )

    def handle(self, *args, **o):
        from loadgen import table
        from loadgen.options import DEFAULT_URL, LoadTestError, Options
        from loadgen.runner import run

        actions = None
        if o["host_actions"] is not None:
            actions = [a.strip() for a in o["host_actions"].split(",") if a.strip()]
        options = Options(
            urls=o["urls"] or [DEFAULT_URL],
            phones=o["phones"],
            join_rate=o["join_rate"],
            burst=o["burst"],
            change_share=o["change_share"],
            kind=o["kind"],
            code=o["code"],
            hold=o["hold"],
            processes=o["processes"],
            baseline=o["baseline"],
            report=o["report"],
            server_pids=_pids(o["server_pids"]),
            stages=o["stages"],
            stage_key=o["stage_key"],
            host_actions=actions,
            ack_timeout=o["ack_timeout"],
            join_timeout=o["join_timeout"],
            drain_timeout=o["drain_timeout"],
            settle_timeout=o["settle_timeout"],
            broadcast_timeout=o["broadcast_timeout"],
            ping_interval=o["ping_interval"],
            forwarded_for=o["forwarded_for"],
            seed=o["seed"],
            progress=not o["no_progress"],
            arrival=o["arrival"],
            cached_share=o["cached_share"],
            home_share=o["home_share"],
            profile=o["profile"],
            profile_pids=_pids(o["profile_pids"], "--profile-pids"),
            profile_rate=o["profile_rate"],
            profile_blocking=o["profile_blocking"],
            ca_file=o["ca_file"],
            reconnect=o["reconnect"],
            segments=o["segments"],
            segment_none_share=o["segment_none_share"],
            split=not o["no_split"],
            qa=o["qa"],
            qa_items=o["qa_items"],
            qa_ask_seconds=o["qa_ask_seconds"],
            qa_votes=o["qa_votes"],
            qa_vote_seconds=o["qa_vote_seconds"],
            qa_skew=o["qa_skew"],
            qa_unvote_share=o["qa_unvote_share"],
            qa_observers=o["qa_observers"],
            quiz=o["quiz"],
            quiz_questions=o["quiz_questions"],
            quiz_limit=o["quiz_limit"],
            quiz_spread=o["quiz_spread"],
            quiz_right_share=o["quiz_right_share"],
            quiz_results_timeout=o["quiz_results_timeout"],
        )
        try:
            result = run(options, stream=self.stderr._out)
        except LoadTestError as error:
            raise CommandError(str(error)) from error
        if options.report:
            Path(options.report).write_text(json.dumps(result, indent=2, default=str) + "\n")
        self.stdout.write(table.render(result))
        if result["exactness"].get("ok") is False:
            raise CommandError("the exactness check failed (see above)")

"""The load-test tool: its answer values, its latency bounds, and a smoke run against real Daphne.

Speed is reported by the tool, never asserted here: these tests check that what it reports is
honest (every acknowledged answer counted exactly once, on the stage, in Redis and in the
database) and that the report has its documented fields.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from loadgen import page, phones, procinfo, stats, values
from loadgen import profile as profiling
from loadgen.django_side import create_question
from polls import answers
from polls.state import question_payload, question_spec
from tests.factories import make_event
from tests.servers import ROOT, Stack, make_stack

REPORT_FIELDS = {
    "tool": None,
    "report_version": None,
    "mode": None,
    "started_at": None,
    "duration_s": None,
    "options": None,
    "target": {"urls", "code", "question_id", "kind", "throwaway_event"},
    "machine": {"cpus", "python", "open_files_limit", "generator_processes"},
    "phones": {"target", "connected", "held", "dropped", "drops_by_phase", "close_codes"},
    "join": {"ok", "failed", "success_percent", "failures", "post_ms", "ready_ms", "duration_s"},
    "answers": {"sent", "acked", "errors", "unacked", "per_second", "ack_ms", "changes"},
    "stage": {"clients"},
    "broadcast": {"rounds", "ms"},
    "exactness": {"ok", "verdict", "totals"},
    "server": {"processes", "rss_per_connection_kib"},
    "generator": {"processes", "cpu_percent"},
    "phases": None,
    "page": None,
    "arrival": {
        "mode",
        "page_ms",
        "assets_ms",
        "post_ms",
        "socket_open_ms",
        "first_state_ms",
        "ready_ms",
        "bytes_in_per_phone",
        "requests",
    },
    "profile": None,
    "warnings": None,
}
LATENCY_FIELDS = {"n", "p50", "p90", "p99", "max", "mean"}


def run_loadtest(stack: Stack, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "loadtest", "--no-progress", *args],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr + stack.log_text()[-3000:]
    return result.stdout


def assert_documented_fields(report: dict) -> None:
    for name, inner in REPORT_FIELDS.items():
        assert name in report, name
        if inner:
            assert inner <= set(report[name]), (name, inner - set(report[name]))
    for summary in (
        report["join"]["post_ms"],
        report["join"]["ready_ms"],
        report["answers"]["ack_ms"],
        report["broadcast"]["ms"],
    ):
        assert set(summary) == LATENCY_FIELDS


@pytest.mark.django_db
@pytest.mark.parametrize("kind", values.KINDS)
def test_drawn_values_are_valid_and_changes_differ(kind):
    event = make_event(code="DRUKTEST")
    question = create_question(event, kind, 1)
    payload = question_payload(question, 1, 1)
    spec = question_spec(payload)
    rng = random.Random(7)
    for _ in range(50):
        value = values.draw(payload, rng)
        counted = answers.validate_value(spec, value)
        change = values.draw_change(payload, rng, counted)
        assert not values.same_answer(kind, answers.validate_value(spec, change), counted)


def test_answer_to_stage_bounds_bracket_the_true_latency():
    # Three answers counted in order a (v1), b (v2), c (v3); the ack of b arrives before a's.
    sent = {"a": 0.00, "b": 0.01, "c": 0.50}
    acked = {"a": 0.30, "b": 0.20, "c": 0.60}
    stage = stats.StageSeries([(0.05, 0), (0.15, 1), (0.25, 2), (0.70, 3)])
    bounds = stats.answer_to_stage(
        [(sent[n], acked[n]) for n in "abc"], [], v0=0, v_final=3, stages=[stage]
    )
    true = {"a": 0.15 - 0.00, "b": 0.25 - 0.01, "c": 0.70 - 0.50}
    for name, upper, lower in zip("abc", bounds["upper"], bounds["lower"], strict=True):
        assert lower <= true[name] + 1e-9 <= upper + 2e-9
    assert bounds["not_seen"] == 0


def test_latency_summary_uses_nearest_rank():
    summary = stats.summary_ms([i / 1000 for i in range(1, 101)])
    assert summary["p50"] == 50 and summary["p99"] == 99 and summary["max"] == 100


@pytest.mark.e2e
def test_loadtest_run_counts_every_acknowledged_answer_exactly_once(stack, tmp_path):
    report_path = tmp_path / "report.json"
    table = run_loadtest(
        stack,
        "--url",
        stack.base,
        "--phones",
        "50",
        "--join-rate",
        "500",
        "--burst",
        "1",
        "--change-share",
        "0.4",
        "--kind",
        "multiple",
        "--drain-timeout",
        "15",
        "--cached-share",
        "0.5",
        "--report",
        str(report_path),
    )
    report = json.loads(report_path.read_text())
    assert_documented_fields(report)
    assert "exactness" in table and "exact:" in table
    # Each phone arrived as a phone: the page and its files (a warm cache asks for nothing
    # fresh), the join, the socket; a first visit moves every byte of the page figure.
    arrival = report["arrival"]
    warm = sum(phones.chosen(index, phones.WARM_STEP, 0.5) for index in range(50))
    assert arrival["mode"] == "page" and arrival["warm_cache_phones"] == warm
    # The page is revalidated (ETag, no-cache): a warm cache gets a 304, a first visit the page.
    assert arrival["requests"]["page:200"] == 50 - warm
    assert arrival["requests"]["page:304"] == warm
    files = len(report["page"]["files"])
    assert arrival["requests"]["asset:200"] == (50 - warm) * (files - 1)
    assert arrival["requests"]["asset:cached"] == warm * (files - 1)
    assert arrival["page_ms"]["n"] == arrival["assets_ms"]["n"] == arrival["ready_ms"]["n"] == 50
    assert arrival["bytes_in_first_visit"]["p50"] > report["page"]["wire_bytes"]
    assert arrival["bytes_in_warm_cache"]["max"] < report["page"]["wire_bytes"]
    assert report["mode"] == "product" and report["target"]["kind"] == "multiple"
    assert report["phones"]["connected"] == report["phones"]["held"] == 50
    assert report["answers"]["sent"] == report["answers"]["acked"] > 50  # changes included
    exact = report["exactness"]
    assert exact["ok"] is True, exact
    assert exact["verdict"].startswith("exact")
    assert exact["totals"] == {"acked": 50, "stage_total": 50, "redis_total": 50, "db_rows": 50}
    assert exact["redis_counts_match"] and exact["stage_counts_match"]
    assert exact["version_moves"] == report["answers"]["acked"]
    assert report["stage"]["answer_to_stage_ms"]["n"] == report["answers"]["acked"]
    assert [r["received"] for r in report["broadcast"]["rounds"]] == [50, 50, 50]
    assert report["page"]["ok"] and report["page"]["third_party"] == []
    assert report["server"]["processes"], "the Daphne process listening on the port is found"
    assert "Traceback" not in stack.log_text()


@pytest.mark.e2e
def test_loadtest_drives_the_bare_consumer_baseline(tmp_path, redis_server):
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="loadgen.baseline_settings",
        REDIS_URL=redis_server,
        PYTHONUNBUFFERED="1",
    )
    baseline = Stack(directory=tmp_path, env=env)
    baseline.start_daphne("loadgen.baseline:application")
    port = baseline.port
    # The load test itself runs with the project's settings; the baseline needs no database.
    runner = Stack(
        directory=tmp_path,
        env=dict(
            env, DJANGO_SETTINGS_MODULE="config.settings.test", ZP_TEST_REDIS_URL=redis_server
        ),
    )
    report_path = tmp_path / "baseline.json"
    try:
        run_loadtest(
            runner,
            "--baseline",
            "--url",
            f"http://127.0.0.1:{port}",
            "--phones",
            "30",
            "--join-rate",
            "500",
            "--burst",
            "1",
            "--report",
            str(report_path),
        )
    finally:
        baseline.stop()
    report = json.loads(report_path.read_text())
    assert_documented_fields(report)
    assert report["mode"] == "baseline"
    assert report["arrival"]["mode"] == "api", "the bare consumer serves no page"
    assert report["arrival"]["first_state_ms"]["n"] == 30
    assert report["exactness"]["ok"] is True, report["exactness"]
    assert report["exactness"]["redis_hincrby_total"] == report["answers"]["acked"] >= 30
    assert [r["received"] for r in report["broadcast"]["rounds"]] == [30, 30, 30]
    assert "Traceback" not in baseline.log_text()


@pytest.fixture
def two_process_stack(tmp_path, redis_server):
    """Two Daphne processes sharing one listening port (as ``dev.py serve`` with
    ZP_PROCESSES=2) and the answer writer, on a private database with the demo event."""
    stack = make_stack(tmp_path)
    try:
        stack.start_daphnes(2)
        stack.start_writer()
        yield stack
    finally:
        stack.stop()


@pytest.mark.e2e
def test_loadtest_through_two_server_processes_on_one_port(two_process_stack, tmp_path):
    stack = two_process_stack
    daphnes = [process.pid for process in stack.processes[:2]]
    fds_at_rest = {pid: procinfo.sample(pid)["fds"] for pid in daphnes}
    report_path = tmp_path / "report.json"
    run_loadtest(
        stack,
        "--url",
        stack.base,
        "--phones",
        "60",
        "--join-rate",
        "500",
        "--burst",
        "1",
        "--drain-timeout",
        "15",
        "--report",
        str(report_path),
    )
    report = json.loads(report_path.read_text())
    # every acknowledged answer counted once, whichever process took it or showed it
    exact = report["exactness"]
    assert exact["ok"] is True, exact
    assert exact["totals"] == {"acked": 60, "stage_total": 60, "redis_total": 60, "db_rows": 60}
    assert exact["version_moves"] == report["answers"]["acked"]
    # a host action reaches the sockets of both processes
    assert [r["received"] for r in report["broadcast"]["rounds"]] == [60, 60, 60]
    # both processes listen on the port, and both held sockets while the phones were idle; the
    # kernel hands a shared socket's connections to whichever process accepts first, not evenly
    # (7 of the 60 went to one of them once on a busy machine), so "both" is a few each
    found = {entry["pid"]: entry for entry in report["server"]["processes"]}
    assert set(daphnes) <= set(found), (daphnes, found)
    for pid in daphnes:
        assert found[pid]["found"].startswith("listening on"), found[pid]
        assert found[pid]["fds_idle"] >= fds_at_rest[pid] + 3, (fds_at_rest, found)
    assert "Traceback" not in stack.log_text()


def test_browser_cache_follows_the_response_headers():
    now = 1_000_000.0
    hashed = {"cache-control": "max-age=315360000, public, immutable", "etag": '"a-1"'}
    assert page.freshness(200, hashed, now) == (True, now + 315360000)
    # no lifetime and no validator (the phone page today): fetched again on every visit
    assert page.freshness(200, {"content-type": "text/html"}, now) == (False, now)
    # a validator without a lifetime: kept, and revalidated at once
    assert page.freshness(200, {"etag": '"b"', "cache-control": "no-cache"}, now) == (True, now)
    assert page.freshness(200, {"cache-control": "no-store, max-age=60"}, now)[0] is False
    # Last-Modified alone: a tenth of the age it had when served (RFC 9111 4.2.2)
    dated = {
        "date": "Wed, 02 Dec 2026 10:00:00 GMT",
        "last-modified": "Wed, 02 Dec 2026 00:00:00 GMT",
    }
    assert page.freshness(200, dated, now) == (True, now + 3600)
    # a redirect without an explicit lifetime is followed afresh each time
    assert page.freshness(302, {"location": "/e/X/"}, now)[0] is False


# A few stacks of a real ``py-spy record --format raw --gil --nonblocking`` (0.4.3) of the
# product's Daphne during a join storm (one line per stack, outermost frame first, the samples
# last), a couple of outer frames left out where they repeat.
RAW_PROFILE = Path(__file__).parent / "data" / "py-spy-join-storm.txt"


def test_profile_puts_every_sample_in_exactly_one_step(tmp_path):
    (tmp_path / "profile-4242.txt").write_text(RAW_PROFILE.read_text())
    profiles = profiling.profiles_in(tmp_path)
    summary = profiling.summarise(profiles, {4242: 3.0}, phones=100)
    samples = {row["step"]: row["samples"] for row in summary["steps"]}
    assert samples == {
        profiling.PAGE: 40,
        profiling.STATIC: 40,
        profiling.DJANGO: 40,
        profiling.JOIN: 20,
        profiling.HANDSHAKE: 10,
        profiling.CONNECT: 25,
        profiling.ANSWERS: 5,
        profiling.THREADS: 50,
        profiling.REACTOR: 60,
        profiling.OTHER: 10,
    }
    assert summary["samples"] == sum(samples.values()) == 300  # none dropped
    assert summary["top_other"][0]["samples"] == 10
    # 3 CPU seconds over 100 phones: 30 ms a phone, split by the samples
    cpu = {row["step"]: row["cpu_ms_per_phone"] for row in summary["steps"]}
    assert summary["cpu_ms_per_phone"] == 30.0
    assert cpu[profiling.PAGE] == cpu[profiling.STATIC] == 4.0 and cpu[profiling.OTHER] == 1.0
    assert "| other | 10 | 3.3 % | 1.000 |" in profiling.markdown(summary)


@pytest.mark.e2e
def test_loadtest_with_a_profile_question_is_exact_per_segment(stack, tmp_path):
    report_path = tmp_path / "report.json"
    table = run_loadtest(
        stack,
        "--url",
        stack.base,
        "--phones",
        "300",
        "--join-rate",
        "1000",
        "--arrival",
        "api",
        "--burst",
        "1",
        "--change-share",
        "0.3",
        "--segments",
        "4",
        "--segment-none-share",
        "0.15",
        "--host-actions",
        "next",
        "--drain-timeout",
        "15",
        "--report",
        str(report_path),
    )
    report = json.loads(report_path.read_text())
    assert "per segment" in table
    split = report["segments"]
    (profile,) = split["profile_questions"]
    assert split["segment_by"] == profile["id"] and len(profile["options"]) == 4
    # every phone answered the profile question on joining, some of them "rather not say"
    assert split["answers"]["sent"] == split["answers"]["acked"] == 300
    given = split["answers"]["by_value"]
    assert set(given) == {"0", *map(str, profile["options"])}, given
    exact = report["exactness"]
    assert exact["ok"] is True, exact
    assert exact["totals"] == {"acked": 300, "stage_total": 300, "redis_total": 300, "db_rows": 300}
    checked = exact["segments"]
    assert checked["ok"] and checked["redis_match"] and checked["sum_to_whole"], checked
    assert checked["stage_match"], checked
    assert checked[f"profile_{profile['id']}_rows"] == 300
    # the four segments and "rather not say" are the room
    in_segments = sum(checked["expected"].values())
    assert in_segments + checked[f"profile_{profile['id']}_in_no_segment"] == 300
    assert in_segments == 300 - given["0"] and len(checked["expected"]) == 4
    assert [key for key, _total in checked["stage_groups"]] == [
        *map(str, profile["options"]),
        "other",
    ]
    assert [r["received"] for r in report["broadcast"]["rounds"]] == [300]
    assert "Traceback" not in stack.log_text()


def test_the_check_per_segment_finds_an_answer_counted_in_the_wrong_segment():
    from loadgen import django_side
    from loadgen.exactness import Check

    # Profile question 50 (options 1, 2; 0 = rather not say), the burst's single choice 7 / 8.
    given = {"a": (1, 7), "b": (1, 8), "c": (2, 7), "d": (0, 8), "e": (2, 8)}
    results = {
        "answers": [],
        "phones": [
            {
                "participant": participant,
                "has_acked": True,
                "acked_value": value,
                "uncertain": [],
                "profile": {"50": profile},
                "profile_uncertain": {},
            }
            for participant, (profile, value) in given.items()
        ],
    }
    whole = {"version": 5, "total": 5, "counts": {"7": 2, "8": 3}}
    right = {
        "50:1": {"total": 2, "counts": {"7": 1, "8": 1}},
        "50:2": {"total": 2, "counts": {"7": 1, "8": 1}},
    }
    # e's answer counted under segment 1 instead of 2
    wrong = {
        "50:1": {"total": 3, "counts": {"7": 1, "8": 2}},
        "50:2": {"total": 1, "counts": {"7": 1}},
    }

    def verdict(segments: dict) -> dict:
        async def db(function, question, *args):
            if function is django_side.read_tally:
                return dict(whole, segments=segments)
            profiles = {p: profile for p, (profile, _value) in given.items()}
            answers = {p: value for p, (_profile, value) in given.items()}
            counted = profiles if question == 50 else answers
            if function is django_side.read_tally_answers:
                return counted
            if function is django_side.wait_for_rows:
                return {"rows": counted, "seconds": 0, "drained": True, "log_backlog": 0}
            return await asyncio.to_thread(function, question, *args)

        check = Check(
            results, 9, "single", None, [], db, 1.0, profile=[{"id": 50, "options": [1, 2]}]
        )
        return asyncio.run(check.run())

    good = verdict(right)
    assert good["ok"] is True and good["segments"]["sum_to_whole"], good
    assert good["segments"]["expected"] == {"50:1": 2, "50:2": 2}
    assert good["segments"]["profile_50_in_no_segment"] == 1
    bad = verdict(wrong)
    assert bad["ok"] is False and not bad["segments"]["redis_match"], bad
    assert "per segment" in bad["verdict"]


def test_the_qa_vote_plan_keeps_the_rules_and_is_skewed():
    from loadgen import qa_plan

    rng = random.Random(5)
    phones = list(range(60))
    askers = qa_plan.askers(phones, 20, rng)
    assert len(set(askers)) == 20
    items = [(100 + n, phone) for n, phone in enumerate(askers)]
    plan, planned = qa_plan.plan_votes(phones, items, 700, 4.0, 1.0, 0.1, rng)
    author = dict(items)
    votes, given = set(), {}
    unvotes = 0
    for phone, actions in plan.items():
        assert [t for t, _k, _i in actions] == sorted(t for t, _k, _i in actions)
        assert all(0 <= t < 4.0 for t, _k, _i in actions)
        mine = [item for _t, kind, item in actions if kind == qa_plan.VOTE]
        assert len(mine) == len(set(mine)), "no phone votes twice on an item"
        assert all(author[item] != phone for item in mine), "nor on its own item"
        voted_at = {item: t for t, kind, item in actions if kind == qa_plan.VOTE}
        for t, kind, item in actions:
            if kind == qa_plan.UNVOTE:
                unvotes += 1
                assert voted_at[item] < t, "a vote is taken back after it was given"
        votes |= {(phone, item) for item in mine}
        given[phone] = len(mine)
    assert len(votes) == sum(planned.values()) == 700
    assert max(given.values()) - min(given.values()) <= 1, "every phone gives about as many"
    counts = sorted(planned.values(), reverse=True)
    assert counts[0] == 59, "the most popular item capped at everyone but its author"
    assert counts[0] > 3 * counts[-1] and 0 < unvotes < 140


def test_the_qa_popularity_fills_up_to_the_cap():
    from loadgen import qa_plan

    assert qa_plan.popularity(3, 6, 10, 0.0) == [2, 2, 2]
    assert qa_plan.popularity(3, 25, 10, 1.0) == [10, 9, 6]
    assert sum(qa_plan.popularity(300, 20_000, 4_999, 1.0)) == 20_000
    with pytest.raises(ValueError):
        qa_plan.popularity(2, 21, 10, 1.0)


def test_a_qa_view_shows_a_vote_by_its_count_or_by_its_version():
    # A board at t 1, 2, 3 (versions 5, 8, 12): item 7 at 3 votes, then 4, then off the top.
    board = stats.QaView(
        [(1.0, 5, {7: 3, 8: 9}, True), (2.0, 8, {7: 4, 8: 9}, True), (3.0, 12, {8: 10}, True)]
    )
    assert board.first_showing(7, 4, 99, after=0.5) == (2.0, True)  # the count shows it
    assert board.first_showing(7, 4, 99, after=2.5) is None  # no later board has it
    assert board.first_showing(7, 5, 12, after=0.5) == (3.0, False)  # included, not shown
    assert board.first_showing(7, 3, 6, after=1.5) == (2.0, True)
    # A phone's list: the whole list, then changes of the counts that moved.
    phone = stats.QaView(
        [(1.0, 5, {7: 3, 8: 9}, True), (2.0, 6, {8: 10}, False), (3.0, 9, {7: 5}, False)]
    )
    assert phone.first_showing(7, 3, 99, after=1.5) == (2.0, True)  # unchanged since
    assert phone.first_showing(7, 4, 99, after=1.5) == (3.0, True)
    assert phone.first_showing(7, 6, 8, after=1.5) == (3.0, True)  # by its version
    assert stats.summary_of_histogram({3: 98, 10: 1, 40: 1})["p99"] == 10.0


def test_the_qa_check_finds_a_vote_lost_or_counted_for_someone_else():
    from loadgen import django_side
    from loadgen.exactness import QaCheck

    # (phone, participant, kind, item, sent, acked, status, voted, count, retries)
    messages = [
        (0, "a", "ask", 1, 0.0, 0.1, "acked", False, 0, 0),
        (1, "b", "ask", 2, 0.0, 0.1, "acked", False, 0, 0),
        (1, "b", "vote", 1, 1.0, 1.1, "acked", True, 1, 0),
        (2, "c", "vote", 1, 1.0, 1.2, "acked", True, 2, 0),
        (2, "c", "unvote", 1, 2.0, 2.1, "acked", False, 1, 0),
        (0, "a", "vote", 2, 1.0, 1.1, "acked", True, 1, 0),
    ]

    def verdict(voters: dict) -> dict:
        async def db(function, event_id, *args):
            if function is django_side.read_qa:
                votes = {item: len(people) for item, people in voters.items()}
                return {"version": 4, "votes": votes, "voters": voters}
            return {
                "rows": voters,
                "taken_back": 1,
                "seconds": 0,
                "log_backlog": 0,
                "drained": True,
            }

        return asyncio.run(QaCheck(messages, 9, 0, [], db, 1.0).run())

    good = verdict({1: ["b"], 2: ["a"]})
    assert good["ok"] is True and good["verdict"].startswith("exact"), good
    assert good["totals"] == {"acked": 2, "redis_total": 2, "db_rows": 2}
    bad = verdict({1: ["c"], 2: ["a"]})  # c's vote kept although taken back, b's lost
    assert bad["ok"] is False and bad["redis_mismatches"] == 2, bad


@pytest.mark.e2e
def test_loadtest_qa_counts_every_acknowledged_vote_exactly_once(stack, tmp_path):
    report_path = tmp_path / "report.json"
    table = run_loadtest(
        stack,
        "--url",
        stack.base,
        "--phones",
        "50",
        "--join-rate",
        "1000",
        "--arrival",
        "api",
        "--qa",
        "--qa-items",
        "20",
        "--qa-ask-seconds",
        "0.5",
        "--qa-votes",
        "300",
        "--qa-vote-seconds",
        "2.5",
        "--qa-unvote-share",
        "0.1",
        "--qa-observers",
        "10",
        "--drain-timeout",
        "15",
        "--report",
        str(report_path),
    )
    report = json.loads(report_path.read_text())
    assert "Q&A votes" in table and "exact:" in table
    qa = report["qa"]
    assert qa["items"]["asked"] == qa["items"]["acked"] == 20
    votes = qa["votes"]
    unvotes = votes["by_kind"].get("unvote", 0)
    assert votes["by_kind"]["vote"] == 300 and unvotes == votes["unvotes_planned"] > 0
    assert votes["sent"] == votes["acked"] == 300 + unvotes
    exact = report["exactness"]
    assert exact["ok"] is True and exact["verdict"].startswith("exact"), exact
    counted = 300 - unvotes
    assert exact["totals"] == {"acked": counted, "redis_total": counted, "db_rows": counted}
    assert exact["db_taken_back"] == unvotes
    assert exact["version_moves"] == votes["acked"]
    assert exact["stage_items"] == 10 and exact["stage_top_match"] and exact["stage_open"] == 20
    # every vote reached the stage's board (or a board that includes it) and every observer
    assert qa["stage"]["not_seen"] == 0 and qa["stage"]["on_board"] > 0
    assert qa["lists"]["not_seen"] == 0 and qa["lists"]["observers"] >= 5
    assert qa["lists"]["vote_to_list_ms"]["n"] > 300
    assert "Traceback" not in stack.log_text()


def test_the_quiz_standings_rank_move_and_share_places():
    from loadgen import quiz_plan
    from polls import quiz, quiz_board

    recomputed = {
        1: {"a": (900, 1000), "b": (600, 2000), "c": (600, 2000), "d": (0, 500)},
        2: {"b": (800, 1500), "d": (1000, 400), "e": (700, 3000)},
    }
    first, second = (quiz_plan.standings([1, 2], recomputed)[q] for q in (1, 2))
    assert first.places == {"a": 1, "b": 2, "c": 2, "d": 4}
    assert first.own("b") == (600, 600, 2, None) and first.own("x") == (0, 0, None, None)
    assert (first.answered, first.right) == (4, 3)
    # b 1400 (3500 ms), d 1000, a 900, c 600, e 700: b up one, d up two, a down two, c down two
    assert second.own("b") == (800, 1400, 1, 1)
    assert second.own("d") == (1000, 1000, 2, 2)
    assert second.own("a") == (0, 900, 3, -2)
    assert second.own("e") == (700, 700, 4, None)
    assert second.own("c") == (0, 600, 5, -3)
    assert second.top(3) == [(1, 1400), (2, 1000), (3, 900)]
    # the same arithmetic as the server's own (restated, not imported, by the check)
    assert quiz_plan.TIME_SPAN_MS == quiz.TIME_SPAN_MS
    assert quiz_plan.board_score(1400, 3500) == quiz.board_score(1400, 3500)
    ranked = sorted(second.scores.items(), key=lambda pair: -pair[1])
    assert quiz_board.places(ranked) == second.places


def test_the_quiz_plan_answers_within_the_spread_with_the_right_share():
    from loadgen import quiz_plan

    rng = random.Random(3)
    single = quiz_plan.QuizQuestion(1, "single", 10, (11, 12, 13, 14), (11,))
    plan = quiz_plan.plan_answers(list(range(2000)), single, 3.0, 0.6, rng)
    assert all(0 <= offset < 3.0 for offset, _value in plan.values())
    right = sum(1 for _offset, value in plan.values() if value == 11)
    assert 1100 < right < 1300 and {value for _o, value in plan.values()} == {11, 12, 13, 14}
    split = quiz_plan.QuizQuestion(2, "split", 10, target=39.0, tolerance=20.0)
    guesses = [
        value
        for _o, value in quiz_plan.plan_answers(list(range(500)), split, 3.0, 0.6, rng).values()
    ]
    assert all(0 <= guess <= 100 for guess in guesses) and 30 < sum(guesses) / 500 < 48


@pytest.mark.e2e
def test_loadtest_quiz_scores_every_answer_once_and_every_phone_gets_its_score(stack, tmp_path):
    report_path = tmp_path / "report.json"
    table = run_loadtest(
        stack,
        "--url",
        stack.base,
        "--phones",
        "30",
        "--join-rate",
        "1000",
        "--arrival",
        "api",
        "--quiz",
        "--quiz-limit",
        "5",
        "--quiz-spread",
        "1",
        "--drain-timeout",
        "15",
        "--report",
        str(report_path),
    )
    report = json.loads(report_path.read_text())
    assert "deadline -> phone score" in table and "exact:" in table
    exact = report["exactness"]
    assert exact["ok"] is True and exact["verdict"].startswith("exact"), exact
    assert exact["totals"] == {"acked": 60, "redis_scores": 60, "db_rows": 60}
    assert exact["board_members"] == 30 and exact["board_mismatches"] == 0
    first, second = report["quiz"]["questions"]
    assert (first["kind"], second["kind"]) == ("single", "split")
    for question in (first, second):
        assert question["answers"]["sent"] == question["answers"]["acked"] == 30
        assert question["answers"]["within_spread"] == 30
        assert question["scores"] == 30 and question["no_score"] == 0
        assert question["deadline_to_score_ms"]["n"] == 30
        # the keeper closes DEADLINE_GRACE_MS (300 ms) after the deadline, not before
        assert question["deadline_to_score_ms"]["p50"] >= 300
        assert question["stages"][0]["leaderboard_ms"] >= 300
        qid = str(question["id"])
        assert exact["scores_checked"][qid] == 30 and exact["score_mismatches"][qid] == 0
        assert exact["stage_top_match"][qid] and exact["stage_rows"][qid] == 10
    assert "Traceback" not in stack.log_text()

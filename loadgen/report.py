"""The JSON report of a finished run (``loadgen.table`` renders its table): figures per section,
from what the coordinator (``runner.Runner``) recorded."""

from __future__ import annotations

import os
import platform
import time
from collections import Counter, defaultdict
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from . import procinfo, stats
from . import profile as profiling

if TYPE_CHECKING:
    from .runner import Runner

REPORT_VERSION = 1
MIN_PHASE_SECONDS = 0.5


def phase_figures(run: Runner) -> tuple[dict, dict]:
    """CPU per phase, in percent of one core: the generator's, and each server process's."""
    generator: dict[str, float] = {}
    servers: dict[int, dict[str, float]] = defaultdict(dict)
    for start, end in zip(run.phases, run.phases[1:], strict=False):
        seconds = end["t"] - start["t"]
        if seconds < MIN_PHASE_SECONDS:
            continue  # /proc counts CPU in 10 ms ticks: a short phase's share is noise
        generator[start["name"]] = round(
            (end["generator_cpu_s"] - start["generator_cpu_s"]) / seconds * 100, 1
        )
        for pid in run.server_pids:
            a, b = start["servers"].get(pid), end["servers"].get(pid)
            if a and b:
                servers[pid][start["name"]] = round((b["cpu_s"] - a["cpu_s"]) / seconds * 100, 1)
    return generator, servers


def phase_cpu_seconds(run: Runner) -> dict[int, dict[str, float]]:
    """CPU seconds per phase of each server process (every phase, however short)."""
    seconds: dict[int, dict[str, float]] = defaultdict(dict)
    for start, end in zip(run.phases, run.phases[1:], strict=False):
        for pid in run.server_pids:
            a, b = start["servers"].get(pid), end["servers"].get(pid)
            if a and b:
                seconds[pid][start["name"]] = round(b["cpu_s"] - a["cpu_s"], 2)
    return seconds


def drops_by_phase(run: Runner, phones: list[dict]) -> dict:
    counts: Counter[str] = Counter()
    for phone in phones:
        at = phone["dropped_at"]
        if at is None:
            continue
        name = "setup"
        for phase in run.phases:
            if phase["t"] <= at:
                name = phase["name"]
        counts[name] += 1
    return dict(counts)


def answer_rate(answers: list, acked: list) -> tuple[float | None, int | None]:
    """Acknowledged answers per second over the span from the first send to the last ack, and
    the busiest whole second of acks."""
    if not acked:
        return None, None
    first_sent = min(a[0] for a in answers)
    last_ack = max(ack for _sent, ack in acked)
    per_second = round(len(acked) / max(1e-6, last_ack - first_sent), 1)
    buckets = Counter(int(ack - first_sent) for _sent, ack in acked)
    return per_second, max(buckets.values())


def stage_section(run: Runner, acked: list, unacked_sends: list, check: dict) -> dict:
    """Answer -> stage: the bounds on each acknowledged answer's time to the stage screens."""
    question_id = run.info.get("question_id")
    stage_figures: dict[str, Any] = {
        "clients": len(run.stages),
        "dropped": sum(1 for stage in run.stages if stage.closed_code is not None),
        "reconnects": sum(stage.reconnects for stage in run.stages),
    }
    if run.stages and question_id is not None and run.v0 is not None:
        series = [stats.StageSeries(stage.series.get(question_id, [])) for stage in run.stages]
        v_final = check.get("redis_version")
        if v_final is None:
            v_final = max(stage.shown_version(question_id) for stage in run.stages)
        bounds = stats.answer_to_stage(acked, unacked_sends, run.v0, v_final, series)
        stage_figures.update(
            {
                "snapshots": sum(len(stage.series.get(question_id, [])) for stage in run.stages),
                "answer_to_stage_ms": stats.summary_ms(bounds["upper"]),
                "answer_to_stage_lower_ms": stats.summary_ms(bounds["lower"]),
                "not_seen": bounds["not_seen"],
                "v0": run.v0,
                "v_final": v_final,
            }
        )
    elif run.options.baseline:
        stage_figures["note"] = "the bare consumer has no stage"
    return stage_figures


def broadcast_section(run: Runner) -> dict:
    broadcast_all = [value for item in run.broadcasts for value in item["latencies"]]
    rounds = [
        {key: value for key, value in item.items() if key != "latencies"}
        | {"ms": stats.summary_ms(item["latencies"])}
        for item in run.broadcasts
    ]
    return {"rounds": rounds, "ms": stats.summary_ms(broadcast_all)}


def server_section(run: Runner, ready: list, server_cpu: dict, cpu_seconds: dict) -> dict:
    """Server memory: RSS growth from before the join to the end of the hold (idle sockets)."""
    marks = {phase["name"]: phase for phase in run.phases}
    server = []
    growth = 0
    connections = len(ready) + len(run.stages)
    for pid, meta in run.server_pids.items():
        before = (marks.get("join") or {}).get("servers", {}).get(pid)
        # the end of the hold: the burst's start, the Q&A's first asks, the quiz's first question
        idle = marks.get("burst") or marks.get("ask") or marks.get("quiz1") or {}
        idle = idle.get("servers", {}).get(pid)
        end = (marks.get("close") or {}).get("servers", {}).get(pid)
        entry = {
            "pid": pid,
            "command": meta["command"],
            "found": meta["found"],
            "rss_before_kib": before and before["rss_kib"],
            "rss_idle_kib": idle and idle["rss_kib"],
            "rss_end_kib": end and end["rss_kib"],
            "rss_peak_kib": run.server_peak.get(pid),
            "fds_idle": idle and idle["fds"],
            "threads_idle": idle and idle["threads"],
            "cpu_percent": server_cpu.get(pid, {}),
            "cpu_s": cpu_seconds.get(pid, {}),
        }
        if before and idle:
            growth += idle["rss_kib"] - before["rss_kib"]
        server.append(entry)
    per_connection = round(growth / connections, 1) if server and ready else None
    return {
        "processes": server,
        "rss_per_connection_kib": per_connection,
        "connections_measured": connections,
    }


def join_section(run: Runner, results: dict, ready: list) -> dict:
    phones = results["phones"]
    window = run.join_window
    join_seconds = window[1] - window[0] if window else None
    return {
        "ok": len(ready),
        "failed": len(phones) - len(ready),
        "success_percent": round(100 * len(ready) / len(phones), 2),
        "failures": dict(results.get("fail_reasons", {})),
        "attempts": dict(results.get("join_status", {})),
        "post_ms": stats.summary_ms(results.get("join_post_seconds", [])),
        "socket_open_ms": stats.summary_ms(results.get("ws_open_seconds", [])),
        "ready_ms": stats.summary_ms(
            p["ready_seconds"] for p in ready if p["ready_seconds"] is not None
        ),
        "duration_s": round(join_seconds, 2) if join_seconds else None,
        "ready_within_10s": (
            sum(1 for p in ready if p["ready_at"] - window[0] <= 10.0) if window else None
        ),
        "offered_rate": run.options.join_rate,
    }


def _bytes_summary(values: list[int]) -> dict:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0, "p50": None, "p99": None, "max": None, "mean": None}
    return {
        "n": len(ordered),
        "p50": stats.percentile(ordered, 0.50),
        "p99": stats.percentile(ordered, 0.99),
        "max": ordered[-1],
        "mean": round(sum(ordered) / len(ordered)),
    }


def arrival_section(run: Runner, results: dict, ready: list) -> dict:
    """Each step of arriving, per phone: the page, its assets (all of one phone's, wall time),
    the join POST, the socket's handshake, the first state after it, and the whole."""
    phones = results["phones"]
    started = [p for p in phones if p.get("bytes_in") is not None]

    def seconds(key: str, among: list) -> dict:
        return stats.summary_ms(p[key] for p in among if p.get(key) is not None)

    arrived = [p for p in ready if p.get("bytes_in")]
    return {
        "mode": run.arrival,
        "cached_share": run.options.cached_share,
        "home_share": run.options.home_share,
        "page_ms": seconds("page_seconds", started),
        "assets_ms": seconds("assets_seconds", started),
        "post_ms": stats.summary_ms(results.get("join_post_seconds", [])),
        "socket_open_ms": stats.summary_ms(results.get("ws_open_seconds", [])),
        "first_state_ms": seconds("first_state_seconds", ready),
        "ready_ms": seconds("ready_seconds", ready),
        "bytes_in_per_phone": _bytes_summary([p["bytes_in"] for p in arrived]),
        "bytes_out_per_phone": _bytes_summary([p["bytes_out"] for p in arrived]),
        "bytes_in_first_visit": _bytes_summary(
            [p["bytes_in"] for p in arrived if not p.get("warm")]
        ),
        "bytes_in_warm_cache": _bytes_summary([p["bytes_in"] for p in arrived if p.get("warm")]),
        "warm_cache_phones": sum(1 for p in phones if p.get("warm")),
        "home_page_phones": sum(1 for p in phones if p.get("home")),
        "requests": dict(results.get("arrival_requests", {})),
        "connections_per_phone": (
            round(results.get("arrival_connections", 0) / len(phones), 2)
            if run.arrival == "page" and phones
            else None
        ),
    }


def profile_section(run: Runner, cpu_seconds: dict) -> dict | None:
    if not run.options.profile:
        return None
    if not run.profiles:
        return {"error": "no profile was recorded (see the warnings)"}
    cpu = {pid: cpu_seconds.get(pid, {}).get("join") for pid in run.profiles}
    summary = profiling.summarise(run.profiles, cpu, run.options.phones)
    summary["directory"] = run.options.profile
    summary["blocking"] = run.options.profile_blocking
    summary["rate"] = run.options.profile_rate
    return summary


def answers_section(run: Runner, results: dict, acked: list, unacked_sends: list) -> dict:
    answers = results["answers"]
    per_second, peak = answer_rate(answers, acked)
    window = run.burst_window
    return {
        "sent": len(answers),
        "acked": len(acked),
        "errors": dict(results.get("errors", {})),
        "unacked": len(unacked_sends),
        "by_status": dict(Counter(a[2] for a in answers)),
        "changes": sum(1 for a in answers if a[4] == "change"),
        "retries": results.get("retries", 0),
        "skipped": dict(results.get("skipped", {})),
        "per_second": per_second,
        "peak_per_second": peak,
        "ack_ms": stats.summary_ms(ack - sent for sent, ack in acked),
        "burst_s": run.options.burst,
        "burst_wall_s": round(window[1] - window[0], 2) if window else None,
    }


def segments_section(run: Runner, results: dict, check: dict) -> dict | None:
    """The profile answers the phones sent on joining, and the check per segment."""
    profile = run.info.get("profile")
    if not profile:
        return None
    sent = results.get("profile_answers") or []
    acked = [(a[0], a[1]) for a in sent if a[2] == "acked"]
    values = Counter(
        str(value) for phone in results["phones"] for value in (phone.get("profile") or {}).values()
    )
    return {
        "profile_questions": profile,
        "segment_by": run.info.get("segment_by"),
        "min_respondents": run.info.get("segment_min"),
        "answers": {
            "sent": len(sent),
            "acked": len(acked),
            "by_status": dict(Counter(a[2] for a in sent)),
            "ack_ms": stats.summary_ms(ack - at for at, ack in acked),
            # by option id; "0" is "rather not say"
            "by_value": dict(sorted(values.items())),
        },
        "exactness": check.get("segments"),
    }


def qa_section(run: Runner) -> dict | None:
    """The audience Q&A: the items asked, the votes and their acks, vote -> the stage's board
    and vote -> the observers' lists (docs/loadtest.md, "The Q&A")."""
    if not run.options.qa:
        return None
    qa = run.qa
    messages = qa.get("messages", [])
    asks = [m for m in messages if m[2] == "ask"]
    changes = [m for m in messages if m[2] != "ask"]
    sent = [m for m in changes if m[4] is not None]
    acked = [(m[4], m[5]) for m in changes if m[6] == "acked"]
    per_second, peak = answer_rate([(m[4],) for m in sent], acked)
    planned = sorted((qa.get("planned") or {}).values(), reverse=True)
    window = run.qa_window
    return {
        "items": {
            "planned": run.options.qa_items,
            "asked": sum(1 for m in asks if m[4] is not None),
            "acked": sum(1 for m in asks if m[6] == "acked"),
            "by_status": dict(Counter(m[6] for m in asks)),
            "ack_ms": stats.summary_ms(m[5] - m[4] for m in asks if m[6] == "acked"),
            "ask_s": run.options.qa_ask_seconds,
        },
        "votes": {
            "planned": sum(planned),
            "unvotes_planned": qa.get("planned_unvotes", 0),
            "sent": len(sent),
            "acked": len(acked),
            "by_kind": dict(Counter(m[2] for m in sent)),
            "by_status": dict(Counter(m[6] for m in changes)),
            "errors": qa.get("errors", {}),
            "retries": qa.get("retries", 0),
            "unacked": sum(1 for m in changes if m[6] in ("sent", "timeout", "lost")),
            "per_second": per_second,
            "peak_per_second": peak,
            "ack_ms": stats.summary_ms(ack - at for at, ack in acked),
            "vote_s": run.options.qa_vote_seconds,
            "wall_s": round(window[1] - window[0], 2) if window else None,
        },
        "popularity": {
            "skew": run.options.qa_skew,
            "top_planned": planned[:10],
            "least_planned": planned[-1] if planned else None,
        },
        "v0": qa.get("v0"),
        "v_final": qa.get("v_final"),
        "stage": qa.get("stage"),
        "lists": dict(qa.get("lists") or {}, messages_kept=qa.get("observer_messages")),
    }


def _after(times, origin: float | None) -> dict:
    """Summary (ms) of wall-clock moments after ``origin`` (seconds since the epoch)."""
    if origin is None:
        return stats.summary_ms([])
    return stats.summary_ms(t - origin for t in times if t is not None)


def quiz_section(run: Runner) -> dict | None:
    """The research quiz, per scored question: the answers and their acks, the opening's way to
    the phones, and from the server's deadline to the stage's leaderboard and each phone's
    score (docs/performance.md, "The research quiz")."""
    if not run.options.quiz:
        return None
    questions = []
    for question in run.quiz.get("questions", []):
        opened = question["opened"]
        started = (opened.get("started_ms") or 0) / 1000 or None
        deadline = (opened.get("deadline_ms") or 0) / 1000 or None
        answers = question["answers"]
        acked = [a for a in answers if a[4] == "acked"]
        phones = question["phones"]
        scores = [p[5] for p in phones if p[5] is not None]
        after_opening = [a[7] - started for a in answers if started and a[7] is not None]
        stages = []
        for stage in question["stages"]:
            # the keeper's close: closed with the results shown (before the opening it was
            # current and closed too)
            closed = [t for t, _q, is_open, shown in stage["states"] if not is_open and shown]
            boards = [t for t, _m in stage["leaderboards"]]
            stages.append(
                {
                    "closed_ms": round((closed[0] - deadline) * 1000) if closed else None,
                    "leaderboard_ms": round((boards[0] - deadline) * 1000) if boards else None,
                    "leaderboards": len(boards),
                }
            )
        board_ms = [s["leaderboard_ms"] for s in stages if s["leaderboard_ms"] is not None]
        questions.append(
            {
                "id": question["spec"]["id"],
                "kind": question["spec"]["kind"],
                "limit_s": question["spec"]["limit"],
                "armed": question["armed"],
                "host_call_ms": round((opened["returned"] - opened["called"]) * 1000, 1),
                "answers": {
                    "sent": len(answers),
                    "acked": len(acked),
                    "by_status": dict(Counter(a[4] for a in answers)),
                    "retries": sum(a[8] for a in answers),
                    "ack_ms": stats.summary_ms(a[3] - a[2] for a in acked),
                    "sent_after_opening_ms": stats.summary_ms(after_opening),
                    "within_spread": sum(
                        1 for t in after_opening if t <= run.options.quiz_spread + 1e-3
                    ),
                },
                "opening_to_phone_ms": _after((p[3] for p in phones), started),
                "deadline_to_closed_ms": _after((p[4] for p in phones), deadline),
                "deadline_to_score_ms": _after(scores, deadline),
                "scores": len(scores),
                "no_score": sum(1 for p in phones if p[5] is None),
                "no_score_live": sum(1 for p in phones if p[5] is None and p[2]),
                "stages": stages,
                "deadline_to_leaderboard_ms": max(board_ms) if board_ms else None,
            }
        )
    return {
        "limit_s": run.options.quiz_limit,
        "spread_s": run.options.quiz_spread,
        "right_share": run.options.quiz_right_share,
        "questions": questions,
    }


def build(run: Runner, results: dict, held: int, check: dict) -> dict:
    """The whole report (docs/loadtest.md lists its fields)."""
    options = run.options
    phones = results["phones"]
    ready = [p for p in phones if p["ready"]]
    answers = results["answers"]
    acked = [(a[0], a[1]) for a in answers if a[2] == "acked"]
    unacked_sends = [a[0] for a in answers if a[2] in ("sent", "timeout", "lost")]
    generator_cpu, server_cpu = phase_figures(run)
    cpu_seconds = phase_cpu_seconds(run)
    return {
        "tool": "zaalpeiling loadtest",
        "report_version": REPORT_VERSION,
        "mode": "baseline" if options.baseline else "product",
        "started_at": run.started_wall.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - run.started, 1),
        "options": asdict(options),
        "target": {
            "urls": [target["url"] for target in run.targets],
            "code": run.info.get("code"),
            "question_id": run.info.get("question_id"),
            "kind": run.info.get("kind"),
            "throwaway_event": bool(run.info.get("own_event")),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "open_files_limit": procinfo.open_file_limit(),
            "generator_processes": run.process_count,
        },
        "phones": {
            "target": options.phones,
            "connected": len(ready),
            "held": held,
            "dropped": sum(1 for p in phones if p["dropped_at"] is not None),
            "drops_by_phase": drops_by_phase(run, phones),
            "close_codes": dict(results.get("close_codes", {})),
            "heartbeat_misses": results.get("pong_misses", 0),
            "pings": results.get("pings", 0),
            # With --reconnect: drops that came back (drop -> first state of the new socket),
            # those that did not, and the answers sent again on the new socket.
            "reconnected": len(results.get("reconnect_seconds", [])),
            "reconnect_ms": stats.summary_ms(results.get("reconnect_seconds", [])),
            "reconnect_failures": dict(results.get("reconnect_failures", {})),
            "resent_after_reconnect": results.get("resent_after_reconnect", 0),
        },
        "join": join_section(run, results, ready),
        "arrival": arrival_section(run, results, ready),
        "answers": answers_section(run, results, acked, unacked_sends),
        "stage": stage_section(run, acked, unacked_sends, check),
        "broadcast": broadcast_section(run),
        "exactness": check,
        "segments": segments_section(run, results, check),
        "qa": qa_section(run),
        "quiz": quiz_section(run),
        "server": server_section(run, ready, server_cpu, cpu_seconds),
        "generator": {"processes": run.process_count, "cpu_percent": generator_cpu},
        "phases": [
            {"name": start["name"], "seconds": round(end["t"] - start["t"], 2)}
            for start, end in zip(run.phases, run.phases[1:], strict=False)
        ],
        "page": run.page,
        "profile": profile_section(run, cpu_seconds),
        "warnings": run.warnings,
    }

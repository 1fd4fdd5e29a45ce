"""The table printed at the end of a run (the JSON report holds everything and more)."""

from __future__ import annotations


def _ms(summary: dict | None, *keys: str) -> str:
    if not summary or not summary.get("n"):
        return "n/a"
    return " / ".join(f"{summary[key]:,.0f}" for key in keys) + " ms"


def _num(value, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.1f}{suffix}"
    return f"{value:,}{suffix}"


def rows(report: dict) -> list[tuple[str, str]]:
    phones = report["phones"]
    join = report["join"]
    answers = report["answers"]
    stage = report["stage"]
    broadcast = report["broadcast"]
    exact = report["exactness"]
    server = report["server"]
    page = report.get("page")
    errors = ", ".join(f"{code} {count}" for code, count in sorted(answers["errors"].items()))
    failures = ", ".join(f"{why} {count}" for why, count in sorted(join["failures"].items()))
    lines = [
        (
            "mode",
            f"{report['mode']} ({report['target']['kind']}) on "
            + ", ".join(report["target"]["urls"]),
        ),
        (
            "phones connected / held / dropped",
            f"{phones['connected']:,} / {phones['held']:,} / {phones['dropped']:,} "
            f"of {phones['target']:,}",
        ),
        *(
            [
                (
                    "dropped -> back p50 / p99",
                    _ms(phones["reconnect_ms"], "p50", "p99")
                    + f" ({phones['reconnected']:,} back, "
                    + f"{sum(phones['reconnect_failures'].values()):,} not; "
                    + f"{phones['resent_after_reconnect']:,} answers sent again)",
                )
            ]
            if phones.get("reconnected") or phones.get("reconnect_failures")
            else []
        ),
        (
            "join ok / failed",
            f"{join['ok']:,} / {join['failed']:,} ({join['success_percent']}%)"
            + (f": {failures}" if failures else ""),
        ),
        ("join POST p50 / p99", _ms(join["post_ms"], "p50", "p99")),
        (
            "join -> ready p50 / p99",
            _ms(join["ready_ms"], "p50", "p99") + f" (all in {_num(join['duration_s'], ' s')})",
        ),
        (
            "answers sent / acked / errors",
            f"{answers['sent']:,} / {answers['acked']:,} / {sum(answers['errors'].values()):,}"
            + (f" ({errors})" if errors else "")
            + (f", {answers['unacked']:,} unacked" if answers["unacked"] else ""),
        ),
        (
            "answers per second (peak second)",
            f"{_num(answers['per_second'])} ({_num(answers['peak_per_second'])})",
        ),
        ("ack latency p50 / p99", _ms(answers["ack_ms"], "p50", "p99")),
    ]
    if stage.get("answer_to_stage_ms"):
        lines.append(
            (
                "answer -> stage p50 / p99",
                _ms(stage["answer_to_stage_ms"], "p50", "p99")
                + f" (lower bound {_ms(stage['answer_to_stage_lower_ms'], 'p50', 'p99')})"
                + (f", {stage['not_seen']:,} never shown" if stage.get("not_seen") else ""),
            )
        )
    else:
        lines.append(
            (
                "answer -> stage p50 / p99",
                "n/a" + (f" ({stage['note']})" if stage.get("note") else ""),
            )
        )
    rounds = broadcast["rounds"]
    missing = sum(item["missing"] for item in rounds)
    lines.append(
        (
            "broadcast p50 / p99",
            _ms(broadcast["ms"], "p50", "p99")
            + (
                f" ({len(rounds)} rounds" + (f", {missing:,} missed)" if missing else ")")
                if rounds
                else ""
            ),
        )
    )
    qa = report.get("qa")
    if qa:
        lines += qa_rows(qa)
    quiz = report.get("quiz")
    if quiz:
        lines += quiz_rows(quiz)
    split = report.get("segments")
    if split:
        sent = split["answers"]
        lines.append(
            (
                "profile answers sent / acked, ack p50 / p99",
                f"{sent['sent']:,} / {sent['acked']:,}, {_ms(sent['ack_ms'], 'p50', 'p99')}",
            )
        )
        checked = split.get("exactness") or {}
        if checked.get("expected") is not None:
            lines.append(
                (
                    "  per segment (respondents)",
                    ", ".join(f"{tag} {n:,}" for tag, n in checked["expected"].items())
                    + (" (exact)" if checked.get("ok") else " (MISMATCH)"),
                )
            )
    lines.append(("exactness", exact.get("verdict", "n/a")))
    if exact.get("totals"):
        lines.append(("  totals", ", ".join(f"{k} {v:,}" for k, v in exact["totals"].items())))
    lines.append(
        (
            "server RSS per connection",
            _num(server["rss_per_connection_kib"], " KiB")
            + f" ({server['connections_measured']:,} sockets)",
        )
    )
    for process in server["processes"]:
        cpu = ", ".join(f"{phase} {value:.0f}%" for phase, value in process["cpu_percent"].items())
        lines.append(
            (
                f"  pid {process['pid']}",
                f"RSS {_num(process['rss_before_kib'])} -> "
                f"{_num(process['rss_idle_kib'])} KiB idle, "
                f"peak {_num(process['rss_peak_kib'])} KiB; CPU {cpu}",
            )
        )
    generator = report["generator"]
    lines.append(
        (
            f"load generator CPU ({generator['processes']} proc)",
            ", ".join(f"{phase} {value:.0f}%" for phase, value in generator["cpu_percent"].items()),
        )
    )
    if page:
        lines.append(
            (
                "phone page download",
                f"{page['bytes']:,} bytes in {len(page['files'])} files "
                f"({page['wire_bytes']:,} with headers; "
                + ("all gzipped" if page["all_gzipped"] else "NOT all gzipped")
                + (
                    f"; third-party: {len(page['third_party'])}"
                    if page["third_party"]
                    else "; no third-party"
                )
                + ")",
            )
        )
    return lines


def qa_rows(qa: dict) -> list[tuple[str, str]]:
    items, votes = qa["items"], qa["votes"]
    stage, lists = qa.get("stage") or {}, qa.get("lists") or {}
    errors = ", ".join(f"{code} {count}" for code, count in sorted(votes["errors"].items()))
    kinds = ", ".join(f"{kind} {count:,}" for kind, count in sorted(votes["by_kind"].items()))
    return [
        (
            "Q&A items asked / acked, ack p50 / p99",
            f"{items['asked']:,} / {items['acked']:,}, {_ms(items['ack_ms'], 'p50', 'p99')}",
        ),
        (
            "Q&A votes sent / acked / errors",
            f"{votes['sent']:,} / {votes['acked']:,} ({kinds})"
            + (f"; errors {errors}" if errors else "")
            + (f", {votes['unacked']:,} unacked" if votes["unacked"] else ""),
        ),
        (
            "Q&A votes per second (peak second)",
            f"{_num(votes['per_second'])} ({_num(votes['peak_per_second'])})",
        ),
        ("Q&A vote ack p50 / p99", _ms(votes["ack_ms"], "p50", "p99")),
        (
            "vote ack -> stage board p50 / p99",
            _ms(stage.get("vote_to_board_ms"), "p50", "p99")
            + f" ({_num(stage.get('on_board'))} votes on the board's items"
            + (f", {stage['not_seen']:,} never shown" if stage.get("not_seen") else "")
            + ")",
        ),
        (
            "vote ack -> other phones' lists p50 / p99",
            _ms(lists.get("vote_to_list_ms"), "p50", "p99")
            + f" ({_num(lists.get('observers'))} observers"
            + (f", {lists['not_seen']:,} never shown" if lists.get("not_seen") else "")
            + ")",
        ),
    ]


def quiz_rows(quiz: dict) -> list[tuple[str, str]]:
    lines = []
    for number, question in enumerate(quiz["questions"], start=1):
        answers = question["answers"]
        statuses = ", ".join(
            f"{status} {count:,}" for status, count in sorted(answers["by_status"].items())
        )
        boards = ", ".join(
            _num(stage["leaderboard_ms"], " ms") + f" (closed {_num(stage['closed_ms'], ' ms')})"
            for stage in question["stages"]
        )
        head = f"quiz {number} ({question['kind']}, {question['limit_s']} s)"
        lines += [
            (
                f"{head} answers sent / acked",
                f"{answers['sent']:,} / {answers['acked']:,} of {question['armed']:,} phones"
                + (f" ({statuses})" if statuses != f"acked {answers['acked']:,}" else ""),
            ),
            ("  ack p50 / p99", _ms(answers["ack_ms"], "p50", "p99")),
            (
                "  opening -> phone p50 / p99; answers sent after it, max",
                _ms(question["opening_to_phone_ms"], "p50", "p99")
                + f"; {_ms(answers['sent_after_opening_ms'], 'max')}"
                + f" ({answers['within_spread']:,} within {quiz['spread_s']:g} s)",
            ),
            ("  deadline -> stage leaderboard", boards or "n/a (no stage)"),
            (
                "  deadline -> phone score p50 / p99 / max",
                _ms(question["deadline_to_score_ms"], "p50", "p99", "max")
                + f" ({question['scores']:,} phones"
                + (
                    f", {question['no_score_live']:,} live without"
                    if question["no_score_live"]
                    else ""
                )
                + ")",
            ),
        ]
    return lines


def render(report: dict) -> str:
    lines = rows(report)
    width = max(len(name) for name, _value in lines)
    out = [f"{name.ljust(width)}  {value}" for name, value in lines]
    for warning in report.get("warnings", []):
        out.append(f"warning: {warning}")
    exact = report["exactness"]
    if exact.get("ok") is False:
        out.append("")
        out.append("!!! EXACTNESS CHECK FAILED: " + exact.get("verdict", ""))
    elif exact.get("ok") is None:
        out.append("")
        out.append("!!! " + exact.get("verdict", "the exactness check did not run"))
    return "\n".join(out)

"""The exactness check: every acknowledged answer counted exactly once, on the stage screens, in
the Redis tally and in the Answer rows (an answer sent without an ack may be counted or not);
for the Q&A (``QaCheck``) every acknowledged vote, in Redis, in the QaVote rows and on the
stage's board."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .django_side import (
    expected_counts,
    expected_segments,
    read_qa,
    read_tally,
    read_tally_answers,
    shown_groups,
    wait_for_qa_rows,
    wait_for_rows,
)
from .stage import StageClient


def _publishes_counts(kind: str) -> bool:
    """Whether a snapshot's counts are the tally's buckets (else they are in its summary)."""
    from polls import kinds

    return kinds.get(kind).publishes_counts


class Check:
    """One question's check; ``db`` runs a function in the coordinator's database thread."""

    def __init__(
        self,
        results: dict,
        question_id: int,
        kind: str | None,
        v0: int | None,
        stages: list[StageClient],
        db: Callable[..., Awaitable[Any]],
        drain_timeout: float,
        profile: list[dict] | None = None,
        segment_by: int | None = None,
        segment_min: int = 5,
    ) -> None:
        self.results = results
        self.question_id = question_id
        self.kind = kind
        self.v0 = v0
        self.stages = stages
        self.db = db
        self.drain_timeout = drain_timeout
        self.profile = profile or []  # the event's ask-on-join profile questions
        self.segment_by = segment_by
        self.segment_min = segment_min
        self.acked: dict[str, Any] = {}
        self.uncertain: dict[str, list] = {}
        # per participant, its acknowledged profile answers (question id -> value)
        self.profiles: dict[str, dict[int, Any]] = {}
        self.profile_uncertain: dict[int, dict[str, list]] = {}
        for phone in results["phones"]:
            participant = phone["participant"]
            if participant is None:
                continue
            if phone["has_acked"]:
                self.acked[participant] = phone["acked_value"]
            if phone["uncertain"]:
                self.uncertain[participant] = phone["uncertain"]
            if phone.get("profile"):
                self.profiles[participant] = {int(q): v for q, v in phone["profile"].items()}
            for question, values in (phone.get("profile_uncertain") or {}).items():
                self.profile_uncertain.setdefault(int(question), {})[participant] = values
        self.check: dict[str, Any] = {
            "question_id": question_id,
            "acked_participants": len(self.acked),
            "uncertain_participants": len(self.uncertain),
        }
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.tally_now: dict | None = None
        self.redis_answers: dict | None = None

    async def run(self) -> dict:
        await self.redis()
        self.stage()
        await self.database()
        self.totals()
        if self.profile:
            await self.segments()
        return self.verdict()

    @staticmethod
    def allowed_of(acked: dict, uncertain: dict, participant: str) -> list:
        options = [acked[participant]] if participant in acked else [None]
        return options + uncertain.get(participant, [])

    def allowed(self, participant: str) -> list:
        return self.allowed_of(self.acked, self.uncertain, participant)

    def compare(
        self,
        name: str,
        counted: dict[str, Any],
        acked: dict | None = None,
        uncertain: dict | None = None,
    ) -> None:
        """Each participant's counted answer is its last acknowledged one (or, unsure, one it
        sent); by default for the burst's question."""
        if acked is None:
            acked, uncertain = self.acked, self.uncertain
        uncertain = uncertain or {}
        check = self.check
        wrong = []
        for participant in set(acked) | set(uncertain):
            if counted.get(participant) not in self.allowed_of(acked, uncertain, participant):
                wrong.append(participant)
        ours = set(acked) | set(uncertain) | {p["participant"] for p in self.results["phones"]}
        foreign = [p for p in counted if p not in ours]
        check[f"{name}_mismatches"] = len(wrong)
        if wrong:
            sample = wrong[0]
            self.problems.append(
                f"{name}: {len(wrong)} participants differ from their acknowledged answer "
                f"(e.g. {sample}: acked {self.allowed_of(acked, uncertain, sample)!r}, "
                f"{name} {counted.get(sample)!r})"
            )
        if foreign:
            self.notes.append(f"{name} has {len(foreign)} answers from other participants")

    async def redis(self) -> None:
        acked, check, problems = self.acked, self.check, self.problems
        try:
            self.tally_now = await self.db(read_tally, self.question_id)
            self.redis_answers = await self.db(read_tally_answers, self.question_id)
        except Exception as error:
            self.tally_now = None
            self.notes.append(f"Redis not readable from here ({type(error).__name__})")
        tally_now = self.tally_now
        if tally_now is None:
            return
        if tally_now["version"] == 0 and acked:
            self.notes.append("the tally is empty here: is REDIS_URL the server's?")
        check["redis_total"] = tally_now["total"]
        check["redis_version"] = tally_now["version"]
        self.compare("redis", self.redis_answers)
        if self.uncertain:
            return
        counts = expected_counts(self.kind, acked) if self.kind else None
        check["counts_expected"] = counts
        check["redis_counts_match"] = counts == tally_now["counts"]
        if counts != tally_now["counts"]:
            problems.append("Redis counts differ from the acknowledged answers")
        if self.v0 is not None:
            moves = tally_now["version"] - self.v0
            acked_moves = sum(1 for a in self.results["answers"] if a[2] == "acked")
            check["version_moves"] = moves
            check["acked_answers"] = acked_moves
            if moves != acked_moves:
                problems.append(
                    f"the tally's version moved {moves} times for {acked_moves} "
                    "acknowledged answers (each one changes the count once)"
                )

    def stage(self) -> None:
        if not self.stages:
            return
        check, problems, tally_now = self.check, self.problems, self.tally_now
        latest = [stage.latest.get(self.question_id) for stage in self.stages]
        shown = [message for message in latest if message is not None]
        if not shown:
            problems.append("no stage screen received a snapshot of the question")
            return
        last = max(shown, key=lambda message: message["version"])
        check["stage_total"] = last["total"]
        check["stage_version"] = last["version"]
        check["stage_totals"] = [message["total"] for message in shown]
        if tally_now is not None and any(
            message["version"] != tally_now["version"] for message in shown
        ):
            problems.append(
                "a stage screen's last snapshot is not the tally's final version "
                f"({[m['version'] for m in shown]} vs {tally_now['version']})"
            )
        if self.kind and _publishes_counts(self.kind):
            stage_counts = {k: v for k, v in last["counts"].items() if v}
            if tally_now is not None:
                check["stage_counts_match"] = stage_counts == tally_now["counts"]
                if stage_counts != tally_now["counts"]:
                    problems.append("the stage's counts differ from Redis")

    async def database(self) -> None:
        check = self.check
        redis_answers = self.redis_answers
        expected_rows = len(redis_answers) if redis_answers is not None else len(self.acked)
        try:
            rows = await self.db(wait_for_rows, self.question_id, expected_rows, self.drain_timeout)
        except Exception as error:
            self.notes.append(f"Answer rows not readable from here ({type(error).__name__})")
            return
        check["db_rows"] = len(rows["rows"])
        check["db_wait_s"] = rows["seconds"]
        check["db_drained"] = rows["drained"]
        if not rows["drained"]:
            self.problems.append(
                f"the answer writer did not drain within {self.drain_timeout:g} s "
                f"(log backlog {rows['log_backlog']}; is `manage.py drain_answers` running?)"
            )
        self.compare("db", rows["rows"])

    def totals(self) -> None:
        acked, uncertain, check = self.acked, self.uncertain, self.check
        totals = {"acked": len(acked)}
        for name in ("stage_total", "redis_total", "db_rows"):
            if name in check:
                totals[name] = check[name]
        check["totals"] = totals
        if not uncertain and len(set(totals.values())) > 1:
            self.problems.append(f"totals differ: {totals}")
        if uncertain:
            low, high = len(acked), len(set(acked) | set(uncertain))
            for name, value in totals.items():
                if not low <= value <= high:
                    self.problems.append(f"{name} {value} is outside {low}..{high}")

    async def segments(self) -> None:
        """Results by segment: each profile question's counted answers are the acknowledged
        ones (Redis and rows); the tally's counts per segment are those the acknowledged
        answers make, segment by segment; the segments and the respondents in none sum to the
        whole; the stage's last snapshot shows the groups the privacy rule allows."""
        check = {"profile_questions": [q["id"] for q in self.profile]}
        self.check["segments"] = check
        problems = []
        for question in self.profile:
            qid = question["id"]
            acked = {p: answers[qid] for p, answers in self.profiles.items() if qid in answers}
            unsure = self.profile_uncertain.get(qid, {})
            check[f"profile_{qid}_acked"] = len(acked)
            try:
                counted = await self.db(read_tally_answers, qid)
            except Exception as error:
                self.notes.append(f"profile answers not readable ({type(error).__name__})")
                continue
            self.compare(f"profile_{qid}_redis", counted, acked, unsure)
            try:
                rows = await self.db(wait_for_rows, qid, len(counted), self.drain_timeout)
            except Exception as error:
                self.notes.append(f"profile rows not readable ({type(error).__name__})")
            else:
                check[f"profile_{qid}_rows"] = len(rows["rows"])
                self.compare(f"profile_{qid}_db", rows["rows"], acked, unsure)
        tally_now = self.tally_now
        if tally_now is None or not self.kind:
            return
        if self.uncertain or self.profile_uncertain:
            self.notes.append("answers without an ack: the counts per segment are not compared")
            return
        expected = expected_segments(self.kind, self.acked, self.profiles)
        ours = tuple(f"{q['id']}:" for q in self.profile)
        counted = {
            tag: group
            for tag, group in (tally_now.get("segments") or {}).items()
            if tag.startswith(ours) and group["total"]
        }
        check["expected"] = {tag: g["total"] for tag, g in sorted(expected.items())}
        check["redis"] = {tag: g["total"] for tag, g in sorted(counted.items())}
        check["redis_match"] = counted == expected
        if counted != expected:
            wrong = sorted(set(counted) ^ set(expected)) or sorted(
                tag for tag in expected if counted.get(tag) != expected[tag]
            )
            problems.append(
                f"the tally's counts per segment differ from the acknowledged answers (e.g. "
                f"{wrong[0]}: expected {expected.get(wrong[0])}, Redis {counted.get(wrong[0])})"
            )
        # The segments of one profile question do not overlap: with the respondents in none
        # of them they are the whole, bucket by bucket.
        sums = {}
        for question in self.profile:
            qid = question["id"]
            prefix = f"{qid}:"
            total = sum(g["total"] for t, g in counted.items() if t.startswith(prefix))
            counts: dict[str, int] = {}
            for tag, group in counted.items():
                if tag.startswith(prefix):
                    for bucket, n in group["counts"].items():
                        counts[bucket] = counts.get(bucket, 0) + n
            outside = {
                p: v for p, v in self.acked.items() if not (self.profiles.get(p) or {}).get(qid)
            }
            for bucket, n in expected_counts(self.kind, outside).items():
                counts[bucket] = counts.get(bucket, 0) + n
            whole = {"total": tally_now["total"], "counts": tally_now["counts"]}
            mine = {"total": total + len(outside), "counts": {k: n for k, n in counts.items() if n}}
            sums[qid] = mine == whole
            check[f"profile_{qid}_in_no_segment"] = len(outside)
            if mine != whole:
                problems.append(
                    f"profile question {qid}: the segments ({total}) and the {len(outside)} "
                    f"respondents in none are not the whole ({tally_now['total']})"
                )
        check["sum_to_whole"] = all(sums.values())
        self.stage_segments(expected, check, problems)
        check["ok"] = not problems
        self.problems += problems

    def stage_segments(self, by_tag: dict, check: dict, problems: list) -> None:
        if not self.stages or self.segment_by is None:
            return
        question = next((q for q in self.profile if q["id"] == self.segment_by), None)
        if question is None:
            return
        latest = [stage.latest.get(self.question_id) for stage in self.stages]
        shown = [message for message in latest if message is not None]
        if not shown:
            return
        last = max(shown, key=lambda message: message["version"])
        split = last.get("segments")
        if not split:
            problems.append("the stage's last snapshot has no segments (segment_by is set)")
            return
        whole = {"total": self.tally_now["total"], "counts": self.tally_now["counts"]}
        expected = shown_groups(
            whole, by_tag, question["id"], question["options"], split.get("min", self.segment_min)
        )
        counts = self.kind and _publishes_counts(self.kind)
        got = [
            {
                "key": str(group.get("key")),
                "total": group.get("total"),
                "counts": {k: n for k, n in (group.get("counts") or {}).items() if n},
            }
            for group in split.get("groups") or []
        ]
        if not counts:  # the kind's groups carry a summary, not the tally's buckets
            expected = [dict(group, counts={}) for group in expected]
            got = [dict(group, counts={}) for group in got]
        check["stage_groups"] = [(group["key"], group["total"]) for group in got]
        check["stage_match"] = got == expected
        if got != expected:
            problems.append(
                f"the stage's groups {check['stage_groups']} are not the folded segments "
                f"{[(g['key'], g['total']) for g in expected]}"
            )

    def verdict(self) -> dict:
        acked, uncertain, check, problems = self.acked, self.uncertain, self.check, self.problems
        totals = check["totals"]
        check["checked"] = [
            name
            for name, key in (("stage", "stage_total"), ("redis", "redis_total"), ("db", "db_rows"))
            if key in check
        ]
        check["problems"] = problems
        check["notes"] = self.notes
        if not acked and not uncertain:
            check["ok"] = None
            check["verdict"] = "NOTHING CHECKED: no answer was acknowledged"
            if problems:
                check["ok"] = False
                check["verdict"] = "MISMATCH: " + "; ".join(problems)
        elif problems:
            check["ok"] = False
            check["verdict"] = "MISMATCH: " + "; ".join(problems)
        elif uncertain:
            check["ok"] = True
            check["verdict"] = (
                f"consistent, but {len(uncertain)} participants had answers without an ack "
                "(counted either way is allowed)"
            )
        else:
            check["ok"] = True
            check["verdict"] = "exact: acknowledged == " + " == ".join(
                n for n in totals if n != "acked"
            )
        return check


def baseline_exactness(results: dict, before: dict, after: dict) -> dict:
    """The bare consumer's check: it counts messages (HINCRBY), not participants."""
    acked = [a for a in results["answers"] if a[2] == "acked"]
    unacked = [a for a in results["answers"] if a[2] in ("sent", "timeout", "lost")]
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}
    counted = sum(delta.values())
    low, high = len(acked), len(acked) + len(unacked)
    ok = low <= counted <= high
    exact = ok and not unacked
    if not acked and not unacked:
        ok, exact = None, False
    return {
        "ok": ok,
        "verdict": (
            f"exact: {counted} HINCRBYs for {len(acked)} acknowledged messages"
            if exact
            else "NOTHING CHECKED: no answer was acknowledged"
            if ok is None
            else (
                f"consistent: {counted} counted for {len(acked)} acked + {len(unacked)} unacked"
                if ok
                else f"MISMATCH: {counted} counted for {len(acked)} acknowledged messages"
            )
        ),
        "acked_messages": len(acked),
        "unacked_messages": len(unacked),
        "redis_hincrby_total": counted,
        "totals": {"acked": len(acked), "redis_total": counted},
        "problems": [] if ok else ["counted != acknowledged"],
        "notes": ["the bare consumer counts messages, not participants (no replace)"],
    }


class QaCheck:
    """The Q&A's check: every acknowledged vote counted exactly once, per item and per voter, in
    Redis and in the QaVote rows, and on the stage's last board for the items it shows.

    What the phones were told decides what is expected: per (participant, item) the ``voted``
    of its last acknowledged vote or unvote. A vote or unvote without a reply leaves that pair
    *uncertain*: either is allowed there (the verdict is then "consistent")."""

    def __init__(
        self,
        messages: list[tuple],
        event_id: int,
        v0: int | None,
        stages: list[StageClient],
        db: Callable[..., Awaitable[Any]],
        drain_timeout: float,
    ) -> None:
        self.event_id = event_id
        self.v0 = v0
        self.stages = stages
        self.db = db
        self.drain_timeout = drain_timeout
        self.items: set[int] = set()
        last: dict[tuple[str, int], tuple[float, bool]] = {}
        self.uncertain: set[tuple[str, int]] = set()
        self.acked_moves = 0
        for _phone, participant, kind, item, _sent, acked, status, voted, _count, _r in messages:
            if kind == "ask":
                if status == "acked":
                    self.items.add(item)
                continue
            if status == "acked":
                self.acked_moves += 1
                if (participant, item) not in last or last[participant, item][0] < acked:
                    last[participant, item] = (acked, bool(voted))
            elif status in ("sent", "timeout", "lost"):
                self.uncertain.add((participant, item))
        self.expected: dict[int, set[str]] = {item: set() for item in self.items}
        for (participant, item), (_acked, voted) in last.items():
            if voted:
                self.expected.setdefault(item, set()).add(participant)
        self.check: dict[str, Any] = {
            "kind": "qa",
            "items": len(self.items),
            "acked_votes": sum(len(voters) for voters in self.expected.values()),
            "uncertain_pairs": len(self.uncertain),
        }
        self.problems: list[str] = []
        self.notes: list[str] = []

    def compare(self, name: str, counted: dict[int, set[str]]) -> None:
        """Each item's voters as ``name`` counts them are the acknowledged ones (an uncertain
        pair either way)."""
        wrong = []
        for item in set(self.expected) | set(counted):
            mine, theirs = self.expected.get(item, set()), counted.get(item, set())
            for participant in mine ^ theirs:
                if (participant, item) not in self.uncertain:
                    wrong.append((item, participant, participant in theirs))
        self.check[f"{name}_mismatches"] = len(wrong)
        if wrong:
            item, participant, counted_there = wrong[0]
            self.problems.append(
                f"{name}: {len(wrong)} votes differ from the acknowledged ones (e.g. item "
                f"{item}, {participant}: {'counted' if counted_there else 'not counted'} in "
                f"{name}, {'not ' if counted_there else ''}acknowledged)"
            )

    async def run(self) -> dict:
        check, problems = self.check, self.problems
        redis = None
        try:
            redis = await self.db(read_qa, self.event_id)
        except Exception as error:
            self.notes.append(f"Redis not readable from here ({type(error).__name__})")
        if redis is not None:
            voters = {item: set(people) for item, people in redis["voters"].items()}
            check["redis_total"] = sum(redis["votes"].values())
            check["redis_version"] = redis["version"]
            self.compare("redis", voters)
            lopsided = [i for i, n in redis["votes"].items() if n != len(voters.get(i, ()))]
            if lopsided:
                problems.append(f"Redis: {len(lopsided)} items' counts are not their voters")
            if self.v0 is not None and not self.uncertain:
                check["version_moves"] = redis["version"] - self.v0
                check["acked_messages"] = self.acked_moves
                if check["version_moves"] != self.acked_moves:
                    problems.append(
                        f"the Q&A's version moved {check['version_moves']} times for "
                        f"{self.acked_moves} acknowledged votes and unvotes (each moves it once)"
                    )
        expected_rows = check.get("redis_total", check["acked_votes"])
        try:
            rows = await self.db(wait_for_qa_rows, self.event_id, expected_rows, self.drain_timeout)
        except Exception as error:
            self.notes.append(f"QaVote rows not readable from here ({type(error).__name__})")
        else:
            counted = {item: set(people) for item, people in rows["rows"].items()}
            check["db_rows"] = sum(len(people) for people in counted.values())
            check["db_taken_back"] = rows["taken_back"]
            check["db_wait_s"] = rows["seconds"]
            if not rows["drained"]:
                problems.append(
                    f"the writer did not drain the vote log within {self.drain_timeout:g} s "
                    f"(backlog {rows['log_backlog']}; is `manage.py drain_answers` running?)"
                )
            self.compare("db", counted)
        self.stage(redis)
        totals = {"acked": check["acked_votes"]}
        for name in ("redis_total", "db_rows"):
            if name in check:
                totals[name] = check[name]
        check["totals"] = totals
        if not self.uncertain and len(set(totals.values())) > 1:
            problems.append(f"totals differ: {totals}")
        return self.verdict()

    def stage(self, redis: dict | None) -> None:
        """The newest board: at the tally's version, each item it shows with the acknowledged
        count, and those the highest counts there are."""
        if not self.stages:
            return
        check, problems = self.check, self.problems
        boards = [stage.board for stage in self.stages if stage.board is not None]
        if not boards:
            problems.append("no stage screen received a Q&A board")
            return
        if redis is not None and any(b["version"] != redis["version"] for b in boards):
            problems.append(
                "a stage screen's last board is not at the Q&A's final version "
                f"({[b['version'] for b in boards]} vs {redis['version']})"
            )
        board = max(boards, key=lambda b: b["version"])
        shown = [*board["top"], *([board["pinned"]] if board.get("pinned") else [])]
        counts = {item["id"]: item["votes"] for item in shown}
        expected = {item: len(voters) for item, voters in self.expected.items()}
        sure = {item for item in counts if not any(i == item for _p, i in self.uncertain)}
        wrong = [item for item in sure if counts[item] != expected.get(item)]
        check["stage_version"] = board["version"]
        check["stage_items"] = len(counts)
        check["stage_top"] = [(item["id"], item["votes"]) for item in board["top"]]
        check["stage_open"] = board["open"]
        if wrong:
            item = wrong[0]
            problems.append(
                f"the stage shows {len(wrong)} items with other counts than acknowledged (e.g. "
                f"item {item}: {counts[item]} shown, {expected.get(item)} acknowledged)"
            )
        if board["open"] != len(self.items):
            problems.append(f"the stage counts {board['open']} open items of {len(self.items)}")
        if not self.uncertain:
            highest = sorted(expected.values(), reverse=True)[: len(board["top"])]
            check["stage_top_match"] = highest == [item["votes"] for item in board["top"]]
            if not check["stage_top_match"]:
                problems.append("the stage's top items are not the items with the most votes")

    def verdict(self) -> dict:
        check, problems = self.check, self.problems
        check["problems"] = problems
        check["notes"] = self.notes
        checked = [name for name in ("redis_total", "db_rows") if name in check]
        if "stage_items" in check:
            checked.append(f"stage ({check['stage_items']} items shown)")
        check["checked"] = checked
        if not self.items:
            check["ok"] = False if problems else None
            check["verdict"] = (
                "MISMATCH: " + "; ".join(problems)
                if problems
                else "NOTHING CHECKED: no item was acknowledged"
            )
        elif problems:
            check["ok"] = False
            check["verdict"] = "MISMATCH: " + "; ".join(problems)
        elif self.uncertain:
            check["ok"] = True
            check["verdict"] = (
                f"consistent, but {len(self.uncertain)} votes got no reply (counted either way "
                "is allowed)"
            )
        else:
            check["ok"] = True
            check["verdict"] = "exact: acknowledged == " + " == ".join(checked)
        return check

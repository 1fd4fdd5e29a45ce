"""The quiz's check: every acknowledged answer scored exactly once, and every figure the room
was shown the one the database's answers give.

Per scored question: the participants whose answer was acknowledged (with the value the ack
counted) are the Redis score hash's entries, its answers hash's values and, once the writer
drained, the Answer rows; the points Redis holds per participant are those
``polls.quiz_board.recompute`` gives from the rows (points and answer time, to the
millisecond). Per event: the leaderboard's members are everyone who answered, its points and
time hashes and its sorted set's scores the recomputed totals. Then what was shown: each phone's
``score`` (points, total, place, places moved, players, its answer) and the stage's
``leaderboard`` (players, answered, right, the top ten's places and points; gained and moved
where a place is not shared) are those of the board ``quiz_plan.standings`` rebuilds from the
recomputed points. An answer without a reply leaves its participant *uncertain* for that
question: either is allowed there (the verdict is then "consistent").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from . import quiz_plan
from .django_side import read_quiz, recompute_quiz, wait_for_rows


class QuizCheck:
    def __init__(
        self,
        quiz: dict,
        info: dict,
        stages: list,
        db: Callable[..., Awaitable[Any]],
        drain_timeout: float,
    ) -> None:
        self.questions = quiz.get("questions", [])
        self.event_id = info["event_id"]
        self.order = [q["spec"]["id"] for q in self.questions]
        self.stages = stages
        self.db = db
        self.drain_timeout = drain_timeout
        self.acked: dict[int, dict[str, Any]] = {}
        self.uncertain: dict[int, set[str]] = {}
        for question in self.questions:
            qid = question["spec"]["id"]
            acked: dict[str, Any] = {}
            uncertain: set[str] = set()
            for _i, participant, _s, _a, status, _v, counted, _w, _r in question["answers"]:
                if status == "acked":
                    acked[participant] = counted
                elif status in ("sent", "timeout", "lost"):
                    uncertain.add(participant)
            self.acked[qid], self.uncertain[qid] = acked, uncertain
        self.check: dict[str, Any] = {
            "kind": "quiz",
            "questions": len(self.questions),
            "acked": {str(q): len(a) for q, a in self.acked.items()},
            "uncertain": {str(q): len(u) for q, u in self.uncertain.items()},
        }
        self.problems: list[str] = []
        self.notes: list[str] = []

    def _differ(self, name: str, question: int, expected: dict, found: dict) -> None:
        """Participant -> value as ``name`` holds it against the acknowledged (uncertain
        participants either way)."""
        unsure = self.uncertain.get(question, set())
        wrong = [
            p
            for p in set(expected) | set(found)
            if p not in unsure and (p not in expected or p not in found or expected[p] != found[p])
        ]
        self.check.setdefault(f"{name}_mismatches", {})[str(question)] = len(wrong)
        if wrong:
            p = sorted(wrong)[0]
            self.problems.append(
                f"question {question}, {name}: {len(wrong)} participants differ from the "
                f"acknowledged answers (e.g. {p}: acknowledged {expected.get(p, '-')!r}, "
                f"{name} {found.get(p, '-')!r})"
            )

    async def run(self) -> dict:
        check, problems = self.check, self.problems
        if not self.questions:
            return {"ok": None, "verdict": "n/a: no quiz question ran", **check}
        redis = None
        try:
            redis = await self.db(read_quiz, self.event_id, self.order)
        except Exception as error:
            self.notes.append(f"Redis not readable from here ({type(error).__name__})")
        rows: dict[int, dict] = {}
        for qid in self.order:
            expected = len(self.acked[qid])
            if redis is not None:
                expected = len(redis["scores"][qid])
            try:
                rows[qid] = await self.db(wait_for_rows, qid, expected, self.drain_timeout)
            except Exception as error:
                self.notes.append(f"Answer rows not readable ({type(error).__name__})")
                break
            if not rows[qid]["drained"]:
                problems.append(
                    f"question {qid}: the writer did not drain within {self.drain_timeout:g} s "
                    f"(backlog {rows[qid]['log_backlog']})"
                )
        check["db_wait_s"] = {str(q): r["seconds"] for q, r in rows.items()}
        recomputed = None
        try:
            recomputed = await self.db(recompute_quiz, self.event_id)
        except Exception as error:
            self.notes.append(f"the points could not be recomputed ({type(error).__name__})")
        totals: dict[str, dict[str, int]] = {}
        for qid in self.order:
            acked = self.acked[qid]
            counts = {"acked": len(acked)}
            if redis is not None:
                scores = redis["scores"][qid]
                counts["redis_scores"] = len(scores)
                self._differ("redis_answers", qid, acked, redis["answers"][qid])
                self._differ(
                    "redis_scores", qid, dict.fromkeys(acked, True), dict.fromkeys(scores, True)
                )
            if qid in rows:
                counts["db_rows"] = len(rows[qid]["rows"])
                self._differ("db", qid, acked, rows[qid]["rows"])
            if recomputed is not None and redis is not None:
                again = recomputed.get(qid, {})
                wrong = [
                    p
                    for p in set(again) | set(redis["scores"][qid])
                    if again.get(p) != redis["scores"][qid].get(p)
                ]
                check.setdefault("recompute_mismatches", {})[str(qid)] = len(wrong)
                if wrong:
                    p = sorted(wrong)[0]
                    problems.append(
                        f"question {qid}: {len(wrong)} participants' (points, ms) in Redis are "
                        f"not the database's (e.g. {p}: {redis['scores'][qid].get(p)} vs "
                        f"{again.get(p)})"
                    )
            totals[str(qid)] = counts
        check["per_question"] = totals
        answered = set().union(*(set(a) for a in self.acked.values()))
        unsure = set().union(*self.uncertain.values())
        standings = None
        if recomputed is not None:
            standings = quiz_plan.standings(self.order, recomputed)
        if redis is not None:
            members = set(redis["board"])
            check["board_members"] = len(members)
            strays = (members ^ answered) - unsure
            if strays:
                problems.append(
                    f"the leaderboard's {len(members)} members are not the {len(answered)} "
                    f"participants who answered ({len(strays)} differ)"
                )
            if standings is not None:
                final = standings[self.order[-1]]
                wrong = [
                    p
                    for p in set(final.totals) | members
                    if redis["board"].get(p) != final.scores.get(p)
                    or redis["points"].get(p) != final.totals.get(p, (None,))[0]
                    or redis["time"].get(p) != final.totals.get(p, (None, None))[1]
                ]
                check["board_mismatches"] = len(wrong)
                if wrong:
                    p = sorted(wrong)[0]
                    problems.append(
                        f"the leaderboard's totals: {len(wrong)} participants are not what the "
                        f"database recomputes (e.g. {p}: points {redis['points'].get(p)}, time "
                        f"{redis['time'].get(p)} vs {final.totals.get(p)})"
                    )
        if standings is not None:
            self.shown(standings)
        check["totals"] = {
            "acked": sum(len(a) for a in self.acked.values()),
            "redis_scores": sum(t.get("redis_scores", 0) for t in totals.values()),
            "db_rows": sum(t.get("db_rows", 0) for t in totals.values()),
        }
        if "board_members" in check:
            check["totals_board"] = {"answered": len(answered), "members": check["board_members"]}
        if not unsure:
            for qid, counts in totals.items():
                if len(set(counts.values())) > 1:
                    problems.append(f"question {qid}: counts differ: {counts}")
        return self.verdict()

    def shown(self, standings: dict[int, quiz_plan.Standing]) -> None:
        """Each phone's ``score`` and the stage's last ``leaderboard`` per question against the
        board rebuilt from the database."""
        check, problems = self.check, self.problems
        for question in self.questions:
            qid = question["spec"]["id"]
            standing = standings[qid]
            unsure = set().union(*self.uncertain.values())
            wrong, missing, checked = [], 0, 0
            for _i, participant, live, _o, _c, _at, score, _n in question["phones"]:
                if score is None:
                    missing += live
                    continue
                if participant in unsure:
                    continue
                checked += 1
                points, total, place, moved = standing.own(participant)
                expected = {
                    "points": points,
                    "total": total,
                    "place": place,
                    "moved": moved,
                    "players": len(standing.scores),
                    "answer": self.acked[qid].get(participant),
                }
                if any(score.get(key) != value for key, value in expected.items()):
                    wrong.append((participant, expected, score))
            check.setdefault("scores_checked", {})[str(qid)] = checked
            check.setdefault("scores_missing", {})[str(qid)] = missing
            check.setdefault("score_mismatches", {})[str(qid)] = len(wrong)
            if wrong:
                participant, expected, score = wrong[0]
                problems.append(
                    f"question {qid}: {len(wrong)} phones' scores are not the database's (e.g. "
                    f"{participant}: {score} vs {expected})"
                )
            if missing:
                problems.append(f"question {qid}: {missing} connected phones got no score")
            for number, stage in enumerate(question["stages"], start=1):
                boards = stage["leaderboards"]
                if not boards:
                    problems.append(f"question {qid}: stage {number} got no leaderboard")
                    continue
                board = boards[-1][1]
                self.board(qid, standing, board, unsure)

    def board(self, qid: int, standing: quiz_plan.Standing, board: dict, unsure: set) -> None:
        expected_top = standing.top()
        shown_top = [(row["place"], row["points"]) for row in board["top"]]
        problems = []
        if not unsure:
            if board["players"] != len(standing.scores):
                problems.append(f"players {board['players']} vs {len(standing.scores)}")
            if board["answered"] != standing.answered or board["right"] != standing.right:
                problems.append(
                    f"answered/right {board['answered']}/{board['right']} vs "
                    f"{standing.answered}/{standing.right}"
                )
            if shown_top != expected_top:
                problems.append(f"top {shown_top} vs {expected_top}")
        shared = {
            place for place, _p in expected_top if [p for p, _x in expected_top].count(place) > 1
        }
        by_place = {
            standing.places[p]: p for p in standing.places if standing.places[p] not in shared
        }
        for row in board["top"]:
            participant = by_place.get(row["place"])
            if participant is None or participant in unsure:
                continue
            want = (standing.gained.get(participant, 0), standing.moved.get(participant))
            if (row["gained"], row["moved"]) != want:
                problems.append(
                    f"place {row['place']}: gained/moved {row['gained']}/{row['moved']} vs {want}"
                )
        self.check.setdefault("stage_top_match", {})[str(qid)] = not problems
        self.check.setdefault("stage_rows", {})[str(qid)] = len(board["top"])
        if problems:
            self.problems.append(
                f"question {qid}, the stage's leaderboard: " + "; ".join(problems[:3])
            )

    def verdict(self) -> dict:
        check = self.check
        unsure = sum(len(u) for u in self.uncertain.values())
        if self.problems:
            check["ok"] = False
            check["verdict"] = "MISMATCH: " + "; ".join(self.problems[:4])
        elif unsure:
            check["ok"] = True
            check["verdict"] = (
                f"consistent: every acknowledged answer scored once ({unsure} unanswered sends "
                "either way)"
            )
        else:
            totals = check["totals"]
            check["ok"] = True
            check["verdict"] = (
                f"exact: {totals['acked']:,} answers acknowledged = scored in Redis = rows, "
                f"{check.get('board_members', 0):,} on the leaderboard, every total, score and "
                "leaderboard the database's"
            )
        if self.notes:
            check["notes"] = self.notes
            if check["ok"] and not self.problems:
                check["verdict"] += " (" + "; ".join(self.notes) + ")"
        return check

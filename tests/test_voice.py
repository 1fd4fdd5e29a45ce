"""Suspicious bursts (polls.voice) and setting them aside (polls.actions, the tally's aside script):
an honest hall behind one NAT is never flagged, a scripted burst is, and setting it aside gives
exactly the honest result on every question until it is restored. Real Redis; the remote page
through Django's test client."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from polls import actions, answers, tally, voice
from polls.models import Answer, Question, SetAside
from polls.state import build_event_state
from polls.tokens import Participant, address_tag, new_participant_id, origin_of
from tests.factories import make_event, make_open_question, make_question, make_user, option_ids

pytestmark = pytest.mark.django_db(transaction=True)

T0 = 1_800_000_000  # a minute's first second, so the script's minute is one join bucket
HALL = "203.0.113.10"  # the venue's NAT: most of the room
OTHERS = [f"198.51.100.{n}" for n in range(1, 5)]  # phones on mobile data
SCRIPT = "192.0.2.66"


def honest_people(rng: random.Random) -> list[str]:
    """1,120 phones: the hall joins over ten minutes (400 in the first rush), four other
    addresses a few each."""
    people = [new_participant_id(HALL, T0 + rng.uniform(0, 59)) for _ in range(400)]
    people += [new_participant_id(HALL, T0 + rng.uniform(60, 600)) for _ in range(600)]
    for address in OTHERS:
        people += [new_participant_id(address, T0 + rng.uniform(0, 600)) for _ in range(30)]
    return people


def script_tokens(count: int = 300, start: int = T0 + 300) -> list[str]:
    return [new_participant_id(SCRIPT, start + index * 59 // count) for index in range(count)]


def record(question: Question, plan: list[tuple[str, str, object]]) -> None:
    """Every (participant, message id, value) counted as phones would send them."""

    async def send():
        return await asyncio.gather(
            *(
                tally.record_answer(question.id, question.kind, participant, message_id, value)
                for participant, message_id, value in plan
            )
        )

    outcomes = asyncio.run(send())
    assert all(outcome.status in ("ok", "unchanged") for outcome in outcomes), outcomes[:3]


def answer_honestly(question, people, rng, weights, ledger: dict) -> None:
    """One answer each, then a tenth change their mind (each a second message)."""
    options = option_ids(question)
    first = [(person, "m1", rng.choices(options, weights)[0]) for person in people]
    record(question, first)
    changes = [
        (person, "m2", rng.choice(options)) for person in rng.sample(people, len(people) // 10)
    ]
    record(question, changes)
    for person, _message, value in first + changes:
        ledger[person] = value


def live_tally(question) -> tuple[int, dict[str, int]]:
    snapshot = tally.read_snapshot_sync(question.id)
    return snapshot.total, {key: count for key, count in snapshot.counts.items() if count}


def recomputed(question, ledger: dict, leave_out=frozenset()) -> tuple[int, dict[str, int]]:
    voices = {person: value for person, value in ledger.items() if person not in leave_out}
    return len(voices), tally.count_in_order(question.kind, voices)[0]


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def assert_commands_agree(questions) -> None:
    """check_tallies finds nothing, and rebuild_tallies (from the Answer rows) changes nothing."""
    assert "0 differences" in run("check_tallies")
    live = [live_tally(question) for question in questions]
    run("rebuild_tallies")
    assert [live_tally(question) for question in questions] == live


@pytest.fixture
def event(host):
    return make_event(code="BURST42", hosts=[host])


@pytest.fixture
def room(event):
    """The first question open, answered by the honest room and by a scripted burst of 300
    tokens from one address, joined within one minute, all choosing the room's least choice."""
    rng = random.Random(10)
    question = make_open_question(event, prompt="Which channel first?")
    people = honest_people(rng)
    ledger: dict = {}
    answer_honestly(question, people, rng, (5, 3, 2), ledger)
    script = script_tokens()
    least = option_ids(question)[2]
    record(question, [(token, "s1", least) for token in script])
    ledger.update(dict.fromkeys(script, least))
    return question, people, set(script), ledger


def test_exactly_the_scripted_burst_is_listed(room):
    question, people, script, ledger = room
    (burst,) = voice.find_bursts(question.id)
    assert burst.participants == script
    assert (burst.size, burst.tag, burst.value) == (
        300,
        address_tag(SCRIPT),
        option_ids(question)[2],
    )
    assert burst.joined_within <= 59 and burst.first_bucket == burst.last_bucket
    assert burst.share == pytest.approx(300 / len(ledger))
    assert burst.aside == 0
    # The hall itself joined 400 phones within its first minute, from one address, and is no
    # burst: they answered as the rest of the room did.
    assert sum(origin_of(p).joined < T0 + 60 for p in people) >= 400


def test_a_burst_pushing_the_rooms_own_favourite_is_seen_but_an_easy_question_is_not(event):
    """When 92% of the room agree, every honest minute of the hall agrees ~92% too (beyond the
    80% of "alike"), and is no burst; 300 scripted tokens all choosing that favourite are."""
    rng = random.Random(11)
    question = make_open_question(event, prompt="Is service important?")
    ledger: dict = {}
    answer_honestly(question, honest_people(rng), rng, (92, 5, 3), ledger)
    assert voice.find_bursts(question.id) == []
    script = script_tokens()
    record(question, [(token, "s1", option_ids(question)[0]) for token in script])
    assert [burst.participants for burst in voice.find_bursts(question.id)] == [set(script)]


def test_set_aside_gives_the_honest_result_on_every_question_and_restore_gives_all(
    client, event, host, room
):
    question, people, script, ledger = room
    url = f"/e/{event.code}/host/"
    client.force_login(host)
    assert live_tally(question) == recomputed(question, ledger)
    assert_commands_agree([question])

    page = client.get(url).content.decode()
    (burst,) = voice.find_bursts(question.id)
    assert "Suspicious bursts" in page and "300 phones" in page
    assert "Answer: <span>Blue</span>" in page
    assert f'name="burst" value="{burst.id}"' in page and 'value="set_aside"' in page
    assert 'value="restore"' not in page

    response = client.post(url, {"action": "set_aside", "burst": burst.id})
    assert response.status_code == 302
    assert set(SetAside.objects.filter(event=event).values_list("participant", flat=True)) == script
    assert live_tally(question) == recomputed(question, ledger, leave_out=script)
    page = client.get(url).content.decode()
    assert 'value="set_aside"' not in page
    assert f'name="burst" value="{burst.group}"' in page and 'value="restore"' in page

    # A set-aside token's new answer is acknowledged as any honest one, kept, and not counted.
    spec = build_event_state(event.id)["spec"]
    red = option_ids(question)[0]
    token, person = sorted(script)[0], people[0]
    message = {"id": "again", "question": question.id, "value": red}
    version = tally.read_snapshot_sync(question.id).version
    token_ack = asyncio.run(answers.count_answer(message, spec, as_participant(event, token)))
    assert tally.read_snapshot_sync(question.id).version == version + 1  # as if it counted
    assert token_ack == asyncio.run(
        answers.count_answer(message, spec, as_participant(event, person))
    )
    assert token_ack == {"type": "ack", "id": "again", "question": question.id, "answer": red}
    ledger[token] = ledger[person] = red
    assert asyncio.run(tally.answer_of(question.id, token)) == red  # the phone shows its answer
    assert live_tally(question) == recomputed(question, ledger, leave_out=script)
    assert_commands_agree([question])
    assert Answer.objects.get(question=question, participant=token).value == red  # kept

    # The next question (and one added after the set-aside) leave the burst out too.
    rng = random.Random(12)
    second = make_question(event, prompt="And now?")
    later_ledgers = {}
    for later in (second, make_question(event, prompt="Added later")):
        assert client.post(url, {"action": "next"}).status_code == 302
        assert client.post(url, {"action": "open"}).status_code == 302
        later.refresh_from_db()
        assert later.state == Question.State.OPEN
        later_ledger: dict = {}
        answer_honestly(later, people, rng, (1, 1, 1), later_ledger)
        pick = option_ids(later)[1]
        record(later, [(token, "s2", pick) for token in script])
        later_ledger.update(dict.fromkeys(script, pick))
        later_ledgers[later.id] = later_ledger
        assert live_tally(later) == recomputed(later, later_ledger, leave_out=script)
        page = client.get(url).content.decode()
        assert "300 set aside" in page and 'value="set_aside"' not in page
    questions = list(event.questions.all())
    assert_commands_agree(questions)

    # Restore: every question counts every answer again, the token's changed one included.
    group = burst.group
    assert client.post(url, {"action": "restore", "burst": group}).status_code == 302
    assert not SetAside.objects.filter(event=event).exists()
    assert live_tally(question) == recomputed(question, ledger)
    for later in questions[1:]:
        assert live_tally(later) == recomputed(later, later_ledgers[later.id])
    assert_commands_agree(questions)


def test_a_burst_set_aside_earlier_is_restorable_from_a_later_question(client, event, host, room):
    question, _people, _script, ledger = room
    url = f"/e/{event.code}/host/"
    client.force_login(host)
    (burst,) = voice.find_bursts(question.id)
    client.post(url, {"action": "set_aside", "burst": burst.id})
    make_question(event, prompt="Nobody scripted this one")
    client.post(url, {"action": "next"})
    page = client.get(url).content.decode()
    assert "Set aside earlier" in page and f'name="burst" value="{burst.group}"' in page
    client.post(url, {"action": "restore", "burst": burst.group})
    assert live_tally(question) == recomputed(question, ledger)
    assert not SetAside.objects.exists()


def test_a_second_host_cannot_set_aside_or_restore_on_the_first_hosts_event(client, event, room):
    question, _people, script, ledger = room
    url = f"/e/{event.code}/host/"
    (burst,) = voice.find_bursts(question.id)
    client.force_login(make_user("host-b"))
    assert client.post(url, {"action": "set_aside", "burst": burst.id}).status_code == 403
    assert not SetAside.objects.exists()
    assert live_tally(question) == recomputed(question, ledger)
    client.force_login(event.hosts.get())
    client.post(url, {"action": "set_aside", "burst": burst.id})
    client.force_login(make_user("host-c"))
    assert client.post(url, {"action": "restore", "burst": burst.group}).status_code == 403
    assert SetAside.objects.count() == 300
    assert live_tally(question) == recomputed(question, ledger, leave_out=script)


def test_unknown_or_stale_burst_ids_change_nothing(client, event, host, room):
    question, _people, _script, ledger = room
    url = f"/e/{event.code}/host/"
    client.force_login(host)
    (burst,) = voice.find_bursts(question.id)
    other_answer = burst.id[:-8] + ("00000000" if burst.id[-8:] != "00000000" else "11111111")
    for action, value in [
        ("set_aside", other_answer),
        ("set_aside", "not-a-burst"),
        ("set_aside", burst.group + "x"),
        ("restore", burst.group),  # nothing set aside there
        ("restore", "ffffffff-2-1"),  # first minute after the last
    ]:
        page = client.post(url, {"action": action, "burst": value}, follow=True).content.decode()
        assert "There is no such" in page, (action, value)
    assert not SetAside.objects.exists()
    assert live_tally(question) == recomputed(question, ledger)


def test_host_action_command_lists_sets_aside_and_restores(event, room):
    question, _people, script, ledger = room
    (burst,) = voice.find_bursts(question.id)
    listing = run("host_action", event.code, "set_aside")
    assert f"set_aside --burst {burst.id}: 300 joined within" in listing
    run("host_action", event.code, "set_aside", "--burst", burst.id)
    assert live_tally(question) == recomputed(question, ledger, leave_out=script)
    assert f"restore --burst {burst.group}: 300 joined within" in run(
        "host_action", event.code, "restore"
    )
    run("host_action", event.code, "restore", "--burst", burst.group)
    assert live_tally(question) == recomputed(question, ledger)


def test_check_tallies_sees_and_mends_a_lost_aside_set(redis, client, event, host, room):
    question, _people, script, ledger = room
    client.force_login(host)
    (burst,) = voice.find_bursts(question.id)
    client.post(f"/e/{event.code}/host/", {"action": "set_aside", "burst": burst.id})
    redis.delete(tally.aside_key(question.id))
    assert "set-aside list wrong" in run("check_tallies")
    run("check_tallies", "--repair")
    assert "0 differences" in run("check_tallies")
    assert tally.aside_members(question.id) == script
    assert live_tally(question) == recomputed(question, ledger, leave_out=script)


def test_a_redis_that_lost_everything_keeps_the_burst_out_after_a_rebuild(
    redis, client, event, host, room
):
    question, _people, script, ledger = room
    client.force_login(host)
    (burst,) = voice.find_bursts(question.id)
    client.post(f"/e/{event.code}/host/", {"action": "set_aside", "burst": burst.id})
    run("drain_answers", "--once")
    redis.flushall()
    run("rebuild_tallies", "--flags-only")
    assert tally.aside_members(question.id) == script  # a script's next answer stays out
    run("rebuild_tallies")
    assert live_tally(question) == recomputed(question, ledger, leave_out=script)


def test_the_aside_script_moves_each_answer_once():
    question_id = 7
    tally.set_open(question_id, True)
    plan = [("p1", "m", 1), ("p2", "m", 2), ("p3", "m", 2)]

    async def send():
        for participant, message_id, value in plan:
            await tally.record_answer(question_id, "single", participant, message_id, value)

    asyncio.run(send())
    assert tally.sync_aside({question_id: "single"}, {"p2", "p9"}) == 1
    assert tally.sync_aside({question_id: "single"}, {"p2", "p9"}) == 0  # again: nothing moves
    snapshot = tally.read_snapshot_sync(question_id)
    assert (snapshot.total, snapshot.counts) == (2, {"1": 1, "2": 1})
    assert tally.sync_aside({question_id: "single"}, set()) == 1
    snapshot = tally.read_snapshot_sync(question_id)
    assert (snapshot.total, snapshot.counts) == (3, {"1": 1, "2": 2})


def synthetic_hall(rng: random.Random, kind: str) -> dict[str, tuple[str, str]]:
    """Stored answers of an honest room, as the tally keeps them, without Redis."""
    records = {}
    if kind == "easy":
        weights = [95, 3, 2]
    elif kind == "even":
        weights = [1, 1, 1, 1, 1]
    else:
        weights = [rng.random() for _ in range(rng.randint(2, 11))]  # a 0-10 score, say
    for person in honest_people(rng):
        value = rng.choices(range(len(weights)), weights)[0]
        records[person] = (str(value), str(value))
    return records


# A burst of this size is found whenever the answer it pushes is given by at most this share of
# the rest of the room: all alike is beyond belief once about share ** size <= MOST_LIKELY.
# (Pushing what nearly everyone answers anyway hardly moves the result: 300 more on 95% make
# it 96%.)
SEEN_UP_TO = {50: 0.5, 300: 0.9}


@pytest.mark.parametrize("kind", ["easy", "even", "varied"])
def test_no_honest_hall_is_flagged_and_every_scripted_burst_is(kind):
    """100 generated rooms of each kind: the rule flags none of their honest minutes, and finds
    each scripted burst of 50 or 300 alike."""
    rng = random.Random(kind)
    for _ in range(100):
        records = synthetic_hall(rng, kind)
        assert voice.bursts_in(records) == [], kind
        given = Counter(value for value, _ in records.values())
        size = rng.choice(sorted(SEEN_UP_TO))
        limit = SEEN_UP_TO[size] * len(records)
        pushable = sorted(value for value, count in given.items() if count <= limit)
        pushed = rng.choice(pushable)
        start = T0 + 60 * rng.randint(0, 9)
        script = {token: (pushed, pushed) for token in script_tokens(size, start)}
        (burst,) = voice.bursts_in({**records, **script})
        assert burst.participants == set(script)


def test_bursts_on_20000_answers_are_found_in_well_under_a_second():
    rng = random.Random(20)
    answers_by_person = {}
    for minute in range(60):  # a hall of 19,700 over an hour, and a burst of 300
        for _ in range(330):
            person = new_participant_id(HALL, T0 + 60 * minute + rng.uniform(0, 59))
            answers_by_person[person] = rng.randint(0, 10)
    answers_by_person.update(dict.fromkeys(script_tokens(), 10))
    answers_by_person = dict(list(answers_by_person.items())[-20_000:])
    tally.rebuild(9, "nps", True, answers_by_person)
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        bursts = voice.find_bursts(9)
        timings.append(time.perf_counter() - started)
    assert [burst.size for burst in bursts] == [300]
    median_ms = sorted(timings)[2] * 1000
    print(f"find_bursts on {len(answers_by_person)} answers: median {median_ms:.0f} ms")
    assert median_ms < 1000


def test_a_question_opened_after_a_set_aside_knows_it_before_its_first_answer(
    monkeypatch, client, event, host, room
):
    """The aside set is filled as the question opens, not only by the push that follows."""
    question, _people, script, _ledger = room
    client.force_login(host)
    (burst,) = voice.find_bursts(question.id)
    client.post(f"/e/{event.code}/host/", {"action": "set_aside", "burst": burst.id})
    later = make_question(event, prompt="Added after the set-aside")
    monkeypatch.setattr(actions, "go_live", lambda event_id: None)
    actions.do_set_current(event, later, open_it=True)
    assert tally.aside_members(later.id) == script


def test_a_set_aside_saved_as_redis_went_is_made_live_once_it_is_back(monkeypatch, event, room):
    question, _people, script, ledger = room
    (burst,) = voice.find_bursts(question.id)
    monkeypatch.setattr(actions, "RETRY_EVERY_SECONDS", 0.05)
    sync = tally.sync_aside
    down = True

    def sync_unless_down(*args):
        if down:
            raise tally.TallyUnavailable("Redis went away")
        return sync(*args)

    monkeypatch.setattr(tally, "sync_aside", sync_unless_down)
    with pytest.raises(ValidationError) as raised:
        actions.do_set_aside(event, burst.id)
    assert raised.value.code == "not_live_yet"  # saved: pressing again is not needed
    assert SetAside.objects.count() == 300
    assert live_tally(question) == recomputed(question, ledger)
    down = False
    deadline = time.monotonic() + 10
    while actions._retrying and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_tally(question) == recomputed(question, ledger, leave_out=script)


def as_participant(event, participant_id: str) -> Participant:
    """A participant whose token is old enough to answer at once (past any warm-up)."""
    return Participant(event.id, event.code, participant_id, issued_at=0)


def test_setting_aside_and_restoring_a_word_cloud_keeps_its_word_cap(settings):
    settings.ZP_MAX_WORDS_PER_QUESTION = 3
    question_id = 9_001
    tally.set_open(question_id, True)

    def answer(participant: str, text: str) -> None:
        message_id = f"m-{text}"  # each a new message: a resend would count once
        asyncio.run(tally.record_answer(question_id, "text", participant, message_id, text))

    def counts() -> dict[str, int]:
        return tally.read_snapshot_sync(question_id).counts

    answer("p1", "alpha beta")
    answer("p2", "gamma delta")  # the cap: delta is not counted
    assert counts() == {"alpha": 1, "beta": 1, "gamma": 1}
    tally.sync_aside({question_id: "text"}, {"p1"})
    assert counts() == {"gamma": 1}  # the words nobody else gives are gone, slots free
    answer("p3", "epsilon")
    answer("p1", "alpha beta zeta")  # stored while set aside, counted nowhere
    assert counts() == {"gamma": 1, "epsilon": 1}
    tally.sync_aside({question_id: "text"}, set())
    assert counts() == {"gamma": 1, "epsilon": 1, "alpha": 1}  # back as far as the cap allows
    answer("p1", "eta")  # a change takes back exactly what the restore counted
    assert counts() == {"gamma": 1, "epsilon": 1, "eta": 1}
    assert tally.read_snapshot_sync(question_id).total == 3

"""The research quiz in real browsers (issue 16): three phones at 390x844 choose nicknames (one
clashes), answer a timed scored single-choice question and a timed scored split, the server closes
each at its deadline; the phones show their points, place and answer, the stage the right answer,
the leaderboard and then the podium, the remote the countdown and the podium's button. Debian's
Chromium under Playwright against real Daphne.

Timings are loose on purpose: a question runs 5 seconds, and every wait allows far more.
Screenshots land in artifacts/screenshots/ (git-ignored): stage-leaderboard-1920x1080.png,
stage-podium-1920x1080.png, phone-score-390x844.png.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser_helpers import new_phone, open_remote, press, shot, watch_errors
from tests.test_browser import no_horizontal_overflow

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CODE = "QUZ2026"
LIMIT = 5  # seconds each question runs
CLOSES = 20_000  # ms to wait for the server's close at the deadline, and the board after it
CHANNEL = "Which channel do most customers try first?"
SHARE = "Which share of contacts was self-service in 2018?"

MAKE_QUIZ = f"""
from django.contrib.auth import get_user_model
from polls.demo import DEMO_HOST_USERNAME
from polls.models import Event, Option, Question
host = get_user_model().objects.get(username=DEMO_HOST_USERNAME)
event = Event.objects.create(title="Research quiz", code={CODE!r}, quiz=True, language="en")
event.hosts.add(host)
q = Question.objects.create(
    event=event, order=1, kind="single", prompt={CHANNEL!r}, scored=True, time_limit={LIMIT}
)
for order, (label, correct) in enumerate([("Chat", True), ("Phone", False), ("E-mail", False)]):
    Option.objects.create(question=q, order=order, label=label, correct=correct)
Question.objects.create(
    event=event, order=2, kind="split", prompt={SHARE!r}, split_a_label="Self-service",
    split_b_label="Live contact", scored=True, target=39, tolerance=25, time_limit={LIMIT},
)
"""


def choose_nickname(phone: Page, name: str) -> None:
    phone.fill("#zp-nick", name)
    phone.get_by_role("button", name="Play", exact=True).click()


def slide(phone: Page, value: int) -> None:
    """The split's slider moved to ``value``, as a finger's drag ends there, then sent."""
    phone.locator("input[type=range]").evaluate(
        "(r, v) => { r.value = v; r.dispatchEvent(new Event('input', {bubbles: true})); }", value
    )
    phone.locator("[data-k=send]").click()


def test_three_phones_play_the_quiz_to_the_podium(browser, stack):
    stack.manage("shell", "-c", MAKE_QUIZ)
    errors: list[str] = []
    (key,) = stack.query_one("SELECT stage_key FROM polls_event WHERE code = %s", CODE)
    stage = browser.new_page(viewport={"width": 1920, "height": 1080})
    watch_errors(stage, errors)
    stage.goto(f"{stack.base}/e/{CODE}/stage/?key={key}")
    expect(stage.locator("#zp-code")).to_have_text(CODE)
    remote = open_remote(browser, f"{stack.base}/e/{CODE}/host/", errors)
    expect(remote.locator("button[value=podium_on]")).to_be_visible()

    # Nicknames: asked first; Anna's clashes with "anna" (folded), the third plays as a number.
    anna, bram, third = (new_phone(browser) for _ in range(3))
    for phone in (anna, bram, third):
        watch_errors(phone, errors)
        phone.goto(f"{stack.base}/e/{CODE}/")
        expect(phone.locator("#zp-nick")).to_be_visible()
    choose_nickname(anna, "Anna")
    expect(anna.locator("#zp-app")).to_contain_text("Playing as Anna")
    choose_nickname(bram, "anna")
    expect(bram.locator("#zp-app [role=alert]")).to_have_text(
        "Another player has that nickname; choose another."
    )
    expect(bram.locator("#zp-nick")).to_have_attribute("aria-invalid", "true")
    choose_nickname(bram, "Bram")
    expect(bram.locator("#zp-app")).to_contain_text("Playing as Bram")
    third.get_by_role("button", name=re.compile(r"^Play as Player \d+$")).click()
    expect(third.locator("#zp-app")).to_contain_text(re.compile(r"Playing as Player \d+"))
    # Remembered on the phone: a reload does not ask again.
    third.reload()
    expect(third.locator("#zp-app")).to_contain_text("Playing as Player")
    expect(third.locator("#zp-nick")).to_have_count(0)

    # The timed single choice: countdown everywhere, two right answers and one wrong.
    press(remote, "next")
    expect(remote.locator(".hs-scored")).to_have_text("Scored")
    press(remote, "open")
    expect(remote.locator("#zp-timer")).to_contain_text(re.compile(r"\d s left"))
    expect(stage.locator("#zp-timer")).to_be_visible()
    for phone in (anna, bram, third):
        expect(phone.locator(".zp-clock")).to_contain_text("seconds left")
    for phone, label in ((anna, "Chat"), (bram, "Phone"), (third, "Chat")):
        phone.get_by_role("button", name=label, exact=True).click()
        expect(phone.locator("#zp-status")).to_have_text("Answer received ✓")

    # The deadline: the server closes the question and shows its results and the board.
    expect(stage.locator("#zp-board")).to_be_visible(timeout=CLOSES)
    expect(stage.locator(".st-answer")).to_have_text("Right answer: Chat")
    expect(stage.locator("#zp-timer")).to_be_hidden()
    rows = stage.locator("#zp-board .st-lb-row")
    expect(rows).to_have_count(3)
    expect(rows.first.locator(".st-lb-name")).to_have_text(re.compile(r"^(Anna|Player \d+)$"))
    expect(rows.last.locator(".st-lb-name")).to_have_text("Bram")
    expect(stage.locator(".st-lb-right")).to_have_text("2 of 3 right")
    expect(stage.locator(".st-lb-facts")).to_have_text("3 players")
    expect(stage.locator(".st-opt.st-right")).to_have_count(1)
    shot(stage, "stage-leaderboard-1920x1080")

    for phone in (anna, bram, third):
        expect(phone.locator(".zp-mark")).to_be_visible(timeout=CLOSES)
        expect(phone.get_by_role("button", name="Chat")).to_be_disabled()
        expect(phone.locator(".zp-opt.zp-ok")).to_have_count(1)
    anna_card = anna.locator(".zp-mark")
    expect(anna_card).to_contain_text(re.compile(r"\+\d{3,4}"))
    expect(anna_card).to_contain_text(re.compile(r"Place [12] of 3"))
    expect(anna_card).to_contain_text("Your answer: Chat ✓ Right")
    bram_card = bram.locator(".zp-mark")
    expect(bram_card).to_contain_text("+0")
    expect(bram_card).to_contain_text("Place 3 of 3")
    expect(bram_card).to_contain_text("Your answer: Phone ✗ Wrong")
    expect(bram_card).to_contain_text("Right answer: Chat")
    no_horizontal_overflow(anna)
    shot(anna, "phone-score-390x844")

    # The timed split, scored by closeness to 39 (within 25): both answers score, Bram's more;
    # the third does not answer.
    press(remote, "next")
    press(remote, "open")
    expect(stage.locator("#zp-board")).to_be_hidden()
    for phone, value in ((anna, 60), (bram, 40)):
        expect(phone.locator(".zp-clock")).to_be_visible()
        slide(phone, value)
        expect(phone.locator("#zp-status")).to_have_text("Answer received ✓")
    expect(stage.locator("#zp-board")).to_be_visible(timeout=CLOSES)
    expect(stage.locator(".st-answer")).to_have_text("Right answer: 39%")
    expect(stage.locator(".st-lb-right")).to_have_text("2 of 2 right")
    bram_card = bram.locator(".zp-mark")
    expect(bram_card).to_contain_text("Your answer: 40% ✓ Right", timeout=CLOSES)
    expect(bram_card).to_contain_text("Right answer: 39%")
    expect(third.locator(".zp-mark")).to_contain_text("You did not answer.", timeout=CLOSES)

    # The podium, and back to the question.
    press(remote, "podium_on")
    expect(remote.locator("button[value=podium_off]")).to_be_visible()
    expect(stage.locator("#zp-podium")).to_be_visible()
    steps = stage.locator(".st-pd-step:not(.st-pd-empty)")
    expect(steps).to_have_count(3)
    expect(stage.locator(".st-pd-step[data-place='1'] .st-pd-name")).not_to_have_text("")
    expect(stage.locator(".st-main")).to_be_hidden()
    shot(stage, "stage-podium-1920x1080")
    press(remote, "podium_off")
    expect(stage.locator("#zp-podium")).to_be_hidden()
    expect(stage.locator("#zp-board")).to_be_visible()
    assert errors == []

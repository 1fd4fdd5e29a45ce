"""Real browser, results by segment (issue 14): phones answer the profile question on joining,
the host turns "by segment" on from the remote, the stage splits the result per segment.
Debian's Chromium under Playwright against real Daphne.

Screenshots land in artifacts/screenshots/ (git-ignored) for a human to look at.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser_helpers import new_phone, open_remote, press, shot, watch_errors
from tests.test_browser import answer, django, no_horizontal_overflow

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

GENERATIONS = ("Babyboom (1945-1960)", "Generation X (1961-1980)", "Generation Y (1981-1995)")
GEN_Z = "Generation Z (after 1995)"

# Who answers what: (profile answer, answer). Generation X alone (1) is below k = 2, so it
# folds into "other" with the one who would rather not say; Generation Y has no one.
PHONES = (
    (GENERATIONS[0], "Phone"),
    (GENERATIONS[0], "Chat"),
    (GEN_Z, "Self-service"),
    (GEN_Z, "Self-service"),
    (GENERATIONS[1], "Phone"),
    ("Rather not say", "Self-service"),
)


def test_phones_answer_the_profile_and_the_stage_shows_bars_per_segment(browser, stack):
    django(
        stack,
        f"""
        from django.contrib.auth import get_user_model
        from polls import actions
        from polls.demo import DEMO_HOST_USERNAME
        from tests.factories import make_event, make_question
        host = get_user_model().objects.get(username=DEMO_HOST_USERNAME)
        event = make_event("SEGS26", title="Service by generation", language="en",
                           hosts=[host], segment_min_respondents=2)
        make_question(event, prompt="Which generation are you?", segment=True,
                      options={(*GENERATIONS, GEN_Z)!r})
        question = make_question(event, prompt="How would you rather reach us?",
                                 options=("Phone", "Chat", "Self-service"))
        actions.do_set_current(event, question, open_it=True)
        """,
    )
    errors: list[str] = []
    urls = stack.urls("SEGS26")
    stage = browser.new_page(viewport={"width": 1920, "height": 1080})
    watch_errors(stage, errors)
    stage.goto(urls["stage"])
    expect(stage.locator(".st-prompt")).to_have_text("How would you rather reach us?")

    for n, (generation, choice) in enumerate(PHONES):
        phone = new_phone(browser)
        watch_errors(phone, errors)
        # One phone where WebSockets are blocked: the fallback carries the profile message too.
        phone.goto(urls["phone"] + ("?transport=http" if n == len(PHONES) - 1 else ""))
        expect(phone.locator(".zp-profile .zp-prompt")).to_have_text("Which generation are you?")
        if n == 0:
            expect(phone.get_by_role("button", name="Rather not say")).to_be_visible()
            no_horizontal_overflow(phone)
            shot(phone, "phone-profile-390x844")
        phone.get_by_role("button", name=generation).click()
        answer(phone, choice)
        if n == 0:
            # Asked once: a reload (the server's profile message) goes straight to the poll.
            phone.reload()
            expect(phone.get_by_role("button", name="Phone")).to_have_attribute(
                "aria-pressed", "true"
            )
            expect(phone.locator(".zp-profile")).to_have_count(0)
    expect(stage.locator("#zp-count")).to_have_text(str(len(PHONES)), timeout=5000)

    host = open_remote(browser, urls["remote"], errors)
    expect(host.locator("button[value=segments_on]")).to_have_attribute("aria-pressed", "false")
    press(host, "segments_on")
    expect(host.locator("button[value=segments_off]")).to_have_attribute("aria-pressed", "true")
    expect(host.locator("#zp-seg-state")).to_contain_text("Which generation are you?")
    shot(host, "remote-by-segment")

    grid = stage.locator(".st-sgrid")
    expect(grid).to_be_visible(timeout=5000)
    expect(grid.locator(".st-sg-label")).to_have_text(
        ["Whole room", GENERATIONS[0], GEN_Z, "Other"]
    )
    expect(grid.locator(".st-sg-n")).to_have_text(
        ["6 responses", "2 responses", "2 responses", "2 responses"]
    )
    # Per option (Phone, Chat, Self-service) the whole room, Babyboom, Generation Z, other.
    expect(grid.locator(".st-sc-pct")).to_have_text(
        ["33%", "50%", "0%", "50%", "17%", "50%", "0%", "0%", "50%", "0%", "100%", "50%"]
    )
    expect(stage.locator(".st-sg-words")).to_contain_text("Generation Z")
    shot(stage, "stage-by-segment-1920x1080")

    press(host, "segments_off")
    expect(grid).to_have_count(0, timeout=5000)
    expect(stage.locator(".st-opts")).to_be_visible()

    # The host makes the profile question current: the phone (on the fallback) shows its
    # answer there, "rather not say" among the options, and may change it.
    press(host, "prev")
    press(host, "open")
    rather = phone.get_by_role("button", name="Rather not say")
    expect(rather).to_have_attribute("aria-pressed", "true", timeout=10_000)
    answer(phone, GEN_Z)
    expect(rather).to_have_attribute("aria-pressed", "false")
    assert errors == []

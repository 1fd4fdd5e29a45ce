"""The audience Q&A on two phones (Debian's Chromium against real Daphne, 390x844): asking,
voting and unvoting, no vote on one's own item, pre-moderation, the pin, a refusal, and the
host switching it off. Phone B runs on the HTTP fallback, so both transports carry the Q&A.

The screenshot lands in artifacts/screenshots/phone-qa-390x844.png (git-ignored).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser_helpers import new_phone, open_remote, shot, watch_errors

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SLIDES = "Will the slides be shared after the session?"
RECORDING = "Is there a recording of the keynote?"


def host(remote: Page, action: str, item: str | None = None) -> None:
    """A remote-page button as its form POSTs it (the Q&A's buttons are the remote's own)."""
    status = remote.evaluate(
        """async ([action, item]) => {
            const csrf = document.querySelector('[name=csrfmiddlewaretoken]').value;
            const body = new URLSearchParams({action, csrfmiddlewaretoken: csrf});
            if (item) body.set('item', item);
            const response = await fetch(location.pathname, {method: 'POST', body});
            const text = await response.text();
            return [response.status, (text.match(/class="hs-error">[^<]*/) || [""])[0]];
        }""",
        [action, item],
    )
    assert status == [200, ""], status


def ask(phone: Page, text: str) -> None:
    phone.fill("#zp-ask-text", text)
    phone.locator("#zp-ask-send").click()


def test_two_phones_ask_vote_and_wait_for_the_moderator(browser, stack):
    stack.empty_qa("KSF2018")
    errors: list[str] = []
    urls = stack.urls("KSF2018")
    remote = open_remote(browser, urls["remote"], errors)
    host(remote, "qa_open")
    host(remote, "qa_names_on")

    a, b = new_phone(browser), new_phone(browser)
    for phone, url in ((a, urls["phone"]), (b, urls["phone"] + "?transport=http")):
        watch_errors(phone, errors)
        phone.goto(url)
        # The tabs come with the first `qa`, beside the profile question the demo asks first.
        expect(phone.locator("#zp-tabs")).to_be_visible()
    expect(a.locator("#zp-tab-poll")).to_have_attribute("aria-pressed", "true")

    # A asks, with a name; the form counts down what is left of the 280 characters.
    a.locator("#zp-tab-qa").click()
    expect(a.locator("#zp-app")).to_be_hidden()
    expect(a.locator("#zp-qa-none")).to_be_visible()
    expect(a.locator("#zp-ask-send")).to_be_disabled()
    a.fill("#zp-ask-name", "Anna")
    a.fill("#zp-ask-text", SLIDES)
    expect(a.locator("#zp-ask-left")).to_have_text(f"Characters left: {280 - len(SLIDES)}")
    a.locator("#zp-ask-send").click()
    a_slides = a.locator(".zp-qi", has_text=SLIDES)
    expect(a_slides).to_contain_text("Anna · Yours")
    expect(a_slides.locator("button")).to_have_count(0)  # no vote on one's own item
    expect(a.locator("#zp-ask-text")).to_have_value("")

    # B sees it arrive (the badge on its Questions tab) and votes; both phones count 1.
    expect(b.locator("#zp-qa-new")).to_have_text("1")
    b.locator("#zp-tab-qa").click()
    expect(b.locator("#zp-qa-new")).to_have_text("")
    vote = b.locator(".zp-qi", has_text=SLIDES).get_by_role("button", name="Vote")
    box = vote.bounding_box()
    assert box and box["width"] >= 48 and box["height"] >= 48
    vote.click()
    expect(vote).to_have_attribute("aria-pressed", "true")
    expect(vote).to_have_text("Vote▲ 1")
    expect(a_slides.locator(".zp-vote")).to_have_text("▲ 1")
    vote.click()
    expect(vote).to_have_attribute("aria-pressed", "false")
    expect(vote).to_have_text("Vote▲ 0")
    expect(a_slides.locator(".zp-vote")).to_have_text("▲ 0")

    # Pre-moderated: A's item waits, shown to A alone, until the host approves it.
    host(remote, "qa_moderated")
    expect(a.locator("#zp-ask-mod")).to_be_visible()
    expect(a.locator("#zp-ask-name")).to_have_value("Anna")  # remembered
    a.fill("#zp-ask-name", "")
    # Asked offline: kept, and sent once the phone is back (the same id: one item).
    a.context.set_offline(True)
    ask(a, RECORDING)
    expect(a.locator("#zp-status")).to_contain_text("Offline")
    a.context.set_offline(False)
    pending = a.locator(".zp-qi.zp-pend")
    expect(pending).to_contain_text(RECORDING)
    expect(pending).to_contain_text("Waiting for the moderator")
    expect(b.locator(".zp-qi")).to_have_count(1)
    item = pending.get_attribute("data-id")
    host(remote, "qa_approve", item)
    expect(a.locator(".zp-qi.zp-pend")).to_have_count(0)
    b_recording = b.locator(".zp-qi", has_text=RECORDING)
    expect(b_recording).to_contain_text("Anonymous")

    # Popular: votes, then the newest; Newest: the newest first. The pinned one leads both.
    b.locator(".zp-qi", has_text=SLIDES).get_by_role("button", name="Vote").click()
    texts = b.locator(".zp-qi > div > p:first-child")
    expect(texts).to_have_text([SLIDES, RECORDING])
    b.get_by_role("button", name="Newest").click()
    expect(texts).to_have_text([RECORDING, SLIDES])
    host(remote, "qa_pin", item)
    b.get_by_role("button", name="Popular").click()
    expect(b.locator(".zp-qi").first).to_contain_text("On stage now")
    expect(b.locator(".zp-qi.zp-pin")).to_contain_text(RECORDING)
    expect(a.locator(".zp-qi.zp-pin")).to_contain_text(RECORDING)
    shot(b, "phone-qa-390x844")

    # A refusal: three items a minute at most; the fourth comes back to the field, explained.
    ask(a, "A third one, waiting for the moderator")
    expect(a.locator(".zp-qi.zp-pend")).to_have_count(1)
    ask(a, "And a fourth, one too many")
    expect(a.locator("#zp-ask-note")).to_have_text(
        "Too many items or votes at once; wait a moment."
    )
    expect(a.locator("#zp-ask-text")).to_have_value("And a fourth, one too many")

    # Off: the tabs go, and the poll is what shows.
    host(remote, "qa_off")
    for phone in (a, b):
        expect(phone.locator("#zp-tabs")).to_be_hidden()
        expect(phone.locator("#zp-qa")).to_be_hidden()
        expect(phone.locator("#zp-app")).to_be_visible()
    assert errors == []

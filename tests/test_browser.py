"""Real browser, end to end: Debian's Chromium driven by Playwright against real Daphne.

Screenshots land in artifacts/screenshots/ (git-ignored) for a human to look at.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = "/usr/lib/chromium/chromium"
SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run the README's test command")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def press(remote: Page, action: str) -> None:
    """A remote-control button: a form POST answered by a redirect back to the page."""
    with remote.expect_navigation():
        remote.locator(f"button[value={action}]").click()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1000)  # let the reveal and bar animations (600 ms) finish
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def watch_errors(page: Page, errors: list[str]) -> None:
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    page.on(
        "console",
        lambda message: (
            errors.append(f"{page.url}: {message.text}") if message.type == "error" else None
        ),
    )


def test_the_show_from_phone_to_stage_to_reveal(browser, stack):
    errors: list[str] = []
    urls = stack.urls("KSF2018")
    stage = browser.new_page(viewport={"width": 1920, "height": 1080})
    watch_errors(stage, errors)
    stage.goto(urls["stage"])
    expect(stage.locator("#zp-code")).to_have_text("KSF2018")

    phone_context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="en-GB", is_mobile=True, has_touch=True
    )
    phone = phone_context.new_page()
    watch_errors(phone, errors)
    phone.goto(stack.base + "/")
    phone.fill("input[name=code]", "ksf 2o18")  # lookalikes and spaces are forgiven
    phone.keyboard.press("Enter")
    expect(phone).to_have_url(re.compile(r"/e/KSF2018/$"))
    phone.get_by_role("button", name="Meer omzet").click()
    expect(phone.locator("#zp-status")).to_contain_text("Answer received")
    expect(stage.locator("#zp-count")).to_have_text("1", timeout=3000)
    phone.get_by_role("button", name="Tevredenere klanten").click()  # changes the answer
    expect(phone.locator("#zp-status")).to_contain_text("Answer received")
    shot(phone, "phone-single-choice")
    expect(stage.locator("#zp-count")).to_have_text("1")
    shot(stage, "stage-single-choice")

    host = browser.new_page(viewport={"width": 390, "height": 844})
    watch_errors(host, errors)
    host.goto(urls["remote"])
    host.fill("#id_username", "host")
    host.fill("#id_password", "zaalpeiling-dev-only")
    host.locator("input[type=submit]").click()
    expect(host.locator("button[value=next]")).to_be_visible()
    press(host, "reveal")
    expect(stage.get_by_text(re.compile("Grootste verschil|komen overeen"))).to_be_visible(
        timeout=10_000
    )
    shot(stage, "stage-single-choice-revealed")
    shot(host, "remote")

    press(host, "next")
    expect(host.locator(".hs-pos")).to_have_text("2 / 13")
    press(host, "open")
    expect(host.locator("button[value=close]")).to_be_enabled()
    expect(phone.locator("input[type=range]")).to_be_visible(timeout=10_000)
    phone.locator("input[type=range]").fill("53")
    phone.get_by_role("button", name=re.compile("^Send")).click()
    expect(phone.locator("#zp-status")).to_contain_text("Answer received")
    expect(stage.locator("#zp-count")).to_have_text("1", timeout=3000)
    press(host, "reveal")
    expect(
        stage.get_by_text("De zaal schatte 14 procentpunt meer selfservice dan gemeten.")
    ).to_be_visible()
    shot(stage, "stage-split-revealed")
    shot(phone, "phone-split")
    assert errors == []

"""What the real-browser tests share: Debian's Chromium under Playwright, pages and screenshots.

Screenshots land in artifacts/screenshots/ (git-ignored) for a human to look at.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from polls.demo import DEMO_HOST_USERNAME
from tests.servers import DEMO_PASSWORD

# Debian's Chromium (the launcher script /usr/bin/chromium runs this binary), never one that
# Playwright downloads.
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


def new_phone(browser: Browser, width: int = 390, height: int = 844, **options) -> Page:
    context = browser.new_context(
        viewport={"width": width, "height": height},
        locale="en-GB",
        is_mobile=True,
        has_touch=True,
        **options,
    )
    return context.new_page()


def open_remote(browser: Browser, url: str, errors: list[str] | None = None) -> Page:
    """The host's remote control on a phone-sized page, logged in as the demo host."""
    remote = browser.new_page(viewport={"width": 390, "height": 844})
    if errors is not None:
        watch_errors(remote, errors)
    remote.goto(url)
    remote.fill("#id_username", DEMO_HOST_USERNAME)
    remote.fill("#id_password", DEMO_PASSWORD)
    remote.locator("input[type=submit]").click()
    expect(remote.locator("button[value=next]")).to_be_visible()
    return remote


def press(remote: Page, action: str) -> None:
    """A remote-control button: a form POST answered by a redirect back to the page."""
    with remote.expect_navigation():
        remote.locator(f"button[value={action}]").click()


def settle(page: Page) -> None:
    """Wait until every finite animation and transition on the page has finished (the endless
    ones, such as the live dot's pulse, never do): then boxes and colours are final. A frame
    first, so a change just made has started its transitions."""
    page.evaluate("new Promise((done) => requestAnimationFrame(() => done()))")
    page.wait_for_function(
        """() => document.getAnimations().every((a) =>
            a.playState !== 'running' || a.effect.getComputedTiming().endTime === Infinity)""",
        timeout=10_000,
    )


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    settle(page)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


# Chromium cancels what is in flight when the machine's interfaces change, and the suite's
# several-hosts test (tests/test_hosts.py) makes and removes interfaces while browser tests run
# beside it: the page then logs this, and recovers as on a venue's Wi-Fi (the tests check that).
NETWORK_CHANGED = "net::ERR_NETWORK_CHANGED"


def watch_errors(page: Page, errors: list[str]) -> None:
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    page.on(
        "console",
        lambda message: (
            errors.append(f"{page.url}: {message.text}")
            if message.type == "error" and NETWORK_CHANGED not in message.text
            else None
        ),
    )


def answer_profile(
    phone: Page,
    label: str | None = None,
    keyboard: bool = False,
    acked: bool = True,
    timeout: float = 10_000,
) -> None:
    """The profile question a demo phone asks on joining, before the poll (the generation,
    docs/protocol.md "Profile questions"): tap ``label``, or "rather not say" when None (by Tab
    and Enter with ``keyboard``), once it shows (within ``timeout`` ms). Waits until the poll
    takes its place and, with ``acked``, until the server has acknowledged the answer (the
    phone's outbox is empty again)."""
    profile = phone.locator(".zp-profile")
    expect(profile).to_be_visible(timeout=timeout)
    choice = (
        profile.locator(".zp-rather")
        if label is None
        else profile.get_by_role("button", name=label, exact=True)
    )
    if keyboard:
        name = choice.inner_text().strip()
        for _ in range(20):
            phone.keyboard.press("Tab")
            if phone.evaluate("document.activeElement.textContent.trim()") == name:
                break
        else:
            raise AssertionError(f"Tab never reached the profile answer {name!r}")
        phone.keyboard.press("Enter")
    else:
        choice.click()
    expect(profile).to_have_count(0)
    if acked:
        phone.wait_for_function(
            "() => !Object.keys(localStorage).some((key) => key.startsWith('zp-outbox-'))",
            timeout=10_000,
        )

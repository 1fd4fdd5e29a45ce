"""A phone on a network that breaks WebSockets: Debian's Chromium against real Daphne, with
the page's WebSockets broken by Playwright, falls back to server-sent events and POSTs.

The screenshot lands in artifacts/screenshots/phone-fallback.png (git-ignored).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from polls import tally
from polls.redis_client import get_sync_redis
from tests.browser_helpers import (
    answer_profile,
    new_phone,
    open_remote,
    press,
    shot,
    watch_errors,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CODE = "KSF2018"
SOCKETS = re.compile(r"/ws/")


def block_websockets(page: Page) -> list[str]:
    """The venue's network: every WebSocket of the page fails before it opens (close code
    1006). Returns the list the attempted URLs are collected in."""
    attempts: list[str] = []

    def blocked(ws) -> None:
        attempts.append(ws.url)
        ws.close(code=1006, reason="blocked")

    page.route_web_socket(SOCKETS, blocked)
    return attempts


def track(page: Page) -> dict[str, list[str]]:
    """The requests and WebSockets the page makes."""
    seen: dict[str, list[str]] = {"requests": [], "sockets": []}
    page.on("request", lambda request: seen["requests"].append(f"{request.method} {request.url}"))
    page.on("websocket", lambda socket: seen["sockets"].append(socket.url))
    return seen


def counts(question_id: int) -> dict[str, int]:
    raw = get_sync_redis().hgetall(tally.question_keys(question_id)["counts"])
    return {key.decode(): int(value) for key, value in raw.items()}


def used_the_fallback(seen: dict[str, list[str]]) -> None:
    assert any(
        r.startswith("GET ") and f"/api/e/{CODE}/events?token=" in r for r in seen["requests"]
    )
    assert any(r.startswith("POST ") and f"/api/e/{CODE}/answer" in r for r in seen["requests"])


def test_a_phone_whose_websockets_are_blocked_votes_over_http(browser, stack):
    errors: list[str] = []
    urls = stack.urls(CODE)
    question_id, _options = stack.current_question(CODE)
    stage = browser.new_page(viewport={"width": 1920, "height": 1080})
    watch_errors(stage, errors)
    stage.goto(urls["stage"])  # the stage keeps its WebSocket
    expect(stage.locator("#zp-code")).to_have_text(CODE)

    phone = new_phone(browser)
    watch_errors(phone, errors)
    seen = track(phone)
    attempts = block_websockets(phone)
    phone.goto(stack.base + "/")
    phone.fill("input[name=code]", "ksf 2o18")
    phone.keyboard.press("Enter")
    expect(phone).to_have_url(re.compile(r"/e/KSF2018/$"))
    answer_profile(phone, timeout=20_000)  # over the fallback: its POST, its event stream
    phone.get_by_role("button", name="Meer omzet").click()
    expect(phone.locator("#zp-status")).to_contain_text("Answer received")
    expect(stage.locator("#zp-count")).to_have_text("1", timeout=5000)
    phone.get_by_role("button", name="Tevredenere klanten").click()  # changes the answer
    expect(phone.locator("#zp-status")).to_contain_text("Answer received")
    expect(phone.get_by_role("button", name="Tevredenere klanten")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(stage.locator("#zp-count")).to_have_text("1")
    assert sum(counts(question_id).values()) == 1  # the changed answer counted once
    used_the_fallback(seen)
    assert len(attempts) >= 3  # it did try WebSockets first

    # The host's next question reaches the phone over the event stream.
    host = open_remote(browser, urls["remote"], errors)
    press(host, "next")
    press(host, "open")
    expect(phone.locator("input[type=range]")).to_be_visible(timeout=10_000)
    phone.locator("input[type=range]").fill("53")
    phone.get_by_role("button", name=re.compile("^Send")).click()
    expect(phone.locator("#zp-status")).to_contain_text("Answer received")
    expect(stage.locator("#zp-count")).to_have_text("1", timeout=5000)
    shot(phone, "phone-fallback")
    assert errors == []


def test_a_socket_that_opens_but_never_speaks_is_given_up(browser, stack):
    errors: list[str] = []
    phone = new_phone(browser)
    watch_errors(phone, errors)
    seen = track(phone)
    # A proxy that accepts the upgrade and then passes nothing: the socket looks open.
    phone.route_web_socket(SOCKETS, lambda ws: None)
    phone.goto(f"{stack.base}/e/{CODE}/")
    answer_profile(phone, timeout=20_000)
    phone.get_by_role("button", name="Meer omzet").click()
    expect(phone.locator("#zp-status")).to_contain_text("Answer received")
    used_the_fallback(seen)
    assert errors == []


def test_the_fallback_can_be_forced_with_transport_http(browser, stack):
    errors: list[str] = []
    phone = new_phone(browser)
    watch_errors(phone, errors)
    seen = track(phone)
    phone.goto(f"{stack.base}/e/{CODE}/?transport=http")
    answer_profile(phone)
    phone.get_by_role("button", name="Meer omzet").click()
    expect(phone.locator("#zp-status")).to_contain_text("Answer received")
    used_the_fallback(seen)
    assert seen["sockets"] == []
    assert errors == []


def test_a_stale_token_on_the_fallback_joins_again(browser, stack):
    """EventSource cannot read a 401; the page asks with a ping, reads 4401, joins again."""
    phone = new_phone(browser)
    phone.add_init_script(f"localStorage.setItem('zp-token-{CODE}', 'stale.token')")
    seen = track(phone)
    phone.goto(f"{stack.base}/e/{CODE}/?transport=http")
    answer_profile(phone)
    phone.get_by_role("button", name="Meer omzet").click()
    expect(phone.locator("#zp-status")).to_contain_text("Answer received")
    assert any(
        r.startswith("POST ") and r.endswith(f"/api/e/{CODE}/join") for r in seen["requests"]
    )
    assert phone.evaluate(f"localStorage.getItem('zp-token-{CODE}')") != "stale.token"


def test_a_stage_whose_websockets_are_blocked_follows_the_show_over_http(browser, stack):
    errors: list[str] = []
    urls = stack.urls(CODE)
    stage = browser.new_page(viewport={"width": 1920, "height": 1080})
    watch_errors(stage, errors)
    seen = track(stage)
    attempts = block_websockets(stage)
    stage.goto(urls["stage"])
    expect(stage.locator(".st-prompt")).to_be_visible(timeout=20_000)  # the state came

    phone = new_phone(browser)
    watch_errors(phone, errors)
    phone.goto(urls["phone"])
    answer_profile(phone)
    phone.get_by_role("button", name="Meer omzet").click()
    expect(phone.locator("#zp-status")).to_contain_text("Answer received")
    expect(stage.locator("#zp-count")).to_have_text("1", timeout=10_000)

    host = open_remote(browser, urls["remote"], errors)
    press(host, "reveal")
    expect(stage.get_by_text(re.compile("Grootste verschil|komen overeen"))).to_be_visible(
        timeout=10_000
    )
    assert any(f"/api/e/{CODE}/stage/events?key=" in r for r in seen["requests"])
    assert attempts  # it did try a WebSocket first
    shot(stage, "stage-fallback")
    assert errors == []

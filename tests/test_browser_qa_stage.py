"""Real browser, the audience Q&A on the stage and the remote (issue 15): the host moderates on the
remote at phone size, phones ask and vote over real sockets, the stage shows the Q&A in the poll's
place and goes back. Debian's Chromium under Playwright against real Daphne.

Screenshots land in artifacts/screenshots/ (git-ignored) for a human to look at.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Page, expect
from websockets.asyncio.client import connect

from tests.browser_helpers import open_remote, settle, shot, watch_errors
from tests.live_helpers import checked, profile_then_state
from tests.servers import http_post
from tests.test_browser import no_horizontal_overflow

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CODE = "KSF2018"
# 280 characters, the most an item may have: on stage it shows whole.
LONG = (
    "We moved half of our service calls to chat last year and the customers who use it rate us "
    "higher, but the ones who still phone wait longer than before. How do you decide which "
    "customers you steer to self-service, and how do you keep the ones who need a person "
    "from feeling pushed?"
)
assert len(LONG) == 280
SHORT = "Will the slides be shared afterwards?"
EDITED = "Will the slides be shared after the talk?"
OTHER = (
    "Which of the figures from the research surprised you most yourself, and did it change how "
    "your own team answers customers on the phone, in the chat or in the shop, or how you "
    "measure what they do there every week? And what would you tell a team starting out now?"
)


class Phone:
    """A participant over a real socket, run on a thread of its own (Playwright's sync API owns
    the test's event loop): it joins once and keeps its token across its messages."""

    def __init__(self, stack, pool: ThreadPoolExecutor):
        self.stack, self.pool, self.token = stack, pool, None

    def send(self, message: dict) -> dict:
        """``message`` on a fresh socket; the server's ``qa_ack`` to it."""
        return self.pool.submit(asyncio.run, self._send(message)).result(timeout=20)

    async def _send(self, message: dict) -> dict:
        if self.token is None:
            status, body = await http_post("127.0.0.1", self.stack.port, f"/api/e/{CODE}/join")
            assert status == 200, body
            self.token = body["token"]
        url = f"ws://127.0.0.1:{self.stack.port}/ws/e/{CODE}/?token={self.token}"
        async with connect(url, origin=self.stack.base) as ws:
            await profile_then_state(ws.recv, ws, fresh=False)
            await ws.send(json.dumps(message))
            while True:
                reply = checked(await asyncio.wait_for(ws.recv(), 10), ws)
                assert reply["type"] != "error", reply
                if reply["type"] == "qa_ack" and reply["id"] == message["id"]:
                    return reply


def press_qa(remote: Page, action: str, item: int | None = None) -> None:
    """A button of the remote's Q&A: posted by its script, the section put back in place (no
    page load: a marker set on the window survives it)."""
    scope = remote.locator(f'[data-item="{item}"]') if item else remote.locator("#hs-qa")
    remote.evaluate("() => { document.getElementById('hs-qa').dataset.pressed = 'yes'; }")
    scope.locator(f"button[value={action}]").first.click()
    expect(remote.locator("#hs-qa[data-pressed]")).to_have_count(0)  # the fresh copy is in
    assert remote.evaluate("window.zpKept") == 1


def test_the_host_moderates_and_the_stage_shows_the_qa_then_the_poll_again(browser, stack):
    stack.empty_qa(CODE)
    errors: list[str] = []
    # The addresses event_urls prints, without the second it takes to start Django for them.
    (key,) = stack.query_one("SELECT stage_key FROM polls_event WHERE code = %s", CODE)
    stage = browser.new_page(viewport={"width": 1920, "height": 1080})
    watch_errors(stage, errors)
    stage.goto(f"{stack.base}/e/{CODE}/stage/?key={key}")
    expect(stage.locator("#zp-code")).to_have_text(CODE)
    expect(stage.locator("#zp-qa")).to_be_hidden()

    remote = open_remote(browser, f"{stack.base}/e/{CODE}/host/", errors)
    expect(remote.locator("#zp-link")).to_have_attribute("data-state", "open")  # its script runs
    remote.evaluate("window.zpKept = 1")  # gone if the page ever loads again
    qa = remote.locator("#hs-qa")
    expect(qa.locator("button[value=qa_stage_on]")).to_be_disabled()  # the Q&A is off
    press_qa(remote, "qa_moderated")
    expect(qa).to_have_attribute("data-mode", "moderated")
    expect(qa.locator("button[value=qa_moderated]")).to_have_attribute("aria-pressed", "true")

    with ThreadPoolExecutor(1) as pool:
        asker, voter, other_voter = (Phone(stack, pool) for _ in range(3))
        first = asker.send({"type": "ask", "id": "a1", "text": LONG, "name": "Anna"})["item"]
        assert first["state"] == "pending"
        # The item waits for the host, and reaches the remote without a reload.
        waiting = qa.locator("#hs-qa-pending [data-item]")
        expect(waiting).to_have_count(1, timeout=5000)
        expect(qa.locator("#hs-qa-waiting-count")).to_have_text("1 wacht")  # the event's language
        second = asker.send({"type": "ask", "id": "a2", "text": SHORT})["item"]
        expect(waiting).to_have_count(2, timeout=5000)
        # The host starts an edit; a question arriving meanwhile leaves the form as it is.
        editing = qa.locator(f'[data-item="{second["id"]}"]')
        editing.locator("summary").first.click()
        editing.locator("textarea").fill(EDITED)
        third = asker.send({"type": "ask", "id": "a3", "text": OTHER, "name": "Bram"})["item"]
        expect(waiting).to_have_count(3, timeout=5000)
        expect(editing.locator("textarea")).to_have_value(EDITED)
        expect(editing.locator("textarea")).to_be_focused()
        press_qa(remote, "qa_edit", second["id"])
        expect(editing.locator(".hs-qa-text")).to_have_text(EDITED)
        expect(editing.locator("details[open]")).to_have_count(0)
        expect(qa.locator("#hs-qa-waiting-count")).to_have_text("3 wachten")
        assert remote.evaluate("window.zpKept") == 1
        no_horizontal_overflow(remote)
        assert small_targets(remote) == []
        qa.scroll_into_view_if_needed()
        shot(remote, "remote-qa-390x844")
        for item in (first, second, third):
            press_qa(remote, "qa_approve", item["id"])
        expect(waiting).to_have_count(0)
        expect(qa.locator("#hs-qa-visible [data-item]")).to_have_count(3)

        ack = voter.send({"type": "vote", "id": "v1", "item": first["id"]})
        assert ack["voted"] and ack["item"]["votes"] == 1
        voter.send({"type": "vote", "id": "v2", "item": third["id"]})
        row = qa.locator(f'[data-item="{first["id"]}"]')
        expect(row.locator(".hs-qa-votes")).to_have_text("1 stem", timeout=5000)

        press_qa(remote, "qa_pin", first["id"])
        expect(row.locator("button[value=qa_unpin]")).to_be_visible()
        expect(qa.locator("#hs-qa-visible [data-item]").first).to_have_attribute(
            "data-item", str(first["id"])
        )
        press_qa(remote, "qa_stage_on")
        expect(qa.locator("button[value=qa_stage_off]")).to_be_visible()

        # The stage: the pinned item whole, the others by votes, how many are open.
        view = stage.locator("#zp-qa")
        expect(view).to_be_visible(timeout=5000)
        expect(stage.locator(".st-main")).to_be_hidden()
        expect(stage.locator("#zp-qa-said")).to_have_text(LONG)
        expect(stage.locator("#zp-qa-by")).to_have_text("Anna · 1 stem")
        expect(stage.locator("#zp-qa-open")).to_have_text("3")
        expect(stage.locator("#zp-qa-open-label")).to_have_text("open vragen")
        rows = stage.locator(".st-qa-row")
        expect(rows.locator(".st-qa-text")).to_have_text([OTHER, EDITED])
        expect(rows.locator(".st-qa-num")).to_have_text(["1", "0"])
        expect(stage.locator("#zp-code")).to_be_visible()
        expect(stage.locator(".st-qr svg")).to_be_visible()
        settle(stage)
        fits = stage_qa_fits(stage)
        assert fits["pinned_whole"], fits
        assert fits["pinned_font"] >= 0.03 * 1080, fits  # readable from the back of the hall
        assert fits["row_font"] >= 0.022 * 1080, fits
        assert fits["rows_clamped"], fits  # a 280-character row ends in an ellipsis
        assert fits["inside"], fits
        shot(stage, "stage-qa-1920x1080")

        # Two more votes take the short item past the other: its row glides up, counting.
        stage.evaluate(WATCH_MOVES)
        voter.send({"type": "vote", "id": "v3", "item": second["id"]})
        other_voter.send({"type": "vote", "id": "v4", "item": second["id"]})
    expect(rows.locator(".st-qa-text")).to_have_text([EDITED, OTHER], timeout=5000)
    expect(rows.locator(".st-qa-num")).to_have_text(["2", "1"])
    assert any("translateY" in move for move in stage.evaluate("window.zpMoves")), "no glide"

    # Hidden, an item leaves the stage's list (and the count) at once.
    press_qa(remote, "qa_hide", second["id"])
    expect(rows.locator(".st-qa-text")).to_have_text([OTHER], timeout=5000)
    expect(stage.locator("#zp-qa-open")).to_have_text("2")
    expect(qa.locator(f'#hs-qa-done [data-item="{second["id"]}"]')).to_have_count(1)

    press_qa(remote, "qa_stage_off")
    expect(stage.locator(".st-main")).to_be_visible(timeout=5000)
    expect(view).to_be_hidden()
    expect(stage.locator("#zp-count")).to_be_visible()
    assert remote.evaluate("window.zpKept") == 1
    assert errors == []


# Records the keyframes of every animation a stage row is given (a FLIP move is a translateY).
WATCH_MOVES = """() => {
    window.zpMoves = [];
    const animate = Element.prototype.animate;
    Element.prototype.animate = function (keyframes, options) {
        if (this.classList.contains('st-qa-row')) window.zpMoves.push(JSON.stringify(keyframes));
        return animate.call(this, keyframes, options);
    };
}"""


def stage_qa_fits(stage: Page) -> dict:
    return stage.evaluate(
        """() => {
        const now = document.getElementById('zp-qa-now');
        const said = document.getElementById('zp-qa-said');
        const rows = [...document.querySelectorAll('.st-qa-row')];
        const view = document.getElementById('zp-qa').getBoundingClientRect();
        const body = rows.map((r) => r.querySelector('.st-qa-body'));
        return {
            pinned_whole: now.scrollHeight <= now.clientHeight + 1
                && said.getBoundingClientRect().bottom <= now.getBoundingClientRect().bottom + 1,
            pinned_font: parseFloat(getComputedStyle(said).fontSize),
            row_font: Math.min(...rows.map((r) => parseFloat(getComputedStyle(r).fontSize))),
            rows_clamped: body.some((b) => b.scrollHeight > b.clientHeight + 1),
            inside: rows.every((r) => {
                const box = r.getBoundingClientRect();
                return box.bottom <= view.bottom + 1 && !r.classList.contains('st-qa-cut');
            }),
        };
    }"""
    )


def small_targets(remote: Page) -> list[str]:
    """The Q&A's buttons a thumb cannot hit: under 44 px either way."""
    return remote.eval_on_selector_all(
        "#hs-qa button:not([hidden]), #hs-qa summary",
        """els => els.filter((e) => {
            const r = e.getBoundingClientRect();
            return r.width && (r.width < 44 || r.height < 44);
        }).map((e) => e.textContent.trim())""",
    )

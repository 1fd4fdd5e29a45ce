"""Real browser, end to end: Debian's Chromium driven by Playwright against real Daphne.

Screenshots land in artifacts/screenshots/ (git-ignored) for a human to look at.
"""

from __future__ import annotations

import re
import struct
import textwrap
import zlib
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from polls import branding
from tests.browser_helpers import (
    answer_profile,
    new_phone,
    open_remote,
    press,
    settle,
    shot,
    watch_errors,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# An answer to the demo's profile question, "Tot welke generatie behoor je?" (polls/demo.py).
GENERATION_Y = "Generatie Y (1981\u20131995)"


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
    # Joining asks the generation first (the demo's profile question), once.
    expect(phone.locator(".zp-profile .zp-prompt")).to_have_text("Tot welke generatie behoor je?")
    shot(phone, "phone-profile")
    answer_profile(phone, GENERATION_Y)
    phone.get_by_role("button", name="Meer omzet").click()
    expect(phone.locator("#zp-status")).to_contain_text("Answer received")
    expect(stage.locator("#zp-count")).to_have_text("1", timeout=3000)
    # The stage splits the result by generation; one respondent is fewer than the event's
    # smallest segment (5), so the room is shown whole and no generation on its own.
    expect(stage.locator(".st-sg-by")).to_have_text("Per groep: Tot welke generatie behoor je?")
    expect(stage.locator(".st-sgrid .st-sg-label")).to_have_text(["Hele zaal"])
    expect(stage.locator(".st-sgrid .st-sg-n")).to_have_text(["1 antwoord"])
    phone.get_by_role("button", name="Tevredenere klanten").click()  # changes the answer
    expect(phone.locator("#zp-status")).to_contain_text("Answer received")
    shot(phone, "phone-single-choice")
    expect(stage.locator("#zp-count")).to_have_text("1")
    shot(stage, "stage-single-choice")

    host = open_remote(browser, urls["remote"], errors)
    press(host, "reveal")
    expect(stage.get_by_text(re.compile("Grootste verschil|komen overeen"))).to_be_visible(
        timeout=10_000
    )
    shot(stage, "stage-single-choice-revealed")
    shot(host, "remote")

    press(host, "next")
    expect(host.locator(".hs-pos")).to_have_text("2 / 14")  # the profile question is the 14th
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


def test_the_phone_fetches_every_module_with_the_page_and_none_on_a_new_question(browser, stack):
    """What the phone runs comes with the page (modulepreload): every kind's renderer is there
    before the first question, so a question change on bad Wi-Fi never waits for a fetch."""
    errors: list[str] = []
    urls = stack.urls("KSF2018")
    phone = new_phone(browser)
    watch_errors(phone, errors)
    scripts: list[str] = []
    phone.on(
        "request",
        lambda request: (
            scripts.append(urlsplit(request.url).path)
            if urlsplit(request.url).path.endswith(".js")
            else None
        ),
    )
    phone.goto(urls["phone"])
    answer_profile(phone)
    expect(phone.get_by_role("button", name="Meer omzet")).to_be_visible()
    preloaded = phone.eval_on_selector_all(
        "link[rel=modulepreload]", "links => links.map((l) => new URL(l.href).pathname)"
    )
    config = phone.eval_on_selector("#zp-config", "script => JSON.parse(script.textContent)")
    kinds = [urlsplit(url).path for url in config["kinds"].values()]
    assert set(kinds) <= set(preloaded)
    assert set(scripts) == set(preloaded), "the phone ran a module it did not preload"
    assert len(scripts) == len(set(scripts)), "a module was fetched twice"
    fetched = len(scripts)

    host = open_remote(browser, urls["remote"], errors)
    press(host, "next")
    press(host, "open")
    expect(phone.locator("input[type=range]")).to_be_visible(timeout=10_000)
    press(host, "show_results")
    expect(phone.locator(".zp-res")).to_be_visible(timeout=10_000)
    assert scripts[fetched:] == []
    assert errors == []


def test_a_kind_added_during_the_show_loads_when_its_question_arrives(browser, stack):
    """The page preloads its event's kinds only (config.later_kinds names the others): a
    question of a kind the event did not have when the page was made still works, its module
    fetched when the question arrives."""
    django(
        stack,
        """
        from tests.factories import make_event, make_open_question
        make_open_question(make_event("NPS2026", title="Late kinds", language="en"))
        """,
    )
    errors: list[str] = []
    phone = new_phone(browser)
    watch_errors(phone, errors)
    scripts: list[str] = []
    phone.on("request", lambda request: scripts.append(urlsplit(request.url).path))
    phone.goto(stack.base + "/e/NPS2026/")
    expect(phone.get_by_role("button", name="Red")).to_be_visible()
    assert "{#" not in phone.locator("body").inner_text()  # a template comment left showing
    config = phone.eval_on_selector("#zp-config", "script => JSON.parse(script.textContent)")
    assert set(config["kinds"]) == {"single"}
    assert "nps" in config["later_kinds"]
    nps_module = urlsplit(config["later_kinds"]["nps"]).path
    assert nps_module not in scripts

    django(
        stack,
        """
        from polls import actions
        from polls.models import Event
        from tests.factories import make_question
        event = Event.objects.get(code="NPS2026")
        question = make_question(event, kind="nps", prompt="Would you recommend us?", options=())
        actions.do_set_current(event, question, open_it=True)
        """,
    )
    expect(phone.get_by_text("Would you recommend us?")).to_be_visible(timeout=10_000)
    expect(phone.get_by_role("button", name="9", exact=True)).to_be_visible(timeout=10_000)
    assert nps_module in scripts
    phone.get_by_role("button", name="9", exact=True).click()
    expect(phone.locator("#zp-status")).to_contain_text("Answer received")
    shot(phone, "phone-kind-added-during-the-show")
    assert errors == []


# --- helpers for the tests below ----------------------------------------------------


def django(stack, code: str) -> str:
    """Run Python in the stack's Django (its database, its Redis): how a test plays the admin."""
    return stack.manage("shell", "-c", textwrap.dedent(code))


def boxes(page: Page, selector: str) -> list[tuple]:
    """Every matching element's box in the document, to the pixel: equal lists mean nothing
    moved (scrolling, as a tap scrolls the tapped button into view, does not count)."""
    return page.eval_on_selector_all(
        selector,
        """els => els.map(e => {
            const r = e.getBoundingClientRect();
            return [e.tagName, Math.round(r.x + scrollX), Math.round(r.y + scrollY),
                    Math.round(r.width),
                    Math.round(r.height)];
        })""",
    )


def moved(before: list[tuple], after: list[tuple]) -> list[tuple]:
    """The boxes that moved or resized by more than a pixel's rounding."""
    assert len(before) == len(after)
    return [
        (a, b)
        for a, b in zip(before, after, strict=True)
        if a[0] != b[0] or any(abs(x - y) > 1 for x, y in zip(a[1:], b[1:], strict=True))
    ]


def no_horizontal_overflow(page: Page) -> None:
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"{page.url} scrolls sideways: {widths}"


def stage_fits(page: Page) -> dict:
    """Nothing on the stage runs out of the window or out of its box; the type sizes in px."""
    report = page.evaluate(
        """() => {
            const out = [];
            const W = innerWidth, H = innerHeight;
            for (const e of document.querySelectorAll(
                '.st-join > *, .st-prompt, .st-opt, .st-top > *:not([hidden])')) {
                const r = e.getBoundingClientRect();
                if (r.width && (r.left < -1 || r.top < -1 || r.right > W + 1 || r.bottom > H + 1))
                    out.push('outside: ' + e.className + ' ' + JSON.stringify(r));
            }
            for (const e of document.querySelectorAll('.st-prompt, .st-opts')) {
                if (e.scrollHeight > e.clientHeight + 1 || e.scrollWidth > e.clientWidth + 1)
                    out.push('overflows: ' + e.className);
            }
            const size = (sel) => {
                const e = document.querySelector(sel);
                return e && parseFloat(getComputedStyle(e).fontSize);
            };
            const qr = document.querySelector('.st-qr').getBoundingClientRect();
            return {problems: out, prompt: size('.st-prompt'), label: size('.st-label'),
                    code: size('.st-code'), count: size('.st-count b'), qr: qr.width};
        }"""
    )
    assert report["problems"] == [], report
    return report


# As long as a question may be (Question.prompt: 300 characters; PostgreSQL holds it to that).
LONG_PROMPT = (
    "Stel dat je organisatie volgend jaar precies één investering in klantcontact mag doen, "
    "met het budget van dit jaar en zonder extra mensen: welke keuze levert volgens jou het "
    "meeste op voor de klant, voor de medewerkers in het contactcenter én voor de financiële "
    "resultaten op de lange termijn?"
)
assert len(LONG_PROMPT) <= 300
LONG_OPTIONS = [
    "Een vernieuwde selfservice-omgeving met een slimme zoekfunctie en antwoorden op maat",
    "Meer en beter opgeleide medewerkers aan de telefoon, in de chat en op sociale media, ook "
    "in de avonduren en het weekend",
    "Meer omzet",
    "Een chatbot die eenvoudige vragen zelf afhandelt en lastige vragen met de hele "
    "voorgeschiedenis doorzet naar een mens",
    "Niets: eerst meten waar klanten nu afhaken",
]


def make_prompt_long(stack) -> None:
    django(
        stack,
        f"""
        from polls import push
        from polls.models import Event
        event = Event.objects.get(code="KSF2018")
        question = event.current_question
        question.prompt = {LONG_PROMPT!r}
        question.save(update_fields=["prompt"])
        for option, label in zip(question.options.all(), {LONG_OPTIONS!r}):
            option.label = label
            option.save(update_fields=["label"])
        # The plain bars are what these checks measure: the host shows results whole
        # (the demo splits them by generation; tests/test_browser_segments.py has that view).
        event.segment_by = None
        event.save(update_fields=["segment_by"])
        push.notify_event_changed(event.id)
        """,
    )


def set_theme(stack, theme: str) -> None:
    django(
        stack,
        f"""
        from polls.models import Event
        Event.objects.filter(code="KSF2018").update(theme={theme!r})
        """,
    )


def answer(phone: Page, option: str) -> None:
    phone.get_by_role("button", name=option).click()
    expect(phone.locator("#zp-status")).to_contain_text("Answer received", timeout=10_000)


def test_phone_and_stage_survive_a_server_restart_without_a_reload(browser, stack):
    errors: list[str] = []
    urls = stack.urls("KSF2018")
    stage = browser.new_page(viewport={"width": 1920, "height": 1080})
    watch_errors(stage, errors)
    stage.goto(urls["stage"])
    expect(stage.locator(".st-prompt")).to_be_visible()
    phone = new_phone(browser)
    watch_errors(phone, errors)
    phone.goto(urls["phone"])
    answer_profile(phone)
    expect(phone.get_by_role("button", name="Meer omzet")).to_be_enabled()
    expect(stage.locator("#zp-count")).to_have_text("0")
    # A reload would lose these: the same documents must live through the restart.
    for page in (stage, phone):
        page.evaluate("window.zpSameDocument = true")

    (daphne,) = [p for p in stack.processes if "polls.server" in p.args and p.poll() is None]
    daphne.kill()  # a crash, not a polite shutdown
    daphne.wait(timeout=10)
    expect(phone.locator("#zp-status")).to_have_text(
        re.compile("Reconnecting|Connecting"), timeout=15_000
    )
    expect(stage.locator("#zp-conn")).to_be_visible(timeout=15_000)
    # An answer given while the server is away waits on the phone and goes once it is back.
    phone.get_by_role("button", name="Meer omzet").click()
    expect(phone.locator("#zp-status")).to_contain_text("Offline")

    stack.start_daphne_again()
    expect(phone.locator("#zp-status")).to_contain_text("Answer received", timeout=30_000)
    expect(stage.locator("#zp-conn")).to_be_hidden(timeout=30_000)
    expect(stage.locator("#zp-count")).to_have_text("1", timeout=10_000)
    # And a fresh answer over the new connection: acknowledged, counted once.
    phone.get_by_role("button", name="Tevredenere klanten").click()
    expect(phone.locator("#zp-status")).to_contain_text("Answer received", timeout=10_000)
    # The whole room's share of the first option, in the stage's split by generation.
    expect(stage.locator(".st-sgrid .st-sc-pct").first).to_have_text("100%", timeout=10_000)
    expect(stage.locator("#zp-count")).to_have_text("1")
    shot(phone, "phone-after-restart")
    shot(stage, "stage-after-restart")
    for page in (stage, phone):
        assert page.evaluate("window.zpSameDocument") is True
    # The killed server's sockets dying is the one thing the pages may complain about.
    assert [e for e in errors if "WebSocket" not in e and "ERR_CONNECTION" not in e] == []


def test_screens_at_every_size_in_both_themes_with_a_long_prompt(browser, stack):
    """Screenshots for a human to look at, and the checks a look would make: nothing runs out
    of its box, type stays large, the bars' rows do not move when results arrive, and the phone
    never scrolls sideways."""
    errors: list[str] = []
    urls = stack.urls("KSF2018")
    make_prompt_long(stack)

    stage = browser.new_page(viewport={"width": 1920, "height": 1080})
    watch_errors(stage, errors)
    stage.goto(urls["stage"])
    expect(stage.locator(".st-prompt")).to_have_text(LONG_PROMPT)
    settle(stage)  # the join strip narrows from its idle width
    parts = ".st-prompt, .st-opts, .st-opt, .st-label, .st-track, .st-join, .st-qr, .st-code"
    before = boxes(stage, parts)

    phones = []
    for width, height in ((360, 640), (390, 844)):
        phone = new_phone(browser, width, height)
        watch_errors(phone, errors)
        phone.goto(urls["phone"])
        answer_profile(phone)
        expect(phone.locator("#zp-prompt")).to_have_text(LONG_PROMPT)
        no_horizontal_overflow(phone)
        phones.append(phone)
    small = phones[0]
    options_before = boxes(small, "#zp-prompt, .zp-opt")
    answer(small, "Meer omzet")
    answer(phones[1], LONG_OPTIONS[0])
    extra = new_phone(browser)
    extra.goto(urls["phone"])
    answer_profile(extra)
    answer(extra, "Meer omzet")
    expect(stage.locator("#zp-count")).to_have_text("3", timeout=10_000)
    settle(stage)  # the bars grow
    assert moved(before, boxes(stage, parts)) == [], "the stage moved when results arrived"
    assert moved(options_before, boxes(small, "#zp-prompt, .zp-opt")) == [], "the phone moved"
    for phone, (width, height) in zip(phones, ((360, 640), (390, 844)), strict=True):
        no_horizontal_overflow(phone)
        shot(phone, f"phone-long-{width}x{height}")

    for theme in ("dark", "light"):
        set_theme(stack, theme)
        for width, height in ((1280, 720), (1920, 1080), (3840, 2160)):
            stage.set_viewport_size({"width": width, "height": height})
            stage.goto(urls["stage"])
            expect(stage.locator("#zp-count")).to_have_text("3", timeout=10_000)
            expect(stage.locator("body")).to_have_class(re.compile(f"st-theme-{theme}"))
            shot(stage, f"stage-long-{theme}-{width}x{height}")
            sizes = stage_fits(stage)
            # Readable from the back of the hall: sizes relative to the screen's height.
            assert sizes["prompt"] >= 0.03 * height, sizes
            assert sizes["label"] >= 0.022 * height, sizes
            assert sizes["code"] >= 0.06 * height, sizes
            assert sizes["count"] >= 0.05 * height, sizes
            assert sizes["qr"] >= 0.3 * height, sizes

    remote = open_remote(browser, urls["remote"], errors)
    expect(remote.locator("#zp-count")).to_have_text("3", timeout=10_000)
    no_horizontal_overflow(remote)
    # However long the question, the host's buttons are on the screen without scrolling.
    for action in ("prev", "next", "close", "reveal"):
        box = remote.locator(f"button[value={action}]").bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= 844, (action, box)
    shot(remote, "remote-long")
    assert errors == []


def logo_png(width: int = 360, height: int = 120) -> bytes:
    """A made-up logo: three rising bars on the brand colour."""
    red, white = bytes((228, 0, 59)), bytes((255, 255, 255))
    bars = [(40, 100, 80), (130, 190, 50), (220, 280, 20)]  # x from, x to, top
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            inside = any(a <= x < b and top <= y < height - 20 for a, b, top in bars)
            row += white if inside else red
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def brand_colour(name: str, accent: str) -> str:
    """The computed-style spelling of one of the accent's custom properties."""
    css = branding.brand_css(accent)
    value = re.search(rf"{name}:(#[0-9A-F]{{6}})", css).group(1)
    r, g, b = branding.parse_hex(value)
    return f"rgb({r}, {g}, {b})"


def test_an_event_in_its_own_colours_with_its_logo_breaks_no_policy(browser, stack):
    errors: list[str] = []
    urls = stack.urls("KSF2018")
    logo = stack.directory / "logo.png"
    logo.write_bytes(logo_png())
    django(
        stack,
        f"""
        from pathlib import Path
        from polls import branding, push
        from polls.models import Event
        event = Event.objects.get(code="KSF2018")
        event.accent_color = "#E4003B"
        event.theme = "light"
        event.segment_by = None  # results whole: the accent is on the plain bars
        event.save()
        branding.save_logo(event, Path({str(logo)!r}).read_bytes())
        push.notify_event_changed(event.id)
        """,
    )
    violations = (
        "addEventListener('securitypolicyviolation', (e) => (window.zpViolations ||= [])"
        ".push(e.violatedDirective + ' ' + e.blockedURI))"
    )
    requests: list[str] = []
    base = urlsplit(stack.base)

    def watch(page: Page) -> None:
        watch_errors(page, errors)
        page.add_init_script(violations)
        page.on("request", lambda request: requests.append(request.url))

    stage = browser.new_page(viewport={"width": 1920, "height": 1080})
    watch(stage)
    stage.goto(urls["stage"])
    expect(stage.locator("#zp-logo")).to_be_visible()
    assert stage.eval_on_selector("#zp-logo", "img => img.complete && img.naturalWidth") == 360
    expect(stage.locator("body")).to_have_class(re.compile("st-theme-light"))
    accent = brand_colour("--brand-l", "#E4003B")
    join_border = stage.eval_on_selector(".st-join", "e => getComputedStyle(e).borderLeftColor")
    assert join_border == accent
    assert stage.evaluate("getComputedStyle(document.body).colorScheme") == "light"
    assert stage.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(243, 246, 247)"

    phone = new_phone(browser)
    watch(phone)
    phone.goto(urls["phone"])
    answer_profile(phone)
    answer(phone, "Meer omzet")
    mine = phone.get_by_role("button", name="Meer omzet")
    assert mine.evaluate("e => getComputedStyle(e).backgroundColor") == accent
    assert mine.evaluate("e => getComputedStyle(e).color") == brand_colour(
        "--brand-l-ink", "#E4003B"
    )
    expect(stage.locator("#zp-count")).to_have_text("1", timeout=10_000)
    fill = stage.locator(".st-fill").first
    assert accent in fill.evaluate("e => getComputedStyle(e).backgroundImage")
    shot(stage, "stage-branded-light-1920x1080")
    shot(phone, "phone-branded")

    # The dark stage: the logo on its plate, the accent made lighter to read on dark. The open
    # screen redraws itself when the host changes the look (no one walks to the projector).
    django(
        stack,
        """
        from polls import push
        from polls.models import Event
        event = Event.objects.get(code="KSF2018")
        event.theme = "dark"
        event.save()
        push.notify_event_changed(event.id)
        """,
    )
    expect(stage.locator("body")).to_have_class(re.compile("st-theme-dark"), timeout=10_000)
    expect(stage.locator("#zp-logo")).to_be_visible()
    join_border = stage.eval_on_selector(".st-join", "e => getComputedStyle(e).borderLeftColor")
    assert join_border == brand_colour("--brand-d", "#E4003B")
    shot(stage, "stage-branded-dark-1920x1080")

    # Nothing asked yet: the join banner is the whole screen, logo on top.
    django(
        stack,
        """
        from polls import actions
        from polls.models import Event
        actions.do_set_current(Event.objects.get(code="KSF2018"), None)
        """,
    )
    expect(stage.locator(".st-join-now")).to_be_visible(timeout=10_000)
    expect(stage.locator(".st-idle-logo")).to_be_visible()
    expect(stage.locator("#zp-logo")).to_be_hidden()  # one logo on the screen, not two
    for width, height in ((1280, 720), (3840, 2160)):
        stage.set_viewport_size({"width": width, "height": height})
        shot(stage, f"stage-branded-idle-{width}x{height}")
        stage_fits(stage)

    # A projector set to reduce motion gets no animation at all.
    calm = browser.new_page(viewport={"width": 1280, "height": 720}, reduced_motion="reduce")
    watch(calm)
    calm.goto(urls["stage"])
    expect(calm.locator(".st-join-now")).to_be_visible()
    durations = calm.evaluate(
        "[...document.querySelectorAll('*')].flatMap(e => {"
        " const s = getComputedStyle(e); return [s.transitionDuration, s.animationName]; })"
    )
    assert set(durations) <= {"0s", "none"}, set(durations)

    for page in (stage, phone, calm):
        assert page.evaluate("window.zpViolations || []") == [], page.url
    third_party = [
        url
        for url in requests
        if urlsplit(url).netloc != base.netloc and not url.startswith("data:")
    ]
    assert third_party == []
    assert errors == []


# --- accessibility --------------------------------------------------------------------

CONTRAST_REPORT = """() => {
    const parse = (c) => {
        const m = c.match(/^rgba?\\(([^)]+)\\)$/);
        if (!m) return null;
        const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
        return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    };
    const over = (top, under) =>
        [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat(1);
    const lum = (rgb) => {
        const f = (v) => {
            v /= 255;
            return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        };
        return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]);
    };
    const background = (el) => {
        const chain = [];
        for (let e = el; e; e = e.parentElement) chain.unshift(e);
        let bg = [255, 255, 255, 1];
        for (const e of chain) {
            const s = getComputedStyle(e);
            const c = parse(s.backgroundColor);
            if (c === null) return null;
            if (c[3] > 0) bg = over(c, bg);
            // A gradient on the element under the text: judged by its first colour stop.
            const image = s.backgroundImage;
            if (image.startsWith('linear-gradient') || image.startsWith('radial-gradient')) {
                const stop = image.match(/rgba?\\([^)]+\\)/);
                if (!stop) return null;
                bg = over(parse(stop[0]), bg);
            } else if (image !== 'none') return null;
        }
        return bg;
    };
    const failures = [];
    let checked = 0, skipped = 0;
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const seen = new Set();
    while (walker.nextNode()) {
        const el = walker.currentNode.parentElement;
        if (!walker.currentNode.textContent.trim() || seen.has(el)) continue;
        seen.add(el);
        if (el.closest('[hidden], [aria-hidden=true], noscript, script, style, svg')) continue;
        // WCAG 1.4.3 exempts inactive controls; the remote's disabled buttons were once caught
        // mid-transition of their colours on a busy machine (1.99 : 1).
        if (el.closest(':disabled, [aria-disabled=true]')) continue;
        const r = el.getBoundingClientRect();
        const s = getComputedStyle(el);
        if (!r.width || !r.height || s.visibility === 'hidden' || parseFloat(s.opacity) === 0)
            continue;
        const fg = parse(s.color), bg = background(el);
        if (fg === null || bg === null) { skipped++; continue; }
        const ink = over(fg, bg);
        const [hi, lo] = [lum(ink), lum(bg)].sort((a, b) => b - a);
        const ratio = (hi + 0.05) / (lo + 0.05);
        const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
        const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
        checked++;
        if (ratio < needed)
            failures.push(`${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 30)}" `
                          + `${ratio.toFixed(2)} < ${needed}`);
    }
    return {checked, skipped, failures};
}"""


def contrast_report(page: Page) -> dict:
    """WCAG AA for every visible piece of text against what is painted under it."""
    report = page.evaluate(CONTRAST_REPORT)
    assert report["failures"] == [], f"{page.url}: {report}"
    assert report["checked"] >= 5 and report["skipped"] <= report["checked"] // 4, report
    return report


def test_the_phone_works_by_keyboard_reads_out_its_status_and_switches_to_dutch(browser, stack):
    errors: list[str] = []
    urls = stack.urls("KSF2018")
    phone = new_phone(browser)
    watch_errors(phone, errors)
    phone.goto(urls["phone"])
    # The profile question by keyboard too, its text as readable as the poll's.
    expect(phone.locator(".zp-profile")).to_be_visible()
    contrast_report(phone)
    answer_profile(phone, keyboard=True)
    expect(phone.get_by_role("button", name="Meer omzet")).to_be_enabled()
    assert phone.locator("html").get_attribute("lang") == "en"  # the browser's language
    status = phone.locator("#zp-status")
    assert status.get_attribute("role") == "status"
    assert status.get_attribute("aria-live") == "polite"

    # Every control has a name a screen reader can say, and is big enough for a thumb.
    controls = phone.eval_on_selector_all(
        "button, a[href], input:not([type=hidden]), select, textarea",
        """els => els.filter(e => e.getBoundingClientRect().width).map(e => {
            const r = e.getBoundingClientRect();
            const labelled = (e.labels && [...e.labels].map(l => l.textContent).join(''))
                || e.getAttribute('aria-label') || e.textContent;
            return {tag: e.tagName, name: (labelled || '').trim(), w: r.width, h: r.height,
                    inMain: !!e.closest('main')};
        })""",
    )
    assert controls and all(c["name"] for c in controls), controls
    for control in controls:
        least = 44 if control["inMain"] else 24  # answers 44 px; header links WCAG's 24 px
        assert min(control["w"], control["h"]) >= least, control

    # By keyboard alone: Tab reaches an answer, its focus ring shows, Enter sends it.
    for _ in range(20):
        phone.keyboard.press("Tab")
        focused = phone.evaluate("document.activeElement.textContent.trim()")
        if focused.startswith("Meer omzet"):
            break
    else:
        pytest.fail("Tab never reached the answer 'Meer omzet'")
    ring = phone.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, parseFloat(s.outlineWidth)]; })()"
    )
    assert ring[0] != "none" and ring[1] >= 2, ring
    phone.keyboard.press("Enter")
    expect(status).to_contain_text("Answer received")
    expect(phone.get_by_role("button", name=re.compile("Meer omzet"))).to_have_attribute(
        "aria-pressed", "true"
    )
    contrast_report(phone)

    # The visible switch: the same page in Dutch, the answer still there.
    phone.get_by_role("link", name="NL").click()
    expect(phone.locator("html")).to_have_attribute("lang", "nl")
    expect(phone.get_by_role("link", name="NL")).to_have_attribute("aria-current", "true")
    phone.get_by_role("button", name="Tevredenere klanten").click()
    expect(status).to_contain_text("Antwoord ontvangen")
    contrast_report(phone)
    assert errors == []


def test_stage_in_both_themes_and_remote_meet_wcag_contrast(browser, stack):
    urls = stack.urls("KSF2018")
    stage = browser.new_page(viewport={"width": 1920, "height": 1080})
    for theme in ("dark", "light"):
        set_theme(stack, theme)
        stage.goto(urls["stage"])
        expect(stage.locator(".st-prompt")).to_be_visible()
        settle(stage)  # the entrance animation
        contrast_report(stage)

    contrast_report(open_remote(browser, urls["remote"]))

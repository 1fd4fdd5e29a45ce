"""One number formatter per language, the same strings: benchmarks/numbers.py (exports, the
comparison's words) and static/polls/format.js (phone, stage, remote), fed the same figures in
Debian's Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.utils import translation

from benchmarks import numbers

pytestmark = pytest.mark.browser

STATIC = Path(__file__).resolve().parent.parent / "static"
ORIGIN = "http://formats.test"

# Halves that binary floats hold inexactly (1.15, 2.675, 0.05) or exactly (7.25, -12.5), a
# negative that rounds to nothing (-0.4), ends of the scales and a third.
VALUES = [0, 0.05, -0.05, 0.4, -0.4, 0.5, -0.5, 1.15, 2.675, 6.05, 7.25, 7.35, -7.25, 12.5]
VALUES += [-12.5, 33.3, 1 / 3, 39, 39.5, 60.75, 63.25, 99.95, 100, -100, 1234.5]
METRICS = ["split", "percentage", "shares", "nps", "mean", "ces"]
SPECS = [{"split": {"a": "Zelf", "b": "Medewerker"}}, {"split": {"a": "Zelf"}}, {}]

CASES = (
    [["number", v, places, signed] for v in VALUES for places in (0, 1, 2) for signed in (0, 1)]
    + [["metric", m, v, spec] for m in METRICS for v in VALUES for spec in SPECS]
    + [["difference", m, v] for m in METRICS for v in VALUES]
)

FORMAT = """async ([src, lang, cases]) => {
    const { formatter } = await import(src);
    const f = formatter(lang);
    return cases.map(([how, ...args]) =>
        how === 'number' ? f.number(args[0], args[1], !!args[2]) : f[how](...args));
}"""


def python(case: list) -> str:
    how, *args = case
    if how == "number":
        value, places, signed = args
        return numbers.number(value, places, bool(signed))
    if how == "metric":
        return numbers.show_metric(*args)
    return numbers.show_difference(*args)


def serve_static(route) -> None:
    path = route.request.url.removeprefix(ORIGIN + "/static/")
    file = STATIC / path
    if path == route.request.url or not file.is_file():
        route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>f</title>")
    else:
        route.fulfill(status=200, content_type="text/javascript", body=file.read_bytes())


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_python_and_the_browser_write_every_figure_alike(browser, lang):
    page = browser.new_page()
    page.route(f"{ORIGIN}/**", serve_static)
    page.goto(ORIGIN + "/")
    # JSON round trip: what the browser gets is what a state or results message carries.
    cases = json.loads(json.dumps(CASES))
    got = page.evaluate(FORMAT, [f"{ORIGIN}/static/polls/format.js", lang, cases])
    page.close()
    with translation.override(lang):
        expected = [python(case) for case in cases]
    differ = [(case, e, g) for case, e, g in zip(cases, expected, got, strict=True) if e != g]
    assert differ == [], differ[:10]
    # The edges the formatters once disagreed on, spelled out.
    spelled = dict(zip((json.dumps(c) for c in cases), got, strict=True))
    comma = "," if lang == "nl" else "."
    assert spelled[json.dumps(["number", 7.25, 1, 0])] == f"7{comma}3"
    assert spelled[json.dumps(["number", 1.15, 1, 0])] == f"1{comma}2"
    assert spelled[json.dumps(["metric", "nps", -12.5, {}])] == "-13"
    assert spelled[json.dumps(["metric", "nps", 12.5, {}])] == "+13"
    assert spelled[json.dumps(["metric", "split", 39, SPECS[0]])] == "39 / 61"
    assert spelled[json.dumps(["metric", "percentage", 0.05, {}])] == f"0{comma}1%"
    assert (
        spelled[
            json.dumps(
                [
                    "difference",
                    "mean",
                    -0.4,
                ]
            )
        ]
        == f"-0{comma}4"
    )
    assert spelled[json.dumps(["difference", "nps", -0.4])] == "0"

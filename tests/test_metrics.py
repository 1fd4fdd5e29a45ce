"""/metrics on two Daphne processes sharing one port and the answer writer, one metrics folder
for all of them (prometheus-client's multiprocess mode): whichever process a scrape reaches, it
counts what the load test reports it did.

Every figure is compared as a difference between a scrape before and one after, so the tests
of this module may run in any order on their one stack.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from loadgen.options import DEFAULT_HOST_ACTIONS
from polls import protocol, tally
from tests.live_helpers import checked, profile_then_state
from tests.servers import ROOT, http_post, make_stack

pytestmark = pytest.mark.e2e

TOKEN = secrets.token_urlsafe(32)
CODE = "KSF2018"
PHONES = 200
ERRORS = protocol.ERROR_CODES
SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Samples = dict[tuple[str, frozenset], float]


@pytest.fixture(scope="module")
def metered(tmp_path_factory, redis_server):
    directory = tmp_path_factory.mktemp("metrics")
    stack = make_stack(directory)
    stack.env.update(PROMETHEUS_MULTIPROC_DIR=str(directory / "prometheus"), ZP_METRICS_TOKEN=TOKEN)
    try:
        stack.start_daphnes(2)
        stack.writer = stack.start_writer()
        yield stack
    finally:
        stack.stop()


def get_metrics(stack, authorization: str | None, host: str = "10.0.0.7:9100"):
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    headers = {"Host": host} | ({"Authorization": authorization} if authorization else {})
    try:
        connection.request("GET", "/metrics", headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


def parse(text: str) -> Samples:
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.fullmatch(line)
        assert match, line
        labels = frozenset(LABEL.findall(match[2] or ""))
        samples[(match[1], labels)] = float(match[3])
    return samples


def scrape(stack) -> Samples:
    status, _headers, body = get_metrics(stack, f"Bearer {TOKEN}")
    assert status == 200, body
    return parse(body)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples carrying ``labels`` (over every pid, say)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def per_process(samples: Samples, name: str) -> dict[str, float]:
    return {dict(labels)["pid"]: v for (n, labels), v in samples.items() if n == name and v}


def wait_for(stack, name: str, expected: float, timeout: float = 15) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(stack)
        if value(samples, name) == expected or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def test_the_token_is_required_and_any_host_may_scrape(metered):
    status, headers, _body = get_metrics(metered, None)
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
    assert get_metrics(metered, f"Bearer {TOKEN[:-1]}x")[0] == 401
    assert get_metrics(metered, TOKEN)[0] == 401  # not a bearer
    status, headers, body = get_metrics(metered, f"Bearer {TOKEN}")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "zaalpeiling_answers_acknowledged_total" in body


def test_a_scrape_counts_what_a_load_run_reports(metered, tmp_path):
    before = scrape(metered)
    report_path = tmp_path / "report.json"
    options = ["--url", metered.base, "--phones", str(PHONES), "--join-rate", "500"]
    options += ["--hold", "2", "--burst", "1", "--change-share", "0.4", "--drain-timeout", "15"]
    run = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "loadtest",
            "--no-progress",
            *options,
            "--report",
            str(report_path),
        ],
        cwd=ROOT,
        env=metered.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    during = []
    try:
        while run.poll() is None:
            during.append(scrape(metered))
            time.sleep(0.2)
    finally:
        output = run.communicate(timeout=120)[0]
    assert run.returncode == 0, output + metered.log_text()[-3000:]
    report = json.loads(report_path.read_text())
    assert report["exactness"]["ok"] is True, report["exactness"]

    # While the phones were held: every one of them, on both processes, and the stage screen.
    peak = max(during, key=lambda samples: value(samples, "zaalpeiling_phones_connected"))
    assert value(peak, "zaalpeiling_phones_connected") == report["phones"]["connected"] == PHONES
    phones_here = per_process(peak, "zaalpeiling_phones_connected_here")
    assert set(phones_here) == {str(process.pid) for process in metered.processes[:2]}
    assert sum(phones_here.values()) == PHONES
    screens = max(value(s, "zaalpeiling_stage_screens_connected") for s in during)
    assert screens == report["stage"]["clients"] == 1

    # After the run: every line gone, the writer caught up.
    after = wait_for(metered, "zaalpeiling_phones_connected", 0)
    assert value(after, "zaalpeiling_phones_connected") == 0
    assert value(after, "zaalpeiling_stage_screens_connected") == 0
    after = wait_for(metered, "zaalpeiling_writer_lag", 0)
    assert ("zaalpeiling_writer_lag", frozenset()) in after
    assert value(after, "zaalpeiling_writer_lag") == value(after, "zaalpeiling_writer_pending") == 0

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    acked = report["answers"]["acked"]
    assert acked > PHONES  # the changes were acknowledged too
    assert grew("zaalpeiling_answers_acknowledged_total") == acked
    assert grew("zaalpeiling_ack_seconds_count") == acked
    assert grew("zaalpeiling_ack_seconds_bucket", le="5.0") == acked
    refused = {code: grew("zaalpeiling_answers_refused_total", code=code) for code in ERRORS}
    assert refused == {code: report["answers"]["errors"].get(code, 0) for code in ERRORS}
    # The stage screen's snapshots of the question answered, among those of the others.
    assert grew("zaalpeiling_snapshots_pushed_total") >= report["stage"]["snapshots"] > 0
    actions = {a: grew("zaalpeiling_host_actions_total", action=a) for a in DEFAULT_HOST_ACTIONS}
    assert actions == Counter(DEFAULT_HOST_ACTIONS)
    assert grew("zaalpeiling_writer_batch_seconds_count") > 0
    assert grew("zaalpeiling_join_refusals_total") == report["join"]["failed"] == 0


def test_refusals_are_counted_by_their_code_and_the_connection_caps_by_theirs(metered):
    question_id, options = metered.current_question(CODE)
    tally.set_open_many({question_id: True})  # its flag went with the flush before this test
    before = scrape(metered)
    attempts = 12  # one token: at most 4 lines per process, 2 processes

    async def scenario():
        status, body = await http_post("127.0.0.1", metered.port, "/api/e/NOSUCH/join")
        assert status == 404, body
        status, body = await http_post("127.0.0.1", metered.port, f"/api/e/{CODE}/join")
        assert status == 200, body
        url = f"ws://127.0.0.1:{metered.port}/ws/e/{CODE}/?token={body['token']}"
        sockets = [await connect(url, origin=metered.base) for _ in range(attempts)]
        admitted, closed = [], 0
        for ws in sockets:
            try:
                await profile_then_state(lambda ws=ws: asyncio.wait_for(ws.recv(), 10))
                admitted.append(ws)
            except ConnectionClosed as closing:
                assert closing.rcvd.code == 4408
                closed += 1
        open_now = scrape(metered)
        replies = []
        frames = [
            "{",
            json.dumps({"type": "answer", "id": "a1", "question": -1, "value": options[0]}),
            json.dumps(
                {"type": "answer", "id": "a2", "question": question_id, "value": options[0]}
            ),
        ]
        # The writer held still: the answer waits in the log, and the scrape sees it there.
        os.kill(metered.writer.pid, signal.SIGSTOP)
        try:
            for frame in frames:
                await admitted[0].send(frame)
                replies.append(checked(await asyncio.wait_for(admitted[0].recv(), 10)))
            held = scrape(metered)
        finally:
            os.kill(metered.writer.pid, signal.SIGCONT)
        for ws in sockets:
            await ws.close()
        return len(admitted), closed, open_now, replies, held

    admitted, closed, open_now, replies, held = asyncio.run(scenario())
    assert closed >= attempts - 8 and admitted + closed == attempts
    assert value(open_now, "zaalpeiling_phones_connected") == admitted
    assert [reply.get("code", reply["type"]) for reply in replies] == [
        "bad_json",
        "unknown_question",
        "ack",
    ]
    assert value(held, "zaalpeiling_writer_lag") == 1
    # A writer blocked in its read when stopped may have been handed the entry already.
    assert value(held, "zaalpeiling_writer_pending") <= 1
    assert value(wait_for(metered, "zaalpeiling_writer_lag", 0), "zaalpeiling_writer_lag") == 0
    assert metered.query_one(
        "SELECT COUNT(*) FROM polls_answer WHERE question_id = %s", question_id
    ) == (1,)
    after = wait_for(metered, "zaalpeiling_phones_connected", 0)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("zaalpeiling_connections_refused_total", limit="participant") == closed
    assert grew("zaalpeiling_connections_refused_total", limit="address") == 0
    assert grew("zaalpeiling_answers_refused_total", code="bad_json") == 1
    assert grew("zaalpeiling_answers_refused_total", code="unknown_question") == 1
    assert grew("zaalpeiling_answers_refused_total") == 2
    assert grew("zaalpeiling_join_refusals_total", reason="unknown_event") == 1
    assert grew("zaalpeiling_join_refusals_total") == 1
    assert grew("zaalpeiling_answers_acknowledged_total") == 1


CRASHING = """
import time
import django
django.setup()
from polls import metrics
metrics.line_joined(True, 3)
metrics.answer_acknowledged(0.01)
print("counted", flush=True)
time.sleep(60)
"""
SCRAPING = """
import sys
import django
django.setup()
from polls import metrics
for _line in sys.stdin:
    print(metrics.exposition()[0].decode() + "# end", flush=True)
"""


def test_a_crashed_process_leaves_its_counts_and_takes_its_lines_along(tmp_path):
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings.test",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
    )
    started = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for script in (CRASHING, SCRAPING)
    ]
    crashing, scraper = started

    def scraped() -> Samples:
        scraper.stdin.write("scrape\n")
        scraper.stdin.flush()
        lines = iter(scraper.stdout.readline, "# end\n")
        return parse("".join(lines))

    try:
        assert crashing.stdout.readline() == "counted\n"
        alive = scraped()
        crashing.kill()  # no exit handler runs: its files stay in the folder
        crashing.wait()
        gone = scraped()  # the same scraping process: it notices at the scrape
    finally:
        for process in started:
            process.kill()
            process.wait()
    assert per_process(alive, "zaalpeiling_phones_connected_here") == {str(crashing.pid): 3}
    assert value(alive, "zaalpeiling_phones_connected") == 3
    assert value(gone, "zaalpeiling_phones_connected_here") == 0
    assert value(gone, "zaalpeiling_phones_connected") == 0
    assert value(gone, "zaalpeiling_answers_acknowledged_total") == 1  # a total outlives it

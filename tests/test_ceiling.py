"""The ceiling (``loadgen.ceiling``): the product's Redis work per phone on a minimal server,
driven for real by the load test like the bare consumer, and the bench's choice of sides."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from devenv.daphne import listening_socket, wait_serving
from loadgen import bench, procinfo
from loadgen.wsclient import http_request, ws_connect
from polls import tally
from tests.servers import ROOT, Stack


def start_ceiling(stack: Stack, count: int) -> list[subprocess.Popen]:
    """``count`` ceiling processes on one inherited listening socket, as the bench starts them."""
    sock = listening_socket("127.0.0.1", 0)
    try:
        stack.port = sock.getsockname()[1]
        for index in range(count):
            log = stack.directory / f"ceiling-{index}.log"
            stack.logs.append(log)
            with log.open("wb") as output:
                stack.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "loadgen.ceiling", "--fd", str(sock.fileno())],
                        cwd=ROOT,
                        env=stack.env,
                        pass_fds=(sock.fileno(),),
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
                )
        wait_serving(stack.processes, sock, timeout=30)
    finally:
        sock.close()
    return stack.processes


def ceiling_stack(tmp_path, redis_server, **env) -> Stack:
    return Stack(
        directory=tmp_path,
        env=dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="config.settings.test",
            ZP_TEST_REDIS_URL=redis_server,
            ZP_VAR_DIR=str(tmp_path),
            PYTHONUNBUFFERED="1",
            **env,
        ),
    )


def loadtest(stack: Stack, phones: int, report_path) -> dict:
    result = subprocess.run(
        [
            *(sys.executable, "manage.py", "loadtest", "--no-progress", "--baseline"),
            *("--url", stack.base, "--phones", str(phones), "--join-rate", "500", "--burst", "1"),
            *("--report", str(report_path)),
        ],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr + stack.log_text()[-3000:]
    return json.loads(report_path.read_text())


@pytest.mark.e2e
@pytest.mark.parametrize("processes", [1, 2])
def test_the_load_test_counts_every_answer_the_ceiling_acknowledged(
    processes, tmp_path, redis_server, redis
):
    # With two processes the joins past the tenth of the minute must carry a proof of work, as
    # the product asks of a busy address: the ceiling runs the product's join guard.
    free = {"ZP_JOIN_FREE_PER_MINUTE": "10"} if processes == 2 else {}
    stack = ceiling_stack(tmp_path, redis_server, **free)
    try:
        pids = [process.pid for process in start_ceiling(stack, processes)]
        fds_at_rest = {pid: procinfo.sample(pid)["fds"] for pid in pids}
        report = loadtest(stack, 40, tmp_path / "report.json")
    finally:
        stack.stop()
    exact = report["exactness"]
    assert exact["ok"] is True and exact["verdict"].startswith("exact"), exact
    assert exact["redis_hincrby_total"] == report["answers"]["acked"] >= 40
    assert report["join"]["ok"] == 40
    # The product's tally script did the counting: one answer kept per participant, one log
    # entry and one version per counted change.
    keys = tally.question_keys(1)
    assert int(redis.hget(keys["meta"], "total")) == 40
    assert redis.hlen(keys["answers"]) == 40
    assert redis.xlen(keys["log"]) == report["answers"]["acked"]
    assert redis.sismember(tally.LOG_REGISTRY, keys["log"])
    # One PUBLISH per host action reaches the sockets of every process.
    assert [r["received"] for r in report["broadcast"]["rounds"]] == [40, 40, 40]
    found = {entry["pid"]: entry for entry in report["server"]["processes"]}
    assert set(pids) <= set(found)
    if processes == 2:
        assert report["join"]["attempts"].get("428", 0) >= 20, report["join"]["attempts"]
        # both processes accept on the port: each held some of the idle sockets
        assert all(found[pid]["fds_idle"] > fds_at_rest[pid] for pid in pids), found
    assert "Traceback" not in stack.log_text()


@pytest.mark.e2e
def test_the_ceiling_refuses_a_forged_token_and_a_closed_question(tmp_path, redis_server, redis):
    stack = ceiling_stack(tmp_path, redis_server)

    async def scenario() -> tuple[int, list[dict]]:
        target = {"host_header": f"127.0.0.1:{stack.port}", "origin": stack.base}
        joined = await http_request(
            "127.0.0.1", stack.port, "POST", "/api/e/BARE/join", host_header=target["host_header"]
        )
        token = json.loads(joined.body)["token"]
        closed = asyncio.get_running_loop().create_future()
        forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        await ws_connect(
            "127.0.0.1",
            stack.port,
            f"/ws/e/BARE/?token={forged}",
            on_text=lambda _payload: None,
            on_close=lambda code, _by_us: closed.set_result(code),
            **target,
        )
        heard: list[dict] = []
        got = asyncio.Event()

        def on_text(payload: bytes) -> None:
            heard.append(json.loads(payload))
            got.set()

        socket = await ws_connect(
            "127.0.0.1",
            stack.port,
            f"/ws/e/BARE/?token={token}",
            on_text=on_text,
            on_close=lambda _code, _by_us: None,
            **target,
        )
        await asyncio.wait_for(got.wait(), 10)  # the first state
        socket.send_text(json.dumps({"type": "answer", "id": "a1", "question": 7, "value": 11}))
        socket.send_text(json.dumps({"type": "ping", "id": "p1"}))
        while len(heard) < 3:
            got.clear()
            await asyncio.wait_for(got.wait(), 10)
        socket.close()
        return await asyncio.wait_for(closed, 10), heard

    try:
        start_ceiling(stack, 1)
        code, heard = asyncio.run(scenario())
    finally:
        stack.stop()
    assert code == 4401
    state, *replies = heard
    assert state["type"] == "state" and state["question"]["id"] == 1 and state["answer"] is None
    assert {"type": "error", "id": "a1", "code": "not_open"} in replies
    assert {"type": "pong", "id": "p1"} in replies  # the bare baseline has no clock
    assert redis.hlen(tally.question_keys(1)["answers"]) == 0


def test_bench_sides_default_and_choice():
    assert bench.parse_args([]).sides == ["product", "baseline"]
    assert bench.parse_args(["--no-baseline"]).sides == ["product"]
    assert bench.parse_args(["--sides", "ceiling,product"]).sides == ["ceiling", "product"]
    for wrong in ("product,daphne", "product,product", ","):
        with pytest.raises(SystemExit):
            bench.parse_args(["--sides", wrong])


def test_bench_table_has_a_column_per_side_and_the_storms_ratios():
    def side(ready_p50, ready_p99, cpu_percent, join_seconds):
        report = {
            "phones": {"target": 100, "connected": 100, "held": 100, "dropped": 0},
            "join": {
                "ready_ms": {"n": 100, "p50": ready_p50, "p99": ready_p99},
                "duration_s": join_seconds,
            },
            "server": {
                "processes": [
                    {
                        "pid": 1,
                        "cpu_percent": {"join": cpu_percent},
                        "fds_idle": 9,
                        "rss_peak_kib": 1,
                    }
                ]
            },
            "phases": [{"name": "join", "seconds": join_seconds}],
        }
        return bench.figures(report, {"daphne": [1]})

    table = bench.markdown(
        "title",
        {
            "product": side(40, 400, 80, 2.0),
            "baseline": side(20, 100, 40, 1.0),
            "ceiling": side(10, 50, 20, 0.5),
        },
    )
    lines = table.splitlines()
    assert lines[2] == (
        "| figure | product | bare | ceiling | product / bare | product / ceiling |"
    )
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in lines[4:]}
    assert rows["join -> ready p50 / p99"][-2:] == ["2.00 / 4.00 x", "4.00 / 8.00 x |"]
    # 100 phones in 2 s, 1 s and 0.5 s; 80 % of a core for 2 s is 16 ms a phone, and so on
    assert rows["joins per second"][1:] == ["50.0", "100.0", "200.0", "0.50 x", "0.25 x |"]
    assert rows["server CPU ms per phone, join"][1:] == [
        "16.0",
        "4.0",
        "1.0",
        "4.00 x",
        "16.00 x |",
    ]
    assert rows["exact (verdict)"][-2:] == ["", " |"]

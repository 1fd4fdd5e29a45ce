"""/healthz and /readyz on real Daphne processes: one with everything up, one whose Redis is a
dead socket, one whose Redis accepts and never answers, one whose database does not exist."""

from __future__ import annotations

import http.client
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from polls.transport.responses import SECURITY_HEADERS
from tests.servers import Stack, new_database, server_url, stack_environment
from tests.servers import StackDatabase as Database

pytestmark = pytest.mark.e2e

# What a load balancer's check may carry: its own idea of the host, not one of ALLOWED_HOSTS.
CHECKER_HOST = "10.0.0.7:8000"
HUNG_TIMEOUT = 5


def get(stack: Stack, path: str, method: str = "GET", host: str = CHECKER_HOST, timeout=10):
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=timeout)
    try:
        connection.request(method, path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("health")
    dead = folder / "dead.sock"  # a socket file nothing listens on: a Redis that crashed
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(dead))
    # A Redis that hangs: connections are queued (listen) and never read or answered.
    hung = socket.socket(socket.AF_UNIX)
    hung.bind(str(folder / "hung.sock"))
    hung.listen(64)
    database = new_database()
    stacks = {
        "up": Stack(folder, stack_environment(database)),
        "dead_redis": Stack(folder, stack_environment(database, f"unix://{dead}")),
        "hung_redis": Stack(folder, stack_environment(database, f"unix://{folder}/hung.sock")),
        "no_database": Stack(folder, stack_environment(Database(server_url("zp_none")))),
    }
    # Long enough that the health check below is surely answered within it, on a busy machine.
    stacks["hung_redis"].env["ZP_READY_TIMEOUT"] = str(HUNG_TIMEOUT)
    try:
        with ThreadPoolExecutor(len(stacks)) as pool:
            list(pool.map(lambda stack: stack.start_daphne(), stacks.values()))
        yield stacks
    finally:
        for stack in stacks.values():
            stack.stop()
        hung.close()
        database.drop()


def test_healthz_answers_any_host_with_the_security_headers(servers):
    for stack in servers.values():  # the process is up, whatever Redis and the database do
        status, headers, body = get(stack, "/healthz")
        assert (status, body) == (200, b"ok\n")
        assert headers["Content-Type"].startswith("text/plain")
        for name, value in SECURITY_HEADERS.items():
            assert headers[name] == value, name
        assert headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    # The same Host on a page is refused by Django's own check: only these URLs skip it.
    assert get(servers["up"], "/")[0] == 400


def test_readyz_is_200_with_redis_and_the_database_up(servers):
    status, headers, body = get(servers["up"], "/readyz")
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"ready": True, "redis": "ok", "database": "ok"}
    assert get(servers["up"], "/readyz", method="HEAD")[0] == 200


def test_readyz_names_redis_when_its_socket_is_dead(servers):
    status, _headers, body = get(servers["dead_redis"], "/readyz")
    assert status == 503
    assert json.loads(body) == {
        "ready": False,
        "failed": ["redis"],
        "redis": "error",
        "database": "ok",
    }


def test_readyz_names_the_database_when_it_does_not_exist(servers):
    status, _headers, body = get(servers["no_database"], "/readyz")
    assert status == 503
    assert json.loads(body) == {
        "ready": False,
        "failed": ["database"],
        "redis": "ok",
        "database": "error",
    }


def test_readyz_gives_up_on_a_hung_redis_without_holding_the_process(servers):
    stack = servers["hung_redis"]
    with ThreadPoolExecutor(2) as pool:
        ready = pool.submit(get, stack, "/readyz")
        time.sleep(0.2)  # the check is waiting on Redis now
        health = pool.submit(get, stack, "/healthz")
        # The event loop turns meanwhile: the health check is answered while the readiness
        # check still waits. (A probe that blocked the loop would answer both at once, when it
        # gave up: the pause lets that answer arrive before the check below.)
        assert health.result()[0] == 200
        time.sleep(0.5)
        assert not ready.done()
        status, _headers, body = ready.result()
    assert status == 503
    assert json.loads(body)["failed"] == ["redis"]
    assert json.loads(body)["redis"] == "timeout"


def test_other_methods_are_refused(servers):
    status, headers, _body = get(servers["up"], "/healthz", method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"


def test_metrics_do_not_exist_without_a_token(servers):
    # Unset ZP_METRICS_TOKEN: the URL is Django's, which knows no such page.
    assert get(servers["up"], "/metrics", host="127.0.0.1")[0] == 404
    assert get(servers["up"], "/metrics")[0] == 400  # and a foreign Host is refused as anywhere


def test_a_flood_of_readiness_checks_asks_redis_about_once_a_second(servers, redis):
    """A stranger asking /readyz in a loop costs Redis and the database one check a second."""
    from polls.health import READY_REUSE_SECONDS

    def pings() -> int:
        return redis.info("commandstats").get("cmdstat_ping", {}).get("calls", 0)

    before, started = pings(), time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: get(servers["up"], "/readyz")[0], range(200)))
    elapsed = time.monotonic() - started
    asked = pings() - before
    assert statuses == [200] * 200
    # A margin for the pools' own health-check pings meanwhile.
    assert asked <= elapsed / READY_REUSE_SECONDS + 3, (asked, elapsed)

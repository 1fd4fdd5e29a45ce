"""Several hosts, for real (issue 13): network namespaces on this machine (``loadgen.netns``),
the layout of docs/deployment.md's "Topology" (``loadgen.hosts.Site``):

    hall (the load test: 2,000 phones from one address)
      │ https, wss
    prox: HAProxy, deploy/haproxy/zaalpeiling.cfg as shipped (fill-ins only)
      │ http, X-Forwarded-For          │
    app1: 2 Daphne + writer         app2: 2 Daphne + writer      (config.settings.prod)
      │                                │
    data: Redis (TCP, password) and PostgreSQL, on the data host's address

Mid-burst one app host is taken away, all of it (its processes killed; or its cable cut at the
switch, its processes running on unheard). The phones on it reconnect through the proxy to the
other host and resend what was not acknowledged; the stage follows; and every acknowledged
answer is counted exactly once: stage total == Redis tally == Answer rows == distinct
participants. And when the shared Redis is away for a few seconds, the proxy drains both
hosts but closes no socket. Speed is reported by the bench (``python -m loadgen.bench
--scenario hosts``), never asserted here.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from loadgen import netns
from loadgen.hosts import HALL, PORT, PROXY, Site
from tests.netns import require_netns

pytestmark = [pytest.mark.e2e]

PHONES = 2000  # the figure
TAKEN = "app1"
DEMO = "KSF2018"  # seed_demo's event
TIMEOUT = 240  # the load test's own limits are far inside this; a hang must not eat CI


# -- the network alone (a second) ---------------------------------------------------------------


def test_namespaces_link_hosts_a_cut_silences_one_and_nothing_is_left():
    require_netns()
    network = netns.Network.make(["a", "b"])
    try:
        server = subprocess.Popen(
            network["a"].command("python3", "-m", "http.server", "-b", network["a"].address, "8"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        address = (network["a"].address, 8)
        assert wait_for(lambda: reachable(*address)), "host a never answered"
        url = f"http://{address[0]}:8/"
        fetch = f"import urllib.request; urllib.request.urlopen({url!r}, timeout=1)"
        between = subprocess.run(network["b"].command("python3", "-c", fetch), check=False)
        assert between.returncode == 0  # host to host, over the bridge
        network.cut("a")
        assert not reachable(*address, timeout=1)
        network.mend("a")
        assert wait_for(lambda: reachable(*address))
        assert network.kill("a")  # the server, found through its namespace
        assert wait_for(lambda: server.poll() is not None)
    finally:
        network.remove()
    made = {host.namespace for host in network.hosts.values()} | {network.switch}
    assert not made & set(netns.namespaces())
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    assert network.root_link not in links.stdout


def test_leftovers_of_a_killed_run_are_removed_and_nobody_elses():
    require_netns()
    dead = subprocess.Popen(["true"])
    dead.wait()  # its id names a run whose process is gone
    leftover, ours = f"{netns.PREFIX}{dead.pid}-old", f"{netns.PREFIX}1-init"  # pid 1 runs
    for name in (leftover, ours):
        netns.ip("netns", "add", name)
    try:
        removed = netns.remove_leftovers()
        assert leftover in removed and leftover not in netns.namespaces()
        assert ours in netns.namespaces()
    finally:
        for name in (leftover, ours):
            netns.ip("netns", "del", name, check=False)


# -- the site ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site():
    require_netns()
    directory = Path(tempfile.mkdtemp(prefix="zp-hosts-"))
    tuning = {
        # The writers take over what a dead writer had read after this many seconds
        # (polls.writer): a host taken away mid-batch leaves its batch to the other's writer.
        "ZP_WRITER_CLAIM_SECONDS": "5",
        # A new token's first answer counts at once (as in the test settings): the hall's
        # reading time is not what this test is about, and the load test would wait it out.
        "ZP_ANSWER_WARMUP_SECONDS": "0",
    }
    made = Site(directory, apps=2, processes=2, extra_env=tuning)
    try:
        made.start()
        yield made
    finally:
        made.stop()
        shutil.rmtree(directory, ignore_errors=True)


def wait_for(condition, timeout: float = 30.0, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return False


def reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def get(site: Site, host: str, path: str, headers: dict | None = None):
    """GET from one app host directly, as HAProxy forwards it (the public Host, https)."""
    connection = http.client.HTTPConnection(site.address(host), PORT, timeout=10)
    try:
        connection.request(
            "GET",
            path,
            headers={"Host": site.address(PROXY), "X-Forwarded-Proto": "https", **(headers or {})},
        )
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def query(site: Site, sql: str, *params) -> list[tuple]:
    import psycopg

    with psycopg.connect(site.database_url, autocommit=True) as connection:
        return list(connection.execute(sql, params).fetchall())


def stat_rows(site: Site) -> list[dict]:
    """HAProxy's backend rows (its admin socket's ``show stat``)."""
    with socket.socket(socket.AF_UNIX) as admin:
        admin.connect(str(site.directory / "haproxy.sock"))
        admin.sendall(b"show stat\n")
        raw = b""
        while chunk := admin.recv(65536):
            raw += chunk
    lines = raw.decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
    return [row for row in rows if row.get("pxname") == "daphne"]


def servers_state(site: Site) -> dict[str, str]:
    """HAProxy's view of its servers: name -> UP / NOLB (drained) / DOWN / ..."""
    return {row["svname"]: row["status"] for row in stat_rows(site) if row["svname"] != "BACKEND"}


def address_tag(secret_key: str, address: str) -> str:
    """polls.tokens.address_tag under the site's key (this process runs the test settings)."""
    digest = hmac.new(secret_key.encode(), f"addr:{address}".encode(), hashlib.sha256)
    return digest.hexdigest()[:8]


def test_the_phone_page_and_its_files_are_the_same_on_every_host(site):
    """Each host built its own static files (collectstatic into its own ZP_VAR_DIR) and renders
    the page in its own process: the same bytes, the same ETag, the same hashed names, so a page
    from one host finds its files on the other, and a phone revalidating its page on the other
    host gets a 304."""
    site.run("app1", "seed-demo", [sys.executable, "manage.py", "seed_demo", "--allow-production"])
    pages = {host: get(site, host, f"/e/{DEMO}/") for host in site.app_hosts}
    statuses = {host: page[0] for host, page in pages.items()}
    assert set(statuses.values()) == {200}, statuses
    bodies = {page[2] for page in pages.values()}
    assert len(bodies) == 1  # the same page on both hosts
    etag = pages["app1"][1]["ETag"]
    assert {page[1]["ETag"] for page in pages.values()} == {etag}
    status, _, _ = get(site, "app2", f"/e/{DEMO}/", {"If-None-Match": etag})
    assert status == 304
    hashed = sorted(set(re.findall(r"/static/[\w/.-]+\.[0-9a-f]{12}\.\w+", bodies.pop().decode())))
    assert hashed
    for path in hashed:
        assert get(site, "app2", path)[0] == 200, path


def test_the_shared_redis_away_drains_every_host_and_closes_no_socket(site):
    """Redis frozen for a few seconds (as in a failover): every host's /readyz fails, HAProxy
    drains them all (no new connections), and the phones' sockets stay: nobody reconnects, and
    the answers afterwards count as ever. Only a host that does not answer at all is put down,
    with its sockets closed (the next test)."""
    loadtest = site.loadtest(
        "--phones", "100", "--arrival", "api", "--hold", "12", "--burst", "1",
        "--host-actions", "", "--ping-interval", "0", report=site.directory / "report-redis.json",
    )  # fmt: skip
    (redis_pid,) = site.pids_by_role()["redis"]
    try:
        assert wait_for(lambda: sessions(site) >= 100 or loadtest.poll() is not None, 60)
        os.kill(redis_pid, signal.SIGSTOP)
        try:
            drained = wait_for(
                lambda: all(s.startswith("NOLB") for s in servers_state(site).values()), 15
            )
            assert drained, servers_state(site)
            assert sessions(site) >= 100  # the phones' sockets are still there
        finally:
            os.kill(redis_pid, signal.SIGCONT)
        assert wait_for(lambda: all(s.startswith("UP") for s in servers_state(site).values()))
        code = loadtest.wait(timeout=TIMEOUT)
    finally:
        if loadtest.poll() is None:
            loadtest.kill()
    result = json.loads((site.directory / "report-redis.json").read_text())
    assert code == 0 and result["exactness"]["verdict"].startswith("exact"), result["exactness"]
    assert result["phones"]["dropped"] == 0 and result["stage"]["dropped"] == 0


def sessions(site: Site) -> int:
    """The sockets HAProxy holds to the app hosts now."""
    return sum(int(row["scur"] or 0) for row in stat_rows(site) if row.get("svname") != "BACKEND")


@pytest.mark.parametrize("how", ["cut", "kill"])
def test_a_host_taken_away_mid_burst_loses_no_answer_and_counts_none_twice(site, how):
    if TAKEN in site.gone:  # taken away by the other variant: a new machine in its place
        site.bring_back(TAKEN)
        assert wait_for(lambda: servers_state(site)[TAKEN].startswith("UP"))
    report = site.directory / f"report-{how}.json"
    loadtest = site.loadtest(
        "--phones",
        str(PHONES),
        "--join-rate",
        "250",
        "--arrival",
        "api",
        "--burst",
        "5",
        "--change-share",
        "0.3",
        # One host action: it reaches every phone, on the host that is left.
        "--host-actions",
        "next",
        "--stages",
        "2",
        "--drain-timeout",
        "90",
        # No heartbeat: the proxy, not the phones' pings, must notice the host is gone. (With
        # one, a phone on a host whose cable is cut gives up on its socket after 25 + 10 s.)
        "--ping-interval",
        "0",
        report=report,
    )
    try:
        # Mid-burst: once a third of the hall's answers are counted (read from the tally).
        taken = site.take_away_mid_burst(TAKEN, how, loadtest, counted=PHONES // 3)
        assert taken, site.log_text("loadtest")
        code = loadtest.wait(timeout=TIMEOUT)
    finally:
        if loadtest.poll() is None:
            loadtest.kill()
    output = site.log_text("loadtest", tail=6000)
    assert report.exists(), output
    result = json.loads(report.read_text())
    exact = result["exactness"]
    assert code == 0 and exact["ok"], output
    # Exact, not merely "consistent": every answer in flight when the host went got its ack in
    # the end, on the other host.
    assert exact["verdict"].startswith("exact"), exact["verdict"]
    totals = exact["totals"]
    assert len(set(totals.values())) == 1, totals
    assert result["join"]["ok"] == PHONES, result["join"]
    assert totals["acked"] == PHONES, totals  # every phone's answer, first or changed
    phones = result["phones"]
    # The host's phones dropped and came back through the proxy; nobody gave up.
    assert phones["dropped"] > 0 and phones["reconnected"] >= phones["dropped"], phones
    assert not phones["reconnect_failures"], phones
    assert result["stage"]["clients"] == 2

    question = exact["question_id"]
    rows = query(
        site,
        "SELECT count(*), count(DISTINCT participant) FROM polls_answer WHERE question_id = %s",
        question,
    )
    assert rows == [(totals["acked"], totals["acked"])]
    # The application saw the hall's address (HAProxy's X-Forwarded-For, ZP_TRUSTED_PROXY_HOPS=1),
    # not the proxy's: each participant id carries that address's tag.
    tags = query(
        site,
        "SELECT DISTINCT split_part(participant, '-', 2) FROM polls_answer WHERE question_id = %s",
        question,
    )
    assert tags == [(address_tag(site.secret_key, site.address(HALL)),)]
    # The proxy took the host out of rotation; the other one carries the hall.
    state = servers_state(site)
    assert state[TAKEN].startswith("DOWN") and state["app2"].startswith("UP"), state


# A transaction held open as a writer's batch is: in ``manage.py shell``, with the host's
# settings (and so its connection options), until the process is stopped.
HOLD_LOCK = """
import time
from django.db import connection, transaction
with transaction.atomic():
    connection.cursor().execute("SELECT pg_advisory_xact_lock(4242)")
    print("holding", flush=True)
    time.sleep(3600)
"""
TAKE_LOCK = """
from django.db import connection
cursor = connection.cursor()
cursor.execute("SET lock_timeout = '80s'")
cursor.execute("SELECT pg_advisory_xact_lock(4242)")
print("taken", flush=True)
"""


def test_a_host_cut_off_mid_transaction_does_not_hold_its_locks_for_long(site):
    """The cable of a host pulled while its transaction is open (a writer's batch of answers,
    with their row locks): PostgreSQL drops the silent session once the keepalives its
    connections ask for go unanswered (config/settings/base.py), and the other host's writer
    goes on. With the kernel's defaults it would wait two hours."""
    if TAKEN in site.gone:
        site.bring_back(TAKEN)
    holder = site.popen(
        TAKEN,
        "lock-holder",
        [sys.executable, "manage.py", "shell", "-c", HOLD_LOCK],
        env=site.env(TAKEN),
    )
    try:
        assert wait_for(lambda: "holding" in site.log_text("lock-holder"), timeout=60), (
            site.log_text("lock-holder")
        )
        site.cut(TAKEN)
        began = time.monotonic()
        other = next(host for host in site.app_hosts if host != TAKEN)
        site.run(
            other,
            "lock-taker",
            [sys.executable, "manage.py", "shell", "-c", TAKE_LOCK],
            timeout=120,
        )
        waited = time.monotonic() - began
        print(f"the cut host's lock went after {waited:.1f} s")
        assert "taken" in site.log_text("lock-taker")
        # 5 s idle + 3 probes 2 s apart, give or take the machine's load; far below 80 s.
        assert waited < 40, waited
    finally:
        holder.kill()

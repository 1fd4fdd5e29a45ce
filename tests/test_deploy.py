"""The files of deploy/, run for real: Debian's nginx with the shipped site in front of
``python3 dev.py serve`` (two Daphne processes on one socket, ZP_TRUSTED_PROXY_HOPS=1), the
phone's flow through it over TLS, the systemd units checked by ``systemd-analyze verify`` and
the Daphne unit's own command line socket-activated by systemd's ``systemd-socket-activate`` with
the example environment file, and the HAProxy configuration checked by ``haproxy -c``.

The shipped files are used as they are, with only what an operator fills in substituted: the
ports, the upstream address, the static folder, the certificate and log paths, the install
folder. serve (not a stack of tests/servers.py) because it is what the issue asks to sit behind
the proxy, and it makes the production layout of static files (collectstatic's hashed names);
it starts first, so its setup overlaps the tests that do not need it."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import secrets
import shlex
import shutil
import socket
import sqlite3
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from django.conf import settings
from websockets.asyncio.client import connect

from loadgen.certificates import self_signed
from polls.tokens import address_tag, read_participant_token
from tests.live_helpers import profile_then_state
from tests.servers import free_port
from tests.test_serve_supervisor import CODE, Serve

pytestmark = [pytest.mark.e2e]
ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NGINX = Path("/usr/sbin/nginx")
HAPROXY = Path("/usr/sbin/haproxy")
INSTALLED_AT = "/srv/zaalpeiling"  # the install folder the units name
# The phone's own address as nginx sees it: not the 127.0.0.1 nginx itself connects to serve
# from, so the application can only know it from X-Forwarded-For.
PHONE_ADDRESS = "127.0.0.2"
FORGED = "198.51.100.7"  # what a client writes in its own X-Forwarded-For
TIMEOUT = 30


def needs(binary: Path, package: str):
    return pytest.mark.skipif(
        not binary.exists(), reason=f"Debian's {package} (python3 dev.py test installs it)"
    )


# -- the parts -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir():
    # Short, under the system's temporary folder: Redis's socket path must stay under 108 bytes.
    directory = Path(tempfile.mkdtemp(prefix="zp-deploy-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def serve(workdir):
    """``dev.py serve`` as it starts (its setup takes a while): the proxy's tests wait for it."""
    var = workdir / "var"
    var.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        # serve passes its environment on. Without DEBUG, pages name collectstatic's hashed
        # files, as in production.
        patch.setenv("ZP_TRUSTED_PROXY_HOPS", "1")
        patch.setenv("DJANGO_DEBUG", "0")
        started = Serve(var, workdir / "serve.log")
    yield started
    started.terminate()


@pytest.fixture(scope="module")
def certificate(workdir) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, in place of the operator's."""
    cert_pem, key_pem = self_signed("127.0.0.1", common_name="poll.example.org")
    cert_path, key_path = workdir / "cert.pem", workdir / "key.pem"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem)
    return cert_path, key_path


def filled_in(text: str, replacements: dict[str, str]) -> str:
    """``text`` with each placeholder replaced; each must be there (the shipped file changed?)."""
    for placeholder, value in replacements.items():
        assert placeholder in text, f"{placeholder!r} is no longer in the shipped file"
        text = text.replace(placeholder, value)
    return text


class Nginx:
    """Debian's nginx as this test's own process: the shipped site inside a main configuration
    whose pid, logs and temporary folders are in ``directory``."""

    def __init__(self, directory: Path, upstream_port: int, static_root: Path, certificate):
        self.directory = directory
        self.https_port, self.http_port = free_port(), free_port()
        cert, key = certificate
        site = filled_in(
            (DEPLOY / "nginx" / "zaalpeiling.conf").read_text(),
            {
                "listen 443 ssl http2;": f"listen 127.0.0.1:{self.https_port} ssl http2;",
                "listen [::]:443 ssl http2;": "",
                "listen 80;": f"listen 127.0.0.1:{self.http_port};",
                "listen [::]:80;": "",
                "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
                "/var/lib/zaalpeiling/staticfiles/": f"{static_root}/",
                "/etc/letsencrypt/live/poll.example.org/fullchain.pem": str(cert),
                "/etc/letsencrypt/live/poll.example.org/privkey.pem": str(key),
                "/var/log/nginx/": f"{directory}/",
            },
        )
        (directory / "site.conf").write_text(site)
        temp_paths = "".join(
            f"    {kind}_temp_path {directory}/{kind}_temp;\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # As root, nginx would run its workers as "nobody", who may not read the test's folders.
        user = "user root;\n" if os.geteuid() == 0 else ""
        (directory / "nginx.conf").write_text(
            f"daemon off;\n{user}worker_processes 1;\npid {directory}/nginx.pid;\n"
            f"error_log {directory}/error.log info;\n"
            "events { worker_connections 1024; }\n"
            "http {\n    include /etc/nginx/mime.types;\n"
            "    default_type application/octet-stream;\n"
            f"    access_log {directory}/access.log;\n{temp_paths}"
            f"    include {directory}/site.conf;\n}}\n"
        )
        command = [str(NGINX), "-p", str(directory), "-c", str(directory / "nginx.conf")]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=(directory / "stderr.log").open("wb")
        )
        deadline = time.monotonic() + TIMEOUT
        while not answers(self.https_port):
            assert self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)

    def log(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")
            for path in (self.directory / "stderr.log", self.directory / "error.log")
            if path.exists()
        )

    def stop(self) -> None:
        # nginx's fast stop: the graceful one (SIGQUIT) would wait for any stream left open.
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def nginx(serve, workdir, certificate):
    if not NGINX.exists():
        pytest.skip("Debian's nginx (python3 dev.py test installs it)")
    serve.wait_started()
    directory = workdir / "nginx"
    directory.mkdir()
    front = Nginx(directory, serve.port, serve.var_dir / "staticfiles", certificate)
    yield front
    front.stop()


@pytest.fixture(scope="module")
def tls(certificate) -> ssl.SSLContext:
    """A client that trusts the test's certificate, and checks it."""
    return ssl.create_default_context(cafile=str(certificate[0]))


def https(nginx, tls, method: str, path: str, headers=None, body: bytes | None = None):
    """One request from the phone's address through nginx: (status, headers, body)."""
    connection = http.client.HTTPSConnection(
        "127.0.0.1",
        nginx.https_port,
        context=tls,
        timeout=TIMEOUT,
        source_address=(PHONE_ADDRESS, 0),
    )
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def origin(nginx) -> str:
    # serve runs the development settings, which do not read X-Forwarded-Proto
    # (SECURE_PROXY_SSL_HEADER is production's): its Origin check expects the page at http://
    # on the Host nginx passes on. In production the same check expects https://<Host>.
    return f"http://127.0.0.1:{nginx.https_port}"


def join(nginx, tls) -> str:
    """A phone's join, with a forged X-Forwarded-For in front of nginx's: its token."""
    status, _, body = https(
        nginx,
        tls,
        "POST",
        f"/api/e/{CODE}/join",
        headers={"Origin": origin(nginx), "X-Forwarded-For": FORGED, "Content-Length": "0"},
    )
    assert status == 200, body
    return json.loads(body)["token"]


def answer_row(serve, participant: str, question_id: int, timeout: float = TIMEOUT):
    """The participant's Answer row once the writer wrote it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(serve.var_dir / "db.sqlite3", timeout=30) as db:
            row = db.execute(
                "SELECT value FROM polls_answer WHERE question_id = ? AND participant = ?",
                (question_id, participant),
            ).fetchone()
        if row is not None:
            return json.loads(row[0])
        time.sleep(0.1)
    raise AssertionError(f"no Answer row for {participant} within {timeout} s")


# -- the systemd units and the environment file ----------------------------------------------


def installed_units(directory: Path) -> list[Path]:
    """The units as installed from this checkout: the install folder is the checkout."""
    units = []
    for unit in sorted((DEPLOY / "systemd").iterdir()):
        target = directory / unit.name
        target.write_text(unit.read_text().replace(INSTALLED_AT, str(ROOT)))
        units.append(target)
    return units


@pytest.mark.usefixtures("serve")
def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze (Debian's systemd package)")
    units = installed_units(tmp_path)
    assert {unit.name for unit in units} == {
        "zaalpeiling.socket",
        "zaalpeiling-daphne@.service",
        "zaalpeiling-writer.service",
        "zaalpeiling-check-tallies.service",
        "zaalpeiling-check-tallies.timer",
    }
    result = subprocess.run(
        [analyze, "verify", *map(str, units)], capture_output=True, text=True, check=False
    )
    # A misspelt key is only a warning for verify ("Unknown key ..., ignoring"): none at all.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def environment_file() -> dict[str, str]:
    """The example environment file's settings, read as systemd reads EnvironmentFile=."""
    found = {}
    for line in (DEPLOY / "zaalpeiling.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, equals, value = line.partition("=")
            assert equals and re.fullmatch(r"[A-Z_][A-Z0-9_]*", name), line
            found[name] = value
    return found


def test_the_example_environment_names_what_production_requires():
    prod = (ROOT / "config" / "settings" / "prod.py").read_text()
    required = set(re.findall(r'mandatory\("([A-Z_]+)"\)', prod))
    assert required >= {"DJANGO_SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"}
    example = environment_file()
    assert required <= example.keys()
    assert example["ZP_TRUSTED_PROXY_HOPS"] == "1"
    assert example["ZP_LOG_FORMAT"] == "json"
    assert {"PROMETHEUS_MULTIPROC_DIR", "ZP_METRICS_TOKEN"} <= example.keys()
    # No real secret ships: each one is a placeholder to fill in.
    for name in ("DJANGO_SECRET_KEY", "ZP_METRICS_TOKEN"):
        assert example[name].startswith("<") and example[name].endswith(">")
    assert "<password>" in example["DATABASE_URL"]


@pytest.mark.usefixtures("serve")
def test_the_daphne_unit_serves_on_the_descriptor_systemd_passes(tmp_path):
    """The unit's ExecStart as systemd would run it: systemd-socket-activate opens the socket and
    passes it as descriptor 3 (LISTEN_FDS) to the command on the first connection, in an
    environment of the example file's settings alone (filled in): the production settings."""
    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        pytest.skip("systemd-socket-activate (Debian's systemd package)")
    (unit,) = [u for u in installed_units(tmp_path) if u.name == "zaalpeiling-daphne@.service"]
    (start,) = re.findall(r"^ExecStart=(.+)$", unit.read_text(), re.MULTILINE)
    assert " --fd 3 " in start
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    filled = {
        **environment_file(),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "poll.example.org",
        "DATABASE_URL": settings.ZP_TEST_DATABASE_SERVER_URL,
        "REDIS_URL": settings.REDIS_URL,
        "ZP_VAR_DIR": str(tmp_path),
        "ZP_METRICS_TOKEN": secrets.token_urlsafe(32),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    port = free_port()
    log = tmp_path / "daphne.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                activate,
                f"--listen=127.0.0.1:{port}",
                *(f"--setenv={name}={value}" for name, value in filled.items()),
                *shlex.split(start),
            ],
            cwd=ROOT,  # the unit's WorkingDirectory
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not answers(port):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        # That connection started Daphne; requests wait in the socket's queue meanwhile.
        # Production's answers, none of which needs a page or a table: plain http is sent to
        # https, and a host name not in ALLOWED_HOSTS is refused at the join's door.
        headers = {"Host": "poll.example.org"}
        status, response = request(port, "POST", "/api/e/NOPE42/join", headers)
        assert status == 301, log.read_text()
        assert response["Location"] == "https://poll.example.org/api/e/NOPE42/join"
        headers = {"Host": "elsewhere.example", "X-Forwarded-Proto": "https"}
        status, response = request(port, "POST", "/api/e/NOPE42/join", headers)
        assert status == 400 and "Strict-Transport-Security" in response
        assert "Execing" in log.read_text()  # systemd-socket-activate's own line
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def request(
    port: int, method: str, path: str, headers: dict
) -> tuple[int, http.client.HTTPMessage]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=b"", headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, response.headers
    finally:
        connection.close()


@needs(HAPROXY, "haproxy")
def test_the_haproxy_configuration_is_valid(tmp_path, certificate):
    cert, key = certificate
    pem = tmp_path / "poll.example.org.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        filled_in(
            (DEPLOY / "haproxy" / "zaalpeiling.cfg").read_text(),
            {"/etc/haproxy/certs/poll.example.org.pem": str(pem)},
        )
    )
    result = subprocess.run(
        [str(HAPROXY), "-c", "-f", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in (result.stdout + result.stderr).lower(), result.stdout + result.stderr


# -- through nginx ---------------------------------------------------------------------------


def test_plain_http_is_sent_to_https(nginx):
    connection = http.client.HTTPConnection("127.0.0.1", nginx.http_port, timeout=TIMEOUT)
    connection.request("GET", f"/e/{CODE}/", headers={"Host": "poll.example.org"})
    response = connection.getresponse()
    assert response.status == 301
    assert response.headers["Location"] == f"https://poll.example.org/e/{CODE}/"


def test_the_phone_page_and_its_static_files(nginx, tls):
    status, _, page = https(nginx, tls, "GET", f"/e/{CODE}/")
    assert status == 200
    scripts = re.findall(r"/static/(polls/[\w/-]+\.[0-9a-f]{12}\.js)", page.decode())
    assert scripts, page[:500]
    hashed = scripts[0]
    status, headers, body = https(nginx, tls, "GET", f"/static/{hashed}")
    assert status == 200 and body
    # nginx's own answer from the static folder (Daphne's WhiteNoise would say otherwise).
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Type"].startswith("application/javascript")
    assert body == (nginx_static(nginx) / hashed).read_bytes()
    status, headers, _ = https(
        nginx, tls, "GET", f"/static/{hashed}", headers={"Accept-Encoding": "gzip"}
    )
    assert status == 200 and headers["Content-Encoding"] == "gzip"  # collectstatic's .gz
    unhashed = re.sub(r"\.[0-9a-f]{12}\.js$", ".js", hashed)
    status, headers, _ = https(nginx, tls, "GET", f"/static/{unhashed}")
    assert status == 200 and headers["Cache-Control"] == "no-cache"


def nginx_static(nginx) -> Path:
    (root,) = re.findall(r"alias (.+)/;", (nginx.directory / "site.conf").read_text())
    return Path(root)


def test_the_application_sees_the_phones_address_not_the_forged_one(nginx, tls):
    """The participant id carries a keyed tag of the address the join came from (polls.tokens):
    the phone's own, which only X-Forwarded-For told the application; neither nginx's (the
    connection's peer) nor the one the client wrote itself."""
    participant = read_participant_token(join(nginx, tls), CODE).participant_id
    tag = participant.split("-")[1]
    assert tag == address_tag(PHONE_ADDRESS)
    assert tag not in {address_tag("127.0.0.1"), address_tag(FORGED)}


async def test_a_websocket_answer_is_acknowledged_and_written(nginx, tls, serve):
    token = join(nginx, tls)
    participant = read_participant_token(token, CODE).participant_id
    question_id, options = serve.current_question()
    url = f"wss://127.0.0.1:{nginx.https_port}/ws/e/{CODE}/?token={token}"
    async with connect(
        url, origin=origin(nginx), ssl=tls, local_addr=(PHONE_ADDRESS, 0), open_timeout=TIMEOUT
    ) as ws:
        await profile_then_state(lambda: asyncio.wait_for(ws.recv(), TIMEOUT))
        message = {"type": "answer", "id": "w1", "question": question_id, "value": options[0]}
        await ws.send(json.dumps(message))
        ack = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        while ack["type"] == "qa":  # the demo's Q&A list follows the state
            ack = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert ack == {"type": "ack", "id": "w1", "question": question_id, "answer": options[0]}
    assert await asyncio.to_thread(answer_row, serve, participant, question_id) == options[0]


async def test_the_fallback_streams_its_first_event_and_acks_a_post(nginx, tls, serve):
    """The event stream's first state arrives while the stream stays open: nothing between
    Daphne and the phone holds it back until the response ends (it never does)."""
    token = join(nginx, tls)
    participant = read_participant_token(token, CODE).participant_id
    question_id, options = serve.current_question()
    reader, writer = await asyncio.open_connection(
        "127.0.0.1",
        nginx.https_port,
        ssl=tls,
        server_hostname="127.0.0.1",
        local_addr=(PHONE_ADDRESS, 0),
    )
    try:
        writer.write(
            f"GET /api/e/{CODE}/events?token={token} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{nginx.https_port}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head, head
        assert b"transfer-encoding: chunked" in head.lower(), head
        stream = EventStream(reader)
        # The demo's phone hears its profile answers first, then the state.
        await profile_then_state(lambda: asyncio.wait_for(stream.next_data(), TIMEOUT))
        assert not reader.at_eof()  # the stream is still open
        body = json.dumps(
            {"type": "answer", "id": "f1", "question": question_id, "value": options[1]}
        )
        status, _, reply = await asyncio.to_thread(
            https,
            nginx,
            tls,
            "POST",
            f"/api/e/{CODE}/answer?token={token}",
            {"Origin": origin(nginx), "Content-Type": "application/json"},
            body.encode(),
        )
        assert status == 200, reply
        assert json.loads(reply) == {
            "type": "ack",
            "id": "f1",
            "question": question_id,
            "answer": options[1],
        }
        assert not reader.at_eof()
    finally:
        writer.transport.abort()  # as a phone that leaves: nginx ends the stream to Daphne
    assert await asyncio.to_thread(answer_row, serve, participant, question_id) == options[1]


class EventStream:
    """The events of a chunked ``text/event-stream`` response, as they arrive."""

    def __init__(self, reader: asyncio.StreamReader):
        self.reader, self.text = reader, ""

    async def next_data(self) -> str:
        """The ``data:`` of the next event (a comment such as the keepalive is skipped)."""
        while True:
            event, blank, rest = self.text.partition("\n\n")
            if blank:
                self.text = rest
                data = [line[6:] for line in event.splitlines() if line.startswith("data: ")]
                if data:
                    return "\n".join(data)
                continue
            size = int((await self.reader.readline()).strip(), 16)
            assert size, "the stream ended"
            self.text += (await self.reader.readexactly(size + 2))[:-2].decode()


def test_the_minified_static_files_run_in_a_browser(serve, browser):
    """Production serves scripts and style sheets minified (polls/storage.py), which the other
    browser tests (the source files, as the test settings serve them) never run: here the phone
    and the stage run on what serve collected, the phone's answer reaches the stage, and every
    collected module parses and links in Chromium."""
    from playwright.sync_api import expect

    from tests.browser_helpers import answer_profile, new_phone, watch_errors

    serve.wait_started()
    base = f"http://127.0.0.1:{serve.port}"
    _question, options = serve.current_question()
    with sqlite3.connect(serve.var_dir / "db.sqlite3") as db:
        (key,) = db.execute("SELECT stage_key FROM polls_event WHERE code = ?", (CODE,)).fetchone()
        (label,) = db.execute(
            "SELECT label FROM polls_option WHERE id = ?", (options[0],)
        ).fetchone()
    errors: list[str] = []
    stage = browser.new_page(viewport={"width": 1920, "height": 1080})
    watch_errors(stage, errors)
    stage.goto(f"{base}/e/{CODE}/stage/?key={key}")
    expect(stage.locator(".st-prompt")).to_be_visible()
    before = int(stage.locator("#zp-count").inner_text())
    phone = new_phone(browser)
    watch_errors(phone, errors)
    phone.goto(f"{base}/e/{CODE}/")
    assert re.search(r"/static/polls/phone\.[0-9a-f]{12}\.js", phone.content())
    answer_profile(phone)
    phone.get_by_role("button", name=label, exact=True).click()
    expect(phone.locator("#zp-status")).to_contain_text("Answer received")
    expect(stage.locator("#zp-count")).to_have_text(str(before + 1), timeout=TIMEOUT * 1000)
    assert errors == []

    static = serve.var_dir / "staticfiles"
    modules = sorted(
        f"/static/{path.relative_to(static)}"
        for path in static.rglob("*.js")
        if re.search(r"\.[0-9a-f]{12}\.js$", path.name)
    )
    assert len(modules) > 20
    blank = browser.new_page()
    blank.goto(f"{base}/")
    broken = blank.evaluate(
        """async (urls) => {
            const broken = [];
            for (const url of urls) {
                // Importing runs a module, and a page's module finds none of its page here:
                // only a SyntaxError (parsing or linking) is the minifier's.
                try { await import(url); } catch (error) {
                    if (error instanceof SyntaxError) broken.push(`${url}: ${error.message}`);
                }
            }
            return broken;
        }""",
        modules,
    )
    assert broken == []

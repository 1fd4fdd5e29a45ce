"""The several-hosts layout of docs/deployment.md ("Topology"), for real, on one machine: each
host a network namespace (``loadgen.netns``), each part the process a host would run.

- ``data``: Redis over TCP on its own address (a password made for the run, AOF
  ``appendfsync always``) and PostgreSQL (Debian's server, listening on that address only, its
  ``pg_hba.conf`` letting the site's subnet in with a password);
- ``app1`` .. ``appN``: what ``deploy/systemd/`` runs on an app host, here started by
  ``python -m loadgen.hosts app``: Daphne processes sharing one listening socket on port 8000
  and the answer writer, with the production settings (``config.settings.prod``), one shared
  ``DJANGO_SECRET_KEY``, and each host its own ``ZP_VAR_DIR`` (collectstatic's output) and
  metrics folder;
- ``prox``: HAProxy with ``deploy/haproxy/zaalpeiling.cfg`` as shipped, only what an operator
  fills in substituted (the host name, here the proxy's address; the certificate, one made for
  that address; the server lines; the admin socket's path), TLS on 443, every app host a
  server;
- ``hall``: the load test (``manage.py loadtest --url https://<proxy> --ca-file ...``), so every
  phone comes through the proxy from one address, as a hall behind a venue's NAT.

The process that makes the site (a test, the bench) is on the network too and reads Redis and
the database directly. Needs root (``loadgen.netns``).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import pwd
import resource
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import netns
from .certificates import self_signed

ROOT = Path(__file__).resolve().parent.parent
HAPROXY = Path("/usr/sbin/haproxy")
PORT = 8000  # each app host's port, as deploy/systemd/zaalpeiling.socket
DATA, PROXY, HALL = "data", "prox", "hall"
REDIS_PORT, POSTGRES_PORT = 6379, 5432
ROLE = "zaalpeiling"
START_TIMEOUT = 90.0
# A test server: losing it in a power cut loses nothing (as devenv/private_postgres.py).
POSTGRES_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "128MB",
    "unix_socket_directories": "",
    "log_min_messages": "warning",
}


def app_names(count: int) -> list[str]:
    return [f"app{n}" for n in range(1, count + 1)]


def filled_in(text: str, replacements: dict[str, str]) -> str:
    """``text`` with each placeholder replaced, in order; each must be there (else the shipped
    file changed under the test)."""
    for placeholder, value in replacements.items():
        if placeholder not in text:
            raise ValueError(f"{placeholder!r} is no longer in the shipped file")
        text = text.replace(placeholder, value)
    return text


def make_certificate(directory: Path, address: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``address`` (its SAN) and its key, in place of the
    operator's: (the certificate, certificate and key in one PEM for HAProxy)."""
    cert_pem, key_pem = self_signed(address)
    cert_path, pem_path = directory / "cert.pem", directory / "haproxy.pem"
    cert_path.write_bytes(cert_pem)
    pem_path.write_bytes(cert_pem + key_pem)
    pem_path.chmod(0o600)
    return cert_path, pem_path


SHIPPED_MAXCONN = 50000


def haproxy_maxconn(open_files: int) -> int:
    """The shipped ``maxconn``, or what this machine's open-file limit holds: HAProxy needs two
    descriptors per connection (the phone's and the server's) and refuses to start when it
    cannot raise its limit that far. Debian's systemd allows 524,288; some machines (this
    sandbox: 20,000, which not even root may raise) allow less."""
    return min(SHIPPED_MAXCONN, (open_files - 100) // 2)


def haproxy_config(
    servers: dict[str, str], name: str, pem: Path, admin_socket: Path, maxconn: int
) -> str:
    """deploy/haproxy/zaalpeiling.cfg with an operator's fill-ins: ``servers`` (name ->
    address:port), the site's ``name`` (the proxy's address here), the certificate, and the
    global ``maxconn`` for this machine (``haproxy_maxconn``)."""
    shipped = (ROOT / "deploy" / "haproxy" / "zaalpeiling.cfg").read_text()
    lines = "".join(f"    server {host} {address} check\n" for host, address in servers.items())
    return filled_in(
        shipped,
        {
            f"    maxconn {SHIPPED_MAXCONN}\n": f"    maxconn {maxconn}\n",
            "    server app1 10.0.0.11:8000 check\n"
            "    server app2 10.0.0.12:8000 check\n"
            "    server app3 10.0.0.13:8000 check\n": lines,
            "/etc/haproxy/certs/poll.example.org.pem": str(pem),
            "/run/haproxy/admin.sock": str(admin_socket),
            "poll.example.org": name,
        },
    )


def _answers(host: str, port: int, path: str = "/readyz", tls: ssl.SSLContext | None = None):
    """The status of one GET, or None when nothing answered."""
    if tls is None:
        connection = http.client.HTTPConnection(host, port, timeout=5)
    else:
        connection = http.client.HTTPSConnection(host, port, timeout=5, context=tls)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


@dataclass
class Site:
    """The hosts, their processes, what they share. ``start`` makes it all, ``stop`` removes
    it all (also after a failure half-way)."""

    directory: Path
    apps: int = 2
    processes: int = 2  # Daphne processes per app host
    settings: str = "config.settings.prod"
    extra_env: dict = field(default_factory=dict)  # every process's, e.g. a tuning variable
    network: netns.Network | None = None
    processes_by_host: dict[str, list[subprocess.Popen]] = field(default_factory=dict)
    postgres_directory: Path | None = None
    gone: set[str] = field(default_factory=set)  # app hosts killed or cut off
    question_before: int | None = None
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(50))
    redis_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    database_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    # -- where things are --------------------------------------------------------------------

    @property
    def app_hosts(self) -> list[str]:
        return app_names(self.apps)

    def address(self, host: str) -> str:
        return self.network[host].address

    @property
    def proxy_url(self) -> str:
        return f"https://{self.address(PROXY)}"

    @property
    def ca_file(self) -> Path:
        return self.directory / "cert.pem"

    @property
    def redis_url(self) -> str:
        return f"redis://:{self.redis_password}@{self.address(DATA)}:{REDIS_PORT}/0"

    @property
    def database_url(self) -> str:
        data = self.address(DATA)
        return f"postgres://{ROLE}:{self.database_password}@{data}:{POSTGRES_PORT}/{ROLE}"

    def env(self, host: str) -> dict:
        """What every process of ``host`` runs with: the environment file of
        deploy/zaalpeiling.env.example, filled in. The same key, database and Redis on every
        host; its own ZP_VAR_DIR and metrics folder."""
        var = self.directory / host
        metrics = var / "metrics"
        metrics.mkdir(parents=True, exist_ok=True)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": self.settings,
            "DJANGO_SECRET_KEY": self.secret_key,
            "ALLOWED_HOSTS": self.address(PROXY),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "ZP_VAR_DIR": str(var),
            "ZP_TRUSTED_PROXY_HOPS": "1",
            "ZP_LOG_FORMAT": "text",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics),
            **self.extra_env,
        }

    def log(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    def log_text(self, *names: str, tail: int = 4000) -> str:
        names = names or tuple(path.stem for path in sorted(self.directory.glob("*.log")))
        parts = []
        for name in names:
            path = self.log(name)
            if path.exists():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)

    # -- starting ----------------------------------------------------------------------------

    def start(self) -> Site:
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self.network = netns.Network.make([DATA, *self.app_hosts, PROXY, HALL])
            make_certificate(self.directory, self.address(PROXY))
            self._start_redis()
            self._start_postgres()
            self._wait_for_data_host()
            self._prepare_database_and_static_files()
            for host in self.app_hosts:
                self._start_app_host(host)
            for host in self.app_hosts:
                self._wait_app_host(host)
            self._start_haproxy()
        except BaseException:
            self.stop()
            raise
        return self

    def popen(self, host: str, name: str, command: list[str], **kwargs) -> subprocess.Popen:
        """``command`` inside ``host``, its output in ``<name>.log``."""
        with self.log(name).open("ab") as output:
            process = subprocess.Popen(
                self.network[host].command(*command),
                cwd=kwargs.pop("cwd", ROOT),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kwargs,
            )
        self.processes_by_host.setdefault(host, []).append(process)
        return process

    def run(self, host: str, name: str, command: list[str], timeout: float = 300) -> None:
        process = self.popen(host, name, command, env=self.env(host))
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise RuntimeError(f"{name} did not finish in {timeout:.0f} s") from None
        if code:
            raise RuntimeError(f"{name} exited {code}:\n{self.log_text(name)}")

    def _start_redis(self) -> None:
        from devenv.private_redis import redis_server_binary

        directory = self.directory / "redis"
        directory.mkdir()
        self.popen(
            DATA,
            "redis",
            [
                redis_server_binary(),
                "--bind",
                self.address(DATA),
                "--port",
                str(REDIS_PORT),
                "--requirepass",
                self.redis_password,
                "--dir",
                str(directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--maxclients",
                "20000",
            ],
        )

    def _start_postgres(self) -> None:
        from devenv.private_postgres import initdb_command, server_binaries

        binaries = server_binaries()
        if binaries is None:
            raise RuntimeError("PostgreSQL's server is missing (Debian's postgresql package)")
        user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        # Under the system's temporary folder, which the server's user can reach (a test's
        # folder may sit below one private to root).
        directory = Path(tempfile.mkdtemp(prefix="zp-hosts-postgres-"))
        self.postgres_directory = directory
        data = directory / "data"
        password_file = directory / "password"
        password_file.write_text(self.database_password)
        if user is not None:
            for path in (directory, password_file):
                os.chown(path, user.pw_uid, user.pw_gid)
        # PostgreSQL refuses to run as root: as the package's user, like Debian's service.
        as_user = ["runuser", "-u", user.pw_name, "--"] if user is not None else []
        result = subprocess.run(
            [*as_user, *initdb_command(binaries, data, password_file)],
            cwd=directory,
            capture_output=True,
            text=True,
            check=False,
        )
        password_file.unlink()
        if result.returncode:
            raise RuntimeError(f"initdb failed: {result.stderr}")
        # initdb lets in loopback only; the app hosts connect over the site's network.
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.network.subnet} scram-sha-256\n")
        options = [f"-c{name}={value}" for name, value in POSTGRES_SETTINGS.items()]
        self.popen(
            DATA,
            "postgres",
            [
                *as_user,
                str(binaries / "postgres"),
                "-D",
                str(data),
                "-p",
                str(POSTGRES_PORT),
                f"-clisten_addresses={self.address(DATA)}",
                *options,
            ],
            cwd=directory,
        )

    def _wait_for_data_host(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT
        admin_url = self.database_url.rsplit("/", 1)[0] + "/postgres"
        while True:
            for process in self.processes_by_host[DATA]:
                if process.poll() is not None:
                    logs = self.log_text("redis", "postgres")
                    raise RuntimeError(f"the data host's servers stopped:\n{logs}")
            try:
                with socket.create_connection((self.address(DATA), REDIS_PORT), timeout=1):
                    pass
                with psycopg.connect(admin_url, autocommit=True, connect_timeout=2) as admin:
                    admin.execute(f'CREATE DATABASE "{ROLE}"')
                return
            except (OSError, psycopg.OperationalError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the data host did not come up:\n{self.log_text('redis', 'postgres')}"
                    ) from None
                time.sleep(0.1)

    def _prepare_database_and_static_files(self) -> None:
        """migrate once (from the first app host, over the network), collectstatic on every
        app host into its own folder, as docs/deployment.md has each host do; at once."""
        first = self.app_hosts[0]
        started = [
            (
                "migrate",
                self.popen(
                    first,
                    "migrate",
                    [sys.executable, "manage.py", "migrate", "--noinput"],
                    env=self.env(first),
                ),
            )
        ]
        for host in self.app_hosts:
            name = f"{host}-collectstatic"
            command = [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"]
            started.append((name, self.popen(host, name, command, env=self.env(host))))
        for name, process in started:
            if process.wait(timeout=300):
                raise RuntimeError(f"{name} failed:\n{self.log_text(name)}")

    def _start_app_host(self, host: str) -> None:
        self.popen(
            host,
            host,
            [
                sys.executable,
                "-m",
                "loadgen.hosts",
                "app",
                "--processes",
                str(self.processes),
                "--consumer",
                f"writer-{host}",
            ],
            env=self.env(host),
        )

    def _wait_app_host(self, host: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while _answers(self.address(host), PORT) != 200:
            launcher = self.processes_by_host[host][-1]
            if launcher.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"app host {host} did not start:\n{self.log_text(host)}")
            time.sleep(0.2)

    def _start_haproxy(self) -> None:
        if not HAPROXY.exists():
            raise RuntimeError("Debian's haproxy is missing (python3 dev.py test installs it)")
        config = self.directory / "haproxy.cfg"
        config.write_text(
            haproxy_config(
                {host: f"{self.address(host)}:{PORT}" for host in self.app_hosts},
                self.address(PROXY),
                self.directory / "haproxy.pem",
                self.directory / "haproxy.sock",
                haproxy_maxconn(resource.getrlimit(resource.RLIMIT_NOFILE)[1]),
            )
        )
        checked = subprocess.run(
            [str(HAPROXY), "-c", "-f", str(config)], capture_output=True, text=True, check=False
        )
        if checked.returncode:
            raise RuntimeError(f"haproxy -c:\n{checked.stdout}{checked.stderr}")
        # -db: in the foreground, as this process's child (systemd's unit runs it so too).
        process = self.popen(PROXY, "haproxy", [str(HAPROXY), "-db", "-f", str(config)])
        tls = ssl.create_default_context(cafile=str(self.ca_file))
        deadline = time.monotonic() + START_TIMEOUT
        while _answers(self.address(PROXY), 443, tls=tls) != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"HAProxy did not start:\n{self.log_text('haproxy')}")
            time.sleep(0.1)

    # -- the hall ----------------------------------------------------------------------------

    def loadtest(self, *args: str, report: Path | None = None) -> subprocess.Popen:
        """``manage.py loadtest`` in the hall, through the proxy, phones that reconnect."""
        self.question_before = self.current_question("DRUKTEST")
        command = [
            sys.executable,
            "manage.py",
            "loadtest",
            "--url",
            self.proxy_url,
            "--ca-file",
            str(self.ca_file),
            "--reconnect",
            "--no-progress",
            "--server-pids",
            ",".join(str(pid) for pids in self.pids_by_role().values() for pid in pids),
            *(["--report", str(report)] if report else []),
            *args,
        ]
        return self.popen(HALL, "loadtest", command, env=self.env(HALL))

    # -- taking a host away ------------------------------------------------------------------

    def kill(self, host: str) -> list[int]:
        """Every process of the host SIGKILLed at once (a power cut)."""
        self.gone.add(host)
        return self.network.kill(host)

    def cut(self, host: str) -> None:
        """The host's cable pulled at the switch: its processes run on, unheard."""
        self.gone.add(host)
        self.network.cut(host)

    def take_away_mid_burst(
        self, host: str, how: str, loadtest: subprocess.Popen, counted: int, timeout: float = 150
    ) -> bool:
        """Once ``counted`` answers of the load test's question are in the tally (read from
        Redis), take ``host`` away (``how``: "kill" or "cut"). False if the load test ended or
        the time ran out first."""
        import redis

        client = redis.Redis.from_url(self.redis_url)
        before = self.question_before  # an earlier run's, until the load test makes its own
        deadline = time.monotonic() + timeout
        try:
            while loadtest.poll() is None and time.monotonic() < deadline:
                question = self.current_question("DRUKTEST")
                if question is not None and question != before:
                    total = client.hget(f"zp:{{q:{question}}}:meta", "total")
                    if int(total or 0) >= counted:
                        (self.kill if how == "kill" else self.cut)(host)
                        return True
                time.sleep(0.1)
        finally:
            client.close()
        return False

    def current_question(self, code: str) -> int | None:
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as db:
            row = db.execute(
                "SELECT current_question_id FROM polls_event WHERE code = %s", (code,)
            ).fetchone()
        return row[0] if row else None

    def pids_by_role(self) -> dict[str, list[int]]:
        """The servers' processes by what they run (the bench's figures group them so)."""
        roles: dict[str, list[int]] = {
            "daphne": [],
            "writer": [],
            "redis": [],
            "postgres": [],
            "proxy": [],
        }
        for host in [*self.app_hosts, DATA, PROXY]:
            for pid in netns.pids_in(self.network[host].namespace):
                try:
                    command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                words = [word.decode(errors="replace") for word in command]
                if "polls.server" in words:
                    roles["daphne"].append(pid)
                elif "drain_answers" in words:
                    roles["writer"].append(pid)
                elif words and "redis-server" in words[0]:  # its title replaces its argv
                    roles["redis"].append(pid)
                elif words and Path(words[0]).name == "postgres":
                    roles["postgres"].append(pid)
                elif words and Path(words[0]).name == "haproxy":
                    roles["proxy"].append(pid)
        return roles

    def bring_back(self, host: str) -> None:
        """A machine in the place of one taken away: whatever still ran there stopped, the
        cable back in, its units started again (its writer, under the same name, first writes
        what its predecessor had read)."""
        self.network.kill(host)
        self.network.mend(host)
        self._start_app_host(host)
        self._wait_app_host(host)
        self.gone.discard(host)

    # -- stopping ----------------------------------------------------------------------------

    def stop(self) -> None:
        """From the hall inwards, as an operator would: the load, the proxy, the app hosts
        (their writers finish what they hold while Redis and the database still answer), the
        data host; then the network, with whatever still runs in it."""
        order = [HALL, PROXY, *self.app_hosts, DATA]
        order += [host for host in self.processes_by_host if host not in order]
        processes = [p for host in order for p in self.processes_by_host.get(host, [])]
        for host in order:
            group = [p for p in self.processes_by_host.get(host, []) if p.poll() is None]
            for process in group:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + 5  # then SIGKILL, with the namespaces
            for process in group:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
        if self.network is not None:
            self.network.remove()  # SIGKILLs whatever is left in a namespace
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        if self.postgres_directory is not None:
            shutil.rmtree(self.postgres_directory, ignore_errors=True)


# -- one app host's units, run by ``python -m loadgen.hosts app`` inside its namespace -----------


def serve_app_host(processes: int, consumer: str) -> int:
    """What deploy/systemd/ starts on an app host: ``processes`` Daphne processes on one socket
    (port 8000, every address of the host), never --proxy-headers, no access log, and the answer
    writer. No supervisor: a part that dies ends the host (the caller sees it)."""
    from devenv.daphne import accepting, listening_socket, start_daphnes

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    sock = listening_socket("0.0.0.0", PORT)  # noqa: S104 - the host's own namespace
    children = start_daphnes(
        sock, processes, dict(os.environ), extra=("--verbosity", "0"), python=sys.executable
    )
    children.append(
        subprocess.Popen(
            [sys.executable, "manage.py", "drain_answers", "--consumer", consumer], cwd=ROOT
        )
    )
    try:
        # As devenv.daphne.wait_serving, asking /readyz (answered for any Host) rather than a
        # page, which production's ALLOWED_HOSTS refuses for 127.0.0.1 with a logged error.
        inode = os.fstat(sock.fileno()).st_ino
        deadline = time.monotonic() + START_TIMEOUT
        while not (
            all(accepting(child.pid, inode) for child in children[:-1])
            and _answers("127.0.0.1", PORT) is not None
        ):
            if time.monotonic() > deadline or any(c.poll() is not None for c in children):
                print("the Daphne processes did not start", flush=True)
                stopping.append(True)
                break
            time.sleep(0.1)
    finally:
        sock.close()
    code = 1 if stopping else 0
    if not stopping:
        print(f"serving on :{PORT}: {processes} Daphne process(es) and {consumer}", flush=True)
    while not stopping:
        dead = [child for child in children if child.poll() is not None]
        if dead:
            print(f"process {dead[0].pid} exited {dead[0].returncode}", flush=True)
            code = 1
            break
        time.sleep(0.2)
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadgen.hosts")
    commands = parser.add_subparsers(dest="command", required=True)
    app = commands.add_parser("app", help="one app host's processes (inside its namespace)")
    app.add_argument("--processes", type=int, default=2)
    app.add_argument("--consumer", required=True)
    args = parser.parse_args(argv)
    return serve_app_host(args.processes, args.consumer)


if __name__ == "__main__":
    sys.exit(main())

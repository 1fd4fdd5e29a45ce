"""Debian's nginx with the shipped site (deploy/nginx/zaalpeiling.conf) in front of the bench's
servers: the production layout, where nginx serves /static/ and Daphne sees only the page, the
join and the socket.

The site is used as shipped with what an operator fills in substituted, except one thing: it
listens in plain HTTP where the shipped site listens with TLS, because the load generator speaks
no TLS (and TLS would measure the generator's handshakes, not the layout). The certificate lines
stay, pointing at a throwaway self-signed pair, so the site file parses as it ships.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import time
from pathlib import Path

from .certificates import self_signed

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "nginx" / "zaalpeiling.conf"
NGINX = Path("/usr/sbin/nginx")
START_TIMEOUT = 30.0


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _throwaway_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    cert_pem, key_pem = self_signed("127.0.0.1")
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    return cert, key


def site_text(
    host: str,
    port: int,
    redirect_port: int,
    upstream_port: int,
    static_root: Path,
    cert: Path,
    key: str | Path,
    logs: Path,
) -> str:
    text = SITE.read_text()
    for placeholder, value in {
        "listen 443 ssl http2;": f"listen {host}:{port};",
        "listen [::]:443 ssl http2;": "",
        "listen 80;": f"listen {host}:{redirect_port};",
        "listen [::]:80;": "",
        "server 127.0.0.1:8000;": f"server {host}:{upstream_port};",
        "/var/lib/zaalpeiling/staticfiles/": f"{static_root}/",
        "/etc/letsencrypt/live/poll.example.org/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/poll.example.org/privkey.pem": str(key),
        "/var/log/nginx/": f"{logs}/",
    }.items():
        if placeholder not in text:
            raise RuntimeError(f"{SITE} no longer has {placeholder!r}: update loadgen/proxy.py")
        text = text.replace(placeholder, value)
    return text


class Nginx:
    """One nginx (one worker, as a small machine would run it) in ``directory``."""

    def __init__(self, directory: Path, host: str, upstream_port: int, static_root: Path):
        if not NGINX.exists():
            raise RuntimeError("no /usr/sbin/nginx (python3 dev.py test installs Debian's nginx)")
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = free_port(host)
        cert, key = _throwaway_certificate(directory)
        site = site_text(
            host, self.port, free_port(host), upstream_port, static_root, cert, key, directory
        )
        (directory / "site.conf").write_text(site)
        temp_paths = "".join(
            f"    {kind}_temp_path {directory}/{kind}_temp;\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # As root, nginx would run its worker as "nobody", who may not read the bench's folders.
        user = "user root;\n" if os.geteuid() == 0 else ""
        # deploy/nginx/zaalpeiling.conf asks /etc/nginx/nginx.conf for 65536 files and 32768
        # connections; here as many as this machine allows (a proxied phone holds two).
        files = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        files = min(65536, files) if files != resource.RLIM_INFINITY else 65536
        (directory / "nginx.conf").write_text(
            f"daemon off;\n{user}worker_processes 1;\nworker_rlimit_nofile {files};\n"
            f"pid {directory}/nginx.pid;\nerror_log {directory}/error.log warn;\n"
            f"events {{ worker_connections {min(32768, files - 64)}; }}\n"
            "http {\n    include /etc/nginx/mime.types;\n"
            "    default_type application/octet-stream;\n    access_log off;\n"
            f"{temp_paths}    include {directory}/site.conf;\n}}\n"
        )
        command = [str(NGINX), "-p", str(directory), "-c", str(directory / "nginx.conf")]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        if checked.returncode:
            raise RuntimeError(f"nginx -t: {checked.stderr.strip()}")
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=(directory / "stderr.log").open("wb"),
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                socket.create_connection((host, self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start; see {directory}") from None
                time.sleep(0.05)

    @property
    def pids(self) -> list[int]:
        """The master and its worker: both count as server CPU."""
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        return [pid, *map(int, children)]

    def stop(self) -> None:
        self.process.terminate()  # nginx's fast stop; the graceful one waits for open sockets
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

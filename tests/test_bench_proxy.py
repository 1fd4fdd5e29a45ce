"""The bench's production layout (``python -m loadgen.bench --proxy nginx``): Debian's nginx
with the shipped site in front, serving /static/ itself and passing the rest on, with what the
phone sent kept (Host, the forwarded address)."""

from __future__ import annotations

import http.client
import http.server
import threading

import pytest

from loadgen.proxy import NGINX, Nginx

pytestmark = pytest.mark.skipif(
    not NGINX.exists(), reason="Debian's nginx (python3 dev.py test installs it)"
)
HOST = "127.0.0.1"
HASHED = "phone.0123456789ab.js"


class Upstream(http.server.BaseHTTPRequestHandler):
    """Stands where Daphne would: says what it was asked and with which forwarding headers."""

    def do_GET(self):
        body = f"{self.path} {self.headers['Host']} {self.headers['X-Forwarded-For']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def nginx(tmp_path):
    upstream = http.server.ThreadingHTTPServer((HOST, 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    static = tmp_path / "staticfiles"
    (static / "polls").mkdir(parents=True)
    (static / "polls" / HASHED).write_text("export const served = 'by nginx';\n")
    proxy = Nginx(tmp_path / "nginx", HOST, upstream.server_address[1], static)
    yield proxy
    proxy.stop()
    upstream.shutdown()


def get(port: int, path: str) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_static_files_come_from_nginx_and_the_rest_from_upstream(nginx):
    status, headers, body = get(nginx.port, f"/static/polls/{HASHED}")
    assert (status, body) == (200, b"export const served = 'by nginx';\n")
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"

    status, _, body = get(nginx.port, "/e/KSF2018/")
    assert status == 200
    path, host, forwarded = body.decode().split()
    assert (path, host, forwarded) == ("/e/KSF2018/", f"{HOST}:{nginx.port}", HOST)


def test_its_worker_counts_as_server_cpu(nginx):
    assert len(nginx.pids) == 2  # master and one worker

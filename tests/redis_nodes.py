"""A Redis primary, its replica and three sentinels as real processes on loopback TCP ports,
for the failover tests (tests/test_sentinel.py).

The replica reaches its primary through ``ReplicationLink``, a forwarder in the test process
that can hold the replication stream: on loopback the stream is in the replica's kernel buffer
before the primary even answers its client, so a ``kill -9`` alone almost never catches an
acknowledged write that the replica lacks. A held link is the lag a real network and a busy
replica have, made on purpose: what the primary writes meanwhile reaches the replica only if
the link is let go, and is lost with the primary if the link is cut instead.
"""

from __future__ import annotations

import contextlib
import selectors
import signal
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from devenv.private_redis import redis_server_binary
from devenv.processes import stop, stop_all
from tests.servers import free_port

SERVICE = "zaalpeiling"
HOST = "127.0.0.1"
# Fast enough for a test: a primary silent for 1 s is down.
DOWN_AFTER_MS = 1000
# Long on purpose: a sentinel "fixes" a replica that replicates from another address than the
# primary's (the ReplicationLink's) once it has been so for failover-timeout, which would take
# the link out of the path mid-test. A failover here takes a second or two whatever this is.
FAILOVER_TIMEOUT_MS = 120_000


def wait_until(predicate, seconds: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            found = predicate()
            if found:
                return found
        time.sleep(interval)
    raise TimeoutError(f"{what} within {seconds} s")


@dataclass
class RedisNode:
    """One redis-server on ``port``: appendonly, fsync always, as production is told to run."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def client(self, **options) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, socket_timeout=5, **options)

    def start(self, replica_of: int | None = None) -> RedisNode:
        self.directory.mkdir(parents=True, exist_ok=True)
        # A second start of the node (the old primary back) begins empty: a kill -9 leaves an
        # AOF that a full sync from the new primary replaces anyway.
        for stale in self.directory.glob("appendonly*"):
            stale.unlink()
        command = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        if replica_of is not None:
            command += ["--replicaof", HOST, str(replica_of)]
        self.process = subprocess.Popen(command, cwd=self.directory)
        wait_until(lambda: self.client().ping(), 10, f"redis-server on port {self.port} answering")
        return self

    def kill(self) -> None:
        """``kill -9``: no shutdown, no last write to anyone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def role(self) -> str:
        return self.client().info("replication")["role"]

    def replica_in_sync(self) -> bool:
        info = self.client().info("replication")
        return info["role"] == "slave" and info.get("master_link_status") == "up"

    def replicating_from(self) -> int | None:
        """The port this replica's primary has (from its own view), None if it is none's."""
        info = self.client().info("replication")
        return int(info["master_port"]) if info["role"] == "slave" else None


class ReplicationLink:
    """A TCP forwarder between a replica and its primary that the test can hold or cut.

    ``hold()``: nothing more goes from the primary to the replica (it stays in this process's
    socket buffers); the replica's acknowledgements still reach the primary, which therefore
    knows the replica is behind. ``cut()``: every connection closed, what was held dropped, and
    no new connection accepted (the replica's reconnects are refused).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.listener.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.held = threading.Event()
        self.holding = threading.Event()  # the forwarder has stopped reading the primary
        self.stopping = threading.Event()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.thread = threading.Thread(target=self._run, name="replication-link", daemon=True)
        self.thread.start()

    def hold(self) -> None:
        """Returns once nothing more is forwarded to the replica: a write made after this call
        stays with the primary."""
        self.held.set()
        if not self.holding.wait(timeout=5):
            raise TimeoutError("the replication link did not stop forwarding")

    def cut(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        upstream_registered: set[socket.socket] = set()
        try:
            while not self.stopping.is_set():
                if self.held.is_set():
                    for _down, up in self.pairs:
                        if up in upstream_registered:
                            self.selector.unregister(up)
                            upstream_registered.discard(up)
                    self.holding.set()
                for key, _events in self.selector.select(timeout=0.05):
                    if key.data is None:
                        self._accept(upstream_registered)
                        continue
                    source, target = key.fileobj, key.data
                    try:
                        chunk = source.recv(65536)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        self._close_pair(source, upstream_registered)
                        continue
                    with contextlib.suppress(OSError):
                        target.sendall(chunk)
        finally:
            for down, up in self.pairs:
                for end in (down, up):
                    # RST, not FIN: the held bytes are dropped, not delivered on close.
                    with contextlib.suppress(OSError):
                        end.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    end.close()
            self.listener.close()
            self.selector.close()

    def _accept(self, upstream_registered: set) -> None:
        down, _address = self.listener.accept()
        try:
            up = socket.create_connection((HOST, self.upstream_port), timeout=2)
        except OSError:
            down.close()
            return
        for end in (down, up):
            end.setblocking(True)
            end.settimeout(2)
        self.pairs.append((down, up))
        self.selector.register(down, selectors.EVENT_READ, up)
        if not self.held.is_set():
            self.selector.register(up, selectors.EVENT_READ, down)
            upstream_registered.add(up)

    def _close_pair(self, source: socket.socket, upstream_registered: set) -> None:
        for pair in list(self.pairs):
            if source in pair:
                self.pairs.remove(pair)
                for end in pair:
                    with contextlib.suppress(KeyError, ValueError):
                        self.selector.unregister(end)
                    upstream_registered.discard(end)
                    end.close()


@dataclass
class SentinelNode:
    directory: Path
    monitored_port: int
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, socket_timeout=2, decode_responses=True)

    def start(self) -> SentinelNode:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "sentinel.conf"  # a sentinel rewrites its own file
        config.write_text(
            f"port {self.port}\n"
            f"bind {HOST}\n"
            f"dir {self.directory}\n"
            f"logfile {self.directory / 'sentinel.log'}\n"
            f"sentinel monitor {SERVICE} {HOST} {self.monitored_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        self.process = subprocess.Popen(
            [redis_server_binary(), str(config), "--sentinel"], cwd=self.directory
        )
        wait_until(lambda: self.client().ping(), 10, f"sentinel on port {self.port} answering")
        return self

    def primary_port(self) -> int:
        _host, port = self.client().sentinel_get_master_addr_by_name(SERVICE)
        return int(port)


@dataclass
class RedisGroup:
    """A primary, a replica (through a ReplicationLink) and three sentinels, quorum 2."""

    primary: RedisNode
    replica: RedisNode
    link: ReplicationLink
    sentinels: list[SentinelNode]

    @classmethod
    def start(cls, directory: Path) -> RedisGroup:
        primary = RedisNode(directory / "a").start()
        link = ReplicationLink(primary.port)
        replica = RedisNode(directory / "b").start(replica_of=link.port)
        group = cls(primary, replica, link, [])
        try:
            wait_until(replica.replica_in_sync, 10, "the replica in sync")
            group.sentinels = [
                SentinelNode(directory / f"sentinel-{n}", primary.port).start() for n in range(3)
            ]
            # Each sentinel knows the replica (from the primary's INFO) and its two peers
            # (their hello messages, every 2 s): only then can two of them agree on a failover.
            for sentinel in group.sentinels:
                client = sentinel.client()
                wait_until(
                    lambda c=client: (
                        len(c.sentinel_slaves(SERVICE)) == 1
                        and len(c.sentinel_sentinels(SERVICE)) == 2
                    ),
                    15,
                    "every sentinel knowing the replica and both other sentinels",
                    interval=0.2,
                )
        except BaseException:
            group.stop()
            raise
        return group

    @property
    def sentinels_env(self) -> str:
        """``REDIS_SENTINELS`` for this group."""
        return ",".join(f"{HOST}:{sentinel.port}" for sentinel in self.sentinels)

    def wait_for_failover(self, old_port: int, seconds: float = 20) -> RedisNode:
        """The node every sentinel names primary once it is not ``old_port`` any more and it
        says so itself (role master)."""
        nodes = {node.port: node for node in (self.primary, self.replica)}

        def promoted():
            ports = {sentinel.primary_port() for sentinel in self.sentinels}
            if len(ports) == 1 and old_port not in ports:
                node = nodes[ports.pop()]
                return node if node.role() == "master" else None
            return None

        return wait_until(promoted, seconds, "a failover to the replica", interval=0.1)

    def stop(self) -> None:
        stop_all([s.process for s in self.sentinels if s.process is not None], timeout=5)
        self.link.cut()
        for node in (self.primary, self.replica):
            stop(node.process, timeout=5)

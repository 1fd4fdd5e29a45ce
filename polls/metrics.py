"""Prometheus metrics: what the server processes and the answer writer count, and the text a
scrape of ``/metrics`` gets. The one module that uses ``prometheus_client``.

**Protection: a token, not a port of its own.** ``/metrics`` answers only a request with
``Authorization: Bearer <ZP_METRICS_TOKEN>`` (compared in constant time); any other gets 401.
With ``ZP_METRICS_TOKEN`` unset the URL does not exist (404, Django's own): nothing is exposed by
default. A port of its own would need a listener per Daphne process (they share one socket), and
a scraper on the venue's network could still reach it; a token works through the proxy as well.

**Several processes, one folder.** ``dev.py serve`` and the systemd units run several Daphne
processes on one listening socket, so a scrape reaches one of them at random; the writer
(``manage.py drain_answers``) is another process. With ``PROMETHEUS_MULTIPROC_DIR`` set (before
the process starts; ``serve`` sets it to ``var/metrics``, emptied at start) every process writes
its figures to its own files there and a scrape of any process returns the host's: counters and
histograms summed over the processes (the dead ones' too: a total survives a restart), gauges by
their mode. Live gauges of a process that died are dropped when a process starts and at every
scrape (``mark_process_dead`` for each pid in the folder that no longer runs), so the folder is
one host's, in one pid namespace. Without the variable each process counts for itself alone.

**Metrics** (all ``zaalpeiling_``; no label takes a value from a client, so series stay few):

- ``phones_connected`` (gauge, summed over the host's live processes): phones' open lines
  (sockets and event streams) that joined their event; ``phones_connected_here`` the same per
  process (label ``pid``).
- ``stage_screens_connected``, ``stage_screens_connected_here``: the same for stage screens.
- ``answers_acknowledged_total`` (counter): answers counted and acknowledged (an ``ack``).
- ``answers_refused_total{code}`` (counter): frames answered with an ``error``, by its stable
  code (docs/protocol.md): answers mostly, a ping past its budget or a bad frame too.
- ``ack_seconds`` (histogram, 1 ms .. 5 s): an answer frame's arrival to its ``ack``, including a
  new token's warm-up hold (``ZP_ANSWER_WARMUP_SECONDS``).
- ``snapshots_pushed_total`` (counter): result snapshots sent to phones and screens (one per
  line per snapshot).
- ``host_actions_total{action}`` (counter): remote-control actions done (``next``, ``open`` ...),
  counted in the process that did them (a server, or ``manage.py host_action``).
- ``writer_lag`` (gauge): answers in the Redis answer logs not yet written to the database, read
  from Redis at scrape time; ``writer_pending`` of those, the ones a writer has read and not yet
  committed. Absent while Redis does not answer. Redis is shared by every host: take the max.
- ``writer_batch_seconds`` (histogram): one writer batch, from its database write to its
  acknowledgement in Redis.
- ``join_refusals_total{reason}`` (counter): joins answered with an error code
  (``work_required``: the join guard asked for a proof of work; ``unknown_event`` ...).
- ``connections_refused_total{limit}`` (counter): lines refused by the per-process caps
  (``participant``, ``address``; polls.connlimits).

Lines are counted as they join the process's event hub (polls.delivery); the comparison mode
``ZP_FANOUT=group``, whose sockets skip the hub, leaves the two line gauges at 0.

The counting calls are on the answer path: a counter increment and a histogram observation per
acknowledged answer, three writes to this process's mapped file in multiprocess mode (measured
at 7-10 us per answer, 3 us without the folder, on a busy 2-core machine, against some 350 us
of server time per answer at the 2,900 answers/s of one process in docs/performance.md).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import hmac
import os
import re

import redis
from django.conf import settings
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from redis.exceptions import RedisError

from . import protocol, redis_client, tally

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
FOLDER = os.environ.get(MULTIPROCESS_VARIABLE, "")
if FOLDER:
    # prometheus_client opens its files there at the first metric and fails without it.
    os.makedirs(FOLDER, exist_ok=True)

# This process's metrics (never the default registry: in multiprocess mode a scrape reads the
# folder, and a registry holding these as well would export them twice).
_registry = CollectorRegistry()

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOIN_REFUSAL_REASONS = (
    "unknown_event",
    "bad_json",
    "work_required",
    "attendee_code",
    "bad_request",
    "server",
)
CONNECTION_LIMITS = ("participant", "address")


class _LineGauges:
    """The host's total (live processes only) and each live process's own figure, made at the
    first line: a process that serves none (the writer, a command) shows no ``pid`` of 0."""

    def __init__(self, name: str, what: str) -> None:
        self.name = name
        self.what = what
        self.gauges: tuple[Gauge, Gauge] | None = None

    def inc(self, delta: int) -> None:
        if self.gauges is None:
            self.gauges = (
                Gauge(
                    f"zaalpeiling_{self.name}",
                    f"{self.what}, all server processes",
                    registry=_registry,
                    multiprocess_mode="livesum",
                ),
                Gauge(
                    f"zaalpeiling_{self.name}_here",
                    f"{self.what}, per server process",
                    registry=_registry,
                    multiprocess_mode="liveall",
                ),
            )
        for gauge in self.gauges:
            gauge.inc(delta)


_phones = _LineGauges("phones_connected", "Phones' open lines that joined")
_screens = _LineGauges("stage_screens_connected", "Stage screens' open lines")
_acknowledged = Counter(
    "zaalpeiling_answers_acknowledged", "Answers counted and acknowledged", registry=_registry
)
_refused = Counter(
    "zaalpeiling_answers_refused",
    "Frames answered with an error, by its code",
    ["code"],
    registry=_registry,
)
_ack_seconds = Histogram(
    "zaalpeiling_ack_seconds",
    "From an answer frame's arrival to its ack",
    buckets=LATENCY_BUCKETS,
    registry=_registry,
)
_snapshots = Counter(
    "zaalpeiling_snapshots_pushed", "Result snapshots sent to lines", registry=_registry
)
_host_actions = Counter(
    "zaalpeiling_host_actions", "Remote-control actions done", ["action"], registry=_registry
)
_batch_seconds = Histogram(
    "zaalpeiling_writer_batch_seconds",
    "One writer batch: database write and acknowledgement",
    buckets=BATCH_BUCKETS,
    registry=_registry,
)
_join_refusals = Counter(
    "zaalpeiling_join_refusals", "Joins answered with an error", ["reason"], registry=_registry
)
_connections_refused = Counter(
    "zaalpeiling_connections_refused",
    "Lines refused by the per-process connection caps",
    ["limit"],
    registry=_registry,
)

# Children made once: a label lookup per answer is a lock and a dict probe saved, and every
# code shows (at 0) before its first refusal.
_refused_by_code = {code: _refused.labels(code) for code in protocol.ERROR_CODES}
_join_refused_by_reason = {reason: _join_refusals.labels(reason) for reason in JOIN_REFUSAL_REASONS}
_connections_refused_by_limit = {
    limit: _connections_refused.labels(limit) for limit in CONNECTION_LIMITS
}


# -- counting --------------------------------------------------------------------------------


def line_joined(is_phone: bool, delta: int = 1) -> None:
    """A phone's or screen's line joined its event's hub (``delta`` -1: it left)."""
    (_phones if is_phone else _screens).inc(delta)


def answer_acknowledged(seconds: float) -> None:
    _acknowledged.inc()
    _ack_seconds.observe(seconds)


def answer_refused(code: str) -> None:
    child = _refused_by_code.get(code)
    if child is not None:  # the codes are protocol.ErrorCode's; nothing else becomes a label
        child.inc()


def snapshots_pushed(lines: int) -> None:
    if lines:
        _snapshots.inc(lines)


def host_action(action: str) -> None:
    """``action`` is one of polls.actions.HOST_ACTIONS (the caller checks)."""
    _host_actions.labels(action).inc()


def writer_batch(seconds: float) -> None:
    _batch_seconds.observe(seconds)


def join_refused(reason: str) -> None:
    child = _join_refused_by_reason.get(reason)
    if child is not None:
        child.inc()


def connection_refused(limit: str) -> None:
    _connections_refused_by_limit[limit].inc()


# -- the writer's backlog, read at scrape time ---------------------------------------------------

_backlog_client: tuple[tuple, redis.Redis] | None = None


def _backlog_redis() -> redis.Redis:
    """A client of its own with short timeouts: a scrape must not wait 10 s on a Redis away."""
    global _backlog_client
    if _backlog_client is None or _backlog_client[0] != redis_client.config_key():
        client = redis_client.sync_client(socket_timeout=1, socket_connect_timeout=1)
        _backlog_client = (redis_client.config_key(), client)
    return _backlog_client[1]


def writer_backlog() -> tuple[int, int]:
    """(answers not yet in the database, of those read by a writer and not yet committed).

    The writer deletes each log entry once its batch is committed (polls.writer), so a log's
    length is what the database still lacks, whether or not a writer has made its group yet
    (XINFO GROUPS' ``lag`` is unknown without a group, and once entries were deleted);
    ``pending`` is the group's."""
    client = _backlog_redis()
    streams = sorted(client.smembers(tally.LOG_REGISTRY))
    if not streams:
        return 0, 0
    pipe = client.pipeline(transaction=False)
    for stream in streams:
        pipe.xlen(stream)
        pipe.xinfo_groups(stream)
    replies = pipe.execute(raise_on_error=False)
    lag = pending = 0
    for length, groups in zip(replies[::2], replies[1::2], strict=True):
        if isinstance(length, int):
            lag += length
        if isinstance(groups, list):  # an error: the log is gone (its question was deleted)
            pending += sum(
                group["pending"] for group in groups if group["name"] == tally.WRITER_GROUP.encode()
            )
    return lag, pending


class WriterBacklog:
    """A collector of the scraping process: the writer's lag as Redis holds it now."""

    def collect(self):
        try:
            lag, pending = writer_backlog()
        except (RedisError, OSError):
            return  # nothing rather than a failed scrape: the other figures still count
        yield GaugeMetricFamily(
            "zaalpeiling_writer_lag", "Answers in the Redis logs not yet in the database", lag
        )
        yield GaugeMetricFamily(
            "zaalpeiling_writer_pending", "Answers a writer has read, not yet committed", pending
        )


# -- dead processes --------------------------------------------------------------------------

_LIVE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    return True


def forget_dead_processes() -> None:
    """Drop the live gauges of every process of the folder that no longer runs (a crash leaves
    its files; the supervisor or systemd starts another process, with another pid)."""
    pids = set()
    for path in glob.glob(os.path.join(FOLDER, "gauge_live*.db")):
        match = _LIVE_FILE.fullmatch(os.path.basename(path))
        if match:
            pids.add(int(match[1]))
    for pid in pids:
        if pid != os.getpid() and not _running(pid):
            with contextlib.suppress(FileNotFoundError):  # another process was quicker
                multiprocess.mark_process_dead(pid, FOLDER)


def _leave_folder() -> None:
    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(os.getpid(), FOLDER)


if FOLDER:
    forget_dead_processes()
    atexit.register(_leave_folder)


# -- the scrape ------------------------------------------------------------------------------


def token_matches(authorization: str) -> bool:
    """Whether an ``Authorization`` header carries the configured token (constant time)."""
    token = settings.ZP_METRICS_TOKEN
    scheme, _, given = authorization.partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


class _ThisProcess:
    """This process's own registry as one collector of a scrape's registry."""

    def collect(self):
        return _registry.collect()


def exposition() -> tuple[bytes, str]:
    """The scrape's body and content type: the folder's figures (else this process's own) and
    the writer's backlog. It reads files and Redis: run it off the event loop."""
    scrape = CollectorRegistry()
    if FOLDER:
        forget_dead_processes()
        multiprocess.MultiProcessCollector(scrape, path=FOLDER)
    else:
        scrape.register(_ThisProcess())
    scrape.register(WriterBacklog())
    return generate_latest(scrape), CONTENT_TYPE_LATEST

"""What a load test is asked to do (``Options``), where it points (``parse_target``), and the
error it stops with."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass, field
from ipaddress import ip_address
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:8000"
# Join codes never hold the letters I, L and O (they are read as 1 and 0).
DEFAULT_CODE = "DRUKTEST"
BASELINE_CODE = "BARE"
DEFAULT_HOST_ACTIONS = ("next", "prev", "next")
PHONES_PER_PROCESS = 2500
ARRIVALS = ("page", "api")


class LoadTestError(Exception):
    """The load test cannot run (bad options, no server, no event)."""


@dataclass
class Options:
    urls: list[str] = field(default_factory=lambda: [DEFAULT_URL])
    phones: int = 100
    join_rate: float = 200.0
    burst: float = 5.0
    change_share: float = 0.2
    kind: str = "single"
    code: str | None = None
    hold: float = 0.0
    processes: int = 0
    baseline: bool = False
    report: str | None = None
    server_pids: list[int] = field(default_factory=list)
    stages: int = 0
    stage_key: str | None = None
    host_actions: list[str] | None = None
    ack_timeout: float = 30.0
    join_timeout: float = 60.0
    drain_timeout: float = 30.0
    settle_timeout: float = 10.0
    broadcast_timeout: float = 30.0
    ping_interval: float = 25.0
    forwarded_for: int = 0
    seed: int = 2018
    progress: bool = True
    # "page": a phone's whole arrival (the phone page, its assets, the join, the socket);
    # "api": from the join POST on (a server without pages; always so with ``baseline``).
    arrival: str = "page"
    cached_share: float = 0.0  # phones arriving with a warm browser cache (a second visit)
    home_share: float = 0.0  # phones that start at the join page /?code=<CODE>
    profile: str | None = None  # a directory: py-spy the server during the join phase
    profile_pids: list[int] = field(default_factory=list)
    profile_rate: int = 250
    profile_blocking: bool = False
    ca_file: str | None = None  # the authorities an https:// --url's certificate is checked by
    # After a drop the phones and stage screens connect again (the page's backoff) and resend
    # what was not acknowledged, as the phone page does; off, a drop ends the phone's run.
    reconnect: bool = False
    # The throwaway event gets a profile question with this many options, asked on join and
    # splitting the stage's results (``Event.segment_by``); 0: none. Every phone answers the
    # event's ask-on-join profile questions right after joining, ``segment_none_share`` of them
    # with "rather not say".
    segments: int = 0
    segment_none_share: float = 0.1
    split: bool = True  # the stage's results split by the profile question (segments_on)
    # The audience Q&A instead of the answer burst (docs/loadtest.md, "The Q&A"): the throwaway
    # event's Q&A open and on the stage; ``qa_items`` phones ask one item each over
    # ``qa_ask_seconds``, then ``qa_votes`` votes over ``qa_vote_seconds`` (Zipf ``qa_skew``),
    # ``qa_unvote_share`` of them taken back; ``qa_observers`` phones keep their lists.
    qa: bool = False
    qa_items: int = 300
    qa_ask_seconds: float = 3.0
    qa_votes: int = 20000
    qa_vote_seconds: float = 10.0
    qa_skew: float = 1.0
    qa_unvote_share: float = 0.05
    qa_observers: int = 100
    # The research quiz instead of the answer burst (docs/performance.md, "The research quiz"):
    # a quiz-mode throwaway event, ``quiz_questions`` scored questions timed ``quiz_limit``
    # seconds (a single choice, then a split estimate), each opened by the host once the phones
    # are in; every phone answers within ``quiz_spread`` seconds of the opening (a correct
    # option from ``quiz_right_share`` of them); the server closes each at its deadline. Phones
    # and stages wait ``quiz_results_timeout`` seconds past the deadline for their score.
    quiz: bool = False
    quiz_questions: int = 2
    quiz_limit: int = 10
    quiz_spread: float = 3.0
    quiz_right_share: float = 0.6
    quiz_results_timeout: float = 15.0


def parse_target(url: str, ca_file: str | None = None) -> dict:
    """Where one ``--url`` points: http:// (a Daphne process) or https:// (a proxy in front,
    its certificate checked against the system's authorities or ``ca_file``'s)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "ws", "https", "wss"):
        raise LoadTestError(f"{url}: only http:// and https:// addresses")
    if not parts.hostname:
        raise LoadTestError(f"{url}: no host")
    tls = parts.scheme in ("https", "wss")
    scheme = "https" if tls else "http"
    port = parts.port or (443 if tls else 80)
    try:
        ip = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)[0][4][0]
    except OSError as error:
        raise LoadTestError(f"{url}: {error}") from error
    address = ip_address(ip)
    local = address.is_loopback or ip in _local_addresses()
    return {
        "url": f"{scheme}://{parts.netloc}",
        "ip": ip,
        "port": port,
        "host_header": parts.netloc,
        "origin": f"{scheme}://{parts.netloc}",
        "local": local,
        "tls": tls,
        "hostname": parts.hostname,
        "ca_file": ca_file if tls else None,
    }


def _local_addresses() -> set[str]:
    addresses = set()
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None):
            addresses.add(info[4][0])
    return addresses

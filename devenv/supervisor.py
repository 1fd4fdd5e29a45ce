"""serve's watch over its children: restart one that dies after a pause, give up on one that
keeps dying, and stop them all in order."""

from __future__ import annotations

import dataclasses
import signal
import socket
import subprocess
import time
from collections.abc import Callable

from .processes import stop, stop_all
from .shell import say

# A child that dies this often is broken, not unlucky: serve stops rather than loop for ever.
GIVE_UP_DEATHS, DEATH_WINDOW = 5, 60.0
# The pause before a restart doubles with each death in the window: a crash at start-up (a
# wrong setting, a full disk) is not retried flat out, a single crash costs half a second.
FIRST_PAUSE, LONGEST_PAUSE = 0.5, 8.0


@dataclasses.dataclass
class Child:
    """A process ``serve`` keeps running; ``launch`` starts it, the first time and again."""

    name: str
    launch: Callable[[], subprocess.Popen]
    process: subprocess.Popen | None = None
    deaths: list[float] = dataclasses.field(default_factory=list)
    restart_at: float | None = None
    ended: str = ""  # how the last one ended, for the restart line
    launch_error: str = ""

    def start(self) -> None:
        self.restart_at = None
        try:
            self.process, self.launch_error = self.launch(), ""
        except OSError as error:  # no process at all (out of memory, of descriptors): a death
            self.process, self.launch_error = None, f"could not be started ({error})"


def how_it_ended(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def watch(children: list[Child], now: float) -> str | None:
    """One look at every child: note the newly dead, restart those whose pause is over. Returns
    why serve must stop when one keeps dying, else None."""
    for child in children:
        if child.restart_at is not None:
            if now >= child.restart_at:
                pause = now - child.deaths[-1]
                child.start()
                if child.process is not None:
                    say(f"{child.ended}; restarted after {pause:.1f} s as pid {child.process.pid}")
            continue
        if child.process is None:
            ended = f"{child.name} {child.launch_error}"
        else:
            returncode = child.process.poll()
            if returncode is None:
                continue
            ended = f"{child.name} (pid {child.process.pid}) {how_it_ended(returncode)}"
        child.deaths = [death for death in child.deaths if now - death < DEATH_WINDOW] + [now]
        child.ended = ended
        if len(child.deaths) >= GIVE_UP_DEATHS:
            return (
                f"{ended}, and has died {len(child.deaths)} times in a minute: stopping "
                f"everything (its own messages are above)"
            )
        child.restart_at = now + min(FIRST_PAUSE * 2 ** (len(child.deaths) - 1), LONGEST_PAUSE)
    return None


def supervise(children: list[Child]) -> str:
    """Keep ``children`` running until one keeps dying; returns why it stopped."""
    while True:
        reason = watch(children, time.monotonic())
        if reason:
            return reason
        time.sleep(0.2)


def stop_in_order(
    sock: socket.socket | None,
    daphnes: list[Child],
    writer: Child | None,
    redis: Child | None,
) -> None:
    # A second Ctrl-C must not cut the order short; each step has its own deadline anyway.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    if sock is not None:
        # Serve's own copy would keep the port listening, and queue connections, for no one.
        sock.close()
    if daphnes:
        stop_all([child.process for child in daphnes if child.process])
        say("the Daphne processes have stopped")
    if writer is not None:
        # On SIGTERM the writer commits the batch in hand and stops; what is left in the log
        # is written by the next one (it re-reads its pending entries).
        stop(writer.process, timeout=60)
        say("the answer writer has stopped")
    if redis is not None:
        stop(redis.process)  # Redis flushes its append-only file on SIGTERM
        say("the private Redis has stopped")

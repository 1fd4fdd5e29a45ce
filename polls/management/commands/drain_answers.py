import logging
import signal
import socket
import time

from django.core.management.base import BaseCommand
from redis.exceptions import RedisError

from polls import deadlines, writer
from polls.logs import json_enabled
from polls.tally import TallyUnavailable

logger = logging.getLogger("polls.writer")


class Command(BaseCommand):
    help = "Drain the Redis answer log into the Answer table (runs until stopped)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Drain what is there, then stop.")
        parser.add_argument("--batch", type=int, default=1000, help="Entries per transaction.")
        parser.add_argument(
            "--consumer",
            default=f"writer-{socket.gethostname()}",
            help="Stable name of this writer; a restarted writer re-reads its own pending entries.",
        )

    def handle(self, *args, once=False, consumer=None, batch=1000, **options):
        if once:
            written = writer.drain_all(consumer)
            self.stdout.write(f"{written} answers written")
            return
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        self.say(logging.INFO, f"answer writer {consumer} running")
        while not stopping:
            try:
                written = writer.drain_once(consumer, count=batch, block_ms=1000)
                # A timed quiz question no server process closed (none has sockets left).
                deadlines.close_overdue()
                if written == 0:
                    time.sleep(0.05)
            except (RedisError, TallyUnavailable) as error:
                self.say(logging.WARNING, f"Redis unavailable ({error}); retrying")
                time.sleep(1)

    def say(self, level: int, text: str) -> None:
        """A line of the running writer: a log record when the logs are JSON lines (it would
        break them), else the plain line it has always printed."""
        if json_enabled():
            logger.log(level, text)
        else:
            (self.stdout if level < logging.WARNING else self.stderr).write(text)

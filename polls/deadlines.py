"""The server closes a timed quiz question at its deadline, not the host's browser.

Every server process with sockets runs one keeper (from the first socket's join to the last
one's leaving): every ``POLL_SECONDS`` it claims the due
deadlines from Redis (``tally.claim_due_deadlines``: a ZREM each, so one process acts on each),
``quiz.DEADLINE_GRACE_MS`` after the deadline, and closes the question with its results shown
(``actions.close_at_deadline``), which pushes the right answer and the leaderboard. The answer
script refuses late answers by itself at the deadline to the millisecond; the keeper only makes
the question's state follow. A close that fails (the database or Redis away) puts the deadline
back, so a keeper tries again.

A process without sockets cannot keep deadlines, and when the last phone and screen have left a
timed question nobody would close it. The answer writer, which runs wherever the service does,
closes what no keeper claimed ``WRITER_LAG_MS`` later (``close_overdue``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref

from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError

from . import actions, push, quiz, tally
from .delivery import event_hub
from .redis_client import get_sync_redis

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05
WRITER_LAG_MS = 2000

_keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task] = (
    weakref.WeakKeyDictionary()
)


def keep() -> None:
    """Make sure this event loop runs a keeper (called as sockets join)."""
    loop = asyncio.get_running_loop()
    task = _keepers.get(loop)
    if task is None or task.done():
        _keepers[loop] = loop.create_task(_run())


async def _run() -> None:
    # Until this process has no sockets left (the next one to join starts it again).
    while event_hub().members:
        await asyncio.sleep(POLL_SECONDS)
        try:
            due = await tally.claim_due_deadlines(int(time.time() * 1000) - quiz.DEADLINE_GRACE_MS)
        except tally.TallyUnavailable:
            if push.being_cancelled():
                raise
            await asyncio.sleep(1)
            continue
        for question_id in due:
            await database_sync_to_async(close)(question_id)


def close_overdue() -> int:
    """The answer writer's round: the deadlines no keeper claimed in time, closed from here.
    How many it claimed; ``tally.TallyUnavailable`` when Redis is away."""
    now_ms = int(time.time() * 1000)
    due = tally.claim_overdue_deadlines(now_ms - quiz.DEADLINE_GRACE_MS - WRITER_LAG_MS)
    for question_id in due:
        close(question_id)
    return len(due)


def close(question_id: int) -> None:
    try:
        actions.close_at_deadline(question_id)
    except ValidationError:
        pass  # closed and saved; the push follows by the actions' own retry
    except Exception:
        logger.warning("quiz: question %s not closed at its deadline; retrying", question_id)
        _put_back(question_id)


def _put_back(question_id: int) -> None:
    try:
        get_sync_redis().zadd(tally.DEADLINES_KEY, {str(question_id): 0})
    except Exception:
        logger.warning("quiz: could not put back the deadline of question %s", question_id)

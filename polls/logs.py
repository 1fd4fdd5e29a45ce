"""Logs an operator can use: one JSON object per line (``ZP_LOG_FORMAT=json``), no secrets in any
line, and one line per refusal, however many a phone provokes.

**The line.** ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``message``,
``pid``, then what a record carries: ``event`` (the join code), ``participant`` (a prefix of the
participant id, ``PARTICIPANT_PREFIX_CHARS``), ``code`` (the stable error code), ``action``,
``path``, ``status``, ``client``, ``size``, ``suppressed``; an exception as one string field.
``JsonFormatter`` is wired from the LOGGING block of the settings (the product's, Django's and
the writer's records) and writes Daphne's access log too (``JsonAccessLog``, ``polls.server``).

**No secrets.** The stage key (``?key=``), the participant token (``?token=``) and the badge's
personal code (``?a=``) ride in URLs; ``scrub`` replaces their values with ``***`` wherever a
URL lands in a line. Nothing else secret is ever put in a record.

**Refusals.** ``log_refusal`` is called once where each refusal is decided (an answer, a socket
or stream at connect, a join). A flood from one phone must not flood the log: per sender
(participant, else address), what was refused and code, the first refusal is logged and the
next ones only counted for ``ZP_REFUSAL_LOG_SECONDS``; the count is logged (``suppressed``)
with the first refusal after that, or as a summary line once the window is over. Senders are
remembered up to ``MAX_SENDERS`` (the oldest forgotten first), so made-up senders cannot grow
it without limit.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import OrderedDict
from datetime import UTC, datetime
from urllib.parse import unquote_plus

from daphne.access import AccessLogGenerator
from django.conf import settings

FORMATS = ("text", "json")
SECRET_PARAMETERS = frozenset({"key", "token", "a"})
SCRUBBED = "***"
# Of an open participant's ``<joined hex>-<address tag>-<random>``: the join second and the
# network's tag, as the host's abuse view groups participants; never the random part. An
# attendee's ``a-<attendee id>`` is shorter and shown whole.
PARTICIPANT_PREFIX_CHARS = 17
# What a record may carry besides its message, in the order a line shows them.
FIELDS = (
    "event",
    "participant",
    "code",
    "action",
    "path",
    "status",
    "client",
    "size",
    "suppressed",
)
MAX_SENDERS = 10_000
# Refusals a working hall produces by itself (a stale token, a late answer) are INFO; these say
# someone is doing what no page does.
WARNING_CODES = frozenset(
    {"bad_key", "bad_origin", "flood", "too_many_connections", "rate_limited", "not_allowed"}
)

refusal_logger = logging.getLogger("polls.refusals")

# A query string inside a log line: up to the first character that ends a URL in the text
# (the space before the protocol in a request line, the quote closing a repr).
_QUERY = re.compile(r"\?([^\s\"'<>]*)")


def scrub(text: str) -> str:
    """``text`` with the value of every ``key``, ``token`` and ``a`` query parameter replaced by
    ``***``. Names are compared decoded (``k%65y`` is ``key`` to Django too)."""
    if "?" not in text:
        return text
    return _QUERY.sub(_scrub_query, text)


def _scrub_query(match: re.Match) -> str:
    pairs = match.group(1).split("&")
    for index, pair in enumerate(pairs):
        name, equals, _value = pair.partition("=")
        if equals and unquote_plus(name) in SECRET_PARAMETERS:
            pairs[index] = f"{name}={SCRUBBED}"
    return "?" + "&".join(pairs)


def participant_prefix(participant_id: str | None) -> str:
    return (participant_id or "")[:PARTICIPANT_PREFIX_CHARS]


def json_enabled() -> bool:
    return getattr(settings, "ZP_LOG_FORMAT", "text") == "json"


# -- the line --------------------------------------------------------------------------------


class ScrubSecrets(logging.Filter):
    """Every record's message and traceback without secrets, whatever formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted fails in its handler, as it would
            return True
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in a message or traceback escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        line = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
            "pid": record.process,
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None and value != "":
                line[name] = value
        # Django's request records carry the request and its status.
        request = getattr(record, "request", None)
        if "path" not in line and isinstance(getattr(request, "path", None), str):
            line["path"] = request.path  # the path alone: a query may hold a secret
        if "status" not in line and isinstance(getattr(record, "status_code", None), int):
            line["status"] = record.status_code
        if "participant" in line:
            line["participant"] = participant_prefix(str(line["participant"]))
        if "path" in line:
            line["path"] = scrub(str(line["path"]))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        trace = "\n".join(text for text in (record.exc_text, record.stack_info) if text)
        if trace:
            line["exception"] = scrub(trace)
        return json.dumps(line, ensure_ascii=False, default=str)


class JsonAccessLog(AccessLogGenerator):
    """Daphne's access log (same stream, same events) as the JSON lines of every other log."""

    formatter = JsonFormatter()
    SOCKET_REQUESTS = {
        "connecting": "WSCONNECTING",
        "rejected": "WSREJECT",
        "connected": "WSCONNECT",
        "disconnected": "WSDISCONNECT",
    }

    def __call__(self, protocol, action, details):
        fields = {"client": details.get("client"), "path": details.get("path")}
        if protocol == "http" and action == "complete":
            request = details["method"]
            fields.update(status=details["status"], size=details["size"])
        elif protocol == "websocket" and action in self.SOCKET_REQUESTS:
            request = self.SOCKET_REQUESTS[action]
        else:
            return
        message = f"{request} {details.get('path')}"
        record = logging.LogRecord("daphne.access", logging.INFO, "", 0, message, None, None)
        record.__dict__.update(fields, action=f"{protocol}.{action}")
        self.stream.write(self.formatter.format(record) + "\n")


# -- refusals --------------------------------------------------------------------------------


class RefusalThrottle:
    """Per (sender, code): whether a refusal gets a line now, and how many were only counted."""

    def __init__(self) -> None:
        # (sender, code) -> [when its line was written, refusals counted since, that line's
        # fields]; oldest line first, so the windows that are over are at the front.
        self.senders: OrderedDict[tuple[str, str], list] = OrderedDict()

    @staticmethod
    def window() -> float:
        return settings.ZP_REFUSAL_LOG_SECONDS

    def take(self, sender: str, code: str, fields: dict, now: float) -> tuple[int | None, list]:
        """None when this refusal is only counted, else how many were counted before it (in a
        window that is over); and the fields and counts of other senders' windows now over."""
        key = (sender, code)
        carried, over = 0, []
        while self.senders:
            oldest, (logged_at, counted, first) = next(iter(self.senders.items()))
            if now - logged_at < self.window() and len(self.senders) < MAX_SENDERS:
                break
            del self.senders[oldest]
            if oldest == key:
                carried = counted
            elif counted:
                over.append((first, counted))
        entry = self.senders.get(key)
        if entry is not None:
            entry[1] += 1
            return None, over
        self.senders[key] = [now, 0, fields]
        return carried, over


_throttle = RefusalThrottle()


def log_refusal(
    action: str,
    code: str,
    *,
    sender: str,
    event: str = "",
    participant: str | None = None,
    path: str = "",
    detail: str = "",
) -> None:
    """One refusal: ``action`` (what was refused: ``answer``, ``connect``, ``join``), ``code``
    (the stable error code the client gets), ``sender`` (whom the throttle counts it for: the
    participant id, else the client address; never logged); ``detail`` ends the message."""
    fields = {
        "event": event,
        "participant": participant_prefix(participant),
        "code": code,
        "action": action,
        "path": path,
    }
    counted, over = _throttle.take(f"{action}:{sender}", code, fields, time.monotonic())
    for first, more in over:
        refusal_logger.log(
            _level(first["code"]),
            "%s refused: %s, %d more times in %g s after the line before (not logged each)",
            first["action"],
            first["code"],
            more,
            _throttle.window(),
            extra={**first, "suppressed": more},
        )
    if counted is None:
        return
    # The plain text format shows only the message: it names what the fields hold.
    message = " ".join(
        [f"{action} refused: {code}"]
        + [f"{name}={fields[name]}" for name in ("event", "participant", "path") if fields[name]]
    )
    if detail:
        message += f": {detail}"
    if counted:
        message += f" (and {counted} more times before, not logged each)"
    refusal_logger.log(_level(code), message, extra={**fields, "suppressed": counted or None})


def _level(code: str) -> int:
    return logging.WARNING if code in WARNING_CODES else logging.INFO

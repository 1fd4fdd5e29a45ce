"""Daphne as this product runs it: ``python -m polls.server <Daphne's usual arguments>``.

What Daphne's own command line (daphne 4.2, Twisted 26) leaves open, closed here:

- **A deadline for the request head.** Twisted's HTTP channel has only an idle timeout (60 s),
  restarted by every byte, so a client that trickles one header line every 20 s holds its
  connection, and a share of the server's, for ever. Here a connection that has not delivered a
  whole request head within ``ZP_HEADER_TIMEOUT`` seconds (default 10) of connecting, or of the
  end of its previous response (keep-alive), is closed: with ``408`` if part of a head came, in
  silence if none did (an idle keep-alive connection, which clients reopen as they would after
  any idle close). The clock stops once the head is in: a request body, a long server-sent
  event stream and an upgraded WebSocket are not cut by it (a body's pace is the proxy's
  ``client_body_timeout``; a socket's life is Daphne's ping and ``--websocket_timeout``).
- **No secrets in the logs.** The stage key (``?key=``), the participant token (``?token=``)
  and a badge's personal code (``?a=``) ride in URLs; Daphne writes the whole request line into
  its access log, and Twisted's request repr (in a few warnings) holds it too. Their values
  become ``***`` in every access-log line and in every log record of the process
  (``polls.logs.scrub``). With ``ZP_LOG_FORMAT=json`` the access log is JSON lines too.
- **No ``--proxy-headers``.** Daphne's option takes the client address from the *left-most*
  ``X-Forwarded-For`` address, which the client writes itself. The application takes the
  address from the hops the trusted proxies added (``polls.clientaddr``); the option is refused.
- **No debug text made for nothing.** autobahn pretty-prints its whole configuration for a debug
  log line at every socket's opening, whether debug logging is on or not; in a join storm that
  was a sixth of opening a socket (docs/performance.md). The text is now made only when a debug
  line is really written.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import pprint
import sys

# daphne.cli imports daphne.server, which installs Twisted's asyncio reactor: it must come
# before anything imports twisted.internet.reactor.
import autobahn.websocket.protocol
from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory
from daphne.server import Server
from twisted.web import http

from .logs import JsonAccessLog, json_enabled, scrub

HEADER_TIMEOUT_VARIABLE = "ZP_HEADER_TIMEOUT"
DEFAULT_HEADER_TIMEOUT = 10.0
REQUEST_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
)


def header_timeout(environ: dict) -> float:
    text = environ.get(HEADER_TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_HEADER_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise SystemExit(f"{HEADER_TIMEOUT_VARIABLE} must be a number of seconds above 0: {text!r}")
    return seconds


# -- the head deadline -----------------------------------------------------------------------


class HeadDeadlineChannel(http.HTTPChannel):
    """Twisted's HTTP/1.1 channel with a deadline for each request head."""

    head_timeout = DEFAULT_HEADER_TIMEOUT
    owner: http._GenericHTTPChannelProtocol | None = None  # may switch to an HTTP/2 channel
    _head_deadline = None
    _head_begun = False

    def connectionMade(self):  # noqa: N802 - Twisted's name
        super().connectionMade()
        self._arm_head_deadline()

    def dataReceived(self, data):  # noqa: N802 - Twisted's name
        if self._head_deadline is not None and data:
            self._head_begun = True
        super().dataReceived(data)

    def allHeadersReceived(self):  # noqa: N802 - Twisted's name
        self._cancel_head_deadline()
        super().allHeadersReceived()

    def requestDone(self, request):  # noqa: N802 - Twisted's name
        if self.persistent:
            # Armed before the parent replays the bytes a client pipelined meanwhile: they may
            # hold the next head whole, which stops the clock at once.
            self._arm_head_deadline()
        super().requestDone(request)

    def connectionLost(self, reason):  # noqa: N802 - Twisted's name
        self._cancel_head_deadline()
        super().connectionLost(reason)

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_begun = False
        self._head_deadline = self.callLater(self.head_timeout, self._head_deadline_passed)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            if self._head_deadline.active():
                self._head_deadline.cancel()
            self._head_deadline = None

    def _head_deadline_passed(self) -> None:
        self._head_deadline = None
        if self.owner is not None and self.owner._channel is not self:
            return  # the connection negotiated HTTP/2, whose channel has its own timeouts
        if self.transport is None:
            return
        if self._head_begun:
            self.transport.write(REQUEST_TIMEOUT_RESPONSE)
        # Twisted's idle-timeout close: a client that stops reading is aborted 15 s later.
        self.timeoutConnection()


class HeadDeadlineHTTPFactory(HTTPFactory):
    """Daphne's HTTP factory, building channels with the head deadline."""

    head_timeout = DEFAULT_HEADER_TIMEOUT

    def protocol(self):
        # What Twisted's own protocol factory builds (the wrapper that can switch to HTTP/2
        # after TLS negotiation), around the channel with the deadline.
        channel = HeadDeadlineChannel()
        channel.head_timeout = self.head_timeout
        wrapper = http._GenericHTTPChannelProtocol(channel)
        channel.owner = wrapper
        return wrapper


# -- debug text on demand --------------------------------------------------------------------


class _PrettyWhenShown:
    """``pformat(value)`` as a log argument, formatted only if a log line shows it."""

    def __init__(self, value, *args, **kwargs) -> None:
        self.value, self.args, self.kwargs = value, args, kwargs

    def __str__(self) -> str:
        return pprint.pformat(self.value, *self.args, **self.kwargs)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


autobahn.websocket.protocol.pformat = _PrettyWhenShown
# The module's one other use of the name must still give a string.
autobahn.websocket.protocol.Timings.__str__ = lambda timings: pprint.pformat(timings._timings)


# -- the server ------------------------------------------------------------------------------


def _scrubbed_actions(action_logger):
    """Daphne's access logger, given paths without secrets (HTTP lines carry the query)."""

    def log_action(protocol, action, details):
        if isinstance(details.get("path"), str):
            details = {**details, "path": scrub(details["path"])}
        action_logger(protocol, action, details)

    return log_action


class ProductServer(Server):
    """Daphne's server with the head deadline and a scrubbed access log."""

    def __init__(self, *args, head_timeout=DEFAULT_HEADER_TIMEOUT, action_logger=None, **kwargs):
        self.head_timeout = head_timeout
        if action_logger is not None:
            if json_enabled():  # the settings are loaded: Daphne builds its server after the app
                action_logger = JsonAccessLog(getattr(action_logger, "stream", sys.stdout))
            action_logger = _scrubbed_actions(action_logger)
        super().__init__(*args, action_logger=action_logger, **kwargs)

    # ``Server.run`` builds its HTTP factory inline (``self.http_factory = HTTPFactory(self)``)
    # and listens with it at once: the factory with the deadline takes its place as it is set.
    @property
    def http_factory(self) -> HeadDeadlineHTTPFactory:
        return self._http_factory

    @http_factory.setter
    def http_factory(self, factory: HTTPFactory) -> None:
        if not isinstance(factory, HeadDeadlineHTTPFactory):
            factory = HeadDeadlineHTTPFactory(self)
        factory.head_timeout = self.head_timeout
        self._http_factory = factory


def _scrub_log_records() -> None:
    """Every log record of the process made without secrets, whichever handler Django's
    logging configuration installs later (it replaces the root's handlers, so a filter set on
    them now would be gone)."""
    make_record = logging.getLogRecordFactory()

    def scrubbed_record(*args, **kwargs):
        record = make_record(*args, **kwargs)
        # A record that cannot be formatted is left to fail in its handler, as it would.
        with contextlib.suppress(Exception):
            message = record.getMessage()
            cleaned = scrub(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
            if record.exc_info:
                text = logging.Formatter().formatException(record.exc_info)
                cleaned = scrub(text)
                if cleaned != text:
                    record.exc_text = cleaned
        return record

    logging.setLogRecordFactory(scrubbed_record)


class ProductCommandLine(CommandLineInterface):
    description = "Zaalpeiling's Daphne: a request-head deadline, no secrets in the logs"

    def __init__(self):
        super().__init__()
        self.parser.prog = "python -m polls.server"

    def run(self, args):
        options = self.parser.parse_args(args)
        if options.proxy_headers or options.proxy_headers_host or options.proxy_headers_port:
            self.parser.error(
                "--proxy-headers is refused: it takes the client address from the left-most "
                "X-Forwarded-For address, which the client writes. Behind a proxy, set "
                "ZP_TRUSTED_PROXY_HOPS and let the application read the address."
            )
        self.server_class = functools.partial(
            ProductServer, head_timeout=header_timeout(os.environ)
        )
        _scrub_log_records()
        super().run(args)


def main() -> None:
    ProductCommandLine().run(sys.argv[1:])


if __name__ == "__main__":
    main()

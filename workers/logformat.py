"""Log output of workers: plain lines for a terminal, or one JSON object per line.

``dirac-worker --log-format json`` (or ``log_format = "json"`` in the ``[worker]`` table
of the TOML file) writes every record as a JSON object (python-json-logger's
formatter: a well-kept library that already handles exceptions, stack traces and
non-string values).  Lines logged while a worker serves a request carry the request's
context, which :func:`begin_request` puts in a contextvar (so it follows the request
on whichever thread runs it, and any logger a handler uses gets it too):

``message_id``, ``correlation_id``, ``service``, ``caller`` (the broker user), and,
once known, ``method``, ``user`` and ``group`` (the DIRAC identity), ``duration``
(seconds) and ``outcome`` (``OK``, the error code's name or ``ERROR``); ``trace_id``
and ``traceparent`` when the request carried a valid W3C ``traceparent`` header.

Every served request ends with one ``request served`` line (logger
``diracmq.access``): at INFO with the JSON format, at DEBUG with the plain one, so a
terminal is not flooded by default.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from typing import Any

__all__ = [
    "FORMATS",
    "RequestContextFilter",
    "begin_request",
    "configure",
    "decoded_request",
    "end_request",
    "finish_request",
    "parse_traceparent",
]

FORMATS = ("plain", "json")
PLAIN_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"

#: The request being served by this thread (None outside a request).
_context: contextvars.ContextVar[_Request | None] = contextvars.ContextVar(
    "dirac_request", default=None)
access_log = logging.getLogger("diracmq.access")
_ACCESS_LEVEL = [logging.DEBUG]

# W3C Trace Context, version 00: version-traceid-parentid-flags, lower-case hex; an
# all-zero trace or parent id is invalid.
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def parse_traceparent(value: Any) -> str | None:
    """The trace id of a valid ``traceparent`` header value, else None (ignored)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str) or len(value) != 55:
        return None
    match = _TRACEPARENT.match(value)
    if match is None or match.group(1) == "ff" or set(match.group(2)) == {"0"} \
            or set(match.group(3)) == {"0"}:
        return None
    return match.group(2)


def _text(value: Any, limit: int = 255) -> str | None:
    """A header or property value fit for a log field (bounded; hostile input)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str) or not value:
        return None
    return value[:limit]


class _Request:
    """One request's context: its properties are read into log fields only when a line
    is actually logged (most requests log nothing but, at most, the access line)."""

    __slots__ = ("credentials", "duration", "method", "outcome", "props", "service")

    def __init__(self, service: str, props: Any) -> None:
        self.service = service
        self.props = props
        self.method: str | None = None
        self.credentials: dict[str, Any] | None = None
        self.outcome: str | None = None
        self.duration: float | None = None

    def fields(self) -> dict[str, Any]:
        """The log fields of this request, as far as they are known."""
        props = self.props
        fields: dict[str, Any] = {
            "message_id": _text(props.message_id),
            "correlation_id": _text(props.correlation_id),
            "service": self.service,
            "caller": _text(props.user_id),
        }
        headers = props.headers if isinstance(props.headers, dict) else {}
        traceparent = headers.get("traceparent")
        trace_id = parse_traceparent(traceparent) if traceparent is not None else None
        if trace_id is not None:
            fields["trace_id"] = trace_id
            fields["traceparent"] = _text(traceparent)
        if self.credentials is not None:
            fields.update(method=_text(self.method), user=self.credentials.get("username"),
                          group=self.credentials.get("group") or "")
        if self.outcome is not None:
            fields.update(outcome=self.outcome, duration=round(self.duration or 0.0, 6))
        return fields


def begin_request(service: str, props: Any) -> contextvars.Token[Any]:
    """Start the context of one request from its AMQP properties; :func:`end_request` it."""
    return _context.set(_Request(service, props))


def decoded_request(method: str, credentials: dict[str, Any]) -> None:
    """The request is decoded: its method and the caller's identity join its log fields."""
    request = _context.get()
    if request is not None:
        request.method, request.credentials = method, credentials


def finish_request(method: str | None, credentials: dict[str, Any], outcome: str,
                   seconds: float) -> None:
    """Record the request's method, identity, outcome and duration; log ``request served``."""
    request = _context.get()
    if request is None:
        return
    request.method, request.credentials = method, credentials
    request.outcome, request.duration = outcome, seconds
    level = _ACCESS_LEVEL[0]
    if access_log.isEnabledFor(level):
        access_log.log(level, "request served: %s.%s %s in %.6fs", request.service, method,
                       outcome, seconds)


def end_request(token: contextvars.Token[Any]) -> None:
    """Leave the request's context."""
    _context.reset(token)


class RequestContextFilter(logging.Filter):
    """Copy the current request's context onto every record (as attributes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always True: it only adds the fields."""
        request = _context.get()
        if request is not None:
            for key, value in request.fields().items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        return True


def configure(level: str = "INFO", fmt: str = "plain") -> None:
    """Set up the root logger of a worker process: ``fmt`` is ``plain`` or ``json``."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter(
            "%(levelname)s %(process)d %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time"))  # ISO 8601, UTC
        _ACCESS_LEVEL[0] = logging.INFO
    else:
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
        _ACCESS_LEVEL[0] = logging.DEBUG
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # pika logs every connect at INFO and every failed one as several ERROR lines with
    # tracebacks; the worker logs one line per attempt itself.  DEBUG shows pika's too.
    debug = getattr(logging, level.upper(), logging.INFO) <= logging.DEBUG
    logging.getLogger("pika").setLevel(logging.DEBUG if debug else logging.CRITICAL)

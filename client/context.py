"""Per-call request headers a caller may add: a W3C trace context, and delegation.

::

    from diracmq.client.context import call_context

    with call_context(traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"):
        jm.getJobs({"Owner": "alice"})     # the worker's log lines for it carry the trace id

    with call_context(on_behalf_of="alice"):   # honoured only for a TrustedHost sender
        jm.getJobPageSummaryWeb({}, [], 0, 25)

The values live in a contextvar, so they apply to the calls made in that block, by
that thread or task, and to no other.  The transport reads them once per call when
the request is prepared (encoded AMQP header entries, made here once per block).
docs/protocol.md lists the headers; docs/security.md says who may delegate.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import struct
from collections.abc import Iterator

from diracmq.broker.properties import shortstr

__all__ = ["DELEGATION_HEADER", "TRACEPARENT_HEADER", "call_context", "current_headers",
           "new_traceparent"]

#: W3C Trace Context header (https://www.w3.org/TR/trace-context/), as OpenTelemetry sends it.
TRACEPARENT_HEADER = "traceparent"
#: The broker user a TrustedHost sender acts for (workers/identity.py).
DELEGATION_HEADER = "x-dirac-delegated-user"

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_PACK_LEN = struct.Struct(">I").pack

#: Encoded header table entries to append to this context's requests (b"": none).
_extra: contextvars.ContextVar[bytes] = contextvars.ContextVar("dirac_call_headers",
                                                               default=b"")


def _entry(key: str, value: str) -> bytes:
    raw = value.encode()
    return shortstr(key) + b"S" + _PACK_LEN(len(raw)) + raw


def new_traceparent() -> str:
    """A fresh ``traceparent`` value (random trace and span ids, sampled)."""
    import secrets

    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


@contextlib.contextmanager
def call_context(traceparent: str | None = None,
                 on_behalf_of: str | None = None) -> Iterator[None]:
    """Add these headers to every request sent from this block (nested blocks add up).

    ``traceparent`` must be a W3C trace context (``00-<32 hex>-<16 hex>-<2 hex>``);
    ``on_behalf_of`` a broker user name.  ValueError otherwise.
    """
    extra = _extra.get()
    if traceparent is not None:
        if not _TRACEPARENT.match(str(traceparent)):
            raise ValueError(f"not a W3C traceparent: {traceparent!r}")
        extra += _entry(TRACEPARENT_HEADER, traceparent)
    if on_behalf_of is not None:
        if not str(on_behalf_of).strip() or len(str(on_behalf_of).encode()) > 255:
            raise ValueError(f"not a broker user name: {on_behalf_of!r}")
        extra += _entry(DELEGATION_HEADER, on_behalf_of)
    token = _extra.set(extra)
    try:
        yield
    finally:
        _extra.reset(token)


def current_headers() -> bytes:
    """The encoded header entries of the current context (the transport appends them)."""
    return _extra.get()

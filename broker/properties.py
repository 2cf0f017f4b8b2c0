"""AMQP properties of requests and replies, encoded without pika's generic encoder.

pika's ``BasicProperties.encode`` tests all 14 fields and encodes a header table value
by value: 7 µs for a request's properties here, against 2 µs for the two fields a bare
request/reply loop sets, paid on every call (bench/RESULTS.md, "hot path").  Our
requests differ from one another only in the request id, the expiration and the
deadline, and our replies only in the correlation id, so the constant parts are
encoded once and the rest is packed directly.

This relies on one fact about pika: when it frames a publish it asks the message's
properties for nothing but ``encode()`` (``pika.frame.Header.marshal``).  The bytes
are exactly what ``spec.BasicProperties.encode`` makes of the same fields
(tests/unit/test_properties.py compares them), so the broker and any AMQP client see
ordinary properties.
"""

from __future__ import annotations

import functools
import struct

from pika import spec

__all__ = ["EncodedProperties", "RequestProperties", "ReplyProperties", "shortstr"]

_F = spec.BasicProperties


def shortstr(value: str) -> bytes:
    """An AMQP short string (length byte + UTF-8); ValueError beyond 255 bytes."""
    raw = value.encode()
    if len(raw) > 255:
        raise ValueError(f"AMQP short string over 255 bytes: {value[:40]!r}...")
    return bytes((len(raw),)) + raw


_DEADLINE_KEY = shortstr("x-deadline")  # its value is an int64, type "l"
_GROUP_KEY = shortstr("x-dirac-group")  # its value is a long string, type "S"
_PACK_LONG = functools.partial(struct.Struct(">cq").pack, b"l")
_PACK_LEN = struct.Struct(">I").pack
_PACK_FLAGS = struct.Struct(">H").pack
_DELIVERY_TRANSIENT = b"\x01"  # delivery_mode 1: a request is worthless after a broker restart


class EncodedProperties(spec.BasicProperties):
    """Properties given as their encoded pieces (no field attributes are set)."""

    __slots__ = ("_pieces",)

    def __init__(self, pieces: list[bytes]) -> None:
        # Every field attribute exists (all None), as on any BasicProperties, so code
        # that reads one gets None rather than an AttributeError; only encode() is ours.
        super().__init__()
        self._pieces = pieces

    def encode(self) -> list[bytes]:
        """The encoded property list, as ``spec.BasicProperties.encode`` returns it.

        A fresh list each time: pika inserts the frame header into it.
        """
        return list(self._pieces)


class RequestProperties(EncodedProperties):
    """A request's properties: content_type, headers (x-deadline, x-dirac-group),
    delivery_mode, correlation_id, reply_to, expiration, message_id, user_id."""

    __slots__ = ()

    _FLAGS = (_F.FLAG_CONTENT_TYPE | _F.FLAG_HEADERS | _F.FLAG_DELIVERY_MODE
              | _F.FLAG_CORRELATION_ID | _F.FLAG_REPLY_TO | _F.FLAG_EXPIRATION
              | _F.FLAG_MESSAGE_ID | _F.FLAG_USER_ID)

    @staticmethod
    def template(content_type: str, reply_to: str, user: str,
                 group: str | None) -> tuple[bytes, bytes, bytes, bytes]:
        """The constant parts, once per connection: (flags + content_type, the group
        header entry or b"", reply_to, user_id).  ValueError if a field is too long."""
        extra = b""
        if group:
            value = group.encode()
            extra = _GROUP_KEY + b"S" + _PACK_LEN(len(value)) + value
        return (_PACK_FLAGS(RequestProperties._FLAGS) + shortstr(content_type), extra,
                shortstr(reply_to), shortstr(user))

    @classmethod
    def build(cls, template: tuple[bytes, bytes, bytes, bytes], request_id: str,
              expiration_ms: int, deadline_ms: int) -> RequestProperties:
        """One request's properties; ``request_id`` is both message_id and correlation_id."""
        head, extra, reply_to, user = template
        table = _DEADLINE_KEY + _PACK_LONG(deadline_ms) + extra
        rid = shortstr(request_id)
        return cls([head, _PACK_LEN(len(table)), table, _DELIVERY_TRANSIENT, rid, reply_to,
                    shortstr(str(expiration_ms)), rid, user])


class ReplyProperties(EncodedProperties):
    """A reply's properties: content_type and the request's correlation_id."""

    __slots__ = ()

    _FLAGS = _F.FLAG_CONTENT_TYPE | _F.FLAG_CORRELATION_ID

    @classmethod
    def build(cls, head: bytes, correlation_id: str | None) -> ReplyProperties:
        """``head`` is :meth:`head`'s result.  A request without a correlation_id gets a
        reply without one; an id pika could not encode raises ValueError, as pika does."""
        if correlation_id is None:
            return cls([_PACK_FLAGS(_F.FLAG_CONTENT_TYPE) + head[2:]])
        if not isinstance(correlation_id, str):
            raise ValueError(f"correlation_id {correlation_id!r} is not a string")
        return cls([head, shortstr(correlation_id)])

    @staticmethod
    def head(content_type: str) -> bytes:
        """The constant part: flags + content_type."""
        return _PACK_FLAGS(ReplyProperties._FLAGS) + shortstr(content_type)

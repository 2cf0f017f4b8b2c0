"""The frames of the hot path's three messages, marshaled without pika's generic framing.

Every call sends one ``basic.publish`` with its content (the request, or the reply)
and the worker one ``basic.ack``.  pika frames each of them through a chain of
objects (``spec.Basic.Publish``, ``frame.Method``, ``frame.Header``, ``frame.Body``,
each marshaled field by field, then written frame by frame): about three times the
Python work of packing the same bytes directly, on both sides of every call, and
the part of a call that runs with the CPU caches cold after the broker and the other
process ran (bench/RESULTS.md, "Frames").

The functions here return exactly the bytes pika's marshaling makes of the same
method and content (tests/unit/test_frames.py compares them for every field that
varies), already joined, so the driver (broker/pika_driver.py) hands them to pika's
connection in one write.  They cover only what the hot path sends: a publish whose
body fits in one body frame, with properties already encoded
(broker/properties.py), and acks and rejects of one delivery.  Anything else (a body
over the frame size, a short string over 255 bytes, a channel not open) is left to
pika, which then behaves, and raises, as it always does.

The wire format (AMQP 0-9-1, section 4.2.3): a frame is its type (1 method, 2
content header, 3 content body), channel number, payload size, payload and the end
octet 0xCE.  ``basic.publish`` is class 60, method 40: a reserved short, the
exchange and routing key as short strings and one octet of bits (mandatory is bit
0; ``immediate``, bit 1, is never set).  The content header is the class (60), a
weight of 0, the body size as an unsigned 64-bit integer, then the property flags and
the properties.  ``basic.ack`` (60, 80) and ``basic.reject`` (60, 90) carry the
delivery tag (64 bits) and one octet of bits (``multiple``, ``requeue``).
"""

from __future__ import annotations

import struct

from diracmq.broker.properties import shortstr

__all__ = ["ack", "publish", "reject"]

_FRAME_HEAD = struct.Struct(">BHI").pack  # type, channel, payload size
_END = b"\xce"
_PUBLISH = struct.pack(">HHH", 60, 40, 0)  # class, method, reserved (ticket)
_HEADER_HEAD = struct.Struct(">HHQ").pack  # class, weight, body size
_TAG_AND_BITS = struct.Struct(">HHQB").pack  # class, method, delivery tag, bits
_BITS = (b"\x00", b"\x01")


def publish(channel: int, exchange: str, routing_key: str, mandatory: bool,
            properties: list[bytes], body: bytes, body_max: int) -> bytes | None:
    """The frames of ``basic.publish`` with its content, as one bytes object.

    ``properties`` is the encoded property list (``EncodedProperties.encode()``);
    ``body_max`` the connection's largest body frame payload.  None when pika must do
    it: the body needs several frames, or a name is over 255 bytes.
    """
    size = len(body)
    if size > body_max:
        return None
    try:
        method = b"".join((_PUBLISH, shortstr(exchange), shortstr(routing_key),
                           _BITS[bool(mandatory)]))
    except ValueError:
        return None  # pika raises its own error for it
    header = b"".join((_HEADER_HEAD(60, 0, size), *properties))
    parts = [_FRAME_HEAD(1, channel, len(method)), method, _END,
             _FRAME_HEAD(2, channel, len(header)), header, _END]
    if size:  # no body frame for an empty body, as pika sends it
        parts += (_FRAME_HEAD(3, channel, size), body, _END)
    return b"".join(parts)


def ack(channel: int, delivery_tag: int) -> bytes:
    """The frame of ``basic.ack`` of one delivery (``multiple`` false)."""
    return b"".join((_FRAME_HEAD(1, channel, 13), _TAG_AND_BITS(60, 80, delivery_tag, 0),
                     _END))


def reject(channel: int, delivery_tag: int, requeue: bool) -> bytes:
    """The frame of ``basic.reject`` of one delivery."""
    return b"".join((_FRAME_HEAD(1, channel, 13),
                     _TAG_AND_BITS(60, 90, delivery_tag, 1 if requeue else 0), _END))

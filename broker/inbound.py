"""Deliveries read without pika's generic frame machinery.

pika turns each of a delivery's three frames (``basic.deliver``, content header, body)
into objects, copies its input buffer after each one, passes them through its callback
registry and the channel's content assembler, and the blocking channel queues the
result for dispatch: all that for every request a worker reads and every reply a
client reads, with the CPU caches cold after the broker and the other process ran
(bench/RESULTS.md, "Frames").  The same fields can be read directly from the bytes.

How it works (pika 1.x, pinned below 2): :func:`install` replaces pika's
``Connection._on_data_available``, which receives every chunk read from the socket.
For a connection the driver has registered consumers on (:func:`register`), the chunk
is read from its start as long as it holds complete, well-formed deliveries to those
consumers: a ``basic.deliver`` method frame on the consumer's channel, its content
header (class 60) and body frames adding up to the announced size.  Each becomes one
event in the blocking connection's queue of ready events, which
``process_data_events`` dispatches, as it dispatches pika's own deliveries (never from
inside another operation).  Properties are decoded by the class pika itself uses
(``spec.props``: the driver's ``TolerantProperties``, so hostile properties are parked,
not fatal), short strings by pika's own decoder; the body is the same bytes.

A chunk may end inside a delivery (TCP hands over what has arrived): when all of it so
far is a delivery to a registered consumer whose body is at most :data:`HOLD_BODY`
bytes, the tail is kept and read again with the next chunk.  Everything else goes to
pika's code, which then behaves (and raises) as it always does: from the first frame
that is not part of such a delivery (a heartbeat, a confirm, a returned message, a
close, a consumer the driver does not know, a larger message, a malformed frame) to
the end of the chunk; and every chunk while pika holds part of a frame or deliveries of
its own not yet dispatched, so deliveries keep their order.  A consumer is unregistered
before it is cancelled: a delivery read for it but not dispatched by then is rejected
back to its queue (manual acks), as pika's blocking channel does with its own.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from pika import connection as pika_connection
from pika import spec
from pika.data import decode_short_string

__all__ = ["HOLD_BODY", "install", "register", "unregister"]

#: Largest body of a delivery whose first part is kept, waiting for the rest, rather
#: than left to pika (one frame at RabbitMQ's default frame_max).
HOLD_BODY = 131072

#: (delivery tag, redelivered, exchange, routing key, properties, body)
OnDelivery = Callable[[int, bool, Any, Any, Any, bytes], None]

_HEAD = struct.Struct(">BHI").unpack_from  # frame type, channel, payload size
_CLASS_METHOD = struct.Struct(">HH").unpack_from
_TAG_BITS = struct.Struct(">QB").unpack_from
_CONTENT_HEAD = struct.Struct(">HHQ").unpack_from  # class, weight, body size
_END = 0xCE
_DELIVER = (60, 60)  # basic.deliver
#: The longest basic.deliver payload: class and method, three short strings, tag, bits.
_DELIVER_MAX = 4 + 3 * 256 + 9


class _Consumer:
    __slots__ = ("auto_ack", "callback", "channel")

    def __init__(self, channel: Any, callback: OnDelivery, auto_ack: bool) -> None:
        self.channel = channel  # pika's channel implementation
        self.callback = callback
        self.auto_ack = auto_ack


class _Inbound:
    """A connection's registered consumers, and the blocking connection that
    dispatches their deliveries."""

    __slots__ = ("blocking", "consumers", "held")

    def __init__(self, blocking: Any) -> None:
        self.blocking = blocking
        self.consumers: dict[Any, _Consumer] = {}
        #: The start of a delivery, waiting for the rest of it (see the module doc).
        self.held = b""


class _Delivery:
    """One delivery read here, waiting in the blocking connection's ready events."""

    __slots__ = ("args", "consumer", "consumers", "tag")

    def __init__(self, consumers: dict[Any, _Consumer], tag: Any, consumer: _Consumer,
                 args: tuple[Any, ...]) -> None:
        self.consumers, self.tag, self.consumer, self.args = consumers, tag, consumer, args

    def dispatch(self) -> None:
        consumer = self.consumer
        if self.consumers.get(self.tag) is consumer:
            consumer.callback(*self.args)
        elif not consumer.auto_ack and consumer.channel.is_open:
            # cancelled since it was read: back to its queue, as pika does
            consumer.channel.basic_reject(self.args[0], requeue=True)


def register(blocking: Any, consumer_tag: str, channel: Any, callback: OnDelivery,
             auto_ack: bool) -> None:
    """Read the deliveries to ``consumer_tag`` here and hand them to ``callback``.

    ``blocking`` is the ``BlockingConnection``, ``channel`` pika's channel
    implementation the consumer was made on.
    """
    impl = blocking._impl
    inbound = impl._diracmq_inbound
    if inbound is None:
        inbound = impl._diracmq_inbound = _Inbound(blocking)
    inbound.consumers[consumer_tag] = _Consumer(channel, callback, auto_ack)


def unregister(blocking: Any, consumer_tag: str) -> None:
    """Leave ``consumer_tag``'s deliveries to pika (before cancelling it)."""
    # (a driver made with fast_io=False may run in a process where install() never ran)
    inbound = getattr(blocking._impl, "_diracmq_inbound", None)
    if inbound is not None:
        inbound.consumers.pop(consumer_tag, None)


def _read_deliveries(inbound: _Inbound, data: bytes
                     ) -> tuple[int, int, list[_Delivery], bool]:
    """(bytes used, frames used, deliveries, whether the rest may be the start of one
    more, to be read again with more bytes) from the start of ``data``."""
    consumers = inbound.consumers
    found: list[_Delivery] = []
    size = len(data)
    pos = frames = 0
    while True:
        if pos + 7 > size:
            return pos, frames, found, pos < size  # a frame's head, in part
        kind, channel_number, length = _HEAD(data, pos)
        start, end = pos + 7, pos + 7 + length
        if kind == 1 and end >= size and length <= _DELIVER_MAX and (
                start + 4 > size or _CLASS_METHOD(data, start) == _DELIVER):
            return pos, frames, found, True  # a method frame, in part
        if kind != 1 or length < 4 or end >= size or data[end] != _END \
                or _CLASS_METHOD(data, start) != _DELIVER:
            break
        try:
            tag, at = decode_short_string(data, start + 4)
            delivery_tag, bits = _TAG_BITS(data, at)
            exchange, at = decode_short_string(data, at + 9)
            routing_key, at = decode_short_string(data, at)
        except struct.error:
            break
        consumer = consumers.get(tag)
        if at != end or consumer is None or consumer.channel.channel_number != channel_number \
                or not consumer.channel.is_open:
            break
        head = end + 1
        if head + 7 > size:
            return pos, frames, found, True  # its content header, in part
        kind, number, length = _HEAD(data, head)
        start, end = head + 7, head + 7 + length
        if kind == 2 and number == channel_number and end >= size and length <= HOLD_BODY:
            return pos, frames, found, True  # its content header, in part
        if kind != 2 or number != channel_number or length < 14 or end >= size \
                or data[end] != _END:
            break
        class_id, _weight, body_size = _CONTENT_HEAD(data, start)
        if class_id != spec.BasicProperties.INDEX:
            break
        pieces = []
        got = 0
        at = end + 1
        while got < body_size:
            if at + 7 > size:
                break
            kind, number, length = _HEAD(data, at)
            if kind != 3 or number != channel_number or at + 7 + length >= size \
                    or data[at + 7 + length] != _END:
                break
            pieces.append(data[at + 7:at + 7 + length])
            got += length
            at += 8 + length
        if got < body_size and body_size <= HOLD_BODY and (
                at + 7 > size or at + 7 + _HEAD(data, at)[2] >= size):
            return pos, frames, found, True  # its body, in part
        if got != body_size:
            break  # malformed, longer than announced (pika raises for that), or large
        properties = spec.props[class_id]()  # the driver's TolerantProperties
        properties.decode(data[start + 12:end])
        body = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        found.append(_Delivery(consumers, tag, consumer, (
            delivery_tag, bool(bits & 1), exchange, routing_key, properties, body)))
        frames += 2 + len(pieces)
        pos = at
    return pos, frames, found, False


def on_data_available(self: Any, data_in: bytes) -> None:
    """``Connection._on_data_available``: deliveries to registered consumers read here,
    the rest by pika (see the module doc)."""
    inbound = self._diracmq_inbound
    if inbound is None:
        _pika_on_data_available(self, data_in)
        return
    if inbound.held:
        data_in, inbound.held = inbound.held + data_in, b""
    if self._frame_buffer or inbound.blocking._channels_pending_dispatch:
        _pika_on_data_available(self, data_in)
        return
    used, frames, found, more = _read_deliveries(inbound, data_in)
    if found:
        self.bytes_received += used  # pika's heartbeat checker watches it
        self.frames_received += frames
        inbound.blocking._ready_events.extend(found)
    if used < len(data_in):
        rest = data_in[used:] if used else data_in
        if more:
            inbound.held = rest  # read again with the next chunk
        else:
            _pika_on_data_available(self, rest)


_Connection: Any = pika_connection.Connection
_pika_on_data_available = _Connection._on_data_available
_installed = False


def install() -> None:
    """Put :func:`on_data_available` into pika's ``Connection``, once per process.

    Connections without registered consumers (any other pika user in the process)
    keep pika's own behaviour.  The pika driver calls it when it is made.
    """
    global _installed
    if _installed:
        return
    _installed = True
    _Connection._diracmq_inbound = None
    _Connection._on_data_available = on_data_available

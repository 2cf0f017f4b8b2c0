"""Fewer syscalls on pika's plaintext socket: one ``sendmsg()`` per turn of pika's loop
instead of one ``send()`` per AMQP frame, and no ``recv()`` that can only say "nothing".

pika buffers every frame it writes (a publish is three: method, header, body; an ack
is one) and, once the socket is writable, sends the buffers one ``send()`` each.  On
loopback a send costs 10-15 µs of CPU and wakes the broker once per frame, so a
worker's reply and ack (four frames) cost four sends, and a client's request three.

:func:`install` replaces the plaintext transport's ``_produce`` with
:func:`produce_gathered`, which hands all the queued frames to the kernel in one
scatter/gather ``sendmsg()``: no bytes are copied (large bodies stay as pika framed
them), and partial sends keep pika's own guarantees (order, byte count, EAGAIN left
to pika's caller).  TLS connections keep pika's own ``_produce``: an ``SSLSocket``
has no ``sendmsg``.  The change is process-wide, so any other pika connection of the
process sends this way too: the same bytes in the same order, in fewer syscalls.
Measured in bench/RESULTS.md ("What changed earlier this evening").

Reading: when the socket is readable pika ``recv()``s 4 KB at a time until a ``recv()``
raises ``BlockingIOError``.  For a small message (every request and reply of a
sequential call) that is two syscalls, the second one a raised and caught exception,
on the critical path of the call in both the client and the worker; a 10 KB message
is four, and reaches pika's protocol in pieces (which broker/inbound.py then leaves to
pika's frame buffer).  :func:`consume_until_short` reads up to :data:`RECV_BYTES` at a
time into a buffer the transport keeps (no large allocation per read; each read's bytes
are copied out once), and stops at the first read that returns less than it asked
for: the kernel's buffer was empty then, and pika's pollers (select, poll, epoll,
kqueue) are all level-triggered, so bytes that arrive later make the socket readable
again at the next poll.  Nothing is left unread and nothing waits longer than one turn
of the loop.  TLS connections keep pika's own ``_consume`` too: an ``SSLSocket`` may
hold decrypted bytes that no poll can see.  A/B with client and worker both on or both
off (8 interleaved rounds of 4,000 sequential calls): p50 0.743 -> 0.701 ms, 1,323 ->
1,395 calls/s.

Writing: pika's ``write()`` arms a writability watcher (an ``epoll_ctl``) when its buffer
was empty, the next turn of the loop waits for the socket to be writable (an
``epoll_wait``), sends, and disarms the watcher (another ``epoll_ctl``): four syscalls
and a round through pika's event dispatch for every request and every reply.  A
transport *corked* by :func:`cork` only buffers what is written meanwhile (the
driver corks around its own publishes, acks and rejects); :func:`release` then sends
the buffered frames at once (one ``sendmsg``) and arms pika's watcher only for a rest
the kernel did not take.  Any other write (a heartbeat, a channel operation, closing)
arms the watcher for the deferred bytes first, pika's way, so nothing is left unsent
whoever turns the loop next; the driver releases before every turn of its own.

It relies on pika 1.x internals (``_AsyncPlaintextTransport``, ``_tx_buffers``,
``_tx_buffered_byte_count``, ``_sock``, ``_protocol``, ``_state``, ``_MAX_RECV_BYTES``,
``_MAX_CONSUME_BYTES``, ``_buffer_tx_data``, ``_nbio``, ``_on_socket_writable``,
``write``); pyproject pins pika below 2, and tests/unit/test_gather.py checks those
names exist, so a pika upgrade that moves them fails loudly.
"""

from __future__ import annotations

import contextlib
import itertools
import select
import socket
from collections import deque
from typing import Any

from pika.adapters.utils import io_services_utils

__all__ = ["IOV_MAX", "RECV_BYTES", "consume_until_short", "cork", "corkable", "install",
           "produce_gathered", "release", "send_gathered", "send_now"]

#: Buffers passed to one sendmsg() at most (Linux's IOV_MAX is 1024).
IOV_MAX = 1024
#: Bytes one recv() may read: a request or reply of up to this size arrives in one piece.
RECV_BYTES = 65536


def send_gathered(sock: socket.socket, buffers: deque[bytes]) -> int:
    """Send ``buffers`` (in order) with as few ``sendmsg()`` calls as the kernel allows.

    Fully sent buffers are removed from the left of ``buffers``; a buffer sent in part
    is replaced by its unsent tail.  Returns the bytes sent.  Stops at the first short
    send (the socket's buffer is full: the caller waits for writability).  An error
    (``BlockingIOError``, a reset...) propagates only if nothing was sent, with
    ``buffers`` unchanged; after a partial success the bytes sent so far are returned
    and the error comes back at the next attempt, so the caller's count stays right.
    """
    total = 0
    while buffers:
        chunk = list(itertools.islice(buffers, IOV_MAX))
        wanted = sum(map(len, chunk))
        try:
            sent = sock.sendmsg(chunk)
        except OSError:
            if total:
                return total
            raise
        total += sent
        left = sent
        while left:
            head = buffers[0]
            if left >= len(head):
                buffers.popleft()
                left -= len(head)
            else:
                buffers[0] = head[left:]
                left = 0
        if sent < wanted:
            break
    return total


def produce_gathered(self: Any) -> None:
    """``_AsyncPlaintextTransport._produce``, gathering the queued frames per syscall."""
    sent = send_gathered(self._sock, self._tx_buffers)
    self._tx_buffered_byte_count -= sent
    assert self._tx_buffered_byte_count >= 0, (
        "produce_gathered: tx buffer size underflow", self._tx_buffered_byte_count)


def consume_until_short(self: Any) -> None:
    """``_AsyncPlaintextTransport._consume``, returning at the first short read.

    As pika's own: hands what it reads to the protocol, raises ``RxEndOfFile`` at the
    end of the stream, lets socket errors (``BlockingIOError`` when a full read was the
    last of the data) and the protocol's errors propagate to pika's caller, and reads
    at most ``_MAX_CONSUME_BYTES`` per readiness event so one busy socket cannot
    starve the loop.
    """
    buffer = self._diracmq_rx
    if buffer is None:
        buffer = self._diracmq_rx = memoryview(bytearray(RECV_BYTES))
    limit = len(buffer)
    consumed = 0
    while self._state == self._STATE_ACTIVE and consumed < self._MAX_CONSUME_BYTES:
        size = self._sock.recv_into(buffer)
        if not size:
            # as pika logs it
            io_services_utils._LOGGER.error(  # type: ignore[attr-defined]  # pika's private logger
                "Socket EOF; %s", self._sock)
            raise self.RxEndOfFile()
        consumed += size
        self._protocol.data_received(buffer[:size].tobytes())
        if size < limit:
            return  # drained: a level-triggered poll reports what comes next


#: pika's plaintext transport class (typed Any: the methods replaced below are private)
_Transport: Any = io_services_utils._AsyncPlaintextTransport
#: pika's own write(), called for every write made while not corked.
_pika_write = _Transport.write


def write_corkable(self: Any, data: bytes) -> None:
    """``_AsyncPlaintextTransport.write``: buffered only while corked (see the module doc)."""
    if self._diracmq_corked:
        if not self._tx_buffered_byte_count and self._state == self._STATE_ACTIVE:
            self._diracmq_deferred = True  # buffered with no watcher armed: release() sends
        self._buffer_tx_data(data)  # pika's checks: empty data, inactive transport
        return
    if self._diracmq_deferred:
        # Someone else writes (a heartbeat, a channel operation): the deferred frames go
        # first, pika's way, before whoever turns the loop next waits for them.
        _arm(self)
    _pika_write(self, data)


def _arm(transport: Any) -> None:
    transport._diracmq_deferred = False
    if transport._tx_buffers and transport._state == transport._STATE_ACTIVE:
        transport._nbio.set_writer(transport._sock.fileno(), transport._on_socket_writable)


def corkable(transport: Any) -> bool:
    """Whether ``transport`` (pika's, behind a connection) can be corked: plaintext, with
    :func:`install` done."""
    return _installed and type(transport) is _Transport


def cork(transport: Any, on: bool) -> None:
    """Start (``on``) or stop buffering writes to ``transport`` without arming pika's
    writer; what was buffered meanwhile waits for :func:`release`."""
    transport._diracmq_corked = on


def release(transport: Any, send: bool = True) -> None:
    """Hand frames buffered while corked to the kernel now (``send``), or leave them to
    pika's writability watcher; a rest the kernel did not take is left to the watcher.

    A send that fails (a reset connection) is left to the watcher too: pika's own
    writable handler then meets the same error and closes the connection its way.
    """
    if not transport._diracmq_deferred:
        return
    if send and transport._state == transport._STATE_ACTIVE:
        with contextlib.suppress(OSError):
            transport._produce()
    _arm(transport)


def send_now(transport: Any) -> bool:
    """:func:`release` what was buffered while corked unless the socket has something
    to read; True if nothing is left to write, False if pika's loop must turn (with its
    watcher armed) to write the rest or to read first.

    What waits to be read may be a close the broker sent or the end of a cut
    connection: pika's turn must see it before the caller counts what it wrote as sent.
    """
    if not transport._diracmq_deferred:
        return False
    if select.select((transport._sock,), (), (), 0)[0]:
        release(transport, send=False)
        return False
    release(transport)
    return not transport._tx_buffers


_installed = False


def install() -> None:
    """Put :func:`produce_gathered`, :func:`consume_until_short` and
    :func:`write_corkable` into pika's plaintext transport, once per process (TLS
    keeps pika's own, see the module doc).

    The pika driver calls it when it is made (broker/pika_driver.py); importing this
    module changes nothing.
    """
    global _installed
    if _installed:
        return
    _installed = True
    # private methods of pika 1.x (pinned below 2)
    _Transport._produce = produce_gathered
    _Transport._consume = consume_until_short
    _Transport.write = write_corkable
    _Transport._diracmq_rx = None  # consume_until_short's buffer, made at the first read
    _Transport._diracmq_corked = False
    _Transport._diracmq_deferred = False

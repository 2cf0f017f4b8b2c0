"""One ``sendmsg()`` per turn of pika's loop instead of one ``send()`` per AMQP frame.

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
Measured in bench/RESULTS.md ("What changed this evening").

It relies on pika 1.x internals (``_AsyncPlaintextTransport``, ``_tx_buffers``,
``_tx_buffered_byte_count``); pyproject pins pika below 2, and tests/unit/test_gather.py
checks those names exist, so a pika upgrade that moves them fails loudly.
"""

from __future__ import annotations

import itertools
import socket
from collections import deque
from typing import Any

from pika.adapters.utils import io_services_utils

__all__ = ["IOV_MAX", "install", "produce_gathered", "send_gathered"]

#: Buffers passed to one sendmsg() at most (Linux's IOV_MAX is 1024).
IOV_MAX = 1024


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


def install() -> None:
    """Make pika's plaintext transport send with :func:`produce_gathered` (idempotent)."""
    io_services_utils._AsyncPlaintextTransport._produce = produce_gathered

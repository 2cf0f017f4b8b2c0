"""broker.gather: pika's queued frames leave in one sendmsg(), in order, none lost."""

import random
import socket
from collections import deque

import pytest
from pika.adapters.utils import io_services_utils

from broker import gather


class ShortSocket:
    """Accepts at most ``limit`` bytes per sendmsg (a full kernel buffer), and records calls."""

    def __init__(self, limits: list[int]) -> None:
        self.limits = limits
        self.calls: list[list[bytes]] = []
        self.data = b""

    def sendmsg(self, buffers: list[bytes]) -> int:
        self.calls.append(list(buffers))
        if not self.limits:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        joined = b"".join(buffers)[:self.limits.pop(0)]
        self.data += joined
        return len(joined)


def test_all_queued_frames_in_one_call():
    frames = deque([b"method", b"header", b"body" * 10, b"ack"])
    expected = b"".join(frames)
    sock = ShortSocket([10_000])
    assert gather.send_gathered(sock, frames) == len(expected)
    assert len(sock.calls) == 1 and sock.data == expected and not frames


@pytest.mark.parametrize("limit", [1, 5, 6, 7, 13, 17])
def test_a_short_send_keeps_the_unsent_tail_in_order(limit):
    frames = deque([b"aaaaaa", b"bbbbbbb", b"cccc"])
    expected = b"".join(frames)
    sock = ShortSocket([limit])
    assert gather.send_gathered(sock, frames) == limit
    assert len(sock.calls) == 1  # a short send means the kernel is full: stop there
    assert sock.data + b"".join(frames) == expected
    assert all(frames)  # no empty buffer left behind


def test_would_block_leaves_the_buffers_as_they_were():
    frames = deque([b"one", b"two"])
    with pytest.raises(BlockingIOError):
        gather.send_gathered(ShortSocket([]), frames)
    assert list(frames) == [b"one", b"two"]


def test_more_buffers_than_iov_max_take_several_calls():
    frames = deque(bytes([i % 256]) for i in range(gather.IOV_MAX * 2 + 3))
    expected = b"".join(frames)
    sock = ShortSocket([10**9] * 3)
    assert gather.send_gathered(sock, frames) == len(expected)
    assert [len(c) for c in sock.calls] == [gather.IOV_MAX, gather.IOV_MAX, 3]
    assert sock.data == expected


def test_an_error_after_a_full_first_call_returns_what_was_sent():
    """The caller subtracts the returned count: raising here would lose the first call's."""
    frames = deque(b"ab" for _ in range(gather.IOV_MAX + 5))
    sock = ShortSocket([10**9])  # the second sendmsg raises BlockingIOError
    assert gather.send_gathered(sock, frames) == 2 * gather.IOV_MAX
    assert len(sock.calls) == 2 and list(frames) == [b"ab"] * 5


def test_a_real_socket_receives_every_byte_in_order_through_short_sends():
    """Through the kernel: a small send buffer forces short sends and EAGAIN."""
    rng = random.Random(7)
    frames = deque(rng.randbytes(rng.randint(1, 70_000)) for _ in range(300))
    expected = b"".join(frames)
    sender, receiver = socket.socketpair()
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16_384)
    sender.setblocking(False)
    receiver.setblocking(False)
    received, stalls = bytearray(), 0
    try:
        while frames:
            try:
                gather.send_gathered(sender, frames)
            except BlockingIOError:
                pass
            if frames:
                stalls += 1
            while True:
                try:
                    chunk = receiver.recv(1 << 20)
                except BlockingIOError:
                    break
                received += chunk
        sender.close()
        receiver.setblocking(True)
        while chunk := receiver.recv(1 << 20):
            received += chunk
    finally:
        sender.close()
        receiver.close()
    assert stalls > 10  # the short-send path really ran
    assert bytes(received) == expected


def test_installed_on_pikas_plaintext_transport_only():
    gather.install()
    assert io_services_utils._AsyncPlaintextTransport._produce is gather.produce_gathered
    # TLS sockets have no sendmsg(): the SSL transport keeps pika's own.
    assert io_services_utils._AsyncSSLTransport._produce is not gather.produce_gathered


def test_pika_still_has_the_internals_we_rely_on():
    """A pika upgrade that renames these must fail here, not in production."""
    base = io_services_utils._AsyncTransportBase
    assert issubclass(io_services_utils._AsyncPlaintextTransport, base)
    source = base.__init__.__code__.co_names
    assert "_tx_buffers" in source and "_tx_buffered_byte_count" in source

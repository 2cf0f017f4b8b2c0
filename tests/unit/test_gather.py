"""diracmq.broker.gather: pika's queued frames leave in one sendmsg(), in order, none lost; reads
stop at a short read, with nothing left unread."""

import inspect
import random
import socket
from collections import deque

import pytest
from diracmq.broker import gather
from pika.adapters.utils import io_services_utils


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
    plain, tls = io_services_utils._AsyncPlaintextTransport, io_services_utils._AsyncSSLTransport
    assert plain._produce is gather.produce_gathered
    assert plain._consume is gather.consume_until_short
    # TLS sockets have no sendmsg(), and may hold decrypted bytes no poll can see: the
    # SSL transport keeps pika's own.
    assert tls._produce is not gather.produce_gathered
    assert tls._consume is not gather.consume_until_short


class Receiver:
    """Just what consume_until_short uses of pika's transport, on a real socket."""

    _STATE_ACTIVE = io_services_utils._AsyncTransportBase._STATE_ACTIVE
    _MAX_CONSUME_BYTES = io_services_utils._AsyncTransportBase._MAX_CONSUME_BYTES
    RxEndOfFile = io_services_utils._AsyncTransportBase.RxEndOfFile

    def __init__(self, sock: socket.socket, buffer_size: int = gather.RECV_BYTES) -> None:
        self._sock = sock
        self._state = self._STATE_ACTIVE
        # what consume_until_short makes at the first read (RECV_BYTES), or a smaller one
        self._diracmq_rx = memoryview(bytearray(buffer_size))
        self._MAX_RECV_BYTES = buffer_size
        self.reads: list[bytes] = []
        self._protocol = self  # data_received() records what pika's protocol would get

    def data_received(self, data: bytes) -> None:
        self.reads.append(data)

    consume = gather.consume_until_short


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def test_a_small_message_is_one_read_and_no_would_block(pair):
    sender, sock = pair
    receiver = Receiver(sock)
    sender.sendall(b"x" * 300)
    receiver.consume()  # pika's own would recv() again here and raise BlockingIOError
    assert receiver.reads == [b"x" * 300]


def test_a_message_of_up_to_recv_bytes_is_read_in_one_piece(pair):
    # pika reads 4 KB at a time: a 10 KB request would reach its protocol in three
    sender, sock = pair
    receiver = Receiver(sock)
    receiver._diracmq_rx = None  # as on pika's transport: made at the first read
    data = bytes(random.Random(3).randbytes(gather.RECV_BYTES - 1))
    sender.sendall(data)
    receiver.consume()
    assert receiver.reads == [data]
    assert len(receiver._diracmq_rx) == gather.RECV_BYTES


def test_reads_go_on_while_they_are_full_and_leave_nothing_behind(pair):
    sender, sock = pair
    receiver = Receiver(sock, buffer_size=4096)
    limit = receiver._MAX_RECV_BYTES
    data = bytes(random.Random(5).randbytes(2 * limit + 123))
    sender.sendall(data)
    receiver.consume()
    assert [len(r) for r in receiver.reads] == [limit, limit, 123]
    assert b"".join(receiver.reads) == data
    with pytest.raises(BlockingIOError):
        sock.recv(1)  # really drained


def test_a_full_last_read_ends_in_would_block_as_with_pika(pair):
    sender, sock = pair
    receiver = Receiver(sock)
    sender.sendall(b"y" * receiver._MAX_RECV_BYTES)
    # pika's _on_socket_readable treats BlockingIOError from _consume as "read it all"
    with pytest.raises(BlockingIOError):
        receiver.consume()
    assert b"".join(receiver.reads) == b"y" * receiver._MAX_RECV_BYTES


def test_one_readiness_event_reads_at_most_max_consume_bytes(pair):
    sender, sock = pair
    receiver = Receiver(sock, buffer_size=4096)
    receiver._MAX_CONSUME_BYTES = 3 * receiver._MAX_RECV_BYTES
    data = b"z" * (5 * receiver._MAX_RECV_BYTES + 7)
    sender.sendall(data)
    receiver.consume()
    assert len(b"".join(receiver.reads)) == 3 * receiver._MAX_RECV_BYTES
    receiver.consume()  # the next turn of the loop reads the rest
    assert b"".join(receiver.reads) == data


def test_end_of_stream_raises_pikas_eof(pair):
    sender, sock = pair
    receiver = Receiver(sock)
    sender.sendall(b"last")
    sender.close()
    receiver.consume()
    assert receiver.reads == [b"last"]
    with pytest.raises(io_services_utils._AsyncTransportBase.RxEndOfFile):
        receiver.consume()


def test_stops_when_the_protocol_closes_the_transport(pair):
    sender, sock = pair
    receiver = Receiver(sock)

    def close_after_first(data: bytes) -> None:
        receiver.reads.append(data)
        receiver._state = io_services_utils._AsyncTransportBase._STATE_ABORTED_BY_USER

    receiver.data_received = close_after_first  # type: ignore[method-assign]
    sender.sendall(b"a" * (3 * receiver._MAX_RECV_BYTES))
    receiver.consume()
    assert len(receiver.reads) == 1


def test_pika_still_has_the_internals_we_rely_on():
    """A pika upgrade that renames these must fail here, not in production."""
    base = io_services_utils._AsyncTransportBase
    assert issubclass(io_services_utils._AsyncPlaintextTransport, base)
    source = base.__init__.__code__.co_names
    assert "_tx_buffers" in source and "_tx_buffered_byte_count" in source
    assert {"_sock", "_protocol", "_state"} <= set(source)
    for name in ("_STATE_ACTIVE", "_MAX_RECV_BYTES", "_MAX_CONSUME_BYTES", "RxEndOfFile",
                 "_consume", "_produce"):
        assert hasattr(base, name), name
    assert hasattr(io_services_utils, "_LOGGER")  # consume_until_short logs EOF as pika does
    # write_corkable buffers as pika's write does and arms the same watcher
    plain = io_services_utils._AsyncPlaintextTransport
    assert {"_buffer_tx_data", "_nbio", "set_writer", "_on_socket_writable"} <= set(
        inspect.unwrap(gather._pika_write).__code__.co_names)
    assert hasattr(plain, "_on_socket_writable") and hasattr(base, "_buffer_tx_data")
    # _on_socket_readable is what calls _consume and takes BlockingIOError as "drained".
    readable = inspect.unwrap(io_services_utils._AsyncPlaintextTransport._on_socket_readable)
    assert "_consume" in readable.__code__.co_names


def test_pika_blocking_connection_flush_output_takes_no_waiters():
    """broker/pika_driver.py flushes a publish with BlockingConnection._flush_output()."""
    from pika.adapters.blocking_connection import BlockingConnection
    params = inspect.signature(BlockingConnection._flush_output).parameters
    assert [p.kind for p in params.values()] == [inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                  inspect.Parameter.VAR_POSITIONAL]


# ------------------------------------------------------------------ corked writes
class FakeNbio:
    """The watcher calls pika's transport makes; records the writer's arming."""

    def __init__(self) -> None:
        self.writers: list[int] = []
        self.reader = None

    def set_reader(self, fd: int, callback) -> None:
        self.reader = callback

    def set_writer(self, fd: int, callback) -> None:
        self.writers.append(fd)

    def remove_writer(self, fd: int) -> bool:
        return True


@pytest.fixture
def transport(pair):
    """pika's real plaintext transport on one end of a socket pair (gather installed)."""
    gather.install()
    sender, sock = pair
    nbio = FakeNbio()
    t = io_services_utils._AsyncPlaintextTransport(sock, object(), nbio)
    sender.setblocking(False)
    return t, nbio, sender


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def test_corked_writes_wait_for_release_and_leave_in_one_send(transport):
    t, nbio, peer = transport
    gather.cork(t, True)
    t.write(b"method")
    t.write(b"header")
    t.write(b"body")
    gather.cork(t, False)
    assert nbio.writers == [] and t.get_write_buffer_size() == 16  # nothing armed, nothing sent
    assert read_all(peer) == b""
    gather.release(t)
    assert read_all(peer) == b"methodheaderbody"
    assert t.get_write_buffer_size() == 0 and nbio.writers == []  # no watcher needed
    gather.release(t)  # nothing deferred: nothing happens
    assert nbio.writers == []


def test_another_write_arms_the_watcher_for_the_deferred_frames_first(transport):
    """A heartbeat or a channel operation written meanwhile must not strand them."""
    t, nbio, peer = transport
    gather.cork(t, True)
    t.write(b"reply")
    gather.cork(t, False)
    t.write(b"heartbeat")  # pika's own write, not corked
    assert len(nbio.writers) == 1  # armed once, for both, in order
    t._on_socket_writable()  # what the loop does when the socket is writable
    assert read_all(peer) == b"replyheartbeat"
    gather.release(t)  # no longer deferred: nothing to do, nothing armed again
    assert len(nbio.writers) == 1


def test_a_rest_the_kernel_does_not_take_is_left_to_the_watcher(transport):
    t, nbio, peer = transport
    t._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = bytes(random.Random(1).randbytes(4 << 20))
    gather.cork(t, True)
    t.write(big)
    gather.cork(t, False)
    gather.release(t)
    assert 0 < t.get_write_buffer_size() < len(big)  # sent in part, the rest buffered
    assert len(nbio.writers) == 1  # pika's watcher sends the rest
    received = read_all(peer)
    while t.get_write_buffer_size():
        t._on_socket_writable()
        received += read_all(peer)
    assert received == big


def test_release_without_sending_arms_the_watcher(transport):
    t, nbio, peer = transport
    gather.cork(t, True)
    t.write(b"request")
    gather.cork(t, False)
    gather.release(t, send=False)
    assert len(nbio.writers) == 1 and read_all(peer) == b""
    t._on_socket_writable()
    assert read_all(peer) == b"request"


def test_a_failed_send_is_left_to_pikas_writer_which_reports_it(transport):
    t, nbio, peer = transport
    gather.cork(t, True)
    t.write(b"request")
    gather.cork(t, False)
    t._sock.shutdown(socket.SHUT_WR)  # the send now fails (EPIPE)
    gather.release(t)  # no exception here
    assert len(nbio.writers) == 1 and t.get_write_buffer_size() == 7


def test_only_pikas_plaintext_transport_is_corkable(transport):
    t, _, _ = transport
    assert gather.corkable(t)
    assert not gather.corkable(object())


def test_send_now_sends_unless_something_waits_to_be_read(transport):
    """The driver's flush: corked frames leave at once, but a close or the end of a cut
    connection waiting to be read must go through pika's turn first."""
    t, nbio, peer = transport
    assert gather.send_now(t) is False  # nothing deferred: nothing to do here
    gather.cork(t, True)
    t.write(b"request")
    gather.cork(t, False)
    assert gather.send_now(t) is True
    assert read_all(peer) == b"request" and nbio.writers == []
    gather.cork(t, True)
    t.write(b"next")
    gather.cork(t, False)
    peer.sendall(b"connection.close")  # something waits to be read
    assert gather.send_now(t) is False
    assert read_all(peer) == b"" and len(nbio.writers) == 1  # left to pika's turn, armed

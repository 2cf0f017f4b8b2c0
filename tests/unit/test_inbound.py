"""diracmq.broker.inbound: deliveries read from the bytes are what pika reads from them,
and whatever is not a complete delivery to a registered consumer is left to pika.

The frames are pika's own marshaling; what pika would make of them is pika's own
decode_frame.  Real-broker proof: every integration, hostile and fault test runs its
deliveries through this path (the hostile ones with properties pika cannot decode).
"""

from collections import deque
from types import SimpleNamespace

import pytest
from diracmq.broker import inbound
from diracmq.broker.pika_driver import _install_tolerant_properties
from pika import frame, spec

TAG = "ctag1.abc"


@pytest.fixture(autouse=True)
def _tolerant_properties():
    _install_tolerant_properties()  # what every PikaDriver does: spec.props' class


class Channel:
    def __init__(self, number=1):
        self.channel_number = number
        self.is_open = True
        self.rejected = []

    def basic_reject(self, tag, requeue):
        self.rejected.append((tag, requeue))


def delivery(tag=7, body=b"\x81\xa1k\xa1v", channel=1, consumer=TAG, redelivered=False,
             routing_key="dirac.reply.alice.x", body_max=131064, **props):
    props.setdefault("correlation_id", "c1")
    parts = [frame.Method(channel, spec.Basic.Deliver(
                 consumer_tag=consumer, delivery_tag=tag, redelivered=redelivered,
                 exchange="", routing_key=routing_key)).marshal(),
             frame.Header(channel, len(body), spec.BasicProperties(**props)).marshal()]
    for start in range(0, len(body), body_max):
        parts.append(frame.Body(channel, body[start:start + body_max]).marshal())
    return b"".join(parts)


def pikas(data):
    """What pika's frame decoder makes of ``data``: (method, properties, body) each."""
    out, method, props, body = [], None, None, b""
    while data:
        used, value = frame.decode_frame(data)
        if value is None:
            break
        data = data[used:]
        if isinstance(value, frame.Method):
            method, body = value.method, b""
        elif isinstance(value, frame.Header):
            props, size = value.properties, value.body_size
            if size == 0:
                out.append((method, props, body))
        elif isinstance(value, frame.Body):
            body += value.fragment
            if len(body) == size:
                out.append((method, props, body))
    return out


def registered(channel=None, auto_ack=False):
    """An inbound state with consumer TAG registered, and the list its callback fills."""
    got = []
    state = inbound._Inbound(SimpleNamespace(_channels_pending_dispatch=set(),
                                             _ready_events=deque()))
    state.consumers[TAG] = inbound._Consumer(channel or Channel(),
                                             lambda *args: got.append(args), auto_ack)
    return state, got


@pytest.fixture
def wired(monkeypatch):
    """(a connection with TAG registered, its inbound state, what the callback got, what
    went to pika's own _on_data_available)."""
    to_pika = []
    monkeypatch.setattr(inbound, "_pika_on_data_available",
                        lambda conn, data: to_pika.append(data))
    state, got = registered()
    conn = SimpleNamespace(_diracmq_inbound=state, _frame_buffer=b"", bytes_received=0,
                           frames_received=0)
    return conn, state, got, to_pika


def read(data, channel=None, auto_ack=False):
    state, got = registered(channel, auto_ack)
    used, frames, found, _more = inbound._read_deliveries(state, data)
    for event in found:
        event.dispatch()
    return used, frames, got


def same_as_pika(got, data):
    expected = pikas(data)
    assert len(got) == len(expected)
    for (tag, redelivered, exchange, routing_key, props, body), (method, pprops, pbody) \
            in zip(got, expected, strict=True):
        assert (tag, redelivered, exchange, routing_key, body) == (
            method.delivery_tag, method.redelivered, method.exchange, method.routing_key,
            pbody)
        assert type(props) is type(pprops) and vars(props) == vars(pprops)


@pytest.mark.parametrize("size", [0, 1, 100, 131064, 131065, 400_000])
def test_a_delivery_reads_as_pika_reads_it(size):
    data = delivery(body=bytes(range(256)) * (size // 256) + b"z" * (size % 256),
                    redelivered=True, headers={"x-deadline": 1_795_000_000_000, "n": [1, "a"]},
                    user_id="alice", message_id="m1", expiration="5000")
    used, frames, got = read(data)
    assert used == len(data) and frames == 2 + -(-size // 131064)
    same_as_pika(got, data)


def test_deliveries_up_to_the_first_other_frame_are_read_here_the_rest_is_pikas():
    heartbeat = frame.Heartbeat().marshal()
    data = delivery(1) + delivery(2) + heartbeat + delivery(3)
    used, frames, got = read(data)
    assert used == len(delivery(1) + delivery(2)) and frames == 6
    assert [args[0] for args in got] == [1, 2]


def test_a_chunk_cut_anywhere_yields_the_complete_deliveries_and_waits_for_the_rest():
    data = delivery(1, body=b"a" * 300) + delivery(2, body=b"")
    first = len(delivery(1, body=b"a" * 300))
    state, _got = registered()
    for cut in range(len(data)):
        used, _frames, found, more = inbound._read_deliveries(state, data[:cut])
        complete = 1 if cut >= first else 0
        assert len(found) == complete and used == (first if complete else 0), cut
        assert more == (cut != used), cut  # the rest is the start of the next delivery


@pytest.mark.parametrize("case", ["other consumer", "other channel", "closed channel",
                                  "bad frame end", "body longer than announced",
                                  "not a delivery"])
def test_what_is_not_a_complete_delivery_to_a_registered_consumer_is_left_to_pika(case):
    channel = Channel()
    data = delivery()
    if case == "other consumer":
        data = delivery(consumer="someone-else")
    elif case == "other channel":
        data = delivery(channel=2)
    elif case == "closed channel":
        channel.is_open = False
    elif case == "bad frame end":
        data = data[:-1] + b"\x00"
    elif case == "body longer than announced":
        body_frame = frame.Body(1, b"xx").marshal()
        head = delivery(body=b"x")
        data = head[:len(head) - len(frame.Body(1, b"x").marshal())] + body_frame
    elif case == "not a delivery":
        data = frame.Method(1, spec.Basic.Ack(3)).marshal()
    assert read(data, channel) == (0, 0, [])


def test_hostile_properties_are_read_as_the_driver_reads_them():
    # An AMQP timestamp pika cannot represent: the driver's TolerantProperties says why
    # (the worker parks the request) instead of raising in the middle of the I/O loop.
    good = delivery(headers={"t": 2**63 - 1})  # pika writes it as "l": 8 bytes
    data = good.replace(b"tl\x7f" + b"\xff" * 7, b"tT" + b"\xff" * 8)  # same length
    assert data != good
    used, _frames, got = read(data)
    assert used == len(data) and got[0][4].undecodable and got[0][4].headers is None
    same_as_pika(got, data)


def test_a_routing_key_that_is_not_utf8_stays_bytes_as_in_pika():
    data = delivery(routing_key="k" * 5)
    data = data.replace(b"kkkkk", b"k\xff\xfekk")
    _used, _frames, got = read(data)
    assert got[0][3] == b"k\xff\xfekk"
    same_as_pika(got, data)


@pytest.mark.parametrize("auto_ack", [False, True])
def test_a_delivery_read_before_its_consumer_was_cancelled_goes_back(auto_ack):
    channel = Channel()
    state, got = registered(channel, auto_ack)
    _used, _frames, found, _more = inbound._read_deliveries(state, delivery(tag=9))
    del state.consumers[TAG]  # unregister(), before basic.cancel
    found[0].dispatch()
    assert got == []
    assert channel.rejected == ([] if auto_ack else [(9, True)])


def test_a_delivery_in_pieces_is_read_once_whole_and_a_large_one_is_left_to_pika(wired):
    conn, state, got, to_pika = wired
    blocking = state.blocking
    data = delivery(1, body=b"b" * 10_000)
    for start in range(0, len(data), 4096):  # as TCP may hand it over
        inbound.on_data_available(conn, data[start:start + 4096])
    assert len(blocking._ready_events) == 1 and to_pika == [] and state.held == b""
    blocking._ready_events.popleft().dispatch()
    assert got[0][5] == b"b" * 10_000 and conn.bytes_received == len(data)

    large = delivery(2, body=b"c" * (inbound.HOLD_BODY + 1))
    inbound.on_data_available(conn, large[:65536])
    assert to_pika == [large[:65536]] and state.held == b""  # pika's frame buffer has it

    heartbeat = frame.Heartbeat().marshal()  # a frame cut inside its head: held, then pika's
    inbound.on_data_available(conn, heartbeat[:3])
    assert state.held == heartbeat[:3]
    inbound.on_data_available(conn, heartbeat[3:])
    assert to_pika[-1] == heartbeat and state.held == b""


def test_chunks_go_to_pika_while_it_holds_a_partial_frame_or_undispatched_deliveries(
        wired):
    conn, state, _got, to_pika = wired
    blocking = state.blocking
    heartbeat = frame.Heartbeat().marshal()

    inbound.on_data_available(conn, delivery(1) + heartbeat)
    assert len(blocking._ready_events) == 1 and to_pika == [heartbeat]
    assert conn.bytes_received == len(delivery(1)) and conn.frames_received == 3

    conn._frame_buffer = b"\x01\x00"  # pika holds the start of a frame
    inbound.on_data_available(conn, delivery(2))
    assert to_pika[-1] == delivery(2) and len(blocking._ready_events) == 1

    conn._frame_buffer = b""
    blocking._channels_pending_dispatch.add(1)  # pika's own deliveries wait for dispatch
    inbound.on_data_available(conn, delivery(3))
    assert to_pika[-1] == delivery(3) and len(blocking._ready_events) == 1

    conn._diracmq_inbound = None  # a connection without registered consumers
    inbound.on_data_available(conn, delivery(4))
    assert to_pika[-1] == delivery(4)


def test_unregister_on_a_connection_never_registered_is_a_no_op():
    # a driver made with fast_io=False cancels its consumers through it too
    inbound.unregister(SimpleNamespace(_impl=SimpleNamespace()), TAG)

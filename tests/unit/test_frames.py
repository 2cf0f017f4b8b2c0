"""diracmq.broker.frames: the hot path's frames are pika's own bytes, and the driver
leaves to pika what frames does not cover."""

import pytest
from diracmq.broker import frames
from diracmq.broker.properties import ReplyProperties, RequestProperties
from pika import frame, spec

BODY_MAX = 131072 - 8  # RabbitMQ's default frame_max less the frame's head and end


def _pika_publish(channel, exchange, routing_key, mandatory, props, body, body_max):
    """What pika.connection.Connection._send_message writes, joined."""
    parts = [frame.Method(channel, spec.Basic.Publish(exchange=exchange,
                                                      routing_key=routing_key,
                                                      mandatory=mandatory)).marshal(),
             frame.Header(channel, len(body), props).marshal()]
    for start in range(0, len(body), body_max):
        parts.append(frame.Body(channel, body[start:start + body_max]).marshal())
    return b"".join(parts)


def _request(request_id="r1", group=None):
    template = RequestProperties.template("application/msgpack",
                                           "dirac.reply.alice.host.12.abc", "alice", group)
    return RequestProperties.build(template, request_id, 600000, 1_795_000_000_000)


@pytest.mark.parametrize("channel", [1, 2, 65535])
@pytest.mark.parametrize("exchange,routing_key", [
    ("dirac.rpc", "WorkloadManagement/JobMonitoring"),
    ("", "dirac.reply.alice.host.12.abc"),
    ("", "amq.rabbitmq.reply-to.g1h2AA==.x"),
    ("dirac.rpc", "Sÿstem/Sérvice"),  # non-ASCII: lengths are in bytes
    ("", ""),
])
@pytest.mark.parametrize("mandatory", [False, True])
@pytest.mark.parametrize("size", [0, 1, 300, BODY_MAX])
def test_publish_is_pikas_bytes(channel, exchange, routing_key, mandatory, size):
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    for props in (_request(), _request("x" * 200, "gröup"), ReplyProperties.build(
            ReplyProperties.head("application/msgpack"), "abc123"),
            ReplyProperties.build(ReplyProperties.head("application/msgpack"), None)):
        ours = frames.publish(channel, exchange, routing_key, mandatory, props.encode(), body,
                              BODY_MAX)
        assert ours == _pika_publish(channel, exchange, routing_key, mandatory, props, body,
                                     BODY_MAX)


def test_what_pika_must_frame_is_left_to_it():
    props = _request().encode()
    # a body over one frame: pika splits it
    assert frames.publish(1, "dirac.rpc", "A/B", True, props, bytes(BODY_MAX + 1),
                          BODY_MAX) is None
    # a name over 255 bytes: pika raises its own error for it
    assert frames.publish(1, "dirac.rpc", "A/" + "é" * 127, True, props, b"x", BODY_MAX) is None
    assert frames.publish(1, "x" * 256, "A/B", True, props, b"x", BODY_MAX) is None


@pytest.mark.parametrize("channel", [1, 7, 65535])
@pytest.mark.parametrize("tag", [1, 2**31, 2**64 - 1])
def test_ack_and_reject_are_pikas_bytes(channel, tag):
    assert frames.ack(channel, tag) == frame.Method(channel, spec.Basic.Ack(tag)).marshal()
    for requeue in (False, True):
        assert frames.reject(channel, tag, requeue) == frame.Method(
            channel, spec.Basic.Reject(tag, requeue)).marshal()

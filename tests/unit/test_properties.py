"""diracmq.broker.properties: hand-assembled request and reply properties are pika's own bytes."""

import pika
import pytest
from diracmq.broker.properties import ReplyProperties, RequestProperties
from pika import spec


def _pika_bytes(**fields) -> bytes:
    return b"".join(pika.BasicProperties(**fields).encode())


@pytest.mark.parametrize("group", [None, "dirac_user", "gröup-ü"])
@pytest.mark.parametrize("deadline", [1, 2**31 + 5, 1_795_000_000_000])
def test_same_bytes_as_pika(group, deadline):
    template = RequestProperties.template("application/msgpack",
                                           "dirac.reply.alice.host.12.abc", "alice", group)
    ours = b"".join(RequestProperties.build(template, "a1b2c3", 600000, deadline).encode())
    headers = {"x-deadline": deadline}
    if group:
        headers["x-dirac-group"] = group
    # pika writes ints below 2**31 as "I"; the worker decodes either, but compare like with like
    if deadline < 2**31:
        decoded = spec.BasicProperties()
        decoded.decode(ours)
        assert decoded.headers == headers
        return
    assert ours == _pika_bytes(content_type="application/msgpack", delivery_mode=1,
                               message_id="a1b2c3", correlation_id="a1b2c3",
                               reply_to="dirac.reply.alice.host.12.abc", expiration="600000",
                               user_id="alice", headers=headers)


def test_decodes_to_every_field():
    template = RequestProperties.template("application/msgpack", "amq.rabbitmq.reply-to",
                                           "bob", "lhcb_user")
    props = spec.BasicProperties()
    props.decode(b"".join(RequestProperties.build(template, "r9", 1500, 1_795_000_000_123)
                          .encode()))
    assert (props.content_type, props.delivery_mode, props.message_id, props.correlation_id,
            props.reply_to, props.expiration, props.user_id) == (
        "application/msgpack", 1, "r9", "r9", "amq.rabbitmq.reply-to", "1500", "bob")
    assert props.headers == {"x-deadline": 1_795_000_000_123, "x-dirac-group": "lhcb_user"}


def test_encode_is_repeatable():
    """pika inserts the frame header into the list it gets: each call returns a fresh one."""
    props = RequestProperties.build(RequestProperties.template("a", "b", "c", None),
                                     "id", 1, 2**40)
    first = props.encode()
    first.insert(0, b"frame header")
    assert props.encode() != first and b"".join(props.encode()) == b"".join(first[1:])


def test_too_long_a_field_is_refused():
    with pytest.raises(ValueError, match="255"):
        RequestProperties.template("application/msgpack", "q" * 300, "alice", None)


@pytest.mark.parametrize("corr", ["1", "a1b2c3d4e5f6a7b8c9d0e1", "ü" * 100])
def test_reply_same_bytes_as_pika(corr):
    ours = b"".join(ReplyProperties.build(ReplyProperties.head("application/msgpack"), corr)
                    .encode())
    assert ours == _pika_bytes(correlation_id=corr, content_type="application/msgpack")


@pytest.mark.parametrize("corr", [5, b"bytes", "x" * 256])
def test_reply_with_an_unencodable_id_is_refused(corr):
    with pytest.raises(ValueError):
        ReplyProperties.build(ReplyProperties.head("application/msgpack"), corr)


def test_reply_without_correlation_id():
    """A raw client that sets no correlation_id still gets its reply, without one."""
    ours = b"".join(ReplyProperties.build(ReplyProperties.head("application/msgpack"), None)
                    .encode())
    assert ours == _pika_bytes(content_type="application/msgpack")

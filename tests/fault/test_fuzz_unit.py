"""Fuzz (hypothesis) of the worker's decoding and dispatch, without a broker.

Whatever bytes and AMQP properties arrive, ``codec.unpackb`` returns a value or
raises ``codec.DecodeError``; ``parse_request`` returns a ``Request`` or raises
``BadRequest``; ``dispatch`` returns an S_OK/S_ERROR structure and never raises;
``encode_reply`` returns bytes that decode to an S_OK/S_ERROR.
"""

from __future__ import annotations

import datetime
import sys

import msgpack
import pika
import pytest
from diracmq.broker import codec
from diracmq.broker.config import Settings, set_default_settings
from diracmq.broker.returnvalues import isReturnStructure
from diracmq.workers.handler import Request, RequestHandler, dispatch
from diracmq.workers.server import BadRequest, encode_reply, parse_request
from diracmq_testing import EXT_DIR
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module", autouse=True)
def no_network():
    """Nothing here may reach a broker: an unreachable default, and no Registry."""
    import diracmq.workers.identity as identity

    set_default_settings(Settings(url="amqp://guest:guest@127.0.0.1:9/%2F",
                                  connect_timeout=0.1, rpc_timeout=0.5))
    saved = getattr(identity, "current_registry", None)
    if saved is not None:
        identity.current_registry = lambda: None
    try:
        yield
    finally:
        if saved is not None:
            identity.current_registry = saved
        set_default_settings(None)


# ------------------------------------------------------------------ strategies
scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
           | st.text(max_size=30) | st.binary(max_size=30))
values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=5)
                      | st.dictionaries(scalars.filter(lambda x: not isinstance(x, float)),
                                        kids, max_size=5), max_leaves=30)
methods = st.sampled_from(["echo", "ping", "whoami", "echoArgs", "single", "multi",
                           "withNone", "twoArgs", "boom", "notSOK", "returnsNone",
                           "guarded", "_helper", "export__secret", "notExported", "counter",
                           "value", "__init__", "__class__", ""]) | st.text(max_size=20)
messages = st.fixed_dictionaries({}, optional={"v": st.sampled_from([1, 1, 1, 0, 2, "1", None]),
                                               "method": methods | values,
                                               "args": st.lists(values, max_size=4) | values})
headers = st.none() | st.dictionaries(
    st.sampled_from(["x-deadline", "x-dirac-group", "x-death", "other"]) | st.text(max_size=8),
    values | st.datetimes(), max_size=4)
props = st.builds(pika.BasicProperties, user_id=st.none() | st.sampled_from(["guest", ""])
                  | values, headers=headers, message_id=st.none() | values,
                  correlation_id=st.none() | values, reply_to=st.none() | values)


def mutate(data: bytes, cut: int, flip: int) -> bytes:
    if not data:
        return data
    data = data[: cut % (len(data) + 1)]
    if data and flip:
        index = flip % len(data)
        data = data[:index] + bytes([data[index] ^ (flip & 0xFF or 1)]) + data[index + 1:]
    return data


# ------------------------------------------------------------------------ codec
@FUZZ
@given(st.binary(max_size=2000))
def test_unpackb_random_bytes(data):
    try:
        codec.unpackb(data)
    except codec.DecodeError:
        pass


@FUZZ
@given(values, st.integers(0, 10_000), st.integers(0, 10_000))
def test_unpackb_truncated_and_flipped(value, cut, flip):
    data = mutate(msgpack.packb(value, use_bin_type=True), cut, flip)
    try:
        codec.unpackb(data)
    except codec.DecodeError:
        pass


@pytest.mark.parametrize("data", [
    b"\x91" * 100_000 + b"\xc0",                      # 100,000 nested arrays
    b"\x81\xc0" * 50_000 + b"\xc0",                   # 50,000 nested maps
    b"\xc7\x03\x01\x91\x91\xc0" * 1000,               # tuple ext, trailing garbage
    b"\xdd\xff\xff\xff\xff",                          # array of 4 billion items, no items
    b"\xdb\xff\xff\xff\xff" + b"x" * 10,              # 4 GB string, 10 bytes given
    b"\xc9\x7f\xff\xff\xff\x01",                      # huge ext length
])
def test_unpackb_hostile_lengths_and_nesting(data):
    with pytest.raises(codec.DecodeError):
        codec.unpackb(data)


NESTED_TUPLES = """
import sys
import msgpack
from diracmq.broker import codec
data = codec.packb([])
for _ in range({depth}):  # a tuple in a tuple in a tuple...: {depth} levels, ~{size} bytes
    data = msgpack.packb(msgpack.ExtType(codec.EXT_TUPLE, data))
try:
    codec.unpackb(data)
    print("decoded")
except codec.DecodeError as exc:
    print("DecodeError", exc)
"""


@pytest.mark.parametrize("depth", [300, 3000])
def test_unpackb_deeply_nested_extension_types_do_not_crash(depth):
    """In a subprocess: the bug this finds kills the process."""
    import subprocess

    from diracmq_testing import REPO_DIR

    done = subprocess.run([sys.executable, "-c", NESTED_TUPLES.format(depth=depth,
                                                                      size=4 * depth)],
                          cwd=REPO_DIR, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"decoder died with status {done.returncode}: {done.stderr[-300:]}"
    assert done.stdout.startswith(("decoded", "DecodeError")), done.stdout


# ---------------------------------------------------------------- parse_request
@FUZZ
@given(props, st.binary(max_size=300) | messages.map(
    lambda m: msgpack.packb(m, use_bin_type=True)))
def test_parse_request_returns_a_request_or_raises_bad_request(properties, body):
    try:
        request = parse_request("Fuzz/Service", properties, body)
    except BadRequest as exc:
        assert str(exc)
        return
    assert isinstance(request, Request)
    assert isinstance(request.method, str) and isinstance(request.args, tuple)
    assert isinstance(request.request_id, str)
    assert isinstance(request.credentials, dict) and "username" in request.credentials


# --------------------------------------------------------------------- dispatch
def handler_classes():
    if str(EXT_DIR) not in sys.path:
        sys.path.insert(0, str(EXT_DIR))
    from diractest.TestSystem.Service.DispatchHandler import DispatchHandler

    if not hasattr(DispatchHandler, "initState"):
        DispatchHandler.initState = {}
    return [RequestHandler, DispatchHandler]


HANDLERS = handler_classes()


@FUZZ
@given(st.sampled_from(HANDLERS), methods, st.lists(values, max_size=4),
       # credentials as workers/identity.py builds them (never from the wire)
       st.fixed_dictionaries({"username": st.text(max_size=10), "group": st.text(max_size=10),
                              "properties": st.lists(st.text(max_size=10), max_size=3)}),
       st.none() | st.lists(st.text(max_size=10), max_size=3))
def test_dispatch_always_returns_s_ok_or_s_error(handler, method, args, credentials, rules):
    request = Request(service="Fuzz/Service", method=method, args=tuple(args),
                      credentials=credentials)
    result = dispatch(handler, request, rules)
    assert isReturnStructure(result), result
    reply = codec.unpackb(encode_reply(result, "Fuzz/Service"))
    assert isReturnStructure(reply) and "CallStack" not in reply


@FUZZ
@given(values | st.datetimes() | st.builds(object) | st.sets(st.integers(), max_size=3))
def test_encode_reply_never_raises(value):
    reply = codec.unpackb(encode_reply({"OK": True, "Value": value}, "Fuzz/Service"))
    assert isReturnStructure(reply)


def test_datetime_values_round_trip():
    now = datetime.datetime.now(datetime.UTC)
    assert codec.unpackb(codec.packb({"t": now}))["t"] == now

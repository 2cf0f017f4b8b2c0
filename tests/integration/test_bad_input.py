"""Bad input from a raw pika publisher never kills the worker nor vanishes silently.

Where a reply is possible it is ``S_ERROR(EMQDECODE=1145, ...)``; where it is not
(no ``reply_to``, a reply queue that does not exist, a request past its deadline)
the worker's counters, as its built-in ``ping`` reports them, show it.  After every
case the worker still answers.
"""

import random
import time

import msgpack
import pika.exceptions
import pytest
from diracmq_testing import RawRPC, pack, wait_until

pytestmark = pytest.mark.timeout(60)

EMQDECODE = 1145
VALID = {"v": 1, "method": "echo", "args": ["hello"]}


@pytest.fixture(scope="module")
def current(module_workers):
    """The module's worker, replaced if a test's input killed it."""
    return {"worker": module_workers.start(threads=4)}


@pytest.fixture
def service(current, module_workers):
    """The Dispatch service of a live worker; the test fails if its input kills the worker."""
    worker = current["worker"]
    if worker.returncode is not None:
        # a fresh System: the message that killed the last worker is left in its old queue
        worker = current["worker"] = module_workers.start(threads=4)
    yield f"{worker.system}/Dispatch"
    if worker.returncode is None:
        return
    worker.expected_returncode = None  # reported here, not again at the module's end
    pytest.fail(worker.diagnostics("this test's input killed the worker"), pytrace=False)


def counters(raw, service):
    result = raw.call(service, "ping")
    assert result["OK"], result
    return result["Value"]["counters"]


def assert_still_serves(raw, service):
    assert raw.call(service, "echo", "still here") == {"OK": True, "Value": "still here"}


def assert_decode_error(reply, *fragments):
    assert reply["OK"] is False, reply
    assert reply["Errno"] == EMQDECODE, reply
    assert reply["Message"].startswith(f"Malformed RPC message ( {EMQDECODE} : "), reply
    for fragment in fragments:
        assert fragment in reply["Message"], reply
    assert "CallStack" not in reply


BAD_BODIES = {
    "empty": (b"", "not valid msgpack"),
    "random-1": (random.Random(1).randbytes(64), ""),
    "random-2": (random.Random(2).randbytes(1000), ""),
    "random-3": (random.Random(3).randbytes(7), ""),
    "json": (b'{"v": 1, "method": "echo", "args": ["hello"]}', "not valid msgpack"),
    "truncated": (pack(VALID)[:-3], "not valid msgpack"),
    "truncated-header": (pack(VALID)[:1], "not valid msgpack"),
    "trailing-bytes": (pack(VALID) + b"\x00", "not valid msgpack"),
    "unknown-ext-type": (pack({"v": 1, "method": "echo", "args": [msgpack.ExtType(42, b"?")]}),
                         "not valid msgpack"),
    # forged column tables (ext 6/7, docs/protocol.md section 5)
    "table-not-array": (pack({"v": 1, "method": "echo", "args": [msgpack.ExtType(6, pack("x"))]}),
                        "malformed table"),
    "table-short-column": (pack({"v": 1, "method": "echo", "args": [msgpack.ExtType(
        6, pack([["a", "b"], [[1, 2], [3]], {}]))]}), "malformed table"),
    "table-30-february": (pack({"v": 1, "method": "echo", "args": [msgpack.ExtType(
        6, pack([["t"], [[[], [bytes([7, 232, 2, 30, 0, 0, 0, 0, 0, 0])]]], {0: 1}]))]}),
        "out of range"),
    "keyed-table-too-few-keys": (pack({"v": 1, "method": "echo", "args": [msgpack.ExtType(
        7, pack([[1], ["a"], [[1, 2]], {}]))]}), "malformed keyed table"),
    "list-not-map": (pack([1, "echo", ["hello"]]), "expected a map"),
    "string-not-map": (pack("echo"), "expected a map"),
    "nil": (pack(None), "expected a map"),
    "no-method": (pack({"v": 1, "args": []}), "'method' must be a string"),
    "method-int": (pack({"v": 1, "method": 5, "args": []}), "'method' must be a string"),
    "method-nil": (pack({"v": 1, "method": None, "args": []}), "'method' must be a string"),
    "method-list": (pack({"v": 1, "method": ["echo"], "args": []}), "'method' must be a string"),
    "method-bytes": (pack({"v": 1, "method": b"echo", "args": ["x"]}),
                     "'method' must be a string"),
    "args-string": (pack({"v": 1, "method": "echo", "args": "hello"}), "'args' must be an array"),
    "args-map": (pack({"v": 1, "method": "echo", "args": {"0": "hello"}}),
                 "'args' must be an array"),
    "args-int": (pack({"v": 1, "method": "echo", "args": 5}), "'args' must be an array"),
    "args-nil": (pack({"v": 1, "method": "echo", "args": None}), "'args' must be an array"),
    "version-2": (pack({"v": 2, "method": "echo", "args": ["x"]}), "Unsupported protocol version"),
    "version-0": (pack({"v": 0, "method": "echo", "args": ["x"]}), "Unsupported protocol version"),
    "version-missing": (pack({"method": "echo", "args": ["x"]}), "Unsupported protocol version"),
    "version-string": (pack({"v": "1", "method": "echo", "args": ["x"]}),
                       "Unsupported protocol version"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_malformed_request_gets_EMQDECODE_and_worker_survives(raw, service, case):
    body, fragment = BAD_BODIES[case]
    before = counters(raw, service).get("malformed", 0)
    assert_decode_error(raw.request(service, body), fragment)
    assert counters(raw, service).get("malformed", 0) == before + 1
    assert_still_serves(raw, service)


def test_many_bad_messages_in_a_burst(raw, service):
    """All at once (more than the worker's 4 threads): each gets its own reply."""
    ids = [raw.publish(service, body) for body, _ in BAD_BODIES.values()]
    for corr_id in ids:
        _props, reply = raw.wait_reply(corr_id)
        assert msgpack.unpackb(reply, strict_map_key=False)["Errno"] == EMQDECODE
    assert_still_serves(raw, service)


@pytest.mark.parametrize("reply_to", [None, ""])
def test_missing_reply_to_is_counted_not_answered(raw, service, reply_to):
    before = counters(raw, service).get("no_reply_to", 0)
    raw.publish(service, pack(VALID), reply_to=reply_to)
    wait_until(lambda: counters(raw, service).get("no_reply_to", 0) == before + 1, 10,
               "the worker's no_reply_to counter to rise")
    assert raw.replies == {}, "a request without reply_to was answered somewhere"
    assert_still_serves(raw, service)


def test_missing_reply_to_and_malformed_body(raw, service):
    before = counters(raw, service).get("no_reply_to", 0)
    raw.publish(service, b"\xc1garbage", reply_to=None)
    wait_until(lambda: counters(raw, service).get("no_reply_to", 0) == before + 1, 10,
               "the worker's no_reply_to counter to rise")
    assert_still_serves(raw, service)


def test_reply_to_a_queue_that_does_not_exist(raw, service):
    before = counters(raw, service)
    raw.publish(service, pack(VALID), reply_to=f"dirac.reply.{raw.user}.gone.1.x",
                user_id=raw.user)
    wait_until(lambda: counters(raw, service).get("reply_unroutable", 0)
               == before.get("reply_unroutable", 0) + 1, 10,
               "the worker's reply_unroutable counter to rise")
    assert_still_serves(raw, service)


def test_reply_to_a_queue_of_any_other_name_is_refused(raw, service):
    """A worker publishes only to the caller's own reply destination (docs/security.md)."""
    before = counters(raw, service).get("foreign_reply_to", 0)
    raw.publish(service, pack(VALID), reply_to="no.such.reply.queue.anywhere")
    wait_until(lambda: counters(raw, service).get("foreign_reply_to", 0) == before + 1, 10,
               "the worker's foreign_reply_to counter to rise")
    assert_still_serves(raw, service)


def test_request_past_its_deadline_is_not_run(raw, service):
    before = counters(raw, service).get("expired", 0)
    past = int((time.time() - 60) * 1000)
    raw.publish(service, pack(VALID), headers={"x-deadline": past})
    wait_until(lambda: counters(raw, service).get("expired", 0) == before + 1, 10,
               "the worker's expired counter to rise")
    assert_still_serves(raw, service)


def test_request_to_an_unknown_service_of_a_served_system_is_unroutable(raw, service):
    system = service.split("/")[0]
    with pytest.raises(pika.exceptions.UnroutableError):
        raw.publish(f"{system}/NoSuchService", pack(VALID))


# ------------------------------------------------------------------- identity
def test_whoami_uses_the_validated_user_id(raw, service):
    result = raw.call(service, "whoami", user_id=raw.user)
    assert result["OK"], result
    assert result["Value"]["username"] == raw.user


def test_whoami_without_user_id_is_anonymous(raw, service):
    result = raw.call(service, "whoami")
    assert result["OK"], result
    assert result["Value"]["username"] == "anonymous"


def test_a_forged_user_id_never_reaches_the_worker(vhost_url, service):
    """RabbitMQ refuses a user_id that is not the connection's user: the worker can trust it."""
    rpc = RawRPC(vhost_url)
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            rpc.call(service, "whoami", user_id="someone-else")
        assert info.value.reply_code == 406
    finally:
        rpc.close()

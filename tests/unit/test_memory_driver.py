"""The RPC logic over the in-memory driver: client and worker without a broker.

These are unit tests of logic (waiting, timeouts, dispatch, dedup, poison accounting,
shutdown); the same behaviours are proven against RabbitMQ in tests/integration and
tests/fault.  They also exercise the public testing helper, diracmq.workers.testing.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import pytest
from diracmq.broker import codec, topology
from diracmq.broker.config import Settings
from diracmq.broker.derrno import EMQDECODE, EMQENCODE, EMQNOQUEUE, EMQNOWORKER
from diracmq.broker.driver import QueueKind
from diracmq.broker.memory_driver import MemoryBroker, MemoryProperties
from diracmq.broker.returnvalues import S_ERROR, S_OK
from diracmq.client.transport import RPCTransport
from diracmq.workers.handler import RequestHandler
from diracmq.workers.testing import serve_in_memory


class EchoHandler(RequestHandler):
    types_echo: ClassVar[list] = []
    calls: ClassVar[list] = []

    def export_echo(self, value: Any) -> dict:
        return S_OK(value)

    def export_whoami_here(self) -> dict:
        return S_OK(self.getRemoteCredentials()["username"])

    def export_slow(self, seconds: float) -> dict:
        time.sleep(seconds)
        return S_OK(seconds)

    def export_exit(self) -> dict:
        raise SystemExit(3)

    def export_big(self, size: int) -> dict:
        return S_OK("x" * size)

    def export_fail(self) -> dict:
        return S_ERROR("it failed")

    auth_admin_only: ClassVar[list] = ["Admin"]

    def export_admin_only(self) -> dict:
        return S_OK("admin")


SERVICE = "Mem/Echo"


def test_a_call_round_trips_through_the_in_memory_worker():
    with serve_in_memory({SERVICE: EchoHandler}) as system:
        client = system.client(SERVICE)
        value = {"a": [1, 2.5, "x", None, (1, 2)], 3: b"bytes"}
        assert client.echo(value) == {"OK": True, "Value": value}
        assert client.fail()["Message"] == "it failed"
        assert client.whoami_here() == {"OK": True, "Value": "guest"}


def test_many_threads_share_one_client_and_each_gets_its_own_reply():
    with serve_in_memory({SERVICE: EchoHandler}, threads=8) as system:
        client = system.client(SERVICE)
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda n: client.echo(n), range(200)))
        assert [r["Value"] for r in results] == list(range(200))


def test_futures_many_calls_in_flight_from_one_thread():
    with serve_in_memory({SERVICE: EchoHandler}) as system:
        client = system.client(SERVICE)
        futures = [client.submit("echo", n) for n in range(50)]
        assert [f.result()["Value"] for f in futures] == list(range(50))


def test_a_handler_calling_sys_exit_is_an_error_and_the_worker_keeps_serving():
    with serve_in_memory({SERVICE: EchoHandler}, threads=2) as system:
        client = system.client(SERVICE)
        for _ in range(10):  # more than the prefetch window (2 * threads)
            result = client.exit()
            assert result["OK"] is False and "SystemExit" in result["Message"], result
        assert client.echo(1)["Value"] == 1


def test_a_timeout_is_an_error_and_a_late_reply_is_dropped():
    with serve_in_memory({SERVICE: EchoHandler}) as system:
        client = system.client(SERVICE)
        result = client.slow(0.5, timeout=0.1)
        assert result["OK"] is False and "no reply" in result["Message"]
        assert client.echo("after")["Value"] == "after"


def test_reply_over_the_size_limit_is_emqencode():
    with serve_in_memory({SERVICE: EchoHandler}) as system:
        system.worker.settings = Settings(max_message_bytes=10_000)
        client = system.client(SERVICE)
        result = client.big(20_000)
        assert result["OK"] is False and result["Errno"] == EMQENCODE, result
        assert client.big(100)["OK"]


def test_authorization_rules_use_the_registry_users():
    users = {"alice": ["Admin"], "bob": []}
    with serve_in_memory({SERVICE: EchoHandler}, users=users) as system:
        assert system.client(SERVICE, user="alice").admin_only()["Value"] == "admin"
        refused = system.client(SERVICE, user="bob").admin_only()
        assert refused["OK"] is False and "Unauthorized" in refused["Message"]


# ----------------------------------------------------------- client logic alone
def _transport(broker: MemoryBroker, **settings: Any) -> RPCTransport:
    return RPCTransport(Settings(reply_mode="direct", **settings), driver=broker.driver())


def test_no_queue_for_the_service_is_emqnoqueue_at_once():
    broker = MemoryBroker()
    broker.exchanges.add(topology.REQUEST_EXCHANGE)
    transport = _transport(broker)
    started = time.monotonic()
    result = transport.call("Mem/Nobody", "ping", [], timeout=5)
    assert result["Errno"] == EMQNOQUEUE and time.monotonic() - started < 2
    transport.close()


def test_a_queue_nobody_consumes_is_emqnoworker_within_no_worker_after():
    broker = MemoryBroker()
    declaring = broker.driver()
    declaring.open(1)
    declaring.declare_service_queue(SERVICE)
    transport = _transport(broker, no_worker_after=0.5)
    started = time.monotonic()
    result = transport.call(SERVICE, "echo", [1], timeout=600)
    took = time.monotonic() - started
    assert result["Errno"] == EMQNOWORKER, result
    assert took < 5, took  # 0.5 s, then a second look before saying so
    transport.close()


def test_the_worker_refuses_reply_destinations_that_are_not_the_callers():
    with serve_in_memory({SERVICE: EchoHandler}) as system:
        raw = system.broker.driver("mallory")
        raw.open(1)
        body = codec.packb({"v": 1, "method": "echo", "args": [1]})
        for target in (topology.PARKING_QUEUE, "dirac.reply.alice.host.1.x",
                       "amq.rabbitmq.reply-to.AAAA.x", "any.queue"):
            raw.publish(topology.REQUEST_EXCHANGE, SERVICE, body, MemoryProperties(
                message_id=f"m-{target}", correlation_id="c", reply_to=target,
                user_id="mallory"))
        raw.flush()
        deadline = time.monotonic() + 5
        while system.worker.counters["foreign_reply_to"] < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert system.worker.counters["foreign_reply_to"] == 4
        assert list(system.broker.queues[topology.PARKING_QUEUE].messages) == []
        assert system.client(SERVICE).echo(2)["Value"] == 2


@pytest.mark.parametrize("version", [True, 1.0, "1", 2])
def test_only_the_integer_1_is_protocol_v1(version):
    with serve_in_memory({SERVICE: EchoHandler}) as system:
        raw = system.broker.driver("guest")
        raw.open(1)
        replies: list[bytes] = []
        raw.consume(topology.DIRECT_REPLY_TO, lambda d: replies.append(d.body),
                    kind=QueueKind.AUTO_ACK)
        raw.publish_request(topology.REQUEST_EXCHANGE, SERVICE, codec.packb(
            {"v": version, "method": "echo", "args": [1]}), reply_to=topology.DIRECT_REPLY_TO,
            correlation_id="v", expiration_ms=5000,
            deadline_ms=int((time.time() + 5) * 1000), user_id="guest", group=None)
        deadline = time.monotonic() + 5
        while not replies and time.monotonic() < deadline:
            raw.drive(0.05)
        assert codec.unpackb(replies[0])["Errno"] == EMQDECODE


def test_a_suspect_runs_alone_and_only_the_killer_is_convicted(tmp_path):
    """workers/poison.py: the alone-file convicts the request that was running alone."""
    from diracmq.workers.poison import AloneFiles

    files = AloneFiles(tmp_path)
    files.running("u", "r1")
    assert not files.convicted("u", "r1")  # we are alive: not a death
    other = AloneFiles(tmp_path)
    (tmp_path / next(p.name for p in tmp_path.iterdir())).write_text("999999999 0")
    assert other.convicted("u", "r1")  # that process does not exist: it died
    assert not other.convicted("u", "never-ran-alone")


def test_the_worker_stops_promptly_when_idle():
    with serve_in_memory({SERVICE: EchoHandler}) as system:
        started = time.monotonic()
        system.worker.stop()
        system._thread.join(5)
        assert not system._thread.is_alive()
        assert time.monotonic() - started < 2


def test_a_closed_connection_hands_unacked_requests_to_another_worker():
    broker = MemoryBroker()
    first = broker.driver("w1")
    first.open(1)
    first.declare_service_queue(SERVICE)
    got: list = []
    first.consume(topology.service_queue_name(SERVICE), got.append, prefetch=5)
    sender = broker.driver("guest")
    sender.open(1)
    sender.publish(topology.REQUEST_EXCHANGE, SERVICE, b"x", MemoryProperties(user_id="guest"))
    sender.flush()
    first.drive(0.5)
    assert len(got) == 1 and not got[0].redelivered
    first.close()
    second = broker.driver("w2")
    second.open(1)
    again: list = []
    second.consume(topology.service_queue_name(SERVICE), again.append, prefetch=5)
    second.drive(0.5)
    assert len(again) == 1 and again[0].redelivered


def test_a_user_id_other_than_the_login_closes_the_channel():
    broker = MemoryBroker()
    driver = broker.driver("mallory")
    driver.open(1)
    driver.declare_service_queue(SERVICE)
    driver.publish(topology.REQUEST_EXCHANGE, SERVICE, b"x", MemoryProperties(user_id="alice"))
    with pytest.raises(Exception, match="user_id"):
        driver.flush()
    assert not driver.is_open


def test_threads_waiting_on_one_client_do_not_miss_a_reply_when_the_leader_changes():
    with serve_in_memory({SERVICE: EchoHandler}, threads=8) as system:
        client = system.client(SERVICE)
        errors: list = []

        def caller(n: int) -> None:
            for i in range(20):
                if client.slow(0.001 * (n % 3))["OK"] is not True:
                    errors.append((n, i))

        threads = [threading.Thread(target=caller, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []


def test_an_inline_reply_leaves_before_the_workers_bookkeeping_of_it():
    # The caller waits for the reply, not for the worker's metrics and access log: by
    # the time "request served" is logged, the reply is already with the broker.
    import logging

    with serve_in_memory({SERVICE: EchoHandler}, threads=2) as system:
        replies: list[str] = []
        publish = system.broker._publish

        def recording_publish(sender: Any, message: Any, mandatory: bool) -> None:
            if message.exchange == "":
                replies.append(message.properties.correlation_id)
            publish(sender, message, mandatory)

        system.broker._publish = recording_publish  # type: ignore[method-assign]
        seen: list[int] = []

        class Served(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                seen.append(len(replies))

        access = logging.getLogger("diracmq.access")
        handler, level = Served(), access.level
        access.addHandler(handler)
        access.setLevel(logging.DEBUG)
        client = system.client(SERVICE)
        assert client.echo(0)["Value"] == 0  # its first run (pool) makes echo known as fast
        seen.clear()
        try:
            for n in range(1, 21):
                assert client.echo(n)["Value"] == n
        finally:
            access.removeHandler(handler)
            access.setLevel(level)
        assert system.worker.counters["io_takeovers"] == 0
        assert seen == list(range(2, 22)), seen  # the reply of each call, before its log

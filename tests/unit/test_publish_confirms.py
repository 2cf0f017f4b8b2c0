"""Publisher confirms in the client (issue 12): what the client does with the broker's
answer to each request, over the in-memory driver (the real broker's side is proven by
tests/fault/test_cluster.py and tests/integration/test_publish_confirms_broker.py).

A refused request (``basic.nack``) is published again, on a new connection; one the
broker swallowed without
a word is published again when its connection dies; only a *confirmed* request whose
connection dies fails with ``EMQCONN`` ("may or may not have run").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from diracmq.broker.config import Settings
from diracmq.broker.derrno import EMQCONN
from diracmq.broker.returnvalues import S_OK
from diracmq.client.calls import Call
from diracmq.client.transport import RPCTransport
from diracmq.workers.handler import RequestHandler
from diracmq.workers.testing import InMemorySystem, serve_in_memory

SERVICE = "Mem/Confirmed"


class CountingHandler(RequestHandler):
    runs: ClassVar[list[Any]] = []
    release: ClassVar[threading.Event] = threading.Event()

    types_echo: ClassVar[list] = []

    def export_echo(self, value: Any) -> dict:
        CountingHandler.runs.append(value)
        return S_OK(value)

    def export_held(self, value: Any) -> dict:
        CountingHandler.runs.append(value)
        CountingHandler.release.wait(10)
        return S_OK(value)


@pytest.fixture
def system():
    CountingHandler.runs.clear()
    CountingHandler.release.clear()
    with serve_in_memory({SERVICE: CountingHandler}) as running:
        yield running
    CountingHandler.release.set()


def transport_of(system: InMemorySystem, confirms: str = "on") -> RPCTransport:
    settings = Settings(url="amqp://guest:x@memory/%2F", reply_mode="direct",
                        publish_confirms=confirms)
    return RPCTransport(settings, driver=system.broker.driver("guest", "x"))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not seen within {timeout}s: {what}"
        time.sleep(0.005)


def in_flight(transport: RPCTransport) -> list[Call]:
    with transport.lock:
        return transport._registry.calls()


@pytest.mark.parametrize(("value", "kwargs", "expected"), [
    ("auto", {}, False),
    ("auto", {"queue_type": "quorum"}, True),
    ("auto", {"url": "amqp://a/%2F,amqp://b/%2F"}, True),
    ("on", {}, True),
    ("off", {"queue_type": "quorum"}, False),
])
def test_publish_confirms_setting(value, kwargs, expected):
    settings = Settings(publish_confirms=value, **kwargs)
    settings.validate()
    assert settings.confirms is expected


def test_publish_confirms_from_the_environment_and_bad_values(monkeypatch):
    monkeypatch.setenv("DIRAC_PUBLISH_CONFIRMS", "on")
    assert Settings.load().confirms is True
    with pytest.raises(ValueError, match="publish_confirms must be one of auto, on, off"):
        Settings(publish_confirms="yes").validate()


def test_confirmed_calls_are_answered_and_marked_confirmed(system):
    transport = transport_of(system)
    try:
        futures = [transport.submit(SERVICE, "echo", [n], timeout=10) for n in range(20)]
        assert [f.result()["Value"] for f in futures] == list(range(20))
        assert sorted(CountingHandler.runs) == list(range(20))
    finally:
        transport.close()


def test_a_refused_request_is_published_again_and_runs_once(system):
    transport = transport_of(system)
    system.broker.refuse_requests = 2
    try:
        assert transport.call(SERVICE, "echo", ["again"], timeout=10) == S_OK("again")
        assert CountingHandler.runs == ["again"]
        # each refusal made the client start on a new connection (a new channel)
        assert transport._driver.generation == 3
    finally:
        transport.close()


def test_a_request_refused_every_time_is_emqconn_and_never_ran(system):
    transport = transport_of(system)
    system.broker.refuse_requests = 100
    try:
        result = transport.call(SERVICE, "echo", ["never"], timeout=10)
        assert result["OK"] is False and result["Errno"] == EMQCONN, result
        assert "refused" in result["Message"] and "not run" in result["Message"]
        assert CountingHandler.runs == []
        system.broker.refuse_requests = 0
        assert transport.call(SERVICE, "echo", ["after"], timeout=10) == S_OK("after")
    finally:
        transport.close()


def test_a_swallowed_request_is_published_again_when_its_connection_dies(system):
    """The broker dropped the request without a word (rabbitmq-server#9208): with
    confirms the client knows it was never confirmed, and publishes it again on the
    next connection instead of failing it or waiting for its timeout."""
    transport = transport_of(system)
    system.broker.swallow_requests = 1
    try:
        future = transport.submit(SERVICE, "echo", ["swallowed"], timeout=20)
        wait_until(lambda: any(c.published and c.confirmed is False
                               for c in in_flight(transport)), "the request published")
        transport._driver.close()  # the connection dies (the node went down)
        assert future.result() == S_OK("swallowed")
        assert CountingHandler.runs == ["swallowed"]
    finally:
        transport.close()


def test_a_confirmed_request_whose_connection_dies_is_emqconn(system):
    """Confirmed: the broker has it, a worker may run it; the client does not publish it
    again (only the caller knows whether that is harmless)."""
    transport = transport_of(system)
    try:
        future = transport.submit(SERVICE, "held", ["taken"], timeout=20)
        wait_until(lambda: CountingHandler.runs == ["taken"], "the handler running")
        # the confirm is read by whoever drives next (the idle thread, here)
        wait_until(lambda: all(c.confirmed is True for c in in_flight(transport)),
                   "the confirm")
        transport._driver.close()
        result = future.result()
        assert result["OK"] is False and result["Errno"] == EMQCONN, result
        assert "may or may not have run" in result["Message"]
    finally:
        CountingHandler.release.set()
        transport.close()


def test_without_confirms_a_swallowed_request_times_out(system):
    """What confirms buy (the old behaviour, ``publish_confirms = "off"``)."""
    transport = transport_of(system, confirms="off")
    system.broker.swallow_requests = 1
    try:
        result = transport.call(SERVICE, "echo", ["void"], timeout=0.5)
        assert result["OK"] is False and "no reply" in result["Message"], result
        assert "not confirmed" not in result["Message"]
    finally:
        transport.close()


def test_a_request_never_confirmed_says_so_when_it_times_out(system):
    transport = transport_of(system)
    system.broker.swallow_requests = 1
    try:
        result = transport.call(SERVICE, "echo", ["void"], timeout=0.5)
        assert result["OK"] is False, result
        assert "the broker had not confirmed taking the request" in result["Message"]
    finally:
        transport.close()


def test_a_reply_queue_deleted_under_the_client_is_declared_again(system):
    """A client's named reply queue can vanish under it (declared on a cluster node that
    was still shutting down): the broker cancels the consumer, the client takes that as
    a lost connection and declares and consumes its reply queue again, instead of
    staying deaf to every reply."""
    settings = Settings(url="amqp://guest:x@memory/%2F", reply_mode="queue",
                        publish_confirms="on")
    transport = RPCTransport(settings, driver=system.broker.driver("guest", "x"))
    try:
        assert transport.call(SERVICE, "echo", [1], timeout=10) == S_OK(1)
        system.broker.delete_queue(transport._reply_queue)
        assert transport.call(SERVICE, "echo", [2], timeout=10) == S_OK(2)
        assert transport._reply_queue in system.broker.queues
    finally:
        transport.close()

"""Reconnections that used to hang or go deaf (issue 12).

Channel operations of a (re)connection are bounded.

A broker node can accept a connection and then not answer: a quorum queue whose
leader is gone, a node pausing itself (``pause_minority``), a node still starting.
Before, the client's reply queue declaration and consume, and the worker's queue
declarations, waited for its answer forever (a call 47 s late in the partition test).
Each is now bounded; past the bound the attempt counts as failed and the next one
tries the other nodes first.

The silent node is played by the tests' TCP proxy, stalled right after the AMQP
handshake through it succeeded, in front of the session's private node.
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import pika
import pytest
from diracmq.broker import connection
from diracmq.broker.config import Settings
from diracmq.broker.derrno import EMQCONN
from diracmq.broker.driver import OperationTimedOut
from diracmq.broker.pika_driver import PikaDriver
from diracmq.broker.returnvalues import S_OK
from diracmq.client.transport import RPCTransport
from diracmq.workers.handler import RequestHandler
from diracmq.workers.server import Worker

from fault.faultlib import settings_for

pytestmark = pytest.mark.timeout(120)


class StallAfterOpen(PikaDriver):
    """Stalls ``proxy`` right after its first :meth:`open` (the node "accepts the
    connection, then says nothing"); resumes it when opening again."""

    def __init__(self, settings: Settings, proxy: Any) -> None:
        super().__init__(settings, "bounded-setup test")
        self.proxy = proxy
        self.opens = 0

    def open(self, timeout: float, retry: bool = True) -> None:
        self.opens += 1
        if self.opens > 1:
            self.proxy.resume()
        super().open(timeout, retry)
        if self.opens == 1:
            self.proxy.stall()


class Echo(RequestHandler):
    types_echo: ClassVar[list] = []

    def export_echo(self, value: Any) -> dict:
        return S_OK(value)


@pytest.fixture
def forget_failed_nodes():
    yield
    connection._failed_at.clear()


def test_a_silent_channel_operation_is_bounded_and_drops_the_connection(
        node, proxies, forget_failed_nodes):
    proxy = proxies(node.port)
    driver = PikaDriver(settings_for(proxy.url(node.url)), "bounded-setup test")
    driver.open(5)
    proxy.stall()
    started = time.monotonic()
    with pytest.raises(OperationTimedOut, match="did not answer a channel operation"):
        with driver.bounded(1.0):
            driver.declare_reply_queue("dirac.test.bounded", 10_000)
    # bounded, not forever (the old behaviour): generous, the box is loaded
    assert time.monotonic() - started < 20
    assert not driver.is_open
    assert f"127.0.0.1:{proxy.port}" in connection._failed_at


def test_the_client_gives_a_silent_node_up_and_connects_again(
        node, proxies, forget_failed_nodes):
    worker = Worker({"Bounded/Echo": Echo}, settings_for(node.url), threads=2,
                    tune_allocator=False, graceful_timeout=5)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert worker.ready.wait(30)
        proxy = proxies(node.port)
        settings = settings_for(proxy.url(node.url), connect_timeout=6.0)
        driver = StallAfterOpen(settings, proxy)
        transport = RPCTransport(settings, driver=driver)
        try:
            result = transport.call("Bounded/Echo", "echo", ["through"], timeout=30)
            assert result == S_OK("through")
            assert driver.opens == 2  # the silent attempt was given up
        finally:
            transport.close()
    finally:
        worker.stop()
        thread.join(15)


def test_the_worker_gives_a_silent_node_up_and_serves(node, proxies, forget_failed_nodes):
    proxy = proxies(node.port)
    settings = settings_for(proxy.url(node.url), connect_timeout=3.0)
    driver = StallAfterOpen(settings, proxy)
    worker = Worker({"Bounded/Echo": Echo}, settings, threads=2, driver=driver,
                    tune_allocator=False, graceful_timeout=5)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert worker.ready.wait(60), "the worker never consumed"
        assert driver.opens >= 2
        transport = RPCTransport(settings_for(node.url))
        try:
            assert transport.call("Bounded/Echo", "echo", [1], timeout=20) == S_OK(1)
        finally:
            transport.close()
    finally:
        worker.stop()
        thread.join(15)


def test_a_client_whose_reply_queue_vanished_declares_it_again(node):
    """The broker cancels the consumer of a deleted queue (or of one whose node went
    down: a reply queue declared on a cluster node still shutting down).  The client
    used to stay connected and deaf, every reply dropped as unroutable (seen in the
    rolling-restart test); now it reconnects and declares its reply queue again."""
    worker = Worker({"Bounded/Echo": Echo}, settings_for(node.url), threads=2,
                    tune_allocator=False, graceful_timeout=5)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    transport = RPCTransport(settings_for(node.url, reply_mode="queue"))
    try:
        assert worker.ready.wait(30)
        assert transport.call("Bounded/Echo", "echo", [1], timeout=20) == S_OK(1)
        admin = pika.BlockingConnection(pika.URLParameters(node.url))
        try:
            admin.channel().queue_delete(transport._reply_queue)
        finally:
            admin.close()
        # the call made as the cancel arrives may be the one to notice it: EMQCONN
        second = transport.call("Bounded/Echo", "echo", [2], timeout=20)
        assert second == S_OK(2) or second["Errno"] == EMQCONN, second
        assert transport.call("Bounded/Echo", "echo", [3], timeout=20) == S_OK(3)
    finally:
        transport.close()
        worker.stop()
        thread.join(15)

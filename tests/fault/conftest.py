"""Fixtures of the fault tests: ONE private RabbitMQ node per session, proxies, workers.

Nothing here touches the shared broker on 127.0.0.1:5672: every URL points at the
private node (tests/fault/rabbitnode.py) or at a proxy in front of it.  Tests
restart that node; the ``node`` fixture makes sure it is up when a test starts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fault.faultlib import FaultPool
from fault.rabbitnode import NodeUnavailable, RabbitNode, _port_open
from fault.tcpproxy import TcpProxy


@pytest.fixture(scope="session")
def rabbit() -> Iterator[RabbitNode]:
    """The session's private node (skipped when RabbitMQ is not installed here)."""
    try:
        node = RabbitNode()
    except NodeUnavailable as exc:
        pytest.skip(str(exc))
    try:
        node.start()
    except NodeUnavailable as exc:
        node.close()
        pytest.fail(f"the private RabbitMQ node did not start: {exc}", pytrace=False)
    try:
        yield node
    finally:
        node.close()


@pytest.fixture
def node(rabbit: RabbitNode) -> RabbitNode:
    """The private node, running (a test that failed mid-restart may have left it down)."""
    if rabbit.proc is None or rabbit.proc.poll() is not None:
        rabbit.start()
    elif not _port_open(rabbit.port):
        rabbit.start_app()
    return rabbit


@pytest.fixture
def proxies() -> Iterator:
    """``proxies(upstream_port)`` makes a TcpProxy, closed after the test."""
    made: list[TcpProxy] = []

    def make(port: int) -> TcpProxy:
        proxy = TcpProxy(port)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


@pytest.fixture
def pool(node: RabbitNode, proxies, tmp_path) -> Iterator[FaultPool]:
    """Chaos workers on the private node, stopped (SIGTERM, exit 0 expected) after the test.

    Requests ``proxies`` so that the workers stop before the proxies close.
    """
    workers = FaultPool(node.url, tmp_path, private_vhost=True)
    yield workers
    problems = workers.stop_all()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)

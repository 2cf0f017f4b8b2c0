"""Fixtures of the hostile-input tests (issue 11's cases 1-13 and the property fuzzer).

``hpool``: workers of the misbehaving test handler on this module's vhost of the shared
broker.  ``hnode``: ONE private RabbitMQ node for the session (small
``max_message_size``), used by the cases that make a worker reconnect or log in in a
loop, so the shared broker never sees that traffic; ``node_pool`` gives a test a fresh
vhost there and workers on it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fault.rabbitnode import NodeUnavailable

from hostile.hostilelib import HostileNode, HostilePool


def _stop(pool: HostilePool) -> None:
    problems = pool.stop_all()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def hpool(vhost_url: str, private_vhost: bool, tmp_path) -> Iterator[HostilePool]:
    pool = HostilePool(vhost_url, tmp_path, private_vhost)
    yield pool
    _stop(pool)


@pytest.fixture(scope="session")
def hnode() -> Iterator[HostileNode]:
    """The session's private node (RabbitNode closes it at exit too, should this fail)."""
    node = None
    try:
        node = HostileNode()
        node.start()
    except NodeUnavailable as exc:
        pytest.fail(f"no private RabbitMQ node for the hostile tests: {exc}", pytrace=False)
    yield node
    node.close()


@pytest.fixture
def node_url(hnode: HostileNode) -> str:
    """A fresh vhost on the private node (its URL)."""
    if hnode.proc is None or hnode.proc.poll() is not None:
        hnode.start()
    return hnode.fresh_vhost()


@pytest.fixture
def node_pool(node_url: str, tmp_path) -> Iterator[HostilePool]:
    pool = HostilePool(node_url, tmp_path / "node", private_vhost=True)
    yield pool
    _stop(pool)

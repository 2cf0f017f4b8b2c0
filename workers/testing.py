"""Test your handlers without a broker: a worker and clients over the in-memory driver.

::

    from diracmq.workers.testing import serve_in_memory
    from myext.MineSystem.Service.ThingHandler import ThingHandler

    def test_hello():
        with serve_in_memory({"Mine/Thing": ThingHandler}) as system:
            thing = system.client("Mine/Thing")
            assert thing.hello("you") == {"OK": True, "Value": "hello you"}

The handlers run in a real :class:`~diracmq.workers.server.Worker` (same dispatch,
checks, authorization rules, deduplication and replies as in production) in a
thread of the test process; the messages travel through
:class:`~diracmq.broker.memory_driver.MemoryBroker` instead of RabbitMQ, encoded by
the same codec.  Identity is the development mode: every caller is the broker user
it logs in as (``guest`` unless ``system.client(..., user=...)`` says otherwise),
with the properties ``users`` gives it.

This is for unit tests of handlers and of the RPC logic.  Whether the System works
against RabbitMQ is for tests against the real broker (tests/ in this repository).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from diracmq.broker.config import Settings
from diracmq.broker.memory_driver import MemoryBroker
from diracmq.client.base import Client
from diracmq.client.transport import RPCTransport, use_transport
from diracmq.workers.handler import RequestHandler
from diracmq.workers.registry import RegistryMode, RegistryView, use_registry
from diracmq.workers.server import Worker

__all__ = ["InMemorySystem", "serve_in_memory"]

_ids = itertools.count(1)


class _TestRegistry:
    """Users and their properties as a test declares them (no Configuration service)."""

    def __init__(self, users: Mapping[str, Sequence[str]]) -> None:
        self._users = {name: list(props) for name, props in users.items()}

    # Registry
    def start(self, settings: Settings) -> None:
        """Nothing to start: the users are given."""

    def current(self) -> RegistryView:
        return self  # this object is its own view

    def refresh(self) -> None:
        """Nothing to refresh."""

    # RegistryView
    @property
    def mode(self) -> RegistryMode:
        return RegistryMode.ENFORCED if self._users else RegistryMode.OPEN

    @property
    def problem(self) -> str:
        return ""

    def credentials(self, broker_user: str, requested_group: str | None) -> dict[str, Any]:
        if self._users and broker_user not in self._users:
            return {"username": "anonymous", "group": "", "properties": [],
                    "brokerUser": broker_user}
        return {"username": broker_user, "group": requested_group or "user",
                "properties": self._users.get(broker_user, []), "brokerUser": broker_user}

    def authorization(self, service: str) -> Mapping[str, Sequence[str]]:
        return {}


class InMemorySystem:
    """A worker serving ``handlers`` over an in-memory broker, and clients of it."""

    def __init__(self, handlers: Mapping[str, type[RequestHandler]], threads: int = 4,
                 users: Mapping[str, Sequence[str]] | None = None,
                 timeout: float = 30.0) -> None:
        self.broker = MemoryBroker()
        self.timeout = timeout
        self._number = next(_ids)
        self.settings = Settings(url=f"amqp://guest:guest@memory-{self._number}/%2F",
                                 rpc_timeout=timeout, reply_mode="direct")
        self.worker = Worker(dict(handlers), self.settings, threads=threads,
                             driver=self.broker.driver("worker"), name="in-memory",
                             tune_allocator=False, graceful_timeout=5.0)
        self._registry = _TestRegistry(users or {})
        self._thread: threading.Thread | None = None
        self._transports: list[RPCTransport] = []

    def start(self) -> InMemorySystem:
        """Start the worker thread; returns once it consumes its queues."""
        use_registry(self._registry)
        self._thread = threading.Thread(target=self.worker.run, name="in-memory-worker",
                                        daemon=True)
        self._thread.start()
        if not self.worker.ready.wait(10):
            raise RuntimeError("the in-memory worker did not start within 10 s")
        return self

    def client(self, service: str, user: str = "guest", timeout: float | None = None
               ) -> Client:
        """A DIRAC ``Client`` of ``service`` that calls as broker user ``user``."""
        settings = Settings(url=f"amqp://{user}:x@memory-{self._number}/%2F",
                            rpc_timeout=self.timeout, reply_mode="direct")
        transport = RPCTransport(settings, driver=self.broker.driver(user, "x"))
        use_transport(transport)
        self._transports.append(transport)
        return Client(url=service, timeout=timeout, settings=settings)

    def stop(self) -> None:
        """Stop the worker (answering what it runs) and close the clients."""
        for transport in self._transports:
            transport.close()
        self.worker.stop()
        if self._thread is not None:
            self._thread.join(10)
        use_registry(None)


@contextlib.contextmanager
def serve_in_memory(handlers: Mapping[str, type[RequestHandler]], threads: int = 4,
                    users: Mapping[str, Sequence[str]] | None = None,
                    timeout: float = 30.0) -> Iterator[InMemorySystem]:
    """Serve ``handlers`` (``{"System/Service": HandlerClass}``) for the ``with`` block.

    ``users`` maps broker users to their DIRAC properties; without it every caller is
    accepted with no properties (development mode).  ``timeout`` is the clients'
    default call timeout.
    """
    system = InMemorySystem(handlers, threads=threads, users=users, timeout=timeout)
    system.start()
    try:
        yield system
    finally:
        system.stop()

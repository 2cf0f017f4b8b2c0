"""An in-memory broker and its driver: the real driver's twin, for tests without RabbitMQ.

:class:`MemoryBroker` keeps exchanges, queues and consumers in this process, with the
parts of RabbitMQ's behaviour the RPC relies on:

* the request exchange routes by routing key to the queues bound to it; the default
  exchange routes to the queue of that name; a ``mandatory`` message nobody can take
  comes back (:class:`~diracmq.broker.driver.Returned`);
* ``user_id`` must be the publishing connection's user (else the channel is closed,
  as RabbitMQ does: :class:`~diracmq.broker.driver.BrokerRefused`);
* manual acknowledgement with a per-consumer prefetch; a connection that closes gives
  its unacknowledged deliveries back, marked ``redelivered``;
* a service queue's rejected (``requeue=False``) messages go round the retry loop and
  come back with the broker's death count in ``x-death``;
* Direct Reply-to: a consumer of ``amq.rabbitmq.reply-to`` gets replies published to
  the per-channel name the broker stamped into its requests' ``reply_to``;
* a deleted queue cancels its consumers, and a driver whose consumer was cancelled
  loses its connection at its next drive (as the pika driver makes it);
* publisher confirms (``confirms = True``): every request taken into a queue (or
  returned) is confirmed; :attr:`MemoryBroker.refuse_requests` makes it refuse
  (``basic.nack``) the next ones, and :attr:`MemoryBroker.swallow_requests` makes it
  drop the next ones without a word (as RabbitMQ did in rabbitmq-server#9208), for
  tests of what the client does then.

What it does not model: persistence, message TTLs, flow control, clustering, and
the wire encoding (properties are objects, never bytes).  Real-broker tests remain
the proof that a feature works; this twin makes the client's and the worker's logic
(leader/follower waiting, timeouts, dispatch, dedup, poison accounting, shutdown)
testable in milliseconds, and lets users test their handlers
(:mod:`diracmq.workers.testing`).
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import heapq
import itertools
import struct
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from diracmq.broker import topology
from diracmq.broker.driver import (
    BrokerRefused,
    BrokerUnreachable,
    ConnectionLost,
    Delivery,
    Driver,
    NotFound,
    QueueKind,
    Returned,
)

__all__ = ["MemoryBroker", "MemoryDriver", "MemoryProperties"]


@dataclasses.dataclass(slots=True)
class MemoryProperties:
    """The basic properties of a message in the memory broker (fields as pika's)."""

    content_type: Any = None
    correlation_id: Any = None
    message_id: Any = None
    reply_to: Any = None
    user_id: Any = None
    headers: Any = None
    expiration: Any = None
    delivery_mode: Any = None


@dataclasses.dataclass(slots=True)
class _Message:
    exchange: str
    routing_key: str
    properties: MemoryProperties
    body: bytes
    redelivered: bool = False


@dataclasses.dataclass(slots=True, eq=False)
class _Consumer:
    driver: MemoryDriver
    queue: str
    on_delivery: Callable[[Delivery], None]
    auto_ack: bool
    prefetch: int
    tag: str
    unacked: int = 0


@dataclasses.dataclass(slots=True, eq=False)
class _Queue:
    name: str
    arguments: dict[str, Any]
    messages: collections.deque[_Message] = dataclasses.field(
        default_factory=collections.deque)
    consumers: list[_Consumer] = dataclasses.field(default_factory=list)
    next_consumer: int = 0


def _fake_pid(number: int) -> str:
    """Base64 of an Erlang NEW_PID_EXT term, as RabbitMQ names Direct Reply-to channels."""
    node = b"memory@localhost"
    term = bytes((131, 88, 119, len(node))) + node + struct.pack(">III", number, 0, 1)
    return base64.b64encode(term).decode()


class MemoryBroker:
    """One in-memory broker, shared by any number of :class:`MemoryDriver` connections."""

    def __init__(self, users: Mapping[str, str] | None = None) -> None:
        #: user -> password; None accepts any user.
        self.users = dict(users) if users is not None else None
        self.lock = threading.RLock()
        self.exchanges: set[str] = {""}
        self.queues: dict[str, _Queue] = {}
        self.bindings: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
        self._ids = itertools.count(1)
        #: Direct Reply-to names -> the consumer they reach.
        self._direct: dict[str, _Consumer] = {}
        self.available = True  # False: connections are refused (a broker that is down)
        #: Requests to refuse (``basic.nack``, not queued) before taking any again.
        self.refuse_requests = 0
        #: Requests to drop without a word (neither queued nor confirmed).
        self.swallow_requests = 0

    def driver(self, user: str = "guest", password: str = "guest") -> MemoryDriver:
        """A new connection (not opened yet) logging in as ``user``."""
        return MemoryDriver(self, user, password)

    def delete_queue(self, name: str) -> None:
        """Delete a queue; its consumers are cancelled (``basic.cancel``), as RabbitMQ
        does when a queue is deleted or its node goes down."""
        with self.lock:
            queue = self.queues.pop(name, None)
            if queue is None:
                return
            for consumer in queue.consumers:
                consumer.driver._cancelled(name)

    # ------------------------------------------------------------ broker side
    def _route(self, exchange: str, routing_key: str) -> list[_Queue]:
        if exchange == "":
            queue = self.queues.get(routing_key)
            return [queue] if queue is not None else []
        return [self.queues[name] for name in self.bindings.get((exchange, routing_key), ())
                if name in self.queues]

    def _publish(self, sender: MemoryDriver, message: _Message, mandatory: bool) -> None:
        if message.exchange == "" and message.routing_key.startswith(
                topology.DIRECT_REPLY_TO + "."):
            consumer = self._direct.get(message.routing_key)
            if consumer is not None and consumer.driver.is_open:
                consumer.driver._deliver(consumer, message, self)
            return  # unknown names are dropped, as RabbitMQ drops them
        if message.exchange not in self.exchanges:
            raise BrokerRefused(404, f"NOT_FOUND - no exchange '{message.exchange}'")
        queues = self._route(message.exchange, message.routing_key)
        if not queues:
            if mandatory:
                with sender._cond:
                    sender._events.append(("return", Returned(
                        message.routing_key, message.properties.correlation_id, "NO_ROUTE")))
            return
        for queue in queues:
            queue.messages.append(dataclasses.replace(message))
            self._dispatch(queue)

    def _dispatch(self, queue: _Queue) -> None:
        """Hand queued messages to consumers with room (round robin)."""
        while queue.messages and queue.consumers:
            for _ in range(len(queue.consumers)):
                consumer = queue.consumers[queue.next_consumer % len(queue.consumers)]
                queue.next_consumer += 1
                if consumer.auto_ack or not consumer.prefetch \
                        or consumer.unacked < consumer.prefetch:
                    break
            else:
                return  # every consumer is full
            message = queue.messages.popleft()
            if not consumer.auto_ack:
                consumer.unacked += 1
            consumer.driver._deliver(consumer, message, self)

    def _dead_letter(self, queue: _Queue, message: _Message) -> None:
        """A rejected message of a service queue goes round the retry loop."""
        if queue.arguments.get("x-dead-letter-exchange") != topology.RETRY_EXCHANGE:
            return
        headers = dict(message.properties.headers or {})
        deaths = [dict(d) for d in headers.get("x-death", []) if isinstance(d, dict)]
        for death in deaths:
            if death.get("queue") == queue.name and death.get("reason") == "rejected":
                death["count"] = int(death.get("count", 0)) + 1
                break
        else:
            deaths.insert(0, {"queue": queue.name, "reason": "rejected", "count": 1,
                              "exchange": message.exchange,
                              "routing-keys": [message.routing_key]})
        headers["x-death"] = deaths
        properties = dataclasses.replace(message.properties, headers=headers)
        back = _Message(message.exchange, message.routing_key, properties, message.body)
        for target in self._route(message.exchange, message.routing_key):
            target.messages.append(back)
            self._dispatch(target)


class MemoryDriver(Driver):
    """A connection to a :class:`MemoryBroker` (see the module doc)."""

    def __init__(self, broker: MemoryBroker, user: str, password: str) -> None:
        self.broker = broker
        self.user = user
        self._password = password
        self._open = False
        self._cond = threading.Condition(threading.Lock())
        #: Events for the I/O thread: ("delivery", consumer, message, tag),
        #: ("return", Returned), ("call", callback).
        self._events: collections.deque[tuple[Any, ...]] = collections.deque()
        self._outbox: list[tuple[Any, ...]] = []
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_ids = itertools.count()
        self._consumers: list[_Consumer] = []
        self._unacked: dict[int, tuple[_Consumer, _Message]] = {}
        self._tags = itertools.count(1)
        self._direct_name: str | None = None

    # ---------------------------------------------------------------- lifecycle
    def open(self, timeout: float, retry: bool = True) -> None:
        self.close()
        broker = self.broker
        if not broker.available:
            raise BrokerUnreachable("the memory broker is down")
        if broker.users is not None and broker.users.get(self.user) != self._password:
            raise BrokerUnreachable(f"the memory broker refused user {self.user!r}")
        self._open = True
        self.generation += 1

    @property
    def is_open(self) -> bool:
        return self._open

    def close(self) -> None:
        if not self._open:
            return
        broker = self.broker
        with broker.lock:
            self._open = False
            requeued: dict[str, list[_Message]] = collections.defaultdict(list)
            for consumer, message in self._unacked.values():
                message.redelivered = True
                requeued[consumer.queue].append(message)
            self._unacked.clear()
            for consumer in self._consumers:
                queue = broker.queues.get(consumer.queue)
                if queue is not None and consumer in queue.consumers:
                    queue.consumers.remove(consumer)
            self._consumers.clear()
            if self._direct_name is not None:
                broker._direct.pop(self._direct_name, None)
                self._direct_name = None
            for name, messages in requeued.items():
                queue = broker.queues.get(name)
                if queue is not None:
                    queue.messages.extendleft(reversed(messages))
                    broker._dispatch(queue)
        with self._cond:
            self._events.clear()
            self._outbox.clear()
            self._timers.clear()
            self._cond.notify_all()

    def _require(self) -> None:
        if not self._open:
            raise ConnectionLost("not connected")

    # ---------------------------------------------------------------- topology
    def check_exchange(self, name: str) -> None:
        self._require()
        if name not in self.broker.exchanges:
            raise NotFound(f"no exchange {name!r}")

    def declare_service_queue(self, service: str, queue_type: str = "classic") -> str:
        self._require()
        name = topology.service_queue_name(service)
        broker = self.broker
        with broker.lock:
            broker.exchanges.update({topology.REQUEST_EXCHANGE, topology.RETRY_EXCHANGE})
            arguments = {"x-queue-type": queue_type,
                         "x-dead-letter-exchange": topology.RETRY_EXCHANGE}
            queue = broker.queues.setdefault(name, _Queue(name, arguments))
            if queue.arguments != arguments:
                raise BrokerRefused(406, f"PRECONDITION_FAILED - inequivalent arg for {name}")
            broker.queues.setdefault(topology.PARKING_QUEUE, _Queue(topology.PARKING_QUEUE, {}))
            if name not in broker.bindings[(topology.REQUEST_EXCHANGE, service)]:
                broker.bindings[(topology.REQUEST_EXCHANGE, service)].append(name)
        return name

    def declare_reply_queue(self, name: str, expires_ms: int) -> None:
        self._require()
        with self.broker.lock:
            self.broker.queues.setdefault(name, _Queue(name, {"x-expires": expires_ms}))

    def delete_queue(self, name: str) -> None:
        self._require()
        self.broker.delete_queue(name)

    def consumer_count(self, queue: str, timeout: float = 1.5) -> int | None:
        with self.broker.lock:
            found = self.broker.queues.get(queue)
            return None if found is None else len(found.consumers)

    # ---------------------------------------------------------------- consuming
    def consume(self, queue: str, on_delivery: Callable[[Delivery], None],
                kind: QueueKind = QueueKind.MANUAL_ACK, prefetch: int = 0,
                exclusive: bool = False) -> str:
        self._require()
        broker = self.broker
        tag = f"ctag{next(self._tags)}"
        consumer = _Consumer(self, queue, on_delivery, kind is QueueKind.AUTO_ACK,
                             prefetch, tag)
        with broker.lock:
            if queue == topology.DIRECT_REPLY_TO:
                self._direct_name = (f"{topology.DIRECT_REPLY_TO}."
                                     f"{_fake_pid(next(broker._ids))}.{tag}")
                broker._direct[self._direct_name] = consumer
                self._consumers.append(consumer)
                return tag
            found = broker.queues.get(queue)
            if found is None:
                raise BrokerRefused(404, f"NOT_FOUND - no queue '{queue}'")
            if exclusive and found.consumers:
                raise BrokerRefused(403, f"ACCESS_REFUSED - queue '{queue}' in exclusive use")
            found.consumers.append(consumer)
            self._consumers.append(consumer)
            broker._dispatch(found)
        return tag

    def cancel_consumers(self) -> None:
        with self.broker.lock:
            for consumer in self._consumers:
                queue = self.broker.queues.get(consumer.queue)
                if queue is not None and consumer in queue.consumers:
                    queue.consumers.remove(consumer)

    def _cancelled(self, queue: str) -> None:
        """Broker side: a consumer of ours was cancelled; the next drive says so."""
        with self._cond:
            self._events.append(("cancelled", queue))
            self._cond.notify_all()

    def _deliver(self, consumer: _Consumer, message: _Message, broker: MemoryBroker) -> None:
        """Broker side (broker lock held): queue a delivery for this driver's I/O thread."""
        tag = next(self._tags)
        if not consumer.auto_ack:
            self._unacked[tag] = (consumer, message)
        with self._cond:
            self._events.append(("delivery", consumer, message, tag))
            self._cond.notify_all()

    # -------------------------------------------------------------- publishing
    def publish_request(self, exchange: str, routing_key: str, body: bytes, *,
                        reply_to: str, correlation_id: str, expiration_ms: int,
                        deadline_ms: int, user_id: str, group: str | None,
                        extra_headers: bytes = b"") -> None:
        headers: dict[str, Any] = {"x-deadline": deadline_ms}
        if group:
            headers["x-dirac-group"] = group
        if reply_to == topology.DIRECT_REPLY_TO:
            reply_to = self._direct_name or reply_to
        self._queue_publish(exchange, routing_key, body, MemoryProperties(
            content_type="application/x-msgpack", correlation_id=correlation_id,
            message_id=correlation_id, reply_to=reply_to, user_id=user_id, headers=headers,
            expiration=str(expiration_ms), delivery_mode=1), True, correlation_id)

    def publish_reply(self, reply_to: str, correlation_id: Any, body: bytes,
                      mandatory: bool) -> None:
        if correlation_id is not None and not isinstance(correlation_id, str):
            raise ValueError(f"correlation_id {correlation_id!r} is not a string")
        self._queue_publish("", reply_to, body, MemoryProperties(
            content_type="application/x-msgpack", correlation_id=correlation_id), mandatory)

    def publish_raw(self, routing_key: str, body: bytes, *, content_type: Any = None,
                    message_id: Any = None, correlation_id: Any = None,
                    headers: Mapping[str, Any] | None = None) -> None:
        self._queue_publish("", routing_key, body, MemoryProperties(
            content_type=content_type, message_id=message_id, correlation_id=correlation_id,
            headers=dict(headers) if headers else None), False)

    def publish(self, exchange: str, routing_key: str, body: bytes,
                properties: MemoryProperties, mandatory: bool = False) -> None:
        """Any message (tests send hostile ones this way)."""
        self._queue_publish(exchange, routing_key, body, properties, mandatory)

    def _queue_publish(self, exchange: str, routing_key: str, body: bytes,
                       properties: MemoryProperties, mandatory: bool,
                       request_id: str | None = None) -> None:
        self._require()
        self._outbox.append(("publish", _Message(exchange, routing_key, properties, body),
                             mandatory, request_id))

    def _confirm(self, request_id: str, accepted: bool) -> None:
        """Queue a confirm (after any return of the same message, as RabbitMQ sends)."""
        with self._cond:
            self._events.append(("confirm", request_id, accepted))
            self._cond.notify_all()

    def ack(self, delivery: Delivery) -> None:
        if delivery.generation == self.generation and self._open:
            self._outbox.append(("ack", delivery.tag))

    def reject(self, delivery: Delivery, requeue: bool) -> None:
        if delivery.generation == self.generation and self._open:
            self._outbox.append(("reject", delivery.tag, requeue))

    # -------------------------------------------------------------------- I/O
    def flush(self, read_first: bool = True) -> None:
        self._require()
        outbox, self._outbox = self._outbox, []
        broker = self.broker
        with broker.lock:
            for item in outbox:
                if item[0] == "publish":
                    message: _Message = item[1]
                    if message.properties.user_id not in (None, self.user):
                        self.close()  # the broker closes the channel; unacked go back
                        raise BrokerRefused(406, "PRECONDITION_FAILED - user_id property set "
                                                 "to a name other than the authenticated user")
                    request_id = item[3] if len(item) > 3 else None
                    if request_id is not None and broker.swallow_requests > 0:
                        broker.swallow_requests -= 1
                        continue
                    if request_id is not None and broker.refuse_requests > 0:
                        broker.refuse_requests -= 1
                        if self.confirms:
                            self._confirm(request_id, False)
                        continue
                    broker._publish(self, message, item[2])
                    if request_id is not None and self.confirms:
                        self._confirm(request_id, True)
                    continue
                entry = self._unacked.pop(item[1], None)
                if entry is None:
                    continue
                consumer, message = entry
                consumer.unacked -= 1
                queue = broker.queues.get(consumer.queue)
                if item[0] == "reject" and queue is not None:
                    if item[2]:
                        message.redelivered = True
                        queue.messages.appendleft(message)
                    else:
                        broker._dead_letter(queue, message)
                if queue is not None:
                    broker._dispatch(queue)

    def drive(self, timeout: float | None) -> None:
        self.flush()
        until = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._events and self._open:
                now = time.monotonic()
                due = self._timers[0][0] if self._timers else None
                if due is not None and due <= now:
                    break
                wait_until = min(x for x in (until, due) if x is not None) \
                    if (until is not None or due is not None) else None
                if wait_until is not None and wait_until <= now:
                    break
                self._cond.wait(None if wait_until is None else wait_until - now)
            events = list(self._events)
            self._events.clear()
            now = time.monotonic()
            timers = []
            while self._timers and self._timers[0][0] <= now:
                timers.append(heapq.heappop(self._timers)[2])
        if not self._open:
            raise ConnectionLost("connection closed")
        cancelled = [event[1] for event in events if event[0] == "cancelled"]
        if cancelled:
            # as the pika driver: a consumer the broker cancelled loses the connection
            self.close()
            raise ConnectionLost(f"the broker cancelled our consumer of queue {cancelled[0]!r}")
        for event in events:
            kind = event[0]
            if kind == "delivery":
                consumer, message, tag = event[1], event[2], event[3]
                consumer.on_delivery(Delivery(
                    consumer.queue, tag, message.redelivered, message.routing_key,
                    message.properties, message.body, None, self.generation))
            elif kind == "return":
                if self.on_return is not None:
                    self.on_return(event[1])
            elif kind == "confirm":
                if self.on_confirm is not None:
                    self.on_confirm(event[1], event[2])
            else:
                event[1]()
        for callback in timers:
            callback()

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        self._require()
        with self._cond:
            heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_ids),
                                          callback))
            self._cond.notify_all()

    def call_threadsafe(self, callback: Callable[[], None]) -> None:
        if not self._open:
            raise ConnectionLost("not connected")
        with self._cond:
            self._events.append(("call", callback))
            self._cond.notify_all()

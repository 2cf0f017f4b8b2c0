"""The driver boundary: everything the RPC logic asks of an AMQP connection.

The client (client/transport.py) and the worker (workers/server.py) hold RPC logic
only: calls and their deadlines, scheduling, deduplication, poison accounting,
reply-then-ack.  Whatever touches the broker goes through one :class:`Driver`: one
connection with one channel.  Two implementations exist:

* :class:`diracmq.broker.pika_driver.PikaDriver`, the real one (pika's
  ``BlockingConnection``, with the project's syscall savings switched on when it is
  made);
* :class:`diracmq.broker.memory_driver.MemoryDriver`, an in-memory twin with the same
  semantics (queues, acks, redelivery, returns, Direct Reply-to), for unit tests of the
  RPC logic and for users testing their handlers without a broker.

Threading rule (the same for both): a driver is used by one thread at a time, the
thread that *owns its I/O*.  The only calls another thread may make are :meth:`wake`
and :meth:`call_threadsafe`.  Who owns the I/O is the caller's business: the client's
leader/follower rule, the worker's I/O lock.

Publishes, acks and rejects are queued and leave with the next :meth:`Driver.drive`,
in the order they were made: a reply and its ack leave together, and the broker sees
the reply first.

Publisher confirms (``confirms = True`` before :meth:`Driver.open`): the broker
acknowledges every request it has taken into its queue (``basic.ack``) or refuses it
(``basic.nack``); the driver passes each outcome to :attr:`Driver.on_confirm` with the
request's correlation id, asynchronously, on the I/O thread, inside :meth:`drive`:
nobody waits for a confirm per publish.  A request neither confirmed nor refused when
the connection dies may or may not be in the queue; the caller decides what to do.

Every channel operation (declarations, consume, QoS, opening the channel) can be
bounded with :meth:`Driver.bounded`: a broker node that accepts the connection but
cannot answer (a quorum queue without its leader, a paused minority node) costs at
most that time, then :class:`OperationTimedOut`, and the node is tried last at the
next :meth:`open`.
"""

from __future__ import annotations

import abc
import contextlib
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "BrokerRefused",
    "BrokerUnreachable",
    "ConnectionLost",
    "Delivery",
    "Driver",
    "DriverError",
    "NotFound",
    "OperationTimedOut",
    "Properties",
    "QueueKind",
    "Returned",
]


class DriverError(Exception):
    """Base of the errors a driver raises."""


class BrokerUnreachable(DriverError, ConnectionError):
    """No connection could be made within the time allowed (or the login was refused)."""


class ConnectionLost(DriverError, ConnectionError):
    """The connection or its channel is gone; everything unacknowledged goes back to the
    broker.  The driver must be :meth:`Driver.open`-ed again before further use."""


class BrokerRefused(ConnectionLost):
    """The broker closed the channel or connection because of something we sent
    (``reply_code`` says what: 406 message too large, 404 no such exchange...)."""

    def __init__(self, reply_code: int, reply_text: str) -> None:
        super().__init__(f"{reply_code} {reply_text}")
        self.reply_code = reply_code
        self.reply_text = reply_text


class OperationTimedOut(ConnectionLost):
    """A channel operation got no answer within its bound (:meth:`Driver.bounded`); the
    connection was dropped and its node goes last in the next :meth:`Driver.open`."""


class NotFound(DriverError, LookupError):
    """A passive declaration found nothing of that name (an exchange or a queue)."""


class QueueKind(enum.Enum):
    """How a consumer acknowledges."""

    #: Acknowledged by the consumer (requests: at least once).
    MANUAL_ACK = "manual"
    #: Acknowledged on delivery (replies: a lost reply is a timed-out call anyway).
    AUTO_ACK = "auto"


class Properties(Protocol):
    """The AMQP basic properties of a received message, as the RPC logic reads them.

    Anything here came from another broker user: every field may hold any type
    (``None`` when absent).
    """

    content_type: Any
    correlation_id: Any
    message_id: Any
    reply_to: Any
    user_id: Any
    headers: Any
    expiration: Any


@dataclass(slots=True)
class Delivery:
    """One message delivered to a consumer."""

    #: Which consumer (queue) it came from.
    queue: str
    #: For :meth:`Driver.ack` / :meth:`Driver.reject`; meaningless with AUTO_ACK.
    tag: int
    #: The broker delivered it before (to a consumer that did not acknowledge it).
    redelivered: bool
    routing_key: str
    properties: Properties
    body: bytes
    #: Why the properties could not be decoded (then they are all None), else None.
    #: Valid AMQP the driver's decoder cannot represent (a timestamp past year 9999,
    #: tables nested thousands deep) must cost that message only, not the connection.
    undecodable: str | None = None
    #: The driver's connection generation the delivery belongs to; an ack for an older
    #: generation is dropped (the broker has requeued it already).
    generation: int = 0


@dataclass(slots=True)
class Returned:
    """A ``mandatory`` message the broker could not route."""

    routing_key: str
    correlation_id: Any
    reply_text: str


class Driver(abc.ABC):
    """One AMQP connection and channel, used by one thread at a time (see module doc)."""

    #: The broker user this driver logs in as (what the broker stamps into ``user_id``).
    user: str = ""
    #: Increases at every successful :meth:`open`.
    generation: int = 0
    #: Called (on the I/O thread) with every :class:`Returned` message.
    on_return: Callable[[Returned], None] | None = None
    #: Ask the broker to confirm every request (publisher confirms), from the next
    #: :meth:`open` on.  Only requests are tracked: replies and raw publishes are not.
    confirms: bool = False
    #: With :attr:`confirms`: called (on the I/O thread, inside :meth:`drive` or
    #: :meth:`flush`) with ``(correlation_id, accepted)`` for every request the broker
    #: confirmed (True) or refused (``basic.nack``: False).  A returned request is
    #: confirmed too, after its :attr:`on_return`.
    on_confirm: Callable[[str, bool], None] | None = None

    # ---------------------------------------------------------------- lifecycle
    @abc.abstractmethod
    def open(self, timeout: float, retry: bool = True) -> None:
        """Connect (retrying within ``timeout``; one attempt with ``retry=False``) and
        open the channel.

        Raises :class:`BrokerUnreachable`.  Consumers of a previous connection are not
        restored: the caller declares and consumes again.
        """

    @property
    @abc.abstractmethod
    def is_open(self) -> bool:
        """Whether the connection and its channel are usable."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection; never raises.  Unacknowledged deliveries are requeued."""

    def bounded(self, seconds: float) -> contextlib.AbstractContextManager[None]:
        """Bound the channel operations made inside the ``with`` block to ``seconds`` in
        all (at least 0.1 s): past it the connection is dropped and the operation
        waiting raises :class:`OperationTimedOut`.  A driver whose operations never
        block (the in-memory one) needs no bound."""
        return contextlib.nullcontext()

    # ---------------------------------------------------------------- topology
    @abc.abstractmethod
    def check_exchange(self, name: str) -> None:
        """Raise :class:`NotFound` if exchange ``name`` does not exist."""

    @abc.abstractmethod
    def declare_service_queue(self, service: str, queue_type: str = "classic") -> str:
        """Declare a service's request queue, its binding and the retry/parking
        topology; return the queue name.  :class:`BrokerRefused` if a queue of that name
        exists with other arguments."""

    @abc.abstractmethod
    def declare_reply_queue(self, name: str, expires_ms: int) -> None:
        """Declare a client's own (non-durable, expiring) reply queue."""

    @abc.abstractmethod
    def delete_queue(self, name: str) -> None:
        """Delete a queue (the client's reply queue at close)."""

    @abc.abstractmethod
    def consumer_count(self, queue: str, timeout: float = 1.5) -> int | None:
        """Consumers of ``queue`` now, or None when it does not exist or cannot be
        asked.  Safe to call from a thread that does not own the I/O (it may use a
        short-lived connection of its own)."""

    # ---------------------------------------------------------------- consuming
    @abc.abstractmethod
    def consume(self, queue: str, on_delivery: Callable[[Delivery], None],
                kind: QueueKind = QueueKind.MANUAL_ACK, prefetch: int = 0,
                exclusive: bool = False) -> str:
        """Start consuming ``queue``; ``on_delivery`` runs on the I/O thread inside
        :meth:`drive`.  ``prefetch`` (manual ack only) bounds unacknowledged deliveries
        of this consumer.  Returns the consumer tag."""

    @abc.abstractmethod
    def cancel_consumers(self) -> None:
        """Stop every consumer (deliveries already received stay to be acked)."""

    # -------------------------------------------------------------- publishing
    @abc.abstractmethod
    def publish_request(self, exchange: str, routing_key: str, body: bytes, *,
                        reply_to: str, correlation_id: str, expiration_ms: int,
                        deadline_ms: int, user_id: str, group: str | None,
                        extra_headers: bytes = b"") -> None:
        """Queue a request (mandatory, transient) for the next :meth:`drive`.

        ``extra_headers``: header table entries, AMQP-encoded, added after the fixed
        ones (a caller's trace context, client/context.py)."""

    @abc.abstractmethod
    def publish_reply(self, reply_to: str, correlation_id: Any, body: bytes,
                      mandatory: bool) -> None:
        """Queue a reply to ``reply_to`` through the default exchange."""

    @abc.abstractmethod
    def publish_raw(self, routing_key: str, body: bytes, *, content_type: Any = None,
                    message_id: Any = None, correlation_id: Any = None,
                    headers: Mapping[str, Any] | None = None) -> None:
        """Queue a message to queue ``routing_key`` through the default exchange
        (the parking queue)."""

    @abc.abstractmethod
    def ack(self, delivery: Delivery) -> None:
        """Queue the acknowledgement of ``delivery`` (dropped if of an older generation)."""

    @abc.abstractmethod
    def reject(self, delivery: Delivery, requeue: bool) -> None:
        """Queue a reject; ``requeue=False`` dead-letters it (the retry loop)."""

    # -------------------------------------------------------------------- I/O
    @abc.abstractmethod
    def drive(self, timeout: float | None) -> None:
        """Send what is queued, then handle what arrives until an event (a delivery, a
        return, a threadsafe callback, a timer) or ``timeout`` seconds; ``None`` waits
        for an event.  Raises :class:`ConnectionLost` (or :class:`BrokerRefused`), also
        when the broker cancelled one of our consumers (its queue deleted, or gone with
        its node): the caller connects and consumes again."""

    @abc.abstractmethod
    def flush(self, read_first: bool = True) -> None:
        """Send what is queued without waiting for anything.

        With ``read_first`` what the broker already sent is read first, so a close or
        a cut it announced shows here (:class:`ConnectionLost`) before the caller
        counts what it queued as sent (a client's requests).  Without it (a worker's
        replies, which nothing counts on) the frames go to the kernel at once, and a
        dead connection shows at the next :meth:`drive`.
        """

    @abc.abstractmethod
    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the I/O thread after ``delay`` seconds (ends a drive)."""

    @abc.abstractmethod
    def call_threadsafe(self, callback: Callable[[], None]) -> None:
        """From any thread: run ``callback`` on the I/O thread at its next drive (and
        end that drive).  Raises :class:`ConnectionLost` when the connection is gone."""

    def wake(self) -> None:
        """From any thread: make a running :meth:`drive` return soon."""
        try:
            self.call_threadsafe(_nothing)
        except ConnectionLost:
            pass


def _nothing() -> None:
    """A callback whose only effect is to end a drive."""

"""The real driver: pika's ``BlockingConnection`` behind :class:`~diracmq.broker.driver.Driver`.

Everything pika-specific the RPC logic used to do itself lives here: queued publishes
and acks that leave with the loop's next turn (pika 1.x's channel implementation,
pinned below 2), one shared timer instead of one per turn, broker-closed channels
turned into :class:`BrokerRefused`, and two protections against hostile peers:

* Properties pika cannot represent (an AMQP timestamp past year 9999 in a header
  table, tables nested thousands deep) make pika's frame decoder raise in the middle of
  the I/O loop: the connection is lost, the message is redelivered and kills the next
  reader too.  :class:`TolerantProperties` decodes them as "all fields None" and says
  why, so the consumer gets a :class:`Delivery` it can park, and the connection lives.
* Any other exception out of pika's loop is a :class:`ConnectionLost`, never a crash.

Publisher confirms are asynchronous: ``confirm.select`` is sent with ``nowait`` when
the channel opens (no round trip), each publish gets the channel's next sequence
number, and pika calls :meth:`PikaDriver._on_confirm_frame` from inside its I/O loop
for every ``basic.ack``/``basic.nack`` (single or ``multiple``); nothing waits for them.
BlockingChannel's own ``confirm_delivery`` would make every publish wait for its
confirm (a round trip per call), which the hot path cannot afford.

:meth:`PikaDriver.bounded` arms a timer of pika's I/O loop (the loop every blocking
channel operation spins while it waits) that terminates the stream when it fires, as
pika's own heartbeat checker does for a silent peer: the operation waiting raises, and
the driver turns that into :class:`OperationTimedOut`.

The speed-ups below the protocol (broker/gather.py's syscall savings, broker/inbound.py's
direct reading of deliveries) are switched on when a driver is made (``fast_io=True``,
the default), not at import.  With them, the driver's own publishes,
acks and rejects are corked (buffered without arming pika's writability watcher) and
released by the next :meth:`PikaDriver.flush` or :meth:`PikaDriver.drive` in one
``sendmsg``: a sequential call then costs no ``epoll_ctl`` pair and no extra loop turn
per message, in the client or the worker.

Requests, replies, acks and rejects are framed by broker/frames.py (the same bytes as
pika's framing, packed directly) and handed to pika's connection as one write; what
those functions leave to pika (a body over one frame, a channel not open, parking's
ordinary properties) goes through pika's ``basic_publish``/``basic_ack`` as before.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pika
import pika.exceptions
from diracmq.broker import codec, frames, gather, inbound, topology
from diracmq.broker.config import Settings
from diracmq.broker.connection import (
    CONNECTION_ERRORS,
    broker_user,
    close_quietly,
    connect,
    mark_failed,
)
from diracmq.broker.driver import (
    BrokerRefused,
    ConnectionLost,
    Delivery,
    Driver,
    DriverError,
    NotFound,
    OperationTimedOut,
    QueueKind,
    Returned,
)
from diracmq.broker.properties import EncodedProperties, ReplyProperties, RequestProperties
from pika import spec

__all__ = ["PikaDriver", "TolerantProperties"]

log = logging.getLogger(__name__)

_REPLY_HEAD = ReplyProperties.head(codec.CONTENT_TYPE)


class TolerantProperties(spec.BasicProperties):
    """``BasicProperties`` whose decoding never raises (see the module doc).

    On failure every field is None and :attr:`undecodable` says what went wrong.
    """

    #: Why decoding failed, or None.
    undecodable: str | None = None

    def decode(self, encoded: bytes, offset: int = 0) -> TolerantProperties:
        try:
            super().decode(encoded, offset)
        except Exception as exc:
            spec.BasicProperties.__init__(self)
            self.undecodable = f"{type(exc).__name__}: {str(exc)[:200]}"
        return self


def _install_tolerant_properties() -> None:
    # pika picks the properties class of a content header from this table
    # (pika.frame.decode_frame); the class is a drop-in subclass.
    spec.props[spec.BasicProperties.INDEX] = TolerantProperties


class _Expired(pika.exceptions.AMQPConnectionError):
    """Why :meth:`PikaDriver.bounded` terminated the stream (pika raises it as the
    connection's closing reason out of the operation that was waiting)."""


def _refused(exc: BaseException) -> ConnectionLost:
    """Our error for a pika exception raised by a lost or refused connection."""
    code = getattr(exc, "reply_code", None)
    if isinstance(exc, (pika.exceptions.ChannelClosedByBroker,
                        pika.exceptions.ConnectionClosedByBroker)) and isinstance(code, int):
        return BrokerRefused(code, str(getattr(exc, "reply_text", "")))
    return ConnectionLost(repr(exc))


class PikaDriver(Driver):
    """One pika ``BlockingConnection`` with one channel (see the module doc)."""

    def __init__(self, settings: Settings, name: str, fast_io: bool = True) -> None:
        _install_tolerant_properties()
        self._fast_io = fast_io
        if fast_io:
            gather.install()
            inbound.install()
        self.settings = settings
        self.name = name
        self.user = broker_user(settings)
        self._conn: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._impl: Any = None  # the channel implementation behind the blocking channel
        #: pika's plaintext transport under the connection, when it can be corked
        #: (broker/gather.py), else None
        self._transport: Any = None
        #: pika's "output these marshaled frames" of the connection (broker/frames.py's
        #: bytes go there), and the largest body one frame may carry; None: not open
        self._emit: Callable[[list[bytes]], None] | None = None
        self._body_max = 0
        self._timer_at: float | None = None
        self._templates: dict[tuple[str, str, str | None], tuple[bytes, bytes, bytes, bytes]] = {}
        #: With confirms: the channel's last publish sequence number, and the requests
        #: not confirmed yet (sequence number -> correlation id; None for other
        #: publishes, which use up a number too), oldest first.
        self._seq = 0
        self._unconfirmed: dict[int, str | None] = {}
        #: consumer tag -> queue, and why the broker cancelled one of our consumers
        self._consumer_queues: dict[str, str] = {}
        self._cancelled: str | None = None

    # ---------------------------------------------------------------- lifecycle
    def open(self, timeout: float, retry: bool = True) -> None:
        self.close()
        give_up = time.monotonic() + timeout
        conn = connect(self.settings, self.name, timeout=timeout, retry=retry)
        try:
            # channel.open is a round trip like any other: a node that took the
            # connection but cannot serve it must not hold us past the time allowed
            with _guard(conn, give_up - time.monotonic()):
                channel = conn.channel()
        except DriverError:
            close_quietly(conn)
            raise
        except CONNECTION_ERRORS as exc:
            close_quietly(conn)
            raise _refused(exc) from exc
        channel.add_on_return_callback(self._on_return)
        channel.add_on_cancel_callback(self._on_cancelled)
        # pika 1.x's channel implementation behind the blocking channel (pinned below 2)
        self._impl = channel._impl  # type: ignore[attr-defined]  # private in the stubs
        self._conn, self._channel = conn, channel
        transport = getattr(conn._impl, "_transport", None)  # type: ignore[attr-defined]  # pika-private
        self._transport = transport if gather.corkable(transport) else None
        # pika 1.x's Connection: _output_marshaled_frames counts the bytes (its
        # heartbeat checker reads the count) and writes them to the transport;
        # _body_max_length is frame_max less the frame's head and end, set at tune
        self._emit = conn._impl._output_marshaled_frames  # type: ignore[attr-defined]  # pika-private
        self._body_max = int(conn._impl._body_max_length)  # type: ignore[attr-defined]  # pika-private
        self._timer_at = None
        self._seq = 0
        self._unconfirmed.clear()
        self._consumer_queues.clear()
        self._cancelled = None
        if self.confirms:
            try:
                # nowait (no callback): no round trip; the broker numbers our publishes
                # from the next one on, as we do
                self._impl.confirm_delivery(self._on_confirm_frame)
            except CONNECTION_ERRORS as exc:
                self.close()
                raise _refused(exc) from exc
        self.generation += 1

    @property
    def is_open(self) -> bool:
        return (self._conn is not None and self._conn.is_open
                and self._channel is not None and self._channel.is_open)

    def close(self) -> None:
        conn, self._conn, self._channel, self._impl = self._conn, None, None, None
        self._transport = None
        self._emit = None
        self._unconfirmed.clear()  # the caller knows which requests were confirmed
        if conn is not None:
            close_quietly(conn)

    def _require(self) -> Any:
        if self._channel is None:
            raise ConnectionLost("not connected")
        return self._channel

    @contextlib.contextmanager
    def bounded(self, seconds: float) -> Iterator[None]:
        conn = self._conn
        if conn is None:
            yield
            return
        try:
            with _guard(conn, seconds):
                yield
        except OperationTimedOut:
            self.close()
            raise

    # ---------------------------------------------------------------- topology
    def check_exchange(self, name: str) -> None:
        try:
            self._require().exchange_declare(name, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            self.close()
            raise NotFound(f"no exchange {name!r} ({exc.reply_text})") from None
        except CONNECTION_ERRORS as exc:
            raise _refused(exc) from exc

    def declare_service_queue(self, service: str, queue_type: str = "classic") -> str:
        try:
            return topology.declare_service_queue(self._require(), service, queue_type)
        except CONNECTION_ERRORS as exc:
            raise _refused(exc) from exc

    def declare_reply_queue(self, name: str, expires_ms: int) -> None:
        try:
            self._require().queue_declare(name, arguments={"x-expires": expires_ms})
        except CONNECTION_ERRORS as exc:
            raise _refused(exc) from exc

    def delete_queue(self, name: str) -> None:
        try:
            self._require().queue_delete(name)
        except CONNECTION_ERRORS as exc:
            raise _refused(exc) from exc

    def consumer_count(self, queue: str, timeout: float = 1.5) -> int | None:
        # A short-lived connection of its own: the shared one may be why a call waits
        # (a silent network), and a blocking call on it would wait for heartbeats.
        try:
            conn = connect(self.settings, "diracmq consumer check", timeout=timeout)
        except (ConnectionError, *CONNECTION_ERRORS):
            return None
        try:
            frame = conn.channel().queue_declare(queue, passive=True)
            return int(frame.method.consumer_count)
        except (*CONNECTION_ERRORS, ValueError):
            return None
        finally:
            close_quietly(conn)

    # ---------------------------------------------------------------- consuming
    def consume(self, queue: str, on_delivery: Callable[[Delivery], None],
                kind: QueueKind = QueueKind.MANUAL_ACK, prefetch: int = 0,
                exclusive: bool = False) -> str:
        channel = self._require()
        generation = self.generation

        def on_read(tag: int, redelivered: bool, _exchange: Any, routing_key: Any,
                    props: Any, body: bytes) -> None:  # broker/inbound.py's deliveries
            on_delivery(Delivery(queue, tag, redelivered, routing_key, props, body,
                                 getattr(props, "undecodable", None), generation))

        def on_message(_channel: Any, method: Any, props: Any, body: bytes) -> None:
            on_read(method.delivery_tag, method.redelivered, method.exchange,
                    method.routing_key, props, body)  # pika's deliveries

        try:
            if prefetch and kind is QueueKind.MANUAL_ACK:
                # Per consumer: a channel-wide (global) limit held a worker to one or
                # two deliveries at a time on RabbitMQ 3.10.
                channel.basic_qos(prefetch_count=prefetch)
            tag = str(channel.basic_consume(queue, on_message,
                                            auto_ack=kind is QueueKind.AUTO_ACK,
                                            exclusive=exclusive))
            self._consumer_queues[tag] = queue
        except CONNECTION_ERRORS as exc:
            raise _refused(exc) from exc
        if self._fast_io:
            inbound.register(self._conn, tag, self._impl, on_read,
                             auto_ack=kind is QueueKind.AUTO_ACK)
        return tag

    def cancel_consumers(self) -> None:
        channel = self._channel
        if channel is None:
            return
        try:
            for tag in list(channel.consumer_tags):
                # pika's from now on: it rejects what comes for a cancelled consumer
                inbound.unregister(self._conn, tag)
                channel.basic_cancel(tag)
        except CONNECTION_ERRORS:
            pass

    # -------------------------------------------------------------- publishing
    # Queued on pika's channel implementation: the frames leave with the next turn
    # of the loop, together with everything queued by then (one sendmsg with
    # broker/gather.py), instead of a loop turn per message as BlockingChannel's own
    # basic_publish does.
    def publish_request(self, exchange: str, routing_key: str, body: bytes, *,
                        reply_to: str, correlation_id: str, expiration_ms: int,
                        deadline_ms: int, user_id: str, group: str | None,
                        extra_headers: bytes = b"") -> None:
        key = (reply_to, user_id, group)
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = RequestProperties.template(
                codec.CONTENT_TYPE, reply_to, user_id, group)
        if extra_headers:
            template = (template[0], template[1] + extra_headers, template[2], template[3])
        props = RequestProperties.build(template, correlation_id, expiration_ms, deadline_ms)
        self._publish(exchange, routing_key, body, props, True, correlation_id)

    def publish_reply(self, reply_to: str, correlation_id: Any, body: bytes,
                      mandatory: bool) -> None:
        self._publish("", reply_to, body, ReplyProperties.build(_REPLY_HEAD, correlation_id),
                      mandatory)

    def publish_raw(self, routing_key: str, body: bytes, *, content_type: Any = None,
                    message_id: Any = None, correlation_id: Any = None,
                    headers: Mapping[str, Any] | None = None) -> None:
        props = pika.BasicProperties(content_type=content_type, message_id=message_id,
                                     correlation_id=correlation_id,
                                     headers=dict(headers) if headers else None)
        self._publish("", routing_key, body, props, False)

    def _publish(self, exchange: str, routing_key: str, body: bytes, props: Any,
                 mandatory: bool, request_id: str | None = None) -> None:
        impl = self._impl
        if impl is None:
            raise ConnectionLost("not connected")
        data = None
        if self._emit is not None and isinstance(props, EncodedProperties) and impl.is_open:
            data = frames.publish(impl.channel_number, exchange, routing_key, mandatory,
                                  props.encode(), body, self._body_max)
        try:
            if data is not None:
                self._queue(self._emit, [data])  # type: ignore[arg-type]  # set with data
            else:
                self._queue(impl.basic_publish, exchange, routing_key, body, props, mandatory)
        except (pika.exceptions.ChannelWrongStateError,
                pika.exceptions.ConnectionWrongStateError) as exc:
            raise _refused(exc) from exc
        if self.confirms:
            self._seq += 1
            if request_id is not None:
                self._unconfirmed[self._seq] = request_id

    def _on_confirm_frame(self, frame: Any) -> None:
        """pika's I/O loop got a ``basic.ack`` or ``basic.nack`` (see the module doc)."""
        method = frame.method
        accepted = isinstance(method, spec.Basic.Ack)
        tag = int(method.delivery_tag)
        unconfirmed = self._unconfirmed
        done: list[str | None] = []
        if method.multiple:
            # oldest first: every number up to ``tag`` is settled
            while unconfirmed:
                first = next(iter(unconfirmed))
                if first > tag:
                    break
                done.append(unconfirmed.pop(first))
        else:
            done.append(unconfirmed.pop(tag, None))
        callback = self.on_confirm
        if callback is not None:
            for request_id in done:
                if request_id is not None:
                    callback(request_id, accepted)

    def ack(self, delivery: Delivery) -> None:
        impl = self._impl
        if delivery.generation == self.generation and impl is not None:
            if self._emit is not None and impl.is_open:
                self._queue(self._emit, [frames.ack(impl.channel_number, delivery.tag)])
            else:
                self._queue(impl.basic_ack, delivery.tag)  # raises as pika does

    def reject(self, delivery: Delivery, requeue: bool) -> None:
        impl = self._impl
        if delivery.generation == self.generation and impl is not None:
            if self._emit is not None and impl.is_open:
                self._queue(self._emit,
                            [frames.reject(impl.channel_number, delivery.tag, requeue)])
            else:
                self._queue(impl.basic_reject, delivery.tag, requeue)

    def _queue(self, operation: Callable[..., None], *args: Any) -> None:
        """Run one of pika's queueing channel operations with the transport corked: its
        frames wait for the next flush() or drive() (broker/gather.py)."""
        transport = self._transport
        if transport is None:
            operation(*args)
            return
        gather.cork(transport, True)
        try:
            operation(*args)
        finally:
            gather.cork(transport, False)

    # -------------------------------------------------------------------- I/O
    def drive(self, timeout: float | None) -> None:
        conn = self._conn
        if conn is None:
            raise ConnectionLost("not connected")
        try:
            if self._transport is not None:
                gather.release(self._transport)  # the loop below would wait on them
            if timeout is not None:
                self._arm_timer(max(0.0, timeout))
            # No time_limit: pika would create and cancel a timer on every turn.  An
            # event, a threadsafe callback or our own timer ends the turn.
            conn.process_data_events(time_limit=None)
        except CONNECTION_ERRORS as exc:
            self.close()
            raise _refused(exc) from exc
        except Exception as exc:  # pika's odd states must not crash the caller
            log.exception("unexpected error in pika's I/O loop; dropping the connection")
            self.close()
            raise ConnectionLost(f"unexpected error in pika's I/O loop: {exc!r}") from exc
        self._check_channel()

    def flush(self, read_first: bool = True) -> None:
        conn = self._conn
        if conn is None:
            raise ConnectionLost("not connected")
        if not read_first and self._transport is not None:
            # A rest the kernel does not take, or a failed send, is left to pika's
            # watcher: the next drive() writes it, or meets the error.
            gather.release(self._transport)
            return
        # Corked frames go out here, unless something waits to be read: the caller
        # (client/transport.py) counts its requests as published after this, so a close
        # or a cut must show first, in pika's turn below.
        if self._transport is not None and gather.send_now(self._transport):
            self._check_channel()
            return
        try:
            # What BlockingChannel.basic_publish does after queueing its frames: turn the
            # loop until they are written (a turn that also sees a close the broker sent
            # before).  process_data_events(0) would do the same and, on every call, also
            # arm and cancel a timer and dispatch callbacks that drive() dispatches next.
            conn._flush_output()  # type: ignore[attr-defined]  # pika-private, see above
        except CONNECTION_ERRORS as exc:
            self.close()
            raise _refused(exc) from exc
        except Exception as exc:
            log.exception("unexpected error in pika's I/O loop; dropping the connection")
            self.close()
            raise ConnectionLost(f"unexpected error in pika's I/O loop: {exc!r}") from exc
        self._check_channel()

    def _on_cancelled(self, frame: Any) -> None:
        """The broker cancelled one of our consumers (``basic.cancel``): its queue was
        deleted, or lived on a node that went down (a client's reply queue declared
        while the old node was still shutting down lands there, and vanishes with it)."""
        if self._conn is not None:
            inbound.unregister(self._conn, frame.method.consumer_tag)
        queue = self._consumer_queues.get(frame.method.consumer_tag, "?")
        self._cancelled = f"the broker cancelled our consumer of queue {queue!r}"

    def _check_channel(self) -> None:
        # A consumer the broker cancelled would leave the connection up and deaf to its
        # queue (replies dropped as unroutable, or requests never delivered): start
        # again on a new connection, which declares and consumes afresh.
        if self._cancelled is not None:
            cancelled = self._cancelled
            self.close()
            raise ConnectionLost(cancelled)
        # The broker closes a channel rather than the connection for some errors (a
        # message over its size limit, a publish to a missing exchange); pika only says
        # so at the next call on it.  The connection is of no use without its channel.
        channel = self._channel
        if channel is not None and channel.is_closed:
            reason = getattr(channel, "_closing_reason", None)
            self.close()
            raise _refused(reason) if reason is not None else ConnectionLost("channel closed")

    def _arm_timer(self, delay: float) -> None:
        # One timer serves many turns: a new one only when none is armed or the armed
        # one fires too late, so sequential calls arm about two a second, not one each.
        at = time.monotonic() + delay
        if self._timer_at is not None and self._timer_at <= at:
            return
        self._timer_at = at
        self._conn.call_later(delay, self._on_timer)  # type: ignore[union-attr]  # set by drive

    def _on_timer(self) -> None:
        self._timer_at = None

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        if self._conn is None:
            raise ConnectionLost("not connected")
        self._conn.call_later(delay, callback)

    def call_threadsafe(self, callback: Callable[[], None]) -> None:
        conn = self._conn
        if conn is None:
            raise ConnectionLost("not connected")
        try:
            conn.add_callback_threadsafe(callback)
        except CONNECTION_ERRORS as exc:
            raise ConnectionLost(repr(exc)) from exc

    # ------------------------------------------------------------------ returns
    def _on_return(self, _channel: Any, method: Any, props: Any, _body: bytes) -> None:
        if self.on_return is not None:
            self.on_return(Returned(method.routing_key, props.correlation_id,
                                    str(method.reply_text)))


@contextlib.contextmanager
def _guard(conn: pika.BlockingConnection, seconds: float) -> Iterator[None]:
    """Terminate ``conn``'s stream if the block takes more than ``seconds`` (>= 0.1):
    the blocking operation waiting then raises; that becomes :class:`OperationTimedOut`
    and the node is marked failed (tried last by the next connection)."""
    # pika 1.x's connection behind the blocking one (pinned below 2)
    impl: Any = conn._impl  # type: ignore[attr-defined]  # private in the stubs
    limit = max(0.1, seconds)
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        impl._terminate_stream(_Expired(f"no answer from the broker within {limit:.1f}s"))

    handle = impl._adapter_call_later(limit, expire)
    try:
        yield
    except (DriverError, *CONNECTION_ERRORS) as exc:
        if not expired:
            raise
        params = impl.params
        mark_failed(params.host, params.port)
        close_quietly(conn)
        raise OperationTimedOut(
            f"broker node {params.host}:{params.port} accepted the connection but did not "
            f"answer a channel operation within {limit:.1f}s") from exc
    finally:
        if not expired:
            with contextlib.suppress(Exception):
                impl._adapter_remove_timeout(handle)

"""The calling side's wire: one AMQP connection per process, shared by every thread.

How a call travels (the whole client half of the request path):

1. :meth:`RPCTransport.call` encodes ``{"v", "method", "args"}`` with msgpack and
   queues the request in ``_outbox``.
2. Whoever *leads* publishes it to the request exchange with the service name as
   routing key, ``reply_to`` naming this process's reply queue and a fresh
   ``correlation_id``.
3. The leader runs pika's I/O loop until its own reply has come.  Replies for other
   threads are handed to them by correlation id (:meth:`_on_reply`), each waking
   only its own caller.

Leader/follower, and why: pika's ``BlockingConnection`` is not thread-safe, so
only one thread at a time may touch it.  Handing every call to a dedicated I/O
thread costs two thread wake-ups per call (measured at 0.75-0.9x of a script that
drives the connection itself, see ../shared/design-notes.md).  Instead, the first
caller to find no leader becomes it and drives the connection from its own thread:
a sequential script never switches threads.  When the leader's reply arrives it
hands leadership to a thread still waiting.  A daemon thread takes over only when
nobody has driven the connection for ``_IDLE`` seconds, so heartbeats keep flowing
while the script sleeps or computes.

Failures become S_ERROR results, never exceptions: an unreachable broker
(``EMQCONN``, after tenacity's bounded retries), an unroutable request
(``EMQNOQUEUE``, from the mandatory flag), a lost connection (``EMQCONN``), or no
reply by the deadline (``ETIMEDOUT``).
"""

from __future__ import annotations

import atexit
import errno
import itertools
import logging
import os
import threading
import time
import uuid
from typing import Any

import pika
import pika.exceptions
from diracmq.broker import allocator, codec, topology
from diracmq.broker.config import Settings, default_settings
from diracmq.broker.connection import (
    CONNECTION_ERRORS,
    BrokerUnreachable,
    broker_user,
    close_quietly,
    connect,
    wake,
)
from diracmq.broker.derrno import EMQCONN, EMQDECODE, EMQENCODE, EMQNOQUEUE, EMQNOWORKER
from diracmq.broker.properties import RequestProperties
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType, isReturnStructure
from diracmq.client import metrics as client_metrics  # metrics hook
from diracmq.client.context import current_headers  # logging hook

__all__ = ["RPCFuture", "RPCTransport", "get_transport"]

log = logging.getLogger(__name__)

#: Seconds without I/O after which the daemon thread drives the connection.
_IDLE = 0.5

#: How often a request is put back for publishing after its connection failed.
_MAX_PUBLISH_ATTEMPTS = 3



class _NoExchange(LookupError):
    """The request exchange does not exist: nothing could route a request."""


class _Call:
    """One request in flight: the slot its reply (or failure) is put into."""

    __slots__ = ("service", "method", "corr_id", "body", "timeout", "deadline", "check_at",
                 "checked", "cond", "reply", "error", "done", "waiting", "published",
                 "attempts", "consumers", "extra")

    def __init__(self, service: str, method: str, corr_id: str, body: bytes,
                 timeout: float, cond: threading.Condition) -> None:
        self.service = service
        self.method = method
        self.corr_id = corr_id
        self.body = body
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        # Shortly before the deadline, ask the broker whether anything consumes the
        # service's queue, so a timeout can say "no worker" without running late.
        self.check_at = self.deadline - min(1.5, timeout * 0.2)
        self.checked = False
        self.cond = cond
        self.reply: bytes | None = None
        self.error: DReturnType | None = None
        self.done = False
        self.waiting = 0  # threads blocked in cond.wait() for this call
        self.published = False
        self.attempts = 0
        self.consumers: int | None = None  # consumers of the service queue, if checked
        self.extra = b""  # logging hook: header entries of client/context.py


class RPCFuture:
    """The pending result of :meth:`RPCTransport.submit`.

    :meth:`result` returns the call's S_OK/S_ERROR, as a blocking call would have;
    any thread may wait for it, and waiting drives the shared connection if nobody
    else does.
    """

    __slots__ = ("_call", "_result", "_transport")

    def __init__(self, transport: RPCTransport, call: _Call | None,
                 result: DReturnType | None = None) -> None:
        self._transport = transport
        self._call = call
        self._result = result  # set at once for a call that could not be sent

    def done(self) -> bool:
        """Whether the result is there (a reply, an error, or the deadline passed)."""
        return self._result is not None or (self._call is not None and self._call.done)

    def result(self, timeout: float | None = None) -> DReturnType:
        """The call's S_OK/S_ERROR, waiting for it if need be.

        With ``timeout`` (seconds), raise :class:`TimeoutError` if it is not there by
        then: the call stays in flight and ``result()`` may be asked again.  Without
        it, wait up to the call's own deadline, after which the result is the same
        timeout S_ERROR a blocking call gets.
        """
        if self._result is None:
            call = self._call
            assert call is not None
            transport = self._transport
            with transport._mutex:
                if not call.done:
                    until = call.deadline if timeout is None else time.monotonic() + timeout
                    transport._wait(call, until)
                if not call.done:
                    raise TimeoutError(f"no reply from {call.service}.{call.method} within "
                                       f"{timeout:g}s (still waiting for one)")
            self._result = transport._outcome(call)
        return self._result


class RPCTransport:
    """A process's connection to the broker, multiplexing the calls of all its threads."""

    def __init__(self, settings: Settings) -> None:
        settings.validate()
        # Large replies would otherwise pay for their buffers in page faults at every
        # call (broker/allocator.py); once per process.
        allocator.keep_freed_memory(settings.malloc_keep_mb)
        self.settings = settings
        self.user = broker_user(settings)
        self._mutex = threading.Lock()
        self._calls: dict[str, _Call] = {}
        self._outbox: list[_Call] = []
        self._leader: str | None = None  # "caller" or "idle" while someone drives I/O
        self._wake_sent = False
        self._conn: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._reply_to = ""
        self._reply_queue = (
            topology.reply_queue_name(self.user) if settings.reply_mode == "queue" else ""
        )
        self._last_drive = time.monotonic()
        self._closed = False
        self._idle_cond = threading.Condition(self._mutex)
        self._local = threading.local()
        # Request ids: a random prefix per transport and a counter (unique without the
        # cost of a uuid4 per call).
        self._id_prefix = uuid.uuid4().hex[:20]
        self._ids = itertools.count(1)
        self._checked_services: set[str] = set()
        self.pid = os.getpid()
        self._idle_thread: threading.Thread | None = None
        #: Replies that came after their caller gave up (timed out); they are dropped.
        self.late_replies = 0
        #: Encoded constant request properties, per connection (see broker.properties).
        self._props_template: tuple[bytes, bytes, bytes, bytes] | None = None
        #: When the timer that ends a turn of pika's loop fires (None: none armed).
        self._timer_at: float | None = None

    # ------------------------------------------------------------------ calling
    def call(self, service: str, method: str, args: tuple | list,
             timeout: float | None = None) -> DReturnType:
        """Run ``method(*args)`` on ``service`` and return its S_OK/S_ERROR; never raises."""
        call = self._prepare(service, method, args, timeout, None)
        if not isinstance(call, _Call):
            return call  # an S_ERROR: bad arguments
        with self._mutex:
            refused = self._enqueue(call)
            if refused is not None:
                return refused
            self._wait(call, call.deadline)
        return self._outcome(call)

    def submit(self, service: str, method: str, args: tuple | list,
               timeout: float | None = None) -> RPCFuture:
        """Send ``method(*args)`` to ``service`` now and return at once with its future.

        The request is published before this returns (by this thread, or by the
        thread driving the connection), so many calls can be in flight from one
        thread; :meth:`RPCFuture.result` waits for each reply.
        """
        call = self._prepare(service, method, args, timeout, threading.Condition(self._mutex))
        if not isinstance(call, _Call):
            return RPCFuture(self, None, call)
        with self._mutex:
            refused = self._enqueue(call)
            if refused is not None:
                return RPCFuture(self, None, refused)
            if self._leader is None:  # nobody drives the connection: publish it ourselves
                self._leader = "caller"
                try:
                    self._lead(call, call.deadline, publish_only=True)
                finally:
                    self._step_down()
        return RPCFuture(self, call)

    def _prepare(self, service: str, method: str, args: tuple | list,
                 timeout: float | None, cond: threading.Condition | None
                 ) -> _Call | DReturnType:
        """Check and encode one request: its :class:`_Call`, or an S_ERROR saying why not."""
        timeout = self.settings.rpc_timeout if timeout is None else float(timeout)
        if not timeout > 0:
            return S_ERROR(errno.EINVAL, f"{service}.{method}: timeout must be positive, "
                                         f"not {timeout!r}")
        try:
            if service not in self._checked_services:
                self._checked_services.add(topology.check_service_name(service))
            body = codec.packb({"v": topology.PROTOCOL_VERSION, "method": method,
                                "args": list(args)})
        except ValueError as exc:
            return S_ERROR(errno.EINVAL, str(exc))
        except codec.EncodeError as exc:
            return S_ERROR(EMQENCODE, f"cannot encode the arguments of {service}.{method}: "
                                      f"{exc}")
        if cond is None:  # one Condition per thread: call() waits on one call at a time
            cond = getattr(self._local, "cond", None)
            if cond is None:
                cond = self._local.cond = threading.Condition(self._mutex)
        call = _Call(service, method, f"{self._id_prefix}{next(self._ids):x}", body, timeout,
                     cond)
        call.extra = current_headers()  # logging hook: traceparent / delegation headers
        return call

    def _enqueue(self, call: _Call) -> DReturnType | None:
        """Register ``call`` and queue it for publishing (mutex held); an S_ERROR if closed."""
        if self._closed:
            return S_ERROR(EMQCONN, f"{call.service}.{call.method}: the RPC transport is closed")
        self._calls[call.corr_id] = call
        self._outbox.append(call)
        if self._leader is not None:
            self._wake_leader()
        return None

    def _wait(self, call: _Call, until: float) -> None:
        """Block until ``call`` is answered or ``until`` (monotonic) passes (mutex held).

        The thread drives the connection itself when nobody else does (leader), else
        sleeps on the call's condition until its reply is handed over or it is made
        leader.  At the call's deadline the call is given up.
        """
        until = min(until, call.deadline)
        while not call.done:
            now = time.monotonic()
            if now >= until:
                break
            if not call.checked and now >= call.check_at:
                call.checked = True
                if call.published:
                    self._mutex.release()
                    try:
                        call.consumers = self._consumer_count(call.service, call.deadline - now)
                    finally:
                        self._mutex.acquire()
                continue
            wake_at = until if call.checked else min(until, call.check_at)
            if self._leader is None:
                self._leader = "caller"
                try:
                    self._lead(call, wake_at)
                finally:
                    self._step_down()
            else:
                call.waiting += 1
                call.cond.wait(wake_at - now)
                call.waiting -= 1
        if not call.done and time.monotonic() >= call.deadline:
            self._calls.pop(call.corr_id, None)  # given up: a late reply is dropped
            if call in self._outbox:
                self._outbox.remove(call)
            call.done = True
        if self._leader is None:
            self._wake_one_waiting()  # we may have been chosen to lead: pass it on

    def _outcome(self, call: _Call) -> DReturnType:
        """The S_OK/S_ERROR of a finished call."""
        if call.error is not None:
            result = call.error
        elif call.reply is None:
            result = self._timeout_error(call)
        else:
            result = self._decode_reply(call)
        client_metrics.observe_call(call.service, call.method, result,  # metrics hook
                                    time.monotonic() - (call.deadline - call.timeout))
        return result

    def _timeout_error(self, call: _Call) -> DReturnType:
        """The S_ERROR for a call that got no reply, saying why when the broker can tell."""
        where = f"{call.service}.{call.method}"
        message = f"no reply from {where} within {call.timeout:g}s (request {call.corr_id})"
        if call.published:
            if call.consumers == 0:
                return S_ERROR(EMQNOWORKER, f"{message}; the queue of {call.service} has no "
                                            f"consumer: is a worker for its System running?")
        return S_ERROR(errno.ETIMEDOUT, message)

    def _consumer_count(self, service: str, budget: float) -> int | None:
        """Consumers on a service's queue (None if unknown); asked only near a deadline.

        It uses a short-lived connection of its own within ``budget`` (1.5 s at most): the shared
        one may be the reason the call timed out (a silent network), and a blocking
        pika call on it would wait for heartbeats to notice.
        """
        try:
            conn = connect(self.settings, "diracmq timeout check", timeout=min(1.5, budget))
        except (BrokerUnreachable, *CONNECTION_ERRORS):
            return None
        try:
            channel = conn.channel()
            frame = channel.queue_declare(topology.service_queue_name(service), passive=True)
            return frame.method.consumer_count
        except (*CONNECTION_ERRORS, ValueError):
            return None
        finally:
            close_quietly(conn)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (a closed transport makes no more calls)."""
        return self._closed

    def connect_now(self) -> DReturnType:
        """Open the connection now rather than at the first call: S_OK or S_ERROR(EMQCONN)."""
        with self._mutex:
            if self._closed:
                return S_ERROR(EMQCONN, "the RPC transport is closed")
            if self._leader is not None or self._conn is not None:
                return S_OK()  # connected, or a thread is connecting right now
            self._leader = "caller"
            self._mutex.release()
            try:
                self._connect(self.settings.connect_timeout)
                return S_OK()
            except BrokerUnreachable as exc:
                return S_ERROR(EMQCONN, str(exc))
            except _NoExchange as exc:
                return S_ERROR(EMQNOQUEUE, str(exc))
            except CONNECTION_ERRORS as exc:
                return S_ERROR(EMQCONN, f"cannot set up the connection to the broker: {exc!r}")
            finally:
                self._mutex.acquire()
                self._step_down()

    @staticmethod
    def _decode_reply(call: _Call) -> DReturnType:
        try:
            result = codec.unpackb(call.reply)  # type: ignore[arg-type]
        except codec.DecodeError as exc:
            return S_ERROR(EMQDECODE, f"malformed reply from {call.service}.{call.method}: {exc}")
        if not isReturnStructure(result):
            return S_ERROR(EMQDECODE, f"reply from {call.service}.{call.method} is not "
                                      f"an S_OK/S_ERROR structure")
        return result

    # --------------------------------------------------------------- leadership
    def _wake_leader(self) -> None:
        """Make the thread inside pika's I/O loop return, so it publishes our request."""
        if self._wake_sent or self._conn is None:
            return
        try:
            self._conn.add_callback_threadsafe(wake)
            self._wake_sent = True
        except CONNECTION_ERRORS:
            pass  # the leader will notice the dead connection itself

    def _step_down(self) -> None:
        """Give up leadership (mutex held): wake one caller that still waits, if any."""
        self._leader = None
        self._last_drive = time.monotonic()
        self._wake_one_waiting()

    def _wake_one_waiting(self) -> None:
        for other in self._calls.values():
            if other.waiting and not other.done:
                other.cond.notify()
                return

    def _lead(self, call: _Call | None, deadline: float, publish_only: bool = False) -> None:
        """Drive the connection until ``call`` is answered or ``deadline`` passes.

        Entered and left with the mutex held; released around every pika call.
        With ``call=None`` (the idle thread) it returns as soon as a caller appears.
        With ``publish_only`` it returns once the outbox is published (or has failed).
        """
        while call is None or not call.done:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (call is None and (self._conn is None or self._closed)):
                return
            outbox, self._outbox = self._outbox, []
            self._wake_sent = False
            self._mutex.release()
            try:
                self._io(outbox, remaining, publish_only)
            finally:
                self._mutex.acquire()
            if publish_only and (call is None or call.published or call.done):
                return
            if call is None and (self._outbox or self._closed or self._has_waiting_caller()):
                return

    def _has_waiting_caller(self) -> bool:
        return any(c.waiting and not c.done for c in self._calls.values())

    def _io(self, outbox: list[_Call], remaining: float, publish_only: bool = False) -> None:
        """Publish ``outbox`` and run pika's loop once (mutex NOT held)."""
        sent = 0
        try:
            if self._conn is None:
                self._connect(remaining)
                with self._mutex:
                    # Calls queued while we connected could not wake us (no connection
                    # yet): send them now rather than after a turn of the I/O loop.
                    outbox.extend(self._outbox)
                    self._outbox.clear()
            for sent, pending in enumerate(outbox):  # noqa: B007 - `sent` used below
                if pending.corr_id in self._calls:  # skip calls that already timed out
                    try:
                        self._publish(pending)
                    except (pika.exceptions.UnsupportedAMQPFieldException, ValueError,
                            TypeError) as exc:  # this message is bad, not the connection
                        with self._mutex:
                            self._finish(pending, S_ERROR(
                                EMQENCODE, f"cannot publish {pending.service}.{pending.method}: "
                                           f"{exc!r}"))
            sent = len(outbox)
            if publish_only:
                return  # replies are read by whoever waits for them next
            self._arm_timer(min(remaining, _IDLE))
            # No time_limit: pika would create and cancel a timer on every turn.  A reply,
            # a wake from another thread or our own timer ends the turn.
            self._conn.process_data_events(time_limit=None)  # type: ignore[union-attr]
            if self._channel.is_closed:
                # The broker closes a channel rather than the connection for some errors
                # (a request exchange that does not exist yet, say); pika only says so on
                # the next call on it.  Treat it like a lost connection: fail fast.
                raise pika.exceptions.ChannelClosed(0, "channel closed by the broker")
        except BrokerUnreachable as exc:
            self._fail_all(EMQCONN, str(exc), outbox)
        except _NoExchange as exc:
            self._fail_all(EMQNOQUEUE, str(exc), outbox)
        except CONNECTION_ERRORS as exc:
            self._on_connection_lost(exc, outbox[sent:])
        except Exception as exc:  # pika's odd states (ValueError...): never out of call()
            log.exception("unexpected error in the RPC I/O loop")
            self._on_connection_lost(exc, outbox[sent:])

    def _arm_timer(self, delay: float) -> None:
        """Make sure pika's loop returns within ``delay`` seconds (I/O owner only).

        One timer serves many calls: a new one is armed only when none is, or the one
        armed fires too late.  Sequential calls therefore arm about two a second, not
        one per call.
        """
        at = time.monotonic() + delay
        if self._timer_at is not None and self._timer_at <= at:
            return
        self._timer_at = at
        self._conn.call_later(delay, self._on_timer)  # type: ignore[union-attr]

    def _on_timer(self) -> None:
        self._timer_at = None

    def _connect(self, remaining: float) -> None:
        conn = connect(self.settings, "diracmq client",
                       timeout=min(self.settings.connect_timeout, remaining))
        try:
            channel = conn.channel()
            try:
                channel.exchange_declare(topology.REQUEST_EXCHANGE, passive=True)
            except pika.exceptions.ChannelClosedByBroker as exc:
                raise _NoExchange(
                    f"no request exchange {topology.REQUEST_EXCHANGE!r} on this broker/vhost: "
                    f"no worker has ever run here ({exc.reply_text})") from None
            channel.add_on_return_callback(self._on_return)
            if self._reply_queue:
                channel.queue_declare(self._reply_queue, arguments={
                    "x-expires": self.settings.reply_queue_expires_ms})
                channel.basic_consume(self._reply_queue, self._on_reply, auto_ack=True,
                                      exclusive=True)
                self._reply_to = self._reply_queue
            else:
                channel.basic_consume(topology.DIRECT_REPLY_TO, self._on_reply, auto_ack=True)
                self._reply_to = topology.DIRECT_REPLY_TO
        except Exception:
            close_quietly(conn)
            raise
        self._conn, self._channel = conn, channel
        self._props_template, self._timer_at = None, None
        self._start_idle_thread()

    def _publish(self, call: _Call) -> None:
        if self._props_template is None:
            self._props_template = RequestProperties.template(
                codec.CONTENT_TYPE, self._reply_to, self.user, self.settings.group)
        template = self._props_template
        if call.extra:  # logging hook: the call's own headers after the constant ones
            template = (template[0], template[1] + call.extra, template[2], template[3])
        props = RequestProperties.build(
            template, call.corr_id, max(1, int(call.timeout * 1000)),
            int((time.time() + call.timeout) * 1000))  # x-deadline: epoch ms
        self._channel.basic_publish(topology.REQUEST_EXCHANGE, call.service, call.body,
                                    props, mandatory=True)
        call.published = True

    # ----------------------------------------------------------- pika callbacks
    def _on_reply(self, _channel: Any, _method: Any, props: pika.BasicProperties,
                  body: bytes) -> None:
        with self._mutex:
            call = self._calls.pop(props.correlation_id, None)
            if call is None:
                self.late_replies += 1
                return
            call.reply = body
            call.done = True
            if call.waiting:
                call.cond.notify_all()

    def _on_return(self, _channel: Any, method: Any, props: pika.BasicProperties,
                   _body: bytes) -> None:
        """The broker could not route a request: no queue is bound for that service."""
        with self._mutex:
            call = self._calls.pop(props.correlation_id, None)
            if call is None:
                return
            call.error = S_ERROR(
                EMQNOQUEUE,
                f"no queue for service {call.service} on this broker ({method.reply_text}): "
                f"is a worker for its System running?")
            call.done = True
            if call.waiting:
                call.cond.notify_all()

    # ------------------------------------------------------------------ failures
    def _on_connection_lost(self, exc: BaseException, unsent: list[_Call]) -> None:
        """Drop the connection; fail the calls that were sent, resend the others later."""
        log.warning("connection to the broker lost: %r", exc)
        client_metrics.count_reconnection()  # metrics hook
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            close_quietly(conn)
        with self._mutex:
            retry = []
            for call in unsent:
                if not call.published and call.corr_id in self._calls:
                    call.attempts += 1
                    if call.attempts < _MAX_PUBLISH_ATTEMPTS:
                        retry.append(call)
                    else:
                        self._finish(call, S_ERROR(
                            EMQCONN, f"could not publish {call.service}.{call.method} after "
                                     f"{call.attempts} connection failures ({exc!r})"))
            self._outbox[:0] = retry
            for call in list(self._calls.values()):
                if call.published:
                    self._finish(call, S_ERROR(
                        EMQCONN, f"connection to the broker lost while waiting for the reply "
                                 f"of {call.service}.{call.method} ({exc!r}); the request may "
                                 f"or may not have run"))

    def _fail_all(self, code: int, reason: str, outbox: list[_Call]) -> None:
        """Fail every call in flight with ``S_ERROR(code, ...)`` naming its service."""
        with self._mutex:
            for call in outbox + self._outbox + list(self._calls.values()):
                self._finish(call, S_ERROR(code, f"{call.service}.{call.method}: {reason}"))
            self._outbox.clear()

    def _finish(self, call: _Call, error: DReturnType) -> None:
        if self._calls.pop(call.corr_id, None) is None and call.done:
            return
        call.error = error
        call.done = True
        if call.waiting:
            call.cond.notify_all()

    # -------------------------------------------------------------- idle driver
    def _start_idle_thread(self) -> None:
        if self._idle_thread is None:
            self._idle_thread = threading.Thread(target=self._idle_loop, daemon=True,
                                                 name="diracmq-io")
            self._idle_thread.start()

    def _idle_loop(self) -> None:
        """Keep heartbeats and late replies flowing while no caller drives the connection."""
        with self._mutex:
            while not self._closed:
                self._idle_cond.wait(_IDLE)
                if (self._closed or self._leader is not None or self._conn is None
                        or time.monotonic() - self._last_drive < _IDLE):
                    continue
                self._leader = "idle"
                try:
                    self._lead(None, time.monotonic() + 60.0)
                finally:
                    self._step_down()

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Close the connection and delete the reply queue.

        Waits up to 2 s for a thread that is driving the connection to let go.
        """
        with self._mutex:
            self._closed = True
            self._idle_cond.notify_all()
            self._wake_leader()
            give_up = time.monotonic() + 2.0
            while self._leader is not None and time.monotonic() < give_up:
                self._mutex.release()
                time.sleep(0.01)
                self._mutex.acquire()
            if self._leader is not None:
                return  # a thread still drives it: leave the connection to die with us
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                if self._reply_queue and conn.is_open:
                    self._channel.queue_delete(self._reply_queue)
            except CONNECTION_ERRORS:
                pass
            close_quietly(conn)




_transports: dict[Settings, RPCTransport] = {}
_transports_lock = threading.Lock()
_transports_pid = os.getpid()


def get_transport(settings: Settings | None = None) -> RPCTransport:
    """The process's transport for ``settings`` (loaded from config when None).

    One per broker URL and process: a forked child gets its own, never its parent's
    connection.
    """
    global _transports_pid
    settings = settings or default_settings()
    with _transports_lock:
        if os.getpid() != _transports_pid:
            _transports.clear()
            _transports_pid = os.getpid()
        transport = _transports.get(settings)
        if transport is None or transport._closed:
            transport = _transports[settings] = RPCTransport(settings)
        return transport


def close_all() -> None:
    """Close every transport of this process (registered with atexit)."""
    with _transports_lock:
        transports = list(_transports.values())
        _transports.clear()
    for transport in transports:
        transport.close()


atexit.register(close_all)

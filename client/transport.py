"""The calling side's wire: one AMQP connection per process, shared by every thread.

How a call travels (the whole client half of the request path):

1. :meth:`RPCTransport.call` encodes ``{"v", "method", "args"}`` with msgpack and
   queues the request in ``_outbox``.
2. Whoever *leads* publishes it to the request exchange with the service name as
   routing key, ``reply_to`` naming this process's reply queue and a fresh
   ``correlation_id``.
3. The leader drives the connection (broker/driver.py) until its own reply has come.
   Replies for other threads are handed to them by correlation id through the call
   registry (client/calls.py), each waking only its own caller.

Leader/follower, and why: a driver (like pika's ``BlockingConnection`` under it) is
used by one thread at a time.  Handing every call to a dedicated I/O
thread costs two thread wake-ups per call (measured at 0.75-0.9x of a script that
drives the connection itself, see ../shared/design-notes.md).  Instead, the first
caller to find no leader becomes it and drives the connection from its own thread:
a sequential script never switches threads.  When the leader's reply arrives it
hands leadership to a thread still waiting.  A daemon thread takes over only when
nobody has driven the connection for ``_IDLE`` seconds, so heartbeats keep flowing
while the script sleeps or computes.

The lock rule: one lock, :attr:`RPCTransport.lock` (the registry's), guards every
field of the transport and of its calls.  Only the leader calls the driver, and it
does so without the lock (:meth:`RPCTransport._unlocked` releases it around the
driver's I/O and re-takes it); other threads only queue calls and wake the leader
(:meth:`Driver.wake` is thread-safe).

Publisher confirms (``publish_confirms``, on by default with quorum queues or a URL
list): the broker confirms each request it took into its queue, asynchronously (the
driver reports each ``basic.ack``/``basic.nack`` through :meth:`RPCTransport._on_confirm`;
no thread waits for one).  What the client then knows: a refused (nacked) request is
published again; a request still unconfirmed when the connection dies is published
again on the next one, with the same request id (so a copy the broker had taken after
all is answered from the worker's reply cache, docs/reliability.md); only a
*confirmed* request whose connection dies fails with ``EMQCONN``, "may or may not have
run".  Without confirms every published request is in that last case.

Failures become S_ERROR results, never exceptions: an unreachable broker
(``EMQCONN``, after tenacity's bounded retries), an unroutable request
(``EMQNOQUEUE``, from the mandatory flag), a lost connection (``EMQCONN``), a service
queue nobody consumes (``EMQNOWORKER``, after ``no_worker_after`` seconds), or no
reply by the deadline (``ETIMEDOUT``).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from diracmq.broker import codec, topology
from diracmq.broker.config import ReplyMode, Settings, default_settings
from diracmq.broker.derrno import EMQCONN, EMQDECODE, EMQENCODE, EMQNOQUEUE, EMQNOWORKER
from diracmq.broker.driver import (
    BrokerUnreachable,
    ConnectionLost,
    Delivery,
    Driver,
    NotFound,
    OperationTimedOut,
    QueueKind,
    Returned,
)
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType, isReturnStructure
from diracmq.client import metrics as client_metrics  # metrics hook
from diracmq.client.calls import Call, CallRegistry, Leader
from diracmq.client.context import current_headers  # logging hook

__all__ = ["RPCFuture", "RPCTransport", "get_transport", "use_transport"]

log = logging.getLogger(__name__)

#: Seconds without I/O after which the daemon thread drives the connection.
_IDLE = 0.5

#: How often a request is put back for publishing after its connection failed (before
#: it was published, or before the broker confirmed it) or the broker refused it.
_MAX_PUBLISH_ATTEMPTS = 3

#: Seconds a refused (nacked) request waits, times its attempts, before it is published
#: again (on a new connection): time for a quorum queue's new leader to be known.
_NACK_PAUSE = 0.25

#: Least time (seconds) one connection attempt's channel operations get (_connect).
_MIN_SETUP = 1.0

#: Consumer counts of a service queue are reused for this long (seconds) by other calls.
_CHECK_REUSE = 1.0


class RPCFuture:
    """The pending result of :meth:`RPCTransport.submit`.

    :meth:`result` returns the call's S_OK/S_ERROR, as a blocking call would have;
    any thread may wait for it, and waiting drives the shared connection if nobody
    else does.
    """

    __slots__ = ("_call", "_result", "_transport")

    def __init__(self, transport: RPCTransport, call: Call | None,
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
            with transport.lock:
                if not call.done:
                    until = call.deadline if timeout is None else time.monotonic() + timeout
                    transport._wait(call, until)
                if not call.done:
                    raise TimeoutError(f"no reply from {call.where} within "
                                       f"{timeout:g}s (still waiting for one)")
            self._result = transport._outcome(call)
        return self._result


class RPCTransport:
    """A process's connection to the broker, multiplexing the calls of all its threads."""

    def __init__(self, settings: Settings, driver: Driver | None = None) -> None:
        settings.validate()
        self.settings = settings
        if driver is None:
            from diracmq.broker.pika_driver import PikaDriver
            driver = PikaDriver(settings, "diracmq client")
        self._driver = driver
        driver.on_return = self._on_return
        #: Publisher confirms (settings.confirms): the driver reports each request's.
        self._confirms = settings.confirms
        driver.confirms = self._confirms
        driver.on_confirm = self._on_confirm
        self.user = driver.user
        #: The one lock (see the module doc).
        self.lock = threading.Lock()
        self._registry = CallRegistry(self.lock)
        self._outbox: list[Call] = []
        self._leader = Leader.NOBODY
        self._wake_sent = False
        self._connected = False
        self._reply_to = ""
        self._reply_queue = (
            topology.reply_queue_name(self.user)
            if ReplyMode(settings.reply_mode) is ReplyMode.QUEUE else ""
        )
        self._reply_declared = False  # the reply queue was declared on a connection
        #: The broker refused a request (basic.nack): start on a new connection.
        self._renew = False
        self._last_drive = time.monotonic()
        self._closed = False
        self._idle_cond = threading.Condition(self.lock)
        self._local = threading.local()
        # Request ids: a random prefix per transport and a counter (unique without the
        # cost of a uuid4 per call).
        self._id_prefix = uuid.uuid4().hex[:20]
        self._ids = itertools.count(1)
        self._checked_services: set[str] = set()
        self._consumers: dict[str, tuple[float, int | None]] = {}  # service -> (when, count)
        self.pid = os.getpid()
        self._idle_thread: threading.Thread | None = None

    @property
    def late_replies(self) -> int:
        """Replies that came after their caller gave up (timed out); they were dropped."""
        return self._registry.late_replies

    @contextlib.contextmanager
    def _unlocked(self) -> Iterator[None]:
        """Release the lock around driver I/O (leader only), re-take it after."""
        self.lock.release()
        try:
            yield
        finally:
            self.lock.acquire()

    # ------------------------------------------------------------------ calling
    def call(self, service: str, method: str, args: tuple[Any, ...] | list[Any],
             timeout: float | None = None) -> DReturnType:
        """Run ``method(*args)`` on ``service`` and return its S_OK/S_ERROR; never raises."""
        call = self._prepare(service, method, args, timeout, None)
        if not isinstance(call, Call):
            return call  # an S_ERROR: bad arguments
        with self.lock:
            refused = self._enqueue(call)
            if refused is not None:
                return refused
            self._wait(call, call.deadline)
        return self._outcome(call)

    def submit(self, service: str, method: str, args: tuple[Any, ...] | list[Any],
               timeout: float | None = None) -> RPCFuture:
        """Send ``method(*args)`` to ``service`` now and return at once with its future.

        The request is published before this returns (by this thread, or by the
        thread driving the connection), so many calls can be in flight from one
        thread; :meth:`RPCFuture.result` waits for each reply.
        """
        call = self._prepare(service, method, args, timeout, threading.Condition(self.lock))
        if not isinstance(call, Call):
            return RPCFuture(self, None, call)
        with self.lock:
            refused = self._enqueue(call)
            if refused is not None:
                return RPCFuture(self, None, refused)
            if self._leader is Leader.NOBODY:  # nobody drives: publish it ourselves
                self._leader = Leader.CALLER
                try:
                    self._lead(call, call.deadline, publish_only=True)
                finally:
                    self._step_down()
        return RPCFuture(self, call)

    def _prepare(self, service: str, method: str, args: tuple[Any, ...] | list[Any],
                 timeout: float | None, cond: threading.Condition | None
                 ) -> Call | DReturnType:
        """Check and encode one request: its :class:`Call`, or an S_ERROR saying why not."""
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
        if len(body) > self.settings.max_message_bytes:
            # The broker would close the channel (406) rather than take it.
            return S_ERROR(EMQENCODE, f"the request to {service}.{method} is {len(body)} "
                                      f"bytes, over the message size limit of "
                                      f"{self.settings.max_message_bytes} bytes")
        if cond is None:  # one Condition per thread: call() waits on one call at a time
            cond = getattr(self._local, "cond", None)
            if cond is None:
                cond = self._local.cond = threading.Condition(self.lock)
        call = Call(service, method, f"{self._id_prefix}{next(self._ids):x}", body, timeout,
                    cond, self.settings.no_worker_after)
        call.extra_headers = current_headers()  # logging hook: traceparent / delegation
        return call

    def _enqueue(self, call: Call) -> DReturnType | None:
        """Register ``call`` and queue it for publishing (lock held); an S_ERROR if closed."""
        if self._closed:
            return S_ERROR(EMQCONN, f"{call.where}: the RPC transport is closed")
        self._registry.add(call)
        self._outbox.append(call)
        if self._leader is not Leader.NOBODY:
            self._wake_leader()
        return None

    def _wait(self, call: Call, until: float) -> None:
        """Block until ``call`` is answered or ``until`` (monotonic) passes (lock held).

        The thread drives the connection itself when nobody else does (leader), else
        sleeps on the call's condition until its reply is handed over or it is made
        leader.  Every ``no_worker_after`` seconds of waiting it asks the broker
        whether the service's queue has a consumer; none: the call ends with
        ``EMQNOWORKER`` at once.  At the call's deadline the call is given up.
        """
        until = min(until, call.deadline)
        while not call.done:
            now = time.monotonic()
            if now >= until:
                break
            if now >= call.check_at:
                self._check_consumers(call, now)
                continue
            wake_at = min(until, call.check_at)
            if self._leader is Leader.NOBODY:
                self._leader = Leader.CALLER
                try:
                    self._lead(call, wake_at)
                finally:
                    self._step_down()
            else:
                call.wait(wake_at - now)
        if not call.done and time.monotonic() >= call.deadline:
            self._registry.give_up(call)  # a late reply is dropped
            if call in self._outbox:
                self._outbox.remove(call)
        if self._leader is Leader.NOBODY:
            self._registry.wake_one_waiting()  # we may have been chosen to lead: pass it on

    def _check_consumers(self, call: Call, now: float) -> None:
        """Ask (lock held, released meanwhile) whether the call's service has a consumer."""
        call.check_at = now + self.settings.no_worker_after
        if not call.published:
            return
        known = self._consumers.get(call.service)
        if known is not None and now - known[0] < _CHECK_REUSE:
            count = known[1]
        else:
            with self._unlocked():
                count = self._driver.consumer_count(
                    topology.service_queue_name(call.service),
                    max(0.2, min(1.5, call.deadline - time.monotonic())))
            self._consumers[call.service] = (time.monotonic(), count)
        confirmed = count == 0 and call.consumers == 0
        call.consumers = count
        if count == 0 and not confirmed:
            # A worker restarting (a crash, a rolling update) leaves the queue without a
            # consumer for a moment: look again shortly before saying nobody serves it.
            call.check_at = time.monotonic() + min(3.0, self.settings.no_worker_after / 2)
        if confirmed and not call.done:
            self._registry.fail(call, S_ERROR(
                EMQNOWORKER, f"{call.where}: the queue of {call.service} has no consumer "
                             f"(checked after {time.monotonic() + call.timeout - call.deadline:.1f}"
                             f"s of request {call.request_id}): is a worker for its System "
                             f"running?"))

    def _outcome(self, call: Call) -> DReturnType:
        """The S_OK/S_ERROR of a finished call."""
        if call.error is not None:
            result = call.error
        elif call.reply is None:
            result = call.timeout_error()
        else:
            result = self._decode_reply(call)
        client_metrics.observe_call(call.service, call.method, result,  # metrics hook
                                    time.monotonic() - (call.deadline - call.timeout))
        return result

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (a closed transport makes no more calls)."""
        return self._closed

    def connect_now(self) -> DReturnType:
        """Open the connection now rather than at the first call: S_OK or S_ERROR(EMQCONN)."""
        with self.lock:
            if self._closed:
                return S_ERROR(EMQCONN, "the RPC transport is closed")
            if self._leader is not Leader.NOBODY or self._connected:
                return S_OK()  # connected, or a thread is connecting right now
            self._leader = Leader.CALLER
            try:
                with self._unlocked():
                    self._connect(self.settings.connect_timeout)
                return S_OK()
            except BrokerUnreachable as exc:
                return S_ERROR(EMQCONN, str(exc))
            except NotFound as exc:
                return S_ERROR(EMQNOQUEUE, str(exc))
            except ConnectionLost as exc:
                return S_ERROR(EMQCONN, f"cannot set up the connection to the broker: {exc}")
            finally:
                self._step_down()

    @staticmethod
    def _decode_reply(call: Call) -> DReturnType:
        try:
            result = codec.unpackb(call.reply)  # type: ignore[arg-type]  # done with a reply
        except codec.DecodeError as exc:
            return S_ERROR(EMQDECODE, f"malformed reply from {call.where}: {exc}")
        if not isReturnStructure(result):
            return S_ERROR(EMQDECODE, f"reply from {call.where} is not "
                                      f"an S_OK/S_ERROR structure")
        return result

    # --------------------------------------------------------------- leadership
    def _wake_leader(self) -> None:
        """Make the leader's drive return, so it publishes our request."""
        if self._wake_sent or not self._connected:
            return
        self._driver.wake()
        self._wake_sent = True

    def _step_down(self) -> None:
        """Give up leadership (lock held): wake one caller that still waits, if any."""
        self._leader = Leader.NOBODY
        self._last_drive = time.monotonic()
        self._registry.wake_one_waiting()

    def _lead(self, call: Call | None, deadline: float, publish_only: bool = False) -> None:
        """Drive the connection until ``call`` is answered or ``deadline`` passes.

        Entered and left with the lock held; released around the driver's I/O.
        With ``call=None`` (the idle thread) it returns as soon as a caller appears.
        With ``publish_only`` it returns once the outbox is published (or has failed).
        """
        while call is None or not call.done:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (call is None and (not self._connected or self._closed)):
                return
            outbox, self._outbox = self._outbox, []
            self._wake_sent = False
            with self._unlocked():
                self._io(outbox, remaining, publish_only, call)
            if publish_only and (call is None or call.published or call.done
                                 or call.not_before > time.monotonic()):
                return  # (a refused call waiting to go again is sent by whoever waits)
            if call is None and (self._outbox or self._closed or self._registry.has_waiting()):
                return

    def _io(self, outbox: list[Call], remaining: float, publish_only: bool,
            call: Call | None) -> None:
        """Publish ``outbox`` and drive the connection once (lock NOT held)."""
        sent = 0
        try:
            if self._renew:
                self._renew = False
                if self._connected:
                    raise ConnectionLost("the broker refused a request (basic.nack); "
                                         "starting on a new connection")
            if not self._connected:
                # Up to connect_timeout, and the whole of the call's time when that is
                # shorter: a broker back 1 s before the deadline must still be reached.
                limit = remaining if call is None else max(0.1, call.deadline - time.monotonic())
                self._connect(min(self.settings.connect_timeout, limit))
                with self.lock:
                    # Calls queued while we connected could not wake us (no connection
                    # yet): send them now rather than after a turn of the I/O loop.
                    outbox.extend(self._outbox)
                    self._outbox.clear()
            queued = []
            deferred = []
            now = time.monotonic()
            for pending in outbox:
                if pending.request_id not in self._registry:
                    continue  # timed out meanwhile
                if pending.not_before > now:
                    deferred.append(pending)  # refused a moment ago: not yet
                    continue
                try:
                    self._publish(pending)
                    queued.append((pending, pending.attempts))
                except (ValueError, TypeError) as exc:  # this message, not the connection
                    with self.lock:
                        self._registry.fail(pending, S_ERROR(
                            EMQENCODE, f"cannot publish {pending.where}: {exc!r}"))
            # Written now: a connection that died before (a cut the driver has not seen
            # yet) shows here, and its calls go out again on the next one (same request
            # ids) instead of failing as "may or may not have run".
            self._driver.flush()
            with self.lock:
                self._outbox.extend(c for c in deferred if c not in self._outbox)
                for pending, attempts in queued:
                    if pending.attempts != attempts:
                        continue  # refused (nacked) during flush(): to be published again
                    pending.published = True
                    if self._confirms and pending.confirmed is None:
                        pending.confirmed = False  # unless its confirm came during flush()
            sent = len(outbox)
            if publish_only:
                return  # replies are read by whoever waits for them next
            self._driver.drive(min(remaining, _IDLE))
        except BrokerUnreachable as exc:
            self._fail_all(EMQCONN, str(exc), outbox)
        except NotFound as exc:
            self._fail_all(EMQNOQUEUE, str(exc), outbox)
        except ConnectionLost as exc:
            self._on_connection_lost(exc, outbox[sent:])

    def _connect(self, timeout: float) -> None:
        """Connect and set up the reply consumer within ``timeout`` seconds in all.

        The channel operations of one attempt are bounded (:meth:`Driver.bounded`) by
        half the time allowed (at least ``_MIN_SETUP`` seconds) and by the time left: a
        node that accepts the connection but does not answer (a paused minority, a
        quorum queue's node still starting) counts as a failed attempt, and leaves time
        for the next one, which tries the other nodes first.  Raises
        :class:`BrokerUnreachable` when time runs out.
        """
        driver = self._driver
        give_up = time.monotonic() + timeout
        per_attempt = max(_MIN_SETUP, timeout / 2)
        while True:
            driver.open(max(0.1, give_up - time.monotonic()))
            try:
                with driver.bounded(min(per_attempt, give_up - time.monotonic())):
                    self._set_up(driver)
                break
            except OperationTimedOut as exc:
                driver.close()
                if time.monotonic() >= give_up - 0.1:
                    raise BrokerUnreachable(f"no broker node served within {round(timeout, 2):g}s: "
                                            f"{exc}") from exc
                log.warning("%s; trying another node", exc)
            except Exception:
                driver.close()
                raise
        self._connected = True
        self._start_idle_thread()

    def _set_up(self, driver: Driver) -> None:
        """Check the request exchange, declare and consume the reply queue."""
        try:
            driver.check_exchange(topology.REQUEST_EXCHANGE)
        except NotFound as exc:
            raise NotFound(
                f"no request exchange {topology.REQUEST_EXCHANGE!r} on this broker/vhost: "
                f"no worker has ever run here ({exc})") from None
        if self._reply_queue:
            if self._reply_declared and len(self.settings.urls) > 1:
                # A reconnection on a cluster: a fresh name.  The old queue may still
                # be on a node shutting down; declaring its name again would hand us
                # that queue, which then vanishes with its node without our consumer
                # being told (seen in a rolling restart: every reply unroutable).  The
                # old one expires after reply_queue_expires_ms.
                self._reply_queue = topology.reply_queue_name(self.user)
            driver.declare_reply_queue(self._reply_queue, self.settings.reply_queue_expires_ms)
            self._reply_declared = True
            driver.consume(self._reply_queue, self._on_reply, QueueKind.AUTO_ACK,
                           exclusive=True)
            self._reply_to = self._reply_queue
        else:
            driver.consume(topology.DIRECT_REPLY_TO, self._on_reply, QueueKind.AUTO_ACK)
            self._reply_to = topology.DIRECT_REPLY_TO

    def _publish(self, call: Call) -> None:
        self._driver.publish_request(
            topology.REQUEST_EXCHANGE, call.service, call.body, reply_to=self._reply_to,
            correlation_id=call.request_id, expiration_ms=max(1, int(call.timeout * 1000)),
            deadline_ms=int((time.time() + call.deadline - time.monotonic()) * 1000),
            user_id=self.user, group=self.settings.group or None,
            extra_headers=call.extra_headers)

    # ----------------------------------------------------------- driver callbacks
    def _on_reply(self, delivery: Delivery) -> None:
        with self.lock:
            self._registry.deliver(delivery.properties.correlation_id, delivery.body)

    def _on_confirm(self, request_id: str, accepted: bool) -> None:
        """The broker confirmed taking a request, or refused it (``basic.nack``).

        A refused request never reached a queue.  It is published again (same request
        id) on a *new connection*: a channel whose node refuses requests to a queue
        keeps refusing them (RabbitMQ 3.10 after a quorum queue's leader moved: its
        channel still aims at the dead leader, until that node is back,
        rabbitmq-server#9208), while a new channel, on the next node in the list, takes
        them; after a pause of ``_NACK_PAUSE`` x its attempts, the time for a new
        leader to be known.  Up to ``_MAX_PUBLISH_ATTEMPTS`` attempts in all; then
        ``EMQCONN``.
        """
        with self.lock:
            call = self._registry.get(request_id)
            if call is None or call.done:
                return  # answered, returned or given up already
            if accepted:
                call.confirmed = True
                return
            call.published = False
            call.confirmed = None
            if call.attempts + 1 >= _MAX_PUBLISH_ATTEMPTS:
                call.attempts += 1
                self._registry.fail(call, S_ERROR(
                    EMQCONN, f"the broker refused the request of {call.where} "
                             f"{call.attempts} times (basic.nack): it was not run"))
                return
            log.warning("the broker refused request %s (basic.nack); publishing it again "
                        "on a new connection", request_id)
            call.not_before = time.monotonic() + _NACK_PAUSE * (call.attempts + 1)
            if call not in self._outbox:
                self._outbox.append(call)  # counted as an attempt when the connection goes
            self._renew = True
            self._wake_leader()

    def _on_return(self, returned: Returned) -> None:
        """The broker could not route a request: no queue is bound for that service."""
        with self.lock:
            self._registry.fail_id(returned.correlation_id, S_ERROR(
                EMQNOQUEUE,
                f"no queue for service {returned.routing_key} on this broker "
                f"({returned.reply_text}): is a worker for its System running?"))

    # ------------------------------------------------------------------ failures
    def _on_connection_lost(self, exc: BaseException, unsent: list[Call]) -> None:
        """Drop the connection; fail the calls that were sent, resend the others later."""
        log.warning("connection to the broker lost: %s", exc)
        client_metrics.count_reconnection()  # metrics hook
        self._driver.close()
        with self.lock:
            self._connected = False
            retry: list[Call] = []

            def again(call: Call, why: str = "") -> None:
                # one more publish attempt on the next connection, or EMQCONN at the last
                call.attempts += 1
                if call.attempts < _MAX_PUBLISH_ATTEMPTS:
                    retry.append(call)
                else:
                    self._registry.fail(call, S_ERROR(
                        EMQCONN, f"could not publish {call.where} after {call.attempts} "
                                 f"connection failures ({exc}){why}"))

            for call in unsent:
                if not call.published and call.request_id in self._registry:
                    again(call)
            for call in self._registry.calls():
                if not call.published:
                    continue
                if call.confirmed is False:
                    # Published, never confirmed: the broker may never have taken it (a
                    # node dying, rabbitmq-server#9208).  Published again, same id: a
                    # copy it did take is answered from the worker's reply cache.
                    call.published = False
                    call.confirmed = None
                    again(call, "; the broker never confirmed it")
                    continue
                self._registry.fail(call, S_ERROR(
                    EMQCONN, f"connection to the broker lost while waiting for the reply "
                             f"of {call.where} ({exc}); the request may "
                             f"or may not have run"))
            self._outbox[:0] = [call for call in retry if call not in self._outbox]

    def _fail_all(self, code: int, reason: str, outbox: list[Call]) -> None:
        """Fail every call in flight with ``S_ERROR(code, ...)`` naming its service."""
        with self.lock:
            for call in outbox + self._outbox + self._registry.calls():
                self._registry.fail(call, S_ERROR(code, f"{call.where}: {reason}"))
            self._outbox.clear()

    # -------------------------------------------------------------- idle driver
    def _start_idle_thread(self) -> None:
        if self._idle_thread is None:
            self._idle_thread = threading.Thread(target=self._idle_loop, daemon=True,
                                                 name="diracmq-io")
            self._idle_thread.start()

    def _idle_loop(self) -> None:
        """Keep heartbeats and late replies flowing while no caller drives the connection."""
        with self.lock:
            while not self._closed:
                self._idle_cond.wait(_IDLE)
                if (self._leader is not Leader.NOBODY or not self._connected
                        or time.monotonic() - self._last_drive < _IDLE):
                    continue
                self._leader = Leader.IDLE_THREAD
                try:
                    self._lead(None, time.monotonic() + 60.0)
                finally:
                    self._step_down()

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Close the connection and delete the reply queue.

        Waits up to 2 s for a thread that is driving the connection to let go.
        """
        with self.lock:
            self._closed = True
            self._idle_cond.notify_all()
            self._wake_leader()
            give_up = time.monotonic() + 2.0
            while self._leader is not Leader.NOBODY and time.monotonic() < give_up:
                with self._unlocked():
                    time.sleep(0.01)
            if self._leader is not Leader.NOBODY:
                return  # a thread still drives it: leave the connection to die with us
            connected, self._connected = self._connected, False
        if connected:
            try:
                if self._reply_queue and self._driver.is_open:
                    self._driver.delete_queue(self._reply_queue)
            except ConnectionLost:
                pass
            self._driver.close()


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
        if transport is None or transport.closed:
            transport = _transports[settings] = RPCTransport(settings)
        return transport


def use_transport(transport: RPCTransport) -> None:
    """Make ``transport`` the one :func:`get_transport` returns for its settings.

    For a transport over another driver (the in-memory one of
    :mod:`diracmq.workers.testing`): every ``Client(settings=transport.settings)`` of
    this process then calls through it.
    """
    with _transports_lock:
        _transports[transport.settings] = transport


def close_all() -> None:
    """Close every transport of this process (registered with atexit)."""
    with _transports_lock:
        transports = list(_transports.values())
        _transports.clear()
    for transport in transports:
        transport.close()


atexit.register(close_all)

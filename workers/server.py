"""One worker process: consume a System's request queues, dispatch, reply, acknowledge.

The serving half of the request path:

1. The main thread owns the AMQP connection (the *I/O thread*).  It consumes every
   service queue of the System with ``prefetch`` unacknowledged deliveries at most,
   and hands each delivery to a pool of ``threads`` handler threads.
2. A handler thread decodes the request, checks it (:func:`parse_request`), runs
   :func:`workers.handler.dispatch` and encodes the reply.
3. It passes the reply back with ``add_callback_threadsafe`` (the only thread-safe
   pika call); the I/O thread publishes it to ``reply_to`` and only *then* acks the
   request.  A worker that dies before that leaves the request to another worker.

The fast path, and why: steps 1-3 cost two thread wake-ups per request, which on
this kind of machine is most of a worker's overhead over a plain pika loop.  So a
method whose recent runs took less than ``inline_threshold`` seconds runs on the
I/O thread itself, with no hand-off.  The connection is never left undriven for
long: while a handler runs inline, the I/O lock is free, and a watchdog thread
takes over the connection (heartbeats, new deliveries to the pool) once the handler
has run for ``steal_after`` seconds.  ``atMostOnce_`` methods never run inline.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pika
import pika.exceptions
from diracmq.broker import allocator, codec, topology
from diracmq.broker.config import Settings
from diracmq.broker.connection import (
    CONNECTION_ERRORS,
    BrokerUnreachable,
    ack_later,
    close_quietly,
    connect,
    publish_later,
    wake,
)
from diracmq.broker.derrno import EMQDEADLETTER, EMQDECODE, EMQENCODE
from diracmq.broker.properties import ReplyProperties
from diracmq.broker.returnvalues import S_ERROR, DReturnType
from diracmq.workers.dedup import ReplyCache
from diracmq.workers.handler import Request, RequestHandler, dispatch, find_export
from diracmq.workers.identity import auth_rules_for, credentials_for, group_refusal, prepare

__all__ = ["Worker", "parse_request", "encode_reply"]

log = logging.getLogger(__name__)



class TopologyMismatch(RuntimeError):
    """The broker holds a queue of ours declared with other arguments."""


#: The constant part of every reply's properties (content_type), encoded once.
_REPLY_HEAD = ReplyProperties.head(codec.CONTENT_TYPE)


class BadRequest(ValueError):
    """A request that cannot be run: its reply is an S_ERROR(EMQDECODE)."""


def parse_request(service: str, props: pika.BasicProperties, body: bytes,
                  message: Any = None) -> Request:
    """Decode and validate one request body; raise :class:`BadRequest` with a clear reason.

    ``message`` is the body already decoded, when the caller had to decode it anyway.
    """
    if message is None:
        try:
            message = codec.unpackb(body)
        except codec.DecodeError as exc:
            raise BadRequest(
                f"Malformed request to {service}: body is not valid msgpack ({exc})") from None
    if not isinstance(message, dict):
        raise BadRequest(f"Malformed request to {service}: body is a "
                         f"{type(message).__name__}, expected a map")
    version = message.get("v")
    if version != topology.PROTOCOL_VERSION:
        raise BadRequest(f"Unsupported protocol version {version!r} in request to {service} "
                         f"(this worker speaks {topology.PROTOCOL_VERSION})")
    method, args = message.get("method"), message.get("args", [])
    if not isinstance(method, str):
        raise BadRequest(f"Malformed request to {service}: 'method' must be a string, "
                         f"not {type(method).__name__}")
    if not isinstance(args, (list, tuple)):
        raise BadRequest(f"Malformed request to {service}: 'args' must be an array, "
                         f"not {type(args).__name__}")
    user = props.user_id if isinstance(props.user_id, str) and props.user_id else None
    headers = props.headers if isinstance(props.headers, dict) else None
    return Request(
        service=service,
        method=method,
        args=tuple(args),
        request_id=str(props.message_id or props.correlation_id or ""),
        # Redelivered requests come back through the retry loop, which the broker
        # records in x-death (its own redelivered flag is gone by then).
        # cluster hook: x-death (classic retry loop) or x-delivery-count (quorum).
        redelivered=headers is not None and topology.death_count(
            headers, topology.service_queue_name(service)) > 0,
        credentials=credentials_for(user, headers),
    )


def encode_reply(result: DReturnType, where: str) -> bytes:
    """Encode a result for the wire: ``CallStack`` stays here; unencodable values -> S_ERROR."""
    if "CallStack" in result:
        result = {k: v for k, v in result.items() if k != "CallStack"}
    try:
        return codec.packb(result)
    except codec.EncodeError as exc:
        log.error("cannot encode the reply of %s: %s", where, exc)
        error = S_ERROR(EMQENCODE, f"cannot encode the reply of {where}: {exc}")
        del error["CallStack"]
        return codec.packb(error)


def _may_reply_to(user: object, reply_to: str) -> bool:
    """Whether a caller may have replies sent to ``reply_to``.

    Reply queues of our clients are named ``dirac.reply.<user token>.…``: a caller may
    not direct a worker to feed another user's reply queue.  Other names (Direct
    Reply-to, a raw client's own queue) are the broker's permissions' business.
    """
    if not reply_to.startswith("dirac.reply."):
        return True
    return topology.is_reply_queue_of(user, reply_to)  # cluster hook: any user name


def _deadline_passed(props: pika.BasicProperties) -> bool:
    headers = props.headers if isinstance(props.headers, dict) else {}
    deadline = headers.get("x-deadline")
    return isinstance(deadline, int) and not isinstance(deadline, bool) \
        and deadline < time.time() * 1000  # epoch milliseconds


class Worker:
    """Serve a System's services from this process until SIGTERM/SIGINT.

    ``handlers`` maps ``System/Service`` to its handler class.  ``threads`` handler
    threads run requests; ``prefetch`` (default ``2 * threads``) bounds how many
    unacknowledged requests this process holds per service queue, and so its memory
    under a burst.
    """

    def __init__(self, handlers: dict[str, type[RequestHandler]], settings: Settings,
                 threads: int = 15, prefetch: int | None = None,
                 graceful_timeout: float = 30.0, name: str = "worker",
                 poison_after: int = 2, inline_threshold: float = 0.002,
                 reply_cache_bytes: int = ReplyCache.DEFAULT_MAX_BYTES) -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.handlers = handlers
        self.settings = settings
        self.threads = threads
        self.prefetch = prefetch or 2 * threads
        self.graceful_timeout = graceful_timeout
        #: Workers that may die holding one request before it is parked as poison.
        self.poison_after = max(1, poison_after)
        self.name = name
        self.counters: collections.Counter[str] = collections.Counter()
        self._counter_lock = threading.Lock()
        self._conn: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._generation = 0
        self._in_flight = 0
        self._stopping = False
        self._force = False
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="handler")
        #: Run a method on the I/O thread when its recent runs took less (seconds; 0: never).
        #: Not with one handler thread: that thread alone then serves requests in order.
        self.inline_threshold = inline_threshold if threads > 1 else 0.0
        #: Seconds an inline handler may hold the I/O thread before the watchdog drives I/O.
        self.steal_after = 0.1
        self._durations: dict[tuple[str, str], float] = {}  # moving average per method
        self._ready: collections.deque[tuple] = collections.deque()
        # Held by whoever may touch pika: the main thread, except while it runs a handler
        # inline, when the watchdog may take it.
        self._io_lock = threading.Lock()
        self._inline_since: float | None = None
        self._lost: BaseException | None = None
        self._exiting = threading.Event()
        #: Set while the worker consumes its queues (for code that runs a Worker in a thread).
        self.ready = threading.Event()
        #: Replies kept to answer a repeated request (workers/dedup.py); 0 bytes: none kept.
        self._replies = ReplyCache(max_bytes=max(0, reply_cache_bytes))

    # ------------------------------------------------------------------ running
    def run(self) -> int:
        """Serve until told to stop; return the process exit status (0: clean)."""
        for service, cls in self.handlers.items():
            info = {"serviceName": service, "System": service.split("/")[0],
                    "startTime": time.time(), "counters": self.counters}
            cls.serviceInfoDict = info
            result = cls.initializeHandler(info)
            if isinstance(result, dict) and result.get("OK") is False:
                log.error("initializeHandler of %s failed: %s", service, result.get("Message"))
                return 1
        prepare(self.settings)  # identity: the Registry, via this worker's broker settings
        allocator.keep_freed_memory(self.settings.malloc_keep_mb)  # large bodies: no page faults
        self._install_signals()
        stop_at = None
        self._io_lock.acquire()
        watchdog = threading.Thread(target=self._watchdog, name="io-watchdog", daemon=True)
        watchdog.start()
        try:
            while True:
                if self._conn is None:
                    if self._stopping or not self._open():
                        break
                if self._stopping:
                    stop_at = stop_at or self._begin_drain()
                    if self._in_flight == 0 or self._force or time.monotonic() > stop_at:
                        break
                try:
                    if self._lost is not None:
                        raise self._lost  # the watchdog saw the connection die
                    # No time_limit: pika would add and cancel a timer per turn of the
                    # loop; the 0.2 s tick armed in _start_consuming wakes it instead.
                    self._conn.process_data_events(time_limit=None)  # type: ignore[union-attr]
                    self._dispatch_ready(inline=True)
                except CONNECTION_ERRORS as exc:
                    log.warning("connection to the broker lost (%r); reconnecting", exc)
                    self._drop_connection()
        except BrokerUnreachable as exc:
            log.error("%s", exc)
            return 1
        except TopologyMismatch as exc:
            log.error("%s", exc)
            return 2
        finally:
            self._exiting.set()
            unfinished = self._in_flight
            self._drop_connection()
            self._io_lock.release()
            self._pool.shutdown(wait=False, cancel_futures=True)
            log.info("worker stopped: %s", dict(self.counters))
        if unfinished:
            # Forced (second signal or drain timeout): handler threads may be stuck, and
            # interpreter exit would wait for them.  Their requests were not acked, so
            # the broker hands them to other workers.
            log.warning("forced exit with %d request(s) unfinished; the broker hands them "
                        "to other workers", unfinished)
            logging.shutdown()
            os._exit(1)
        return 0

    def _open(self) -> bool:
        """Connect and start consuming; False if told to stop before the broker answered.

        The first connection must succeed within ``connect_timeout``; after a loss the
        worker keeps trying (short attempts, so SIGTERM is noticed) until it is back.
        """
        started = time.monotonic()
        while True:
            try:
                conn = connect(self.settings, f"diracmq {self.name}", timeout=2.0)
                break
            except BrokerUnreachable:
                if self._stopping:
                    return False
                if self._generation == 0 and \
                        time.monotonic() - started > self.settings.connect_timeout:
                    raise
        try:
            self._start_consuming(conn)
        except CONNECTION_ERRORS as exc:  # dropped while setting up: try again later
            log.warning("connection lost while setting up (%r); retrying", exc)
            close_quietly(conn)
            self._conn = self._channel = None
        return True

    def _tick(self, conn: pika.BlockingConnection) -> None:
        """Every 0.2 s: return from pika's loop so run() sees signals, then re-arm."""
        if self._conn is conn and not self._exiting.is_set():
            conn.call_later(0.2, functools.partial(self._tick, conn))

    def _start_consuming(self, conn: pika.BlockingConnection) -> None:
        channel = conn.channel()
        # Per consumer, i.e. per service queue.  A channel-wide (global) limit was tried:
        # on RabbitMQ 3.10 it held this worker to one or two deliveries at a time.
        channel.basic_qos(prefetch_count=self.prefetch)
        channel.add_on_return_callback(self._on_reply_returned)
        self._generation += 1
        self._in_flight = 0  # deliveries of the old connection went back to the queue
        for service in self.handlers:
            try:
                queue = topology.declare_service_queue(  # cluster hook: queue type
                    channel, service, self.settings.queue_type)
            except pika.exceptions.ChannelClosedByBroker as exc:
                close_quietly(conn)
                raise TopologyMismatch(
                    f"cannot declare the queue of {service}: {exc.reply_text}. A queue of that "
                    f"name exists with other arguments (an older protocol version?); delete "
                    f"it with `rabbitmqctl delete_queue {topology.service_queue_name(service)}`"
                    f" once it is drained") from None
            channel.basic_consume(queue, functools.partial(self._on_request, service,
                                                           self._generation))
        self._conn, self._channel = conn, channel
        self._tick(conn)
        self.ready.set()
        log.info("worker ready: %s serving %s (pid %d, %d threads, prefetch %d)",
                 self.name, ", ".join(self.handlers), os.getpid(), self.threads, self.prefetch)

    def _drop_connection(self) -> None:
        self.ready.clear()
        self._ready.clear()  # deliveries of a dead connection go back to the queue
        self._lost = None
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            close_quietly(conn)

    # ----------------------------------------------------------------- stopping
    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self._stopping:
            log.warning("second signal %d: stopping now", signum)
            self._force = True
        else:
            log.info("signal %d: finishing %d request(s) in flight, taking no more",
                     signum, self._in_flight)
        self.stop()

    def stop(self) -> None:
        """Ask the worker to stop taking requests and exit once those in flight are answered."""
        self._stopping = True

    def _begin_drain(self) -> float:
        try:
            for tag in list(self._channel.consumer_tags):
                self._channel.basic_cancel(tag)
        except CONNECTION_ERRORS:
            pass
        return time.monotonic() + self.graceful_timeout

    # ------------------------------------------------------------------ serving
    def _count(self, name: str) -> None:
        with self._counter_lock:
            self.counters[name] += 1

    def _on_request(self, service: str, generation: int, _channel: Any,
                    method: Any, props: pika.BasicProperties, body: bytes) -> None:
        """I/O thread: queue the delivery; :meth:`_dispatch_ready` decides who runs it."""
        if method.redelivered and self._give_up_or_retry(service, method, props, body):
            return
        self._in_flight += 1
        self._ready.append((service, generation, method.delivery_tag, props, body))

    def _dispatch_ready(self, inline: bool) -> None:
        """I/O lock held: run fast requests here (``inline``), hand the others to the pool.

        Replies of inline runs are queued and leave with the loop's next turn, so a
        burst's replies share a few sendmsg() calls (broker/gather.py); a batch that runs
        past 1 ms sends what it has queued so far, so early replies do not wait for the
        whole batch.
        """
        flushed_at = time.monotonic()
        while self._ready:
            item = self._ready.popleft()
            message = self._fast_message(item[0], item[4]) if inline else None
            if message is None:
                self._pool.submit(self._handle, *item)
                continue
            self._run_inline(item, message)
            if self._ready and time.monotonic() - flushed_at > 0.001 and self._conn is not None:
                self._conn.process_data_events(time_limit=0)
                flushed_at = time.monotonic()

    def _fast_message(self, service: str, body: bytes) -> dict | None:
        """The decoded request if its method is fast enough to run inline, else None."""
        if self.inline_threshold <= 0 or len(body) > 65536:
            return None
        try:
            message = codec.unpackb(body)
        except codec.DecodeError:
            return None  # the pool path reports it
        method = message.get("method") if isinstance(message, dict) else None
        if not isinstance(method, str):
            return None  # malformed: the pool path reports it (never raise on the I/O thread)
        duration = self._durations.get((service, method))
        return message if duration is not None and duration < self.inline_threshold else None

    def _run_inline(self, item: tuple, message: dict) -> None:
        """Run one request on the I/O thread, letting the watchdog drive I/O meanwhile."""
        service, generation, tag, props, body = item
        self._inline_since = time.monotonic()
        self._io_lock.release()
        try:
            reply = self._serve_safely(service, props, body, wake, message)
        finally:
            self._inline_since = None
            if not self._io_lock.acquire(blocking=False):
                self._to_io(wake)  # make the watchdog's pika loop return now
                self._io_lock.acquire()
        self._finish(generation, tag, props, reply)

    def _watchdog(self) -> None:
        """Drive the connection while an inline handler has held the I/O thread too long."""
        while not self._exiting.wait(self.steal_after / 2):
            since = self._inline_since
            if since is None or time.monotonic() - since < self.steal_after:
                continue
            if not self._io_lock.acquire(blocking=False):
                continue
            try:
                self._count("io_takeovers")
                while self._inline_since is not None and self._conn is not None:
                    self._conn.process_data_events(time_limit=0.05)
                    self._dispatch_ready(inline=False)
            except CONNECTION_ERRORS as exc:
                self._lost = exc  # the main thread reconnects
            finally:
                self._io_lock.release()

    def _give_up_or_retry(self, service: str, method: Any, props: pika.BasicProperties,
                          body: bytes) -> bool:
        """I/O thread: a redelivered request; True if it was dealt with here.

        Redelivery means the worker that held it died or lost its connection before
        answering.  The request is rejected into the retry loop (broker/topology.py),
        which brings it back at once with the broker's own count of such rejections in
        ``x-death``; once ``poison_after`` workers have died holding it, it is parked
        and its caller told, instead of killing worker after worker.
        """
        key = (str(props.user_id or ""), str(props.message_id or ""))
        if props.message_id and self._replies.begin_peek(key):
            return False  # answered here before: the reply cache answers it again
        queue = topology.service_queue_name(service)
        if self.settings.queue_type == "quorum":  # cluster hook
            # Quorum queues count the deliveries that came back themselves
            # (x-delivery-count, this death included): no retry loop; a request still
            # under the limit is simply served again.  The count includes a node's
            # failover (every delivery held on it comes back), hence the one extra.
            deaths = max(1, topology.death_count(props.headers, queue, "quorum"))
            if deaths <= self.poison_after:
                return False
        else:
            deaths = 1 + topology.death_count(props.headers, queue, "classic")
        if deaths < self.poison_after:
            self._count("retried")
            log.warning("request %s to %s redelivered (a worker died holding it): sent "
                        "round the retry loop", props.message_id, service)
            self._channel.basic_reject(method.delivery_tag, requeue=False)
            return True
        self._count("parked")
        log.error("request %s to %s given up: %d workers died or lost their connection "
                  "while running it; parked in %s", props.message_id, service, deaths,
                  topology.PARKING_QUEUE)
        headers = dict(props.headers) if isinstance(props.headers, dict) else {}
        headers.update({"x-dirac-user": props.user_id or "", "x-dirac-service": service})
        self._channel.basic_publish("", topology.PARKING_QUEUE, body, pika.BasicProperties(
            content_type=props.content_type, message_id=props.message_id,
            correlation_id=props.correlation_id, headers=headers))
        if isinstance(props.reply_to, str) and props.reply_to:
            error = S_ERROR(EMQDEADLETTER, f"request {props.message_id} to {service} was given "
                                           f"up after {deaths} workers died or lost their "
                                           f"connection while running it (a poison "
                                           f"message?); it was not run again")
            self._in_flight += 1  # _finish counts it down
            self._finish(self._generation, method.delivery_tag, props,
                         encode_reply(error, service))
        else:
            self._channel.basic_ack(method.delivery_tag)
        return True

    def _handle(self, service: str, generation: int, tag: int,
                props: pika.BasicProperties, body: bytes) -> None:
        """Handler thread: produce the reply bytes (or None) and pass them to the I/O thread."""
        acked: list[bool] = []  # set by ack_early: an at-most-once method was acked already

        def ack_early() -> None:
            acked.append(True)
            sent = threading.Event()
            self._to_io(functools.partial(self._ack, generation, tag, sent))
            # Run only once the ack is on its way: a crash from here on loses the request.
            sent.wait(self.graceful_timeout)

        reply = self._serve_safely(service, props, body, ack_early)
        self._to_io(functools.partial(self._finish, generation, tag, props, reply, not acked))

    def _serve_safely(self, service: str, props: pika.BasicProperties, body: bytes,
                      ack_early: Callable[[], None], message: Any = None) -> bytes | None:
        try:
            return self._serve(service, props, body, ack_early, message)
        except Exception:  # a bug of ours must not lose the message or kill the thread
            log.exception("unexpected error serving a request to %s", service)
            self._count("internal_errors")
            return None

    def _serve(self, service: str, props: pika.BasicProperties, body: bytes,
               ack_early: Callable[[], None], message: Any = None) -> bytes | None:
        self._count("requests")
        reply_to = props.reply_to if isinstance(props.reply_to, str) and props.reply_to else None
        if reply_to is None:
            self._count("no_reply_to")
            log.warning("request to %s without reply_to dropped (message_id %r)",
                        service, props.message_id)
            return None
        if not _may_reply_to(props.user_id, reply_to):
            self._count("foreign_reply_to")
            log.warning("request to %s from %r names another user's reply queue %r; dropped",
                        service, props.user_id, reply_to)
            return None
        if _deadline_passed(props):
            self._count("expired")
            log.info("request to %s (message_id %r) arrived after its deadline; not run",
                     service, props.message_id)
            return None
        if not isinstance(props.message_id, str) or not props.message_id:
            return self._run(service, props, body, ack_early, message)
        key = (str(props.user_id or ""), props.message_id)
        while True:
            claim = self._replies.begin(key)
            if claim is None:
                break
            if isinstance(claim, bytes):
                self._count("duplicates")
                log.info("request %s to %s seen before: replying from cache, not running it "
                         "again", props.message_id, service)
                return claim
            claim.wait()  # the same request is running in another thread right now
        reply = None
        try:
            reply = self._run(service, props, body, ack_early, message)
            return reply
        finally:
            self._replies.finish(key, reply)

    def _run(self, service: str, props: pika.BasicProperties, body: bytes,
             ack_early: Callable[[], None], message: Any = None) -> bytes:
        """Decode, dispatch and encode one request: the reply bytes."""
        try:
            request = parse_request(service, props, body, message)
        except BadRequest as exc:
            self._count("malformed")
            log.warning("%s", exc)
            error = S_ERROR(EMQDECODE, str(exc))
            return encode_reply(error, service)
        handler_cls = self.handlers[service]
        export = find_export(handler_cls, request.method)
        at_most_once = export is not None and export.at_most_once
        if at_most_once:
            # The handler asked to never run twice: ack before running, so a crash
            # loses the request (the caller times out) instead of redelivering it.
            ack_early()
        started = time.perf_counter()
        result = group_refusal(request.credentials) or dispatch(
            handler_cls, request,
            auth_rules_for(service, handler_cls, request.method) if export else None)
        if export is not None and not at_most_once:
            # A moving average of real methods only (names from the wire are unbounded).
            key = (service, request.method)
            took = time.perf_counter() - started
            previous = self._durations.get(key)
            self._durations[key] = took if previous is None else 0.7 * previous + 0.3 * took
        if not result.get("OK"):
            self._count("errors")
        return encode_reply(result, f"{service}.{request.method}")

    def _to_io(self, callback: Any) -> None:
        conn = self._conn
        if conn is None:
            return  # the connection is gone; the broker already requeued the delivery
        try:
            conn.add_callback_threadsafe(callback)
        except CONNECTION_ERRORS:
            pass

    def _ack(self, generation: int, tag: int, done: threading.Event) -> None:
        """I/O thread: acknowledge a delivery of the current connection, then set ``done``."""
        try:
            if generation == self._generation and self._channel is not None:
                self._channel.basic_ack(tag)
        finally:
            done.set()

    def _finish(self, generation: int, tag: int, props: pika.BasicProperties,
                reply: bytes | None, ack: bool = True) -> None:
        """I/O thread: publish the reply, then ack the request (in that order).

        Both are queued and leave together with the loop's next turn (the broker sees
        them in this order); see broker.connection.publish_later.
        """
        if generation != self._generation or self._channel is None:
            return  # delivered on a connection that has since died: already requeued
        self._in_flight -= 1
        if reply is not None:
            try:
                publish_later(
                    self._channel, "", props.reply_to, reply,
                    ReplyProperties.build(_REPLY_HEAD, props.correlation_id),
                    # RabbitMQ 3.10 returns mandatory messages sent to Direct Reply-to
                    # even though it delivers them: ask only for named reply queues.
                    mandatory=not props.reply_to.startswith(topology.DIRECT_REPLY_TO))
                self._count("replies")
            except (ValueError, TypeError) as exc:  # e.g. a reply_to pika cannot encode
                self._count("unreplyable")
                log.warning("cannot reply to %r: %s", props.reply_to, exc)
        if ack:
            ack_later(self._channel, tag)

    def _on_reply_returned(self, _channel: Any, method: Any, props: pika.BasicProperties,
                           _body: bytes) -> None:
        self._count("reply_unroutable")
        log.warning("reply to %r returned by the broker (%s): the caller is gone",
                    method.routing_key, method.reply_text)

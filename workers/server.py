"""One worker process: consume a System's request queues, schedule, reply, acknowledge.

The serving half of the request path (the client half is client/transport.py):

1. The main thread owns the driver's I/O (the *I/O thread*, broker/driver.py).  It
   consumes every service queue of the System with ``prefetch`` unacknowledged
   deliveries at most, and queues each delivery as ready (:meth:`Worker._on_delivery`).
2. The scheduler (:meth:`Worker._dispatch`) starts ready requests: on the I/O thread
   itself when their method is known to be fast, else on the pool of ``threads``
   handler threads.  A *suspect* (a request whose previous worker died,
   workers/poison.py) runs alone.
3. Running a request (:meth:`Worker._serve`) checks where its reply may go
   (workers/requests.py), drops it if its deadline passed, answers a repeat from the
   reply cache (workers/dedup.py), and otherwise decodes it and runs the handler
   (workers/handler.py).
4. The reply comes back to the I/O thread, which publishes it and only *then* acks the
   request (:meth:`Worker._finish`): a worker that dies before that leaves the
   request to another worker.

The fast path, and why: handing a request to a thread and back costs two thread
wake-ups, most of a worker's overhead over a plain pika loop.  So a method whose
recent runs took less than ``inline_threshold`` seconds runs on the I/O thread.  The
connection is never left undriven for long: while a handler runs inline the I/O lock
is free, and a watchdog thread drives the connection once the handler has run for
``steal_after`` seconds.  ``atMostOnce_`` methods and suspects never run inline.

The I/O lock is the one lock around the driver: whoever holds it may call the
driver; handler threads never do, they hand their results over through
:attr:`Worker._finished` and wake the I/O thread.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from diracmq.broker import allocator, codec, topology
from diracmq.broker.config import Settings
from diracmq.broker.derrno import EMQDEADLETTER
from diracmq.broker.driver import (
    BrokerRefused,
    BrokerUnreachable,
    ConnectionLost,
    Delivery,
    Driver,
    QueueKind,
    Returned,
)
from diracmq.broker.returnvalues import S_ERROR
from diracmq.workers import logformat, metrics  # metrics hook, logging hook
from diracmq.workers.dedup import ReplyCache
from diracmq.workers.handler import RequestHandler, dispatch, find_export
from diracmq.workers.identity import auth_rules_for, group_refusal, prepare
from diracmq.workers.poison import HOST_SLACK, AloneFiles
from diracmq.workers.requests import (
    MAX_DECODED_ITEMS,
    BadRequest,
    bad_request_reply,
    deadline_passed,
    encode_reply,
    parse_request,
    reply_refusal,
)
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    stop_never,
    wait_exponential_jitter,
)

__all__ = ["Worker", "parse_request", "encode_reply", "TopologyMismatch"]

log = logging.getLogger(__name__)

#: Seconds between two turns of the I/O loop when nothing happens (signals, drain).
_TICK = 0.2
#: Request ids whose cached reply was sent again after a redelivery (bounded memory).
_RESENT_KEEP = 1024


class TopologyMismatch(RuntimeError):
    """The broker holds a queue of ours declared with other arguments."""


@dataclasses.dataclass(slots=True, eq=False)
class _Item:
    """One delivered request on its way through the worker."""

    service: str
    delivery: Delivery
    #: It came back through the retry loop after a worker died holding it: run alone.
    suspect: bool = False
    #: Set by a handler thread: the reply bytes (None: no reply) and whether to ack.
    reply: bytes | None = None
    ack: bool = True

    @property
    def key(self) -> tuple[str, str]:
        props = self.delivery.properties
        return (str(props.user_id or ""), str(props.message_id or ""))


class Worker:
    """Serve a System's services from this process until SIGTERM/SIGINT.

    ``handlers`` maps ``System/Service`` to its handler class.  ``threads`` handler
    threads run requests; ``prefetch`` (default ``2 * threads``) bounds how many
    unacknowledged requests this process holds per service queue, and so its memory
    under a burst.  ``driver`` makes the connection (default: the pika driver; the
    in-memory one for tests, broker/memory_driver.py).
    """

    def __init__(self, handlers: dict[str, type[RequestHandler]], settings: Settings,
                 threads: int = 15, prefetch: int | None = None,
                 graceful_timeout: float = 30.0, name: str = "worker",
                 poison_after: int = 2, inline_threshold: float = 0.002,
                 reply_cache_bytes: int = ReplyCache.DEFAULT_MAX_BYTES,
                 driver: Driver | None = None, max_decoded_items: int = MAX_DECODED_ITEMS,
                 alone_dir: str | None = None, tune_allocator: bool = True) -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.handlers = handlers
        self.settings = settings
        self.threads = threads
        self.prefetch = prefetch or 2 * threads
        self.graceful_timeout = graceful_timeout
        #: Deaths (of workers holding it) after which a request is parked as poison.
        self.poison_after = max(1, poison_after)
        self.name = name
        self.max_decoded_items = max_decoded_items
        self.tune_allocator = tune_allocator
        self.counters: collections.Counter[str] = collections.Counter()
        self._counter_lock = threading.Lock()
        if driver is None:
            from diracmq.broker.pika_driver import PikaDriver
            driver = PikaDriver(settings, f"diracmq {name}")
        self._driver = driver
        driver.on_return = self._on_reply_returned
        self._queues: dict[str, str] = {}  # queue name -> service
        self._in_flight = 0  # delivered on the current connection, not yet acked
        self._running = 0  # started and not finished (any connection)
        self._alone: _Item | None = None  # the suspect running by itself
        self._alone_files = AloneFiles(alone_dir)
        self._stopping = False
        self._force = False
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="handler")
        #: Run a method on the I/O thread when its recent runs took less (seconds; 0: never).
        #: Not with one handler thread: that thread alone then serves requests in order.
        self.inline_threshold = inline_threshold if threads > 1 else 0.0
        #: Seconds an inline handler may hold the I/O thread before the watchdog drives I/O.
        self.steal_after = 0.1
        self._durations: dict[tuple[str, str], float] = {}  # moving average per method
        self._ready: collections.deque[_Item] = collections.deque()
        #: Handler threads put finished items here; the I/O thread publishes and acks them.
        self._finished: collections.deque[_Item] = collections.deque()
        self._early_acks: collections.deque[tuple[_Item, threading.Event]] = collections.deque()
        # Held by whoever may call the driver: the main thread, except while it runs a
        # handler inline, when the watchdog may take it.
        self._io_lock = threading.Lock()
        self._inline_since: float | None = None
        self._lost: ConnectionLost | None = None
        self._exiting = threading.Event()
        self._wakeup = threading.Event()  # interrupts the back-off between reconnections
        self._served = False
        #: Set while the worker consumes its queues (for code that runs a Worker in a thread).
        self.ready = threading.Event()
        #: Replies kept to answer a repeated request (workers/dedup.py); 0 bytes: none kept.
        self._replies = ReplyCache(max_bytes=max(0, reply_cache_bytes))
        self._resent: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()

    # ------------------------------------------------------------------ running
    def run(self) -> int:
        """Serve until told to stop; return the process exit status (0: clean)."""
        for service, cls in self.handlers.items():
            info = {"serviceName": service, "System": service.split("/")[0],
                    "startTime": time.time(), "counters": self.counters}
            cls.serviceInfoDict = info
            result = cls.initializeHandler(info)
            # user code may return anything (None...), whatever its annotation says
            if isinstance(result, dict) and result.get("OK") is False:  # type: ignore[redundant-expr]
                log.error("initializeHandler of %s failed: %s", service, result.get("Message"))
                return 1
        prepare(self.settings)  # identity: the Registry, via this worker's broker settings
        if self.tune_allocator:  # large bodies: no page faults (broker/allocator.py)
            allocator.keep_freed_memory(self.settings.malloc_keep_mb)
        self._install_signals()
        stop_at = None
        self._io_lock.acquire()
        watchdog = threading.Thread(target=self._watchdog, name="io-watchdog", daemon=True)
        watchdog.start()
        try:
            while True:
                if not self._driver.is_open:
                    if self._stopping or not self._open():
                        break
                if self._stopping:
                    stop_at = stop_at or self._begin_drain()
                    if self._in_flight == 0 or self._force or time.monotonic() > stop_at:
                        break
                try:
                    if self._lost is not None:
                        raise self._lost  # the watchdog saw the connection die
                    self._driver.drive(None)  # the tick ends a quiet turn
                    self._io_turn(inline=True)
                except ConnectionLost as exc:
                    log.warning("connection to the broker lost (%s); reconnecting", exc)
                    self._count("reconnections")  # metrics hook
                    self._drop_connection()
        except BrokerUnreachable as exc:
            log.error("%s", exc)
            return 1
        except TopologyMismatch as exc:
            log.error("%s", exc)
            return 2
        finally:
            self._exiting.set()
            unfinished = self._running
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

        Attempts are spaced by tenacity's exponential back-off with jitter (0.5 s
        doubling to 30 s), one log line each.  Before the worker has ever served, it
        gives up after ``connect_timeout`` (exit status 1: a wrong URL or password
        should fail a start-up); once it has served, it keeps trying until stopped.
        """
        retrying = Retrying(
            retry=retry_if_exception_type(BrokerUnreachable),
            stop=stop_never if self._served else stop_after_delay(self.settings.connect_timeout),
            wait=wait_exponential_jitter(multiplier=0.5, max=30.0, jitter=0.5),
            sleep=self._sleep, reraise=True,
            before_sleep=lambda state: log.warning(
                "broker unreachable (attempt %d): %s; next attempt in %.1fs",
                state.attempt_number, state.outcome.exception() if state.outcome else "?",
                state.next_action.sleep if state.next_action else 0.0))
        try:
            for attempt in retrying:
                with attempt:
                    if self._stopping:
                        return False
                    self._driver.open(timeout=5.0, retry=False)
                    self._start_consuming()
        except ConnectionLost as exc:  # dropped while setting up: the loop tries again
            log.warning("connection lost while setting up (%s); retrying", exc)
            self._driver.close()
            self._sleep(1.0)
        return True

    def _sleep(self, seconds: float) -> None:
        """Wait between reconnection attempts; a stop request cuts it short."""
        self._wakeup.wait(seconds)
        self._wakeup.clear()

    def _tick(self) -> None:
        """Every 0.2 s: end the driver's turn so run() sees signals, then re-arm."""
        if not self._exiting.is_set() and self._driver.is_open:
            self._driver.call_later(_TICK, self._tick)

    def _start_consuming(self) -> None:
        driver = self._driver
        self._in_flight = 0  # deliveries of the old connection went back to the queue
        self._queues.clear()
        for service in self.handlers:
            try:
                queue = driver.declare_service_queue(service)
            except BrokerRefused as exc:
                driver.close()
                raise TopologyMismatch(
                    f"cannot declare the queue of {service}: {exc.reply_text}. A queue of that "
                    f"name exists with other arguments (an older protocol version?); delete "
                    f"it with `rabbitmqctl delete_queue {topology.service_queue_name(service)}`"
                    f" once it is drained") from None
            self._queues[queue] = service
            driver.consume(queue, self._on_delivery, QueueKind.MANUAL_ACK, self.prefetch)
        driver.call_later(_TICK, self._tick)
        self._served = True
        self.ready.set()
        log.info("worker ready: %s serving %s (pid %d, %d threads, prefetch %d)",
                 self.name, ", ".join(self.handlers), os.getpid(), self.threads, self.prefetch)

    def _drop_connection(self) -> None:
        self.ready.clear()
        self._ready.clear()  # deliveries of a dead connection go back to the queue
        self._lost = None
        self._driver.close()

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
        self._wakeup.set()

    def _begin_drain(self) -> float:
        self._driver.cancel_consumers()
        return time.monotonic() + self.graceful_timeout

    # -------------------------------------------------------------- scheduling
    def _count(self, name: str) -> None:
        with self._counter_lock:
            self.counters[name] += 1
        metrics.count(name)  # metrics hook

    def _on_delivery(self, delivery: Delivery) -> None:
        """I/O thread: queue the delivery; :meth:`_dispatch` decides who runs it."""
        service = self._queues.get(delivery.queue)
        if service is None:
            return
        if delivery.undecodable is not None:
            self._park_undecodable(service, delivery)
            return
        if delivery.redelivered and self._give_up_or_retry(service, delivery):
            return
        self._in_flight += 1
        suspect = topology.rejected_count(delivery.properties.headers, delivery.queue) > 0
        self._ready.append(_Item(service, delivery, suspect))

    def _io_turn(self, inline: bool) -> None:
        """I/O lock held: finish what handler threads returned, then start ready requests."""
        self._finish_returned()
        self._dispatch(inline)

    def _finish_returned(self) -> None:
        while self._early_acks:
            item, sent = self._early_acks.popleft()
            try:
                self._driver.ack(item.delivery)
            finally:
                sent.set()
        while self._finished:
            self._finish(self._finished.popleft())

    def _dispatch(self, inline: bool) -> None:
        """Start ready requests: fast ones here (``inline``), the others in the pool.

        Replies of inline runs are queued and leave with the loop's next turn, so a
        burst's replies share a few sendmsg() calls; a batch that runs past 1 ms sends
        what it has queued so far, so early replies do not wait for the whole batch.
        """
        flushed_at = time.monotonic()
        while self._ready and self._alone is None:
            item = self._ready[0]
            if item.suspect:
                if self._running:
                    return  # a suspect starts only when nothing else runs here
                self._ready.popleft()
                self._start_alone(item)
                return
            self._ready.popleft()
            self._running += 1
            message = self._fast_message(item) if inline else None
            if message is None:
                self._pool.submit(self._handle, item)
                continue
            self._run_inline(item, message)
            if self._ready and time.monotonic() - flushed_at > 0.001:
                self._driver.flush()
                flushed_at = time.monotonic()

    def _start_alone(self, item: _Item) -> None:
        user, request_id = item.key
        log.warning("request %s to %s came back after a worker died holding it: running it "
                    "alone", request_id or "(no id)", item.service)
        self._alone = item
        if request_id:
            self._alone_files.running(user, request_id)
        self._running += 1
        self._pool.submit(self._handle, item)

    def _fast_message(self, item: _Item) -> dict[str, Any] | None:
        """The decoded request if its method is fast enough to run inline, else None."""
        body = item.delivery.body
        if self.inline_threshold <= 0 or len(body) > 65536:
            return None
        try:
            message = codec.unpackb(body, max_items=self.max_decoded_items)
        except codec.DecodeError:
            return None  # the pool path reports it
        method = message.get("method") if isinstance(message, dict) else None
        if not isinstance(method, str):
            return None  # malformed: the pool path reports it (never raise on the I/O thread)
        duration = self._durations.get((item.service, method))
        return message if duration is not None and duration < self.inline_threshold else None

    def _run_inline(self, item: _Item, message: dict[str, Any]) -> None:
        """Run one request on the I/O thread, letting the watchdog drive I/O meanwhile."""
        self._inline_since = time.monotonic()
        self._io_lock.release()
        try:
            item.reply = self._serve_safely(item, self._no_early_ack, message)
        finally:
            self._inline_since = None
            if not self._io_lock.acquire(blocking=False):
                self._driver.wake()  # make the watchdog's drive return now
                self._io_lock.acquire()
        self._finish(item)

    @staticmethod
    def _no_early_ack() -> None:
        raise AssertionError("atMostOnce_ methods never run inline")

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
                while self._inline_since is not None and self._driver.is_open:
                    self._driver.drive(0.05)
                    self._io_turn(inline=False)
            except ConnectionLost as exc:
                self._lost = exc  # the main thread reconnects
            finally:
                self._io_lock.release()

    # ------------------------------------------------------------------ poison
    def _give_up_or_retry(self, service: str, delivery: Delivery) -> bool:
        """I/O thread: a redelivered request; True if it was dealt with here.

        Redelivery means the worker that held it died or lost its connection before
        answering.  Answered here before: the reply cache answers again, once (a reply
        the broker refused must not loop).  Convicted (workers/poison.py): parked.
        Else it goes round the retry loop, which counts deaths in ``x-death``.
        """
        props = delivery.properties
        key = (str(props.user_id or ""), str(props.message_id or ""))
        if props.message_id and self._replies.begin_peek(key):
            if key in self._resent:
                self._count("resend_refused")
                log.warning("request %s to %s redelivered again after its reply was sent "
                            "twice: dropped", props.message_id, service)
                self._driver.ack(delivery)
                return True
            self._resent[key] = None
            while len(self._resent) > _RESENT_KEEP:
                self._resent.popitem(last=False)
            return False  # answered here before: the reply cache answers it again
        deaths = 1 + topology.rejected_count(props.headers, delivery.queue)
        convicted = bool(props.message_id) and self._alone_files.convicted(*key)
        if (convicted and deaths >= self.poison_after) \
                or deaths >= self.poison_after + HOST_SLACK:
            self._park(service, delivery, deaths)
            return True
        self._count("retried")
        log.warning("request %s to %s redelivered (a worker died or lost its connection "
                    "holding it): sent round the retry loop", props.message_id, service)
        self._driver.reject(delivery, requeue=False)
        return True

    def _park(self, service: str, delivery: Delivery, deaths: int) -> None:
        props = delivery.properties
        self._count("parked")
        log.error("request %s to %s given up: it was running when %d workers died or lost "
                  "their connection; parked in %s", props.message_id, service, deaths,
                  topology.PARKING_QUEUE)
        headers = dict(props.headers) if isinstance(props.headers, dict) else {}
        headers.update({"x-dirac-user": props.user_id or "", "x-dirac-service": service})
        self._driver.publish_raw(topology.PARKING_QUEUE, delivery.body,
                                 content_type=props.content_type,
                                 message_id=props.message_id,
                                 correlation_id=props.correlation_id, headers=headers)
        if reply_refusal(props.user_id, props.reply_to) is None:
            error = S_ERROR(EMQDEADLETTER, f"request {props.message_id} to {service} was given "
                                           f"up after {deaths} workers died or lost their "
                                           f"connection while running it (a poison "
                                           f"message?); it was not run again")
            self._publish_reply(delivery, encode_reply(error, service))
        self._driver.ack(delivery)

    def _park_undecodable(self, service: str, delivery: Delivery) -> None:
        """A delivery whose properties could not be decoded: park it, keep the connection."""
        self._count("undecodable")
        log.warning("request to %s with properties that cannot be decoded (%s): parked in "
                    "%s", service, delivery.undecodable, topology.PARKING_QUEUE)
        self._driver.publish_raw(topology.PARKING_QUEUE, delivery.body, headers={
            "x-dirac-service": service,
            "x-dirac-undecodable": str(delivery.undecodable)[:200]})
        self._driver.ack(delivery)

    # ------------------------------------------------------------------ serving
    def _handle(self, item: _Item) -> None:
        """Handler thread: produce the reply bytes (or None), hand them to the I/O thread."""
        def ack_early() -> None:
            item.ack = False
            sent = threading.Event()
            self._early_acks.append((item, sent))
            self._driver.wake()
            # Run only once the ack is on its way: a crash from here on loses the request.
            sent.wait(self.graceful_timeout)

        metrics.handler_busy(1)  # metrics hook
        try:
            item.reply = self._serve_safely(item, ack_early)
        finally:
            metrics.handler_busy(-1)  # metrics hook
        self._finished.append(item)
        self._driver.wake()

    def _serve_safely(self, item: _Item, ack_early: Callable[[], None],
                      message: Any = None) -> bytes | None:
        token = logformat.begin_request(item.service, item.delivery.properties)  # logging hook
        metrics.in_flight(item.service, 1)  # metrics hook
        try:
            return self._serve(item, ack_early, message)
        except BaseException:  # a bug of ours (or a SystemExit) must not lose the message
            log.exception("unexpected error serving a request to %s", item.service)
            self._count("internal_errors")
            return None
        finally:
            metrics.in_flight(item.service, -1)  # metrics hook
            logformat.end_request(token)  # logging hook
            metrics.reply_cache_size(self._replies.nbytes)  # metrics hook

    def _serve(self, item: _Item, ack_early: Callable[[], None],
               message: Any = None) -> bytes | None:
        self._count("requests")
        props = item.delivery.properties
        refusal = reply_refusal(props.user_id, props.reply_to)
        if refusal is not None:
            self._count("no_reply_to" if not props.reply_to else "foreign_reply_to")
            log.warning("request to %s from %r dropped: reply_to %r is %s (message_id %r)",
                        item.service, props.user_id, props.reply_to, refusal, props.message_id)
            return None
        if deadline_passed(props):
            self._count("expired")
            log.info("request to %s (message_id %r) arrived after its deadline; not run",
                     item.service, props.message_id)
            return None
        if not isinstance(props.message_id, str) or not props.message_id:
            return self._run(item, ack_early, message)
        key = item.key
        while True:
            claim = self._replies.begin(key)
            if claim is None:
                break
            if isinstance(claim, bytes):
                self._count("duplicates")
                log.info("request %s to %s seen before: replying from cache, not running it "
                         "again", props.message_id, item.service)
                return claim
            claim.wait()  # the same request is running in another thread right now
        reply = None
        try:
            reply = self._run(item, ack_early, message)
            return reply
        finally:
            self._replies.finish(key, reply)

    def _run(self, item: _Item, ack_early: Callable[[], None], message: Any = None) -> bytes:
        """Decode, dispatch and encode one request: the reply bytes."""
        service = item.service
        try:
            request = parse_request(service, item.delivery.properties, item.delivery.body,
                                    message, self.max_decoded_items)
        except BadRequest as exc:
            self._count("malformed")
            log.warning("%s", exc)
            return bad_request_reply(exc, service)
        logformat.decoded_request(request.method, request.credentials)  # logging hook
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
        took = time.perf_counter() - started
        metrics.observe_call(service, request.method if export else None, result,
                             took)  # metrics hook
        logformat.finish_request(request.method if export else None, request.credentials,
                                 metrics.outcome_of(result), took)  # logging hook
        if export is not None and not at_most_once and not item.suspect:
            # A moving average of real methods only (names from the wire are unbounded).
            key = (service, request.method)
            previous = self._durations.get(key)
            self._durations[key] = took if previous is None else 0.7 * previous + 0.3 * took
        if not result.get("OK"):
            self._count("errors")
        return encode_reply(result, f"{service}.{request.method}",
                            self.settings.max_message_bytes)

    # ---------------------------------------------------------------- replying
    def _finish(self, item: _Item) -> None:
        """I/O thread: publish the reply, then ack the request (in that order).

        Both are queued and leave together with the loop's next turn: the broker sees
        them in this order.
        """
        self._running -= 1
        if item is self._alone:
            self._alone = None
            user, request_id = item.key
            if request_id:
                self._alone_files.done(user, request_id)
        delivery = item.delivery
        if delivery.generation != self._driver.generation or not self._driver.is_open:
            return  # delivered on a connection that has since died: already requeued
        self._in_flight -= 1
        if item.reply is not None:
            self._publish_reply(delivery, item.reply)
        if item.ack:
            self._driver.ack(delivery)

    def _publish_reply(self, delivery: Delivery, reply: bytes) -> None:
        props = delivery.properties
        try:
            self._driver.publish_reply(
                props.reply_to, props.correlation_id, reply,
                # RabbitMQ 3.10 returns mandatory messages sent to Direct Reply-to
                # even though it delivers them: ask only for named reply queues.
                mandatory=not props.reply_to.startswith(topology.DIRECT_REPLY_TO))
            self._count("replies")
        except (ValueError, TypeError) as exc:  # e.g. a correlation_id pika cannot encode
            self._count("unreplyable")
            log.warning("cannot reply to %r: %s", props.reply_to, exc)

    def _on_reply_returned(self, returned: Returned) -> None:
        self._count("reply_unroutable")
        log.warning("reply to %r returned by the broker (%s): the caller is gone",
                    returned.routing_key, returned.reply_text)

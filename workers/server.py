"""One worker process: consume a System's request queues, schedule, reply, acknowledge.

The serving half of the request path (the client half is client/transport.py):

1. The main thread owns the driver's I/O (the *I/O thread*, broker/driver.py).  It
   consumes every service queue of the System with ``prefetch`` unacknowledged
   deliveries at most, and queues each delivery as ready (:meth:`Worker._on_delivery`).
2. The scheduler (workers/scheduler.py) says which ready request starts next and
   where: on the I/O thread itself when its method is known to be fast, else on the
   pool of ``threads`` handler threads; a *suspect* (a request whose previous worker
   died, workers/poison.py) runs alone.
3. Running a request (:meth:`Worker._serve`) checks where its reply may go
   (workers/requests.py), drops it if its deadline passed, answers a repeat from the
   reply cache (workers/dedup.py), and otherwise decodes it and runs the handler
   (workers/handler.py).
4. The reply comes back to the I/O thread, which publishes it and only *then* acks the
   request (workers/replies.py): a worker that dies before that leaves the request to
   another worker.  It is handed over as soon as it is encoded (:meth:`Worker._run`):
   the worker's own bookkeeping of the request (metrics, the access log, the reply
   cache, the method's duration) follows while the reply is on its way.

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
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from diracmq.broker import allocator, topology
from diracmq.broker.config import Settings
from diracmq.broker.driver import (
    BrokerRefused,
    BrokerUnreachable,
    ConnectionLost,
    Delivery,
    Driver,
    QueueKind,
)
from diracmq.workers import logformat, metrics  # metrics hook, logging hook
from diracmq.workers.dedup import ReplyCache
from diracmq.workers.handler import RequestHandler, dispatch, find_export
from diracmq.workers.identity import auth_rules_for, group_refusal, prepare
from diracmq.workers.poison import HOST_SLACK, AloneFiles
from diracmq.workers.replies import ReplyPublisher
from diracmq.workers.requests import (
    MAX_DECODED_ITEMS,
    BadRequest,
    bad_request_reply,
    deadline_passed,
    encode_reply,
    parse_request,
    reply_refusal,
)
from diracmq.workers.scheduler import Placement, Scheduler, Work
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
        self._replier = ReplyPublisher(driver, self._count)
        self._queues: dict[str, str] = {}  # queue name -> service
        self._in_flight = 0  # delivered on the current connection, not yet acked
        self._alone_files = AloneFiles(alone_dir)
        self._stopping = False
        self._force = False
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="handler")
        # Not inline with one handler thread: that thread alone then serves requests in order.
        self._scheduler = Scheduler(inline_threshold if threads > 1 else 0.0,
                                    max_decoded_items, self._alone_files)
        #: Seconds an inline handler may hold the I/O thread before the watchdog drives I/O.
        self.steal_after = 0.1
        #: Handler threads put finished items here; the I/O thread publishes and acks them.
        self._finished: collections.deque[Work] = collections.deque()
        self._early_acks: collections.deque[tuple[Work, threading.Event]] = collections.deque()
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
            unfinished = self._scheduler.running
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
        for attempt in retrying:
            with attempt:
                if self._stopping:
                    return False
                self._driver.open(timeout=5.0, retry=False)
                try:
                    # A node that took the connection but cannot answer (a quorum queue
                    # without its leader, a paused minority) must not hold the worker:
                    # past half the connect timeout (leaving a start-up time for another
                    # attempt) it is a failed attempt; the next tries other nodes first.
                    with self._driver.bounded(max(1.0, self.settings.connect_timeout / 2)):
                        self._start_consuming()
                except ConnectionLost as exc:
                    # Dropped, refused (no permission on a queue) or not answered while
                    # setting up: another attempt, after the same back-off.
                    self._driver.close()
                    raise BrokerUnreachable(f"connection lost while setting up: {exc}") from exc
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
                queue = driver.declare_service_queue(service, self.settings.queue_type)
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
        self._scheduler.drop_ready()  # deliveries of a dead connection went back
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
            self._replier.park_undecodable(service, delivery)
            return
        if delivery.redelivered and self._give_up_or_retry(service, delivery):
            return
        self._in_flight += 1
        # Back after a worker died holding it: through the retry loop (x-death, classic
        # queues) or redelivered by a quorum queue (x-delivery-count).
        suspect = topology.death_count(delivery.properties.headers, delivery.queue,
                                       self.settings.queue_type) > 0
        self._scheduler.add(Work(service, delivery, suspect))

    def _io_turn(self, inline: bool) -> None:
        """I/O lock held: finish what handler threads returned, then start ready requests."""
        self._finish_returned()
        self._dispatch(inline)

    def _finish_returned(self) -> None:
        if self._early_acks:
            acked = []
            try:
                while self._early_acks:
                    item, sent = self._early_acks.popleft()
                    acked.append(sent)
                    self._driver.ack(item.delivery)
                # Written before the handler may run: an atMostOnce_ method that kills
                # its process right away must find its request acknowledged already.
                self._driver.flush()
            finally:
                for sent in acked:
                    sent.set()
        while self._finished:
            self._finish(self._finished.popleft())

    def _dispatch(self, inline: bool) -> None:
        """Start what the scheduler says: inline here (``inline``), else in the pool.

        The reply of an inline run leaves at once when no other request is ready
        (:meth:`_reply_inline`).  While others are ready, replies are queued and leave
        together, so a burst's replies share a few sendmsg() calls; a batch that runs
        past 1 ms sends what it has queued so far, so early replies do not wait for the
        whole batch.
        """
        flushed_at = time.monotonic()
        while self._lost is None and (chosen := self._scheduler.next(inline)) is not None:
            work, placement, message = chosen
            if placement is not Placement.INLINE:
                self._pool.submit(self._handle, work)
                continue
            self._run_inline(work, message)
            if self._scheduler and time.monotonic() - flushed_at > 0.001:
                self._driver.flush(read_first=False)
                flushed_at = time.monotonic()

    def _run_inline(self, item: Work, message: dict[str, Any] | None) -> None:
        """Run one request on the I/O thread, letting the watchdog drive I/O meanwhile."""
        self._inline_since = time.monotonic()
        self._io_lock.release()
        try:
            reply = self._serve_safely(item, self._no_early_ack, self._reply_inline, message)
        finally:
            self._take_io_back()
        if not item.handed:  # no early hand-over (no reply, a cached or an error reply)
            item.reply = reply
            self._finish(item)

    def _take_io_back(self) -> None:
        """End an inline run's hold of the I/O thread: the I/O lock is ours again."""
        if self._inline_since is None:
            return  # taken back already (the reply was handed over early)
        self._inline_since = None
        if not self._io_lock.acquire(blocking=False):
            self._driver.wake()  # make the watchdog's drive return now
            self._io_lock.acquire()

    def _reply_inline(self, item: Work, reply: bytes) -> None:
        """An inline run's reply is encoded: queue it and its ack, and send them now if
        no other request is ready (else they leave with the batch, see _dispatch)."""
        self._take_io_back()
        item.handed = True
        item.reply = reply
        self._finish(item)
        if not self._scheduler and self._driver.is_open:
            try:
                self._driver.flush(read_first=False)
            except ConnectionLost as exc:
                self._lost = exc  # the run loop reconnects; _dispatch starts nothing more

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
        convicted = bool(props.message_id) and self._alone_files.convicted(*key)
        if self.settings.queue_type == "quorum":
            # Quorum queues count the deliveries that came back themselves
            # (x-delivery-count, this death included): there is no retry loop, a
            # redelivered request is a suspect as it is (it runs alone).  The count also
            # grows with a node's failover (every delivery held there comes back),
            # hence one more death tolerated without an alone-file's conviction.
            deaths = max(1, topology.death_count(props.headers, delivery.queue, "quorum"))
            if (convicted and deaths >= self.poison_after) \
                    or deaths > self.poison_after + HOST_SLACK:
                self._replier.park(service, delivery, deaths)
                return True
            return False
        deaths = 1 + topology.rejected_count(props.headers, delivery.queue)
        if (convicted and deaths >= self.poison_after) \
                or deaths >= self.poison_after + HOST_SLACK:
            self._replier.park(service, delivery, deaths)
            return True
        self._count("retried")
        log.warning("request %s to %s redelivered (a worker died or lost its connection "
                    "holding it): sent round the retry loop", props.message_id, service)
        self._driver.reject(delivery, requeue=False)
        return True

    # ------------------------------------------------------------------ serving
    def _handle(self, item: Work) -> None:
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
            reply = self._serve_safely(item, ack_early, self._hand_over)
        finally:
            metrics.handler_busy(-1)  # metrics hook
        if not item.handed:
            self._hand_over(item, reply)

    def _hand_over(self, item: Work, reply: bytes | None) -> None:
        """Handler thread: give the reply to the I/O thread, which sends it and acks."""
        item.handed = True
        item.reply = reply
        self._finished.append(item)
        self._driver.wake()

    def _serve_safely(self, item: Work, ack_early: Callable[[], None],
                      hand_over: Callable[[Work, bytes], None],
                      message: Any = None) -> bytes | None:
        token = logformat.begin_request(item.service, item.delivery.properties)  # logging hook
        metrics.in_flight(item.service, 1)  # metrics hook
        try:
            return self._serve(item, ack_early, hand_over, message)
        except BaseException:  # a bug of ours (or a SystemExit) must not lose the message
            log.exception("unexpected error serving a request to %s", item.service)
            self._count("internal_errors")
            return None
        finally:
            metrics.in_flight(item.service, -1)  # metrics hook
            logformat.end_request(token)  # logging hook
            metrics.reply_cache_size(self._replies.nbytes)  # metrics hook

    def _serve(self, item: Work, ack_early: Callable[[], None],
               hand_over: Callable[[Work, bytes], None], message: Any = None) -> bytes | None:
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
            return self._run(item, ack_early, hand_over, message)
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
            reply = self._run(item, ack_early, hand_over, message)
            return reply
        finally:
            self._replies.finish(key, reply)

    def _run(self, item: Work, ack_early: Callable[[], None],
             hand_over: Callable[[Work, bytes], None], message: Any = None) -> bytes:
        """Decode, dispatch and encode one request: the reply bytes.

        The reply is handed over (``hand_over``) as soon as it is encoded, before this
        worker's bookkeeping of the request: that costs the caller nothing.
        """
        service = item.service
        try:
            request = parse_request(service, item.delivery.properties, item.delivery.body,
                                    message, self.max_decoded_items)
        except BadRequest as exc:
            self._count("malformed")
            log.warning("%s", exc)
            return bad_request_reply(exc)
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
        reply = encode_reply(result, f"{service}.{request.method}",
                             self.settings.max_message_bytes)
        hand_over(item, reply)
        metrics.observe_call(service, request.method if export else None, result,
                             took)  # metrics hook
        logformat.finish_request(request.method if export else None, request.credentials,
                                 metrics.outcome_of(result), took)  # logging hook
        if export is not None and not at_most_once and not item.suspect:
            self._scheduler.record(service, request.method, took)
        if not result.get("OK"):
            self._count("errors")
        return reply

    # ---------------------------------------------------------------- replying
    def _finish(self, item: Work) -> None:
        """I/O thread: a request is done; its reply, then its ack, leave with the next turn."""
        self._scheduler.finished(item)
        delivery = item.delivery
        if delivery.generation != self._driver.generation or not self._driver.is_open:
            return  # delivered on a connection that has since died: already requeued
        self._in_flight -= 1
        self._replier.finish(delivery, item.reply, item.ack)

"""The broker side of optimization: announcing new jobs, and consuming the announcements.

One durable queue, :data:`QUEUE`, holds persistent messages ``{"JobIDs": [...]}``
(msgpack); the JobManager publishes (with publisher confirms) after a submission is
committed, Optimizers workers consume with manual acknowledgement after the chain ran.
The delivery is at-least-once; the chain itself makes it exactly-once (see
Executor/Optimizers.py).  The queue name sits under ``dirac.rpc.`` so a worker's
broker user (docs/security.md) may declare, read and write it.

Losing an announcement loses nothing: Optimizers workers also sweep the JobDB for
jobs left in Received (see OptimizationMindHandler).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import msgpack
import pika
from diracmq.broker.config import Settings
from diracmq.broker.connection import close_quietly, connect

__all__ = ["BATCH", "QUEUE", "Announcer", "consume", "getAnnouncer", "threads"]

log = logging.getLogger(__name__)

#: The durable queue of job announcements.
QUEUE = "dirac.rpc.Optimizers.jobs"
#: Most job IDs in one announcement (so several Optimizers workers share a bulk job).
BATCH = 50


def _declare(channel: pika.adapters.blocking_connection.BlockingChannel) -> None:
    channel.queue_declare(QUEUE, durable=True)


class Announcer:
    """Publishes job IDs to :data:`QUEUE` over its own connection (thread-safe)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._conn: pika.BlockingConnection | None = None
        self._channel = None

    def _open(self) -> None:
        settings = self.settings or Settings.load()
        self._conn = connect(settings, "job announcer", timeout=settings.connect_timeout)
        self._channel = self._conn.channel()
        self._channel.confirm_delivery()
        _declare(self._channel)

    def close(self) -> None:
        """Close the connection (opened again on the next announcement)."""
        with self._lock:
            if self._conn is not None:
                close_quietly(self._conn)
            self._conn = self._channel = None

    def announce(self, jobIDs: Iterable[int]) -> bool:
        """Publish the IDs (in batches of :data:`BATCH`); whether the broker confirmed all.

        Never raises: a failure is logged, and the jobs wait for the JobDB sweep.
        """
        ids = [int(i) for i in jobIDs]
        if not ids:
            return True
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None or not self._conn.is_open:
                        self._open()
                    for start in range(0, len(ids), BATCH):
                        body = msgpack.packb({"JobIDs": ids[start:start + BATCH]})
                        self._channel.basic_publish(  # type: ignore[union-attr]
                            "", QUEUE, body, pika.BasicProperties(
                                delivery_mode=2, content_type="application/msgpack"),
                            mandatory=True)
                    return True
                except Exception as exc:  # broker gone, unroutable...: the sweep catches up
                    log.warning("announcing jobs %s to the optimizers failed (attempt %d): %r",
                                ids[:5], attempt, exc)
                    if self._conn is not None:
                        close_quietly(self._conn)
                    self._conn = self._channel = None
        return False


_announcer: Announcer | None = None
_announcer_lock = threading.Lock()


def getAnnouncer() -> Announcer:
    """The process's announcer."""
    global _announcer
    with _announcer_lock:
        if _announcer is None:
            _announcer = Announcer()
        return _announcer


def threads() -> int:
    """Announcements one Optimizers worker process handles at once
    (``DIRAC_WMS_OPTIMIZER_THREADS``, default 4)."""
    try:
        return max(1, int(os.environ.get("DIRAC_WMS_OPTIMIZER_THREADS") or 4))
    except ValueError:
        return 4


def consume(settings: Settings, handle: Callable[[Sequence[int]], bool],
            stop: threading.Event, prefetch: int | None = None,
            workers: int | None = None) -> None:
    """Consume announcements until ``stop`` is set; reconnect when the broker goes.

    ``handle(jobIDs)`` returns whether the message may be acknowledged (False: it is
    put back for another try).  A malformed message is logged and dropped.  Up to
    ``workers`` (default :func:`threads`) messages are handled at once, in threads (on
    PostgreSQL an optimizer mostly waits for the database's replies, and several
    transactions overlap; SQLite's writers take turns anyway); ``prefetch`` (default
    twice that) bounds the messages this process holds.  The acknowledgements are sent
    by this thread (the connection's own) as the handlers finish.
    """
    workers = workers or threads()
    prefetch = prefetch or 2 * workers
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="optimizer")
    try:
        while not stop.is_set():
            _consume_once(settings, handle, stop, prefetch, pool)
    finally:
        pool.shutdown(wait=True)


def _consume_once(settings: Settings, handle: Callable[[Sequence[int]], bool],
                  stop: threading.Event, prefetch: int, pool: ThreadPoolExecutor) -> None:
    """One connection's worth of consuming (returns when it is lost, or on ``stop``)."""
    conn = None
    running: dict[int, Future[bool]] = {}  # delivery tag -> its handler's outcome

    def settle(channel: Any, tag: int) -> None:
        """In the connection's thread: acknowledge (or put back) a handled message."""
        future = running.pop(tag, None)
        if future is None:
            return
        try:
            acked = future.result()
        except Exception:  # a handler bug: try again later
            log.exception("optimizing announced jobs failed")
            acked = False
        if acked:
            channel.basic_ack(tag)
        else:
            channel.basic_nack(tag, requeue=True)

    try:
        conn = connect(settings, "optimizer", timeout=settings.connect_timeout)
        channel = conn.channel()
        _declare(channel)
        channel.basic_qos(prefetch_count=prefetch)

        def finished(tag: int) -> None:  # in the handler's thread
            with contextlib.suppress(Exception):  # connection gone: redelivered anyway
                conn.add_callback_threadsafe(
                    lambda: settle(channel, tag))

        for method, _props, body in channel.consume(QUEUE, inactivity_timeout=0.5):
            if stop.is_set():
                break
            if method is None:
                continue
            try:
                message = msgpack.unpackb(body)
                ids = [int(i) for i in message["JobIDs"]]
            except Exception as exc:
                log.warning("dropping a malformed job announcement: %r", exc)
                channel.basic_ack(method.delivery_tag)
                continue
            tag = method.delivery_tag
            running[tag] = pool.submit(handle, ids)
            running[tag].add_done_callback(lambda _f, tag=tag: finished(tag))
        for tag in list(running):  # handlers see ``stop`` and return False: put back
            running[tag].exception()  # waits
            settle(channel, tag)
        with contextlib.suppress(Exception):  # closing anyway
            channel.cancel()
    except Exception as exc:
        if not stop.is_set():
            log.warning("optimizer consumer: %r; reconnecting", exc)
            stop.wait(1.0)
    finally:
        # handlers still running when the connection went: their messages come back
        # from the broker anyway (unacknowledged); wait for them before the next
        # connection, so that this process never optimizes one job twice at once
        for future in running.values():
            with contextlib.suppress(Exception):
                future.result()
        if conn is not None:
            close_quietly(conn)

"""What a worker sends back for a request: its reply, then its ack; or a parked copy.

Everything here runs on the thread that owns the driver's I/O, and only queues: the
publish and the ack leave together with the driver's next turn, the reply first, so a
worker that dies in between leaves the request to another worker (at least once).
Where a reply may go was decided before the request ran (workers/requests.py); this
module never publishes to a destination that check refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from diracmq.broker import topology
from diracmq.broker.derrno import EMQDEADLETTER
from diracmq.broker.driver import Delivery, Driver, Returned
from diracmq.broker.returnvalues import S_ERROR
from diracmq.workers.requests import encode_reply, reply_refusal

__all__ = ["ReplyPublisher"]

log = logging.getLogger(__name__)


class ReplyPublisher:
    """Replies, acks and parking for one worker (I/O thread only)."""

    def __init__(self, driver: Driver, count: Callable[[str], None]) -> None:
        self._driver = driver
        self._count = count
        driver.on_return = self._on_returned

    def finish(self, delivery: Delivery, reply: bytes | None, ack: bool) -> None:
        """Publish ``reply`` (if any) to the request's reply destination, then ack it."""
        if reply is not None:
            self.reply(delivery, reply)
        if ack:
            self._driver.ack(delivery)

    def reply(self, delivery: Delivery, body: bytes) -> None:
        """Queue ``body`` as the reply to ``delivery``."""
        props = delivery.properties
        try:
            self._driver.publish_reply(
                props.reply_to, props.correlation_id, body,
                # RabbitMQ 3.10 returns mandatory messages sent to Direct Reply-to
                # even though it delivers them: ask only for named reply queues.
                mandatory=not props.reply_to.startswith(topology.DIRECT_REPLY_TO))
            self._count("replies")
        except (ValueError, TypeError) as exc:  # e.g. a correlation_id pika cannot encode
            self._count("unreplyable")
            log.warning("cannot reply to %r: %s", props.reply_to, exc)

    def park(self, service: str, delivery: Delivery, deaths: int) -> None:
        """Give up a poison request: a copy to the parking queue, EMQDEADLETTER, ack."""
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
            self.reply(delivery, encode_reply(error, service))
        self._driver.ack(delivery)

    def park_undecodable(self, service: str, delivery: Delivery) -> None:
        """A delivery whose properties could not be decoded: park it, keep the connection."""
        self._count("undecodable")
        log.warning("request to %s with properties that cannot be decoded (%s): parked in "
                    "%s", service, delivery.undecodable, topology.PARKING_QUEUE)
        self._driver.publish_raw(topology.PARKING_QUEUE, delivery.body, headers={
            "x-dirac-service": service,
            "x-dirac-undecodable": str(delivery.undecodable)[:200]})
        self._driver.ack(delivery)

    def _on_returned(self, returned: Returned) -> None:
        self._count("reply_unroutable")
        log.warning("reply to %r returned by the broker (%s): the caller is gone",
                    returned.routing_key, returned.reply_text)

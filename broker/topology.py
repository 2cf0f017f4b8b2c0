"""Names and arguments of everything declared on the broker (wire protocol v1).

One durable direct exchange carries every request; each service ``System/Service``
has one durable queue bound to it with the service name as routing key.  Workers
declare their queues; clients declare only their reply queue.  docs/protocol.md
documents these names: changing one is a protocol change.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pika has no type hints: this names the type for readers (it is Any)
    from pika.adapters.blocking_connection import BlockingChannel

__all__ = [
    "PROTOCOL_VERSION",
    "REQUEST_EXCHANGE",
    "DIRECT_REPLY_TO",
    "check_service_name",
    "declare_service_queue",
    "reply_queue_name",
    "service_queue_name",
]

#: Version carried in every request body (``"v"``); a worker refuses other versions.
PROTOCOL_VERSION = 1
#: The exchange all requests are published to.
REQUEST_EXCHANGE = "dirac.rpc"
#: RabbitMQ's Direct Reply-to pseudo-queue.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
#: Dead-letter exchange of every service queue (headers type: only rejected requests
#: are routed on, expired ones are dropped).
RETRY_EXCHANGE = "dirac.rpc.retry"
#: Requests a worker rejected because a previous worker died holding them pass through
#: this queue (TTL 0) straight back to their service queue, with ``x-death`` counting
#: the round trips: the broker itself keeps the count, so it survives worker crashes.
RETRY_QUEUE = "dirac.rpc.retry"
#: Requests given up on as poison are copied here for an operator to inspect.
PARKING_QUEUE = "dirac.rpc.parked"

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*/[A-Za-z][A-Za-z0-9_]*$")


def check_service_name(service: object) -> str:
    """Return ``service`` if it is a valid ``System/Service`` name, else raise ValueError."""
    if not isinstance(service, str) or not _NAME.match(service):
        raise ValueError(f"invalid service name {service!r}: expected 'System/Service'")
    return service


def service_queue_name(service: str) -> str:
    """Queue of a service: ``dirac.rpc.WorkloadManagement.JobMonitoring``."""
    return "dirac.rpc." + check_service_name(service).replace("/", ".")


def reply_queue_name(user: str) -> str:
    """A fresh reply queue name for one client process of broker user ``user``.

    The user comes first so that a broker permission regex (docs/security.md) can
    give each user read access to its own reply queues only.
    """
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40]
    return f"dirac.reply.{user}.{host}.{os.getpid()}.{uuid.uuid4().hex[:12]}"


def is_reply_queue_of(queue: str, user: str) -> bool:
    """Whether ``queue`` is named as a reply queue of broker user ``user``."""
    return queue.startswith(f"dirac.reply.{user}.")


def declare_request_exchange(channel: BlockingChannel) -> None:
    """Declare the request exchange (idempotent)."""
    channel.exchange_declare(REQUEST_EXCHANGE, exchange_type="direct", durable=True)


def declare_retry_topology(channel: BlockingChannel) -> None:
    """Declare the retry exchange/queue loop and the parking queue (idempotent)."""
    declare_request_exchange(channel)
    channel.exchange_declare(RETRY_EXCHANGE, exchange_type="headers", durable=True)
    channel.queue_declare(RETRY_QUEUE, durable=True, arguments={
        "x-message-ttl": 0,  # expire at once: dead-lettered back to the request exchange
        "x-dead-letter-exchange": REQUEST_EXCHANGE,  # with the original routing key
    })
    channel.queue_bind(RETRY_QUEUE, RETRY_EXCHANGE,
                       arguments={"x-match": "all", "x-first-death-reason": "rejected"})
    channel.queue_declare(PARKING_QUEUE, durable=True, arguments={
        "x-max-length": 10_000, "x-message-ttl": 7 * 24 * 3600 * 1000})


def declare_service_queue(channel: BlockingChannel, service: str) -> str:
    """Declare a service's request queue and its binding; return the queue name."""
    name = service_queue_name(service)
    declare_retry_topology(channel)
    channel.queue_declare(name, durable=True, arguments={
        "x-queue-type": "classic",
        "x-dead-letter-exchange": RETRY_EXCHANGE,
    })
    channel.queue_bind(name, REQUEST_EXCHANGE, routing_key=service)
    return name


def rejected_count(headers: object, queue: str) -> int:
    """How often a request was rejected from ``queue`` (from the broker's ``x-death``)."""
    if not isinstance(headers, dict):
        return 0
    deaths = headers.get("x-death")
    if not isinstance(deaths, list):
        return 0
    for death in deaths:
        if (isinstance(death, dict) and death.get("queue") == queue
                and death.get("reason") == "rejected"):
            count = death.get("count", 0)
            return count if isinstance(count, int) else 0
    return 0

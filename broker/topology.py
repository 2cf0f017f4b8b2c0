"""Names and arguments of everything declared on the broker (wire protocol v1).

One durable direct exchange carries every request; each service ``System/Service``
has one durable queue bound to it with the service name as routing key.  Workers
declare their queues; clients declare only their reply queue.  docs/protocol.md
documents these names: changing one is a protocol change.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pika has no type hints: this names the type for readers (it is Any)
    from pika.adapters.blocking_connection import BlockingChannel

__all__ = [
    "PROTOCOL_VERSION",
    "REQUEST_EXCHANGE",
    "DIRECT_REPLY_TO",
    "QUORUM_DELIVERY_LIMIT",
    "check_service_name",
    "death_count",
    "is_reply_queue_of",
    "declare_service_queue",
    "reply_queue_name",
    "service_queue_arguments",
    "service_queue_name",
    "user_token",
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


_PLAIN = re.compile(r"[A-Za-z0-9_-]")
_ALL_PLAIN = re.compile(r"[A-Za-z0-9_-]+")
#: Longest user token kept readable; longer ones end in a digest (queue names <= 255 bytes).
_TOKEN_MAX = 100


def user_token(user: str) -> str:
    r"""``user`` as one dot-free component of a queue name, the same for every process.

    Any broker user name works, a certificate DN included (``CN=dirac.example.org``,
    spaces, ``/``, ``=``): characters other than ``[A-Za-z0-9_-]`` become ``~XX`` (the
    UTF-8 bytes in hex).  The token never contains ``.``, so the permission regex
    ``^dirac\.reply\.<token>\.`` of one user cannot match another's queues, and
    distinct users get distinct tokens.  A token over 100 characters keeps its first 60
    and ends in ``~~`` + 32 hex digits of the name's SHA-256 (``~~`` cannot occur in
    an escaped name, so such tokens cannot collide with short ones).
    """
    if not isinstance(user, str) or not user:  # type: ignore[redundant-expr]  # wire values
        raise ValueError(f"a broker user name must be a non-empty string, not {user!r}")
    if _ALL_PLAIN.fullmatch(user):  # the usual name: one regex call, not one per character
        token = user
    else:
        token = "".join(ch if _PLAIN.match(ch) else "".join(f"~{b:02x}" for b in ch.encode())
                        for ch in user)
    if len(token) > _TOKEN_MAX:
        token = token[:60] + "~~" + hashlib.sha256(user.encode()).hexdigest()[:32]
    return token


def reply_queue_name(user: str) -> str:
    """A fresh reply queue name for one client process of broker user ``user``.

    The user (as :func:`user_token`) comes first so that a broker permission regex
    (docs/security.md) can give each user read access to its own reply queues only.
    """
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40]
    return f"dirac.reply.{user_token(user)}.{host}.{os.getpid()}.{uuid.uuid4().hex[:12]}"


def is_reply_queue_of(user: object, queue: str) -> bool:
    """Whether ``queue`` is one of broker user ``user``'s reply queues (by its name)."""
    if not isinstance(user, str) or not user:
        return False
    return queue.startswith(f"dirac.reply.{user_token(user)}.")


def declare_request_exchange(channel: BlockingChannel) -> None:
    """Declare the request exchange (idempotent)."""
    channel.exchange_declare(REQUEST_EXCHANGE, exchange_type="direct", durable=True)


def declare_retry_topology(channel: BlockingChannel, queue_type: str = "classic") -> None:
    """Declare the retry exchange/queue loop and the parking queue (idempotent).

    With quorum service queues there is no retry loop (the broker counts deliveries
    itself, :func:`death_count`), and the parking queue is a quorum queue too: a
    classic durable queue whose node is down cannot even be declared, which would
    keep every worker of the cluster from starting.  Requests the broker gives up on
    after :data:`QUORUM_DELIVERY_LIMIT` deliveries are dead-lettered into it.
    """
    declare_request_exchange(channel)
    channel.exchange_declare(RETRY_EXCHANGE, exchange_type="headers", durable=True)
    if queue_type == "quorum":
        channel.queue_declare(PARKING_QUEUE, durable=True, arguments={
            "x-queue-type": "quorum", "x-max-length": 10_000})
        channel.queue_bind(PARKING_QUEUE, RETRY_EXCHANGE, arguments={
            "x-match": "all", "x-first-death-reason": "delivery_limit"})
        return
    channel.queue_declare(RETRY_QUEUE, durable=True, arguments={
        "x-message-ttl": 0,  # expire at once: dead-lettered back to the request exchange
        "x-dead-letter-exchange": REQUEST_EXCHANGE,  # with the original routing key
    })
    channel.queue_bind(RETRY_QUEUE, RETRY_EXCHANGE,
                       arguments={"x-match": "all", "x-first-death-reason": "rejected"})
    channel.queue_declare(PARKING_QUEUE, durable=True, arguments={
        "x-max-length": 10_000, "x-message-ttl": 7 * 24 * 3600 * 1000})


#: Deliveries of one request a quorum queue allows before it dead-letters it into the
#: parking queue itself.  Workers park a request earlier (``--poison-after``, default
#: 2); this is the broker's backstop and must not change once queues exist (RabbitMQ
#: refuses to redeclare a queue with other arguments).
QUORUM_DELIVERY_LIMIT = 10


def service_queue_arguments(queue_type: str = "classic") -> dict[str, Any]:
    """The ``queue.declare`` arguments of a service queue of ``queue_type``."""
    if queue_type == "classic":
        return {"x-queue-type": "classic", "x-dead-letter-exchange": RETRY_EXCHANGE}
    if queue_type == "quorum":
        return {
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": RETRY_EXCHANGE,
            "x-delivery-limit": QUORUM_DELIVERY_LIMIT,
            # At-least-once dead-lettering needs publishers refused (not the oldest
            # request dropped) when the queue is full.
            "x-overflow": "reject-publish",
            "x-dead-letter-strategy": "at-least-once",
        }
    raise ValueError(f"unknown queue type {queue_type!r} (classic or quorum)")


def declare_service_queue(channel: BlockingChannel, service: str,
                          queue_type: str = "classic") -> str:
    """Declare a service's request queue and its binding; return the queue name."""
    name = service_queue_name(service)
    arguments = service_queue_arguments(queue_type)
    declare_retry_topology(channel, queue_type)
    channel.queue_declare(name, durable=True, arguments=arguments)
    channel.queue_bind(name, REQUEST_EXCHANGE, routing_key=service)
    return name


def death_count(headers: object, queue: str, queue_type: str | None = None) -> int:
    """How often workers died (or lost their connection) holding this delivery before.

    Classic queues: the broker's ``x-death`` count of rejections into the retry loop.
    Quorum queues: the broker's own ``x-delivery-count`` (deliveries returned without
    an ack).  ``queue_type`` None: whichever of the two the headers carry.
    """
    if queue_type != "classic" and isinstance(headers, dict):
        count = headers.get("x-delivery-count")
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            return count
        if queue_type == "quorum":
            return 0
    return rejected_count(headers, queue)


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

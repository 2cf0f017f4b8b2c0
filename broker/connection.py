"""Opening AMQP connections, retried with tenacity.

Both sides use pika's ``BlockingConnection``: the client drives it from whichever
thread leads (client/transport.py), the worker from its I/O thread
(workers/server.py).  This module only knows how to get one, and how long to try,
and makes every connection send a loop turn's frames in one syscall and read a small
message with one (broker/gather.py).
"""

from __future__ import annotations

import logging
import os
import socket
import time

import pika
import pika.exceptions
from diracmq.broker import gather
from diracmq.broker.config import Settings
from pika.adapters.blocking_connection import BlockingChannel
from pika.adapters.utils import connection_workflow
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_before_delay,
    wait_exponential_jitter,
)

__all__ = ["CONNECTION_ERRORS", "BrokerUnreachable", "ack_later", "broker_user", "close_quietly",
           "connect", "connection_parameters", "publish_later", "wake"]

log = logging.getLogger(__name__)

# Every connection this module opens sends a loop turn's frames in one syscall.
gather.install()

#: Failures worth another attempt: the broker is down, restarting or refusing for now
#: (pika raises its connection-workflow errors as they are when a handshake times out).
RETRYABLE = (pika.exceptions.AMQPConnectionError, OSError,
             connection_workflow.AMQPConnectorException,
             connection_workflow.AMQPConnectionWorkflowFailed)
#: ...except these: waiting does not fix a wrong password or a missing vhost.
FINAL = (pika.exceptions.ProbableAuthenticationError, pika.exceptions.ProbableAccessDeniedError)


def _worth_retrying(exc: BaseException) -> bool:
    return isinstance(exc, RETRYABLE) and not isinstance(exc, FINAL)


#: What a lost or broken connection raises out of pika (it asserts on some half-closed
#: states, hence AssertionError).
CONNECTION_ERRORS = (pika.exceptions.AMQPError, OSError, AssertionError)


def close_quietly(conn: pika.BlockingConnection) -> None:
    """Close ``conn`` if it is open; a connection already broken is simply dropped."""
    try:
        if conn.is_open:
            conn.close()
    except CONNECTION_ERRORS:
        pass


def wake() -> None:
    """A callback whose only job is to make pika's I/O loop return."""


class BrokerUnreachable(ConnectionError):
    """No connection to the broker could be made within the allowed time."""


def publish_later(channel: BlockingChannel, exchange: str, routing_key: str, body: bytes,
                  properties: pika.BasicProperties, mandatory: bool = False) -> None:
    """Queue a publish on ``channel``; it is written by the next turn of pika's loop.

    ``BlockingChannel.basic_publish`` writes each message with a loop turn of its own
    (turn the writer on, poll, send, turn it off).  Queued this way, the message leaves
    with the next ``process_data_events``, together with everything queued by then: a
    request and the wait for its reply in one turn, a reply and its ack in one
    sendmsg() (broker/gather.py),
    a burst's replies in a few.  Measured: a worker's CPU per request under a burst fell
    from 309 to 177 µs (raw pika's loop: 231), bench/RESULTS.md.  The caller must run
    the loop soon after (both sides do: that is where they wait).

    It goes through the pika channel behind the ``BlockingChannel`` (pika 1.x, pinned
    below 2; tests/integration cover every path that uses it).
    """
    channel._impl.basic_publish(exchange, routing_key, body, properties, mandatory)


def ack_later(channel: BlockingChannel, delivery_tag: int) -> None:
    """Queue a basic.ack, written with the next turn of the loop (see :func:`publish_later`)."""
    channel._impl.basic_ack(delivery_tag)


def connection_parameters(settings: Settings, name: str) -> pika.URLParameters:
    """pika parameters for ``settings.url`` with our heartbeat and a readable connection name."""
    params = pika.URLParameters(settings.url)
    params.heartbeat = settings.heartbeat
    params.blocked_connection_timeout = max(settings.rpc_timeout, 60.0)
    params.socket_timeout = 5
    params.stack_timeout = 10
    params.connection_attempts = 1  # tenacity does the retrying, with backoff
    params.client_properties = {
        "connection_name": f"{name} {socket.gethostname()}:{os.getpid()}",
        "product": "diracmq",
    }
    return params


def broker_user(settings: Settings) -> str:
    """The broker user name the URL logs in as (what RabbitMQ puts in ``user_id``)."""
    return pika.URLParameters(settings.url).credentials.username


def connect(settings: Settings, name: str, timeout: float | None = None) -> pika.BlockingConnection:
    """Open a connection, retrying with exponential backoff and jitter for ``timeout`` seconds.

    Authentication and access errors are not retried: waiting will not fix them.
    Raises :class:`BrokerUnreachable` with the last error when time runs out.
    """
    params = connection_parameters(settings, name)
    limit = settings.connect_timeout if timeout is None else timeout
    retrying = Retrying(
        retry=retry_if_exception(_worth_retrying),
        stop=stop_before_delay(max(limit, 0.0)),  # never sleep past the limit
        wait=wait_exponential_jitter(multiplier=0.1, max=2.0, jitter=0.2),
        reraise=True,
        before_sleep=lambda rs: log.warning(
            "broker %s:%s unreachable (%r); retrying", params.host, params.port,
            rs.outcome.exception() if rs.outcome else None,
        ),
    )
    give_up = time.monotonic() + limit

    def attempt() -> pika.BlockingConnection:
        # One handshake may not outlast the whole limit either (pika's own default is
        # 10 s): a caller with 2 s left must not wait 10 s on a silent network.
        left = max(0.2, give_up - time.monotonic())
        params.socket_timeout = min(5.0, left)
        params.stack_timeout = min(10.0, left)
        return pika.BlockingConnection(params)

    try:
        return retrying(attempt)
    except FINAL as exc:
        raise BrokerUnreachable(
            f"broker {params.host}:{params.port} refused user "
            f"{params.credentials.username!r} on vhost {params.virtual_host!r}: {exc!r}"
        ) from exc
    except RETRYABLE as exc:
        raise BrokerUnreachable(
            f"cannot reach the broker at {params.host}:{params.port} "
            f"(vhost {params.virtual_host!r}) within {limit:g}s: {exc!r}"
        ) from exc

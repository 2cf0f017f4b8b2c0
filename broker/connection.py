"""Opening AMQP connections, retried with tenacity.

The pika driver (broker/pika_driver.py) gets its connections here: this module only
knows the connection parameters, how to get one, and how long to try.
"""

from __future__ import annotations

import logging
import os
import socket
import time

import pika
import pika.exceptions
from diracmq.broker.config import Settings
from diracmq.broker.driver import BrokerUnreachable
from pika.adapters.utils import connection_workflow
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

__all__ = ["CONNECTION_ERRORS", "BrokerUnreachable", "broker_user", "close_quietly",
           "connect", "connection_parameters", "wake"]

log = logging.getLogger(__name__)

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
    return str(getattr(pika.URLParameters(settings.url).credentials, "username", ""))


def connect(settings: Settings, name: str, timeout: float | None = None,
            retry: bool = True) -> pika.BlockingConnection:
    """Open a connection, retrying with exponential backoff and jitter for ``timeout`` seconds.

    Authentication and access errors are not retried: waiting will not fix them.
    ``retry=False`` makes one attempt of up to ``timeout`` seconds (a caller with its own
    back-off, the worker, logs one line per attempt).
    Raises :class:`BrokerUnreachable` with the last error when time runs out.
    """
    params = connection_parameters(settings, name)
    limit = settings.connect_timeout if timeout is None else timeout
    retrying = Retrying(
        retry=retry_if_exception(_worth_retrying),
        # never sleep past the limit
        stop=stop_before_delay(max(limit, 0.0)) if retry else stop_after_attempt(1),
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
        user = getattr(params.credentials, "username", "")
        raise BrokerUnreachable(
            f"broker {params.host}:{params.port} refused user "
            f"{user!r} on vhost {params.virtual_host!r}: {exc!r}"
        ) from exc
    except RETRYABLE as exc:
        raise BrokerUnreachable(
            f"cannot reach the broker at {params.host}:{params.port} "
            f"(vhost {params.virtual_host!r}) within {limit:g}s: {exc!r}"
        ) from exc

"""Opening AMQP connections to one of the broker's nodes, retried with tenacity.

The pika driver (broker/pika_driver.py) gets its connections here: this module only
knows the connection parameters (URL lists, TLS and certificate login), how to get one,
and how long to try.
"""

from __future__ import annotations

import logging
import os
import random
import re
import socket
import ssl
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
           "connect", "connection_parameters", "mark_failed", "uses_certificate_login",
           "wake"]

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


def uses_certificate_login(url: str) -> bool:
    """True for an ``amqps://`` URL without user name: log in with the certificate
    (EXTERNAL mechanism), the broker user being the certificate's subject DN."""
    return url.lower().startswith("amqps://") and "@" not in url.split("://", 1)[1].split("/")[0]


def _parameters_for(url: str, settings: Settings, name: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = settings.heartbeat
    params.blocked_connection_timeout = max(settings.rpc_timeout, 60.0)
    params.socket_timeout = 5
    params.stack_timeout = 10
    # pika applies the *last* parameters' connection_attempts/retry_delay to a whole
    # list; we never hand it a list (connect() walks ours) and tenacity does the retrying.
    params.connection_attempts = 1
    params.retry_delay = 0
    params.client_properties = {
        "connection_name": f"{name} {socket.gethostname()}:{os.getpid()}",
        "product": "diracmq",
    }
    if url.lower().startswith("amqps://"):
        from diracmq.broker import tlsconfig

        params.ssl_options = pika.SSLOptions(tlsconfig.ssl_context(settings), params.host)
        if uses_certificate_login(url):
            params.credentials = pika.credentials.ExternalCredentials()
    return params


def connection_parameters(settings: Settings, name: str) -> list[pika.URLParameters]:
    """pika parameters for each URL of ``settings``, in the order to try them.

    The order is shuffled (clients and workers spread over a cluster's nodes), then
    nodes that failed in the last minute go last, so a reconnection tries the living
    nodes before the one that just died.
    """
    params = [_parameters_for(url, settings, name) for url in settings.urls]
    # SystemRandom: the processes a worker forks inherit the random module's state and
    # would all pick the same node.
    random.SystemRandom().shuffle(params)
    now = time.monotonic()
    params.sort(key=lambda p: now - _failed_at.get(f"{p.host}:{p.port}", -1e9) < _FAILED_MEMORY)
    return params


#: host:port -> when a connection attempt to it last failed (monotonic seconds).
_failed_at: dict[str, float] = {}
_FAILED_MEMORY = 60.0


def mark_failed(host: str, port: int) -> None:
    """Remember that node ``host:port`` failed us just now: the next connections try it
    last (for a minute).  For a node that took the connection but then did not answer
    (broker/pika_driver.py's bounded channel operations)."""
    _failed_at[f"{host}:{port}"] = time.monotonic()


def broker_user(settings: Settings) -> str:
    """The broker user name the URLs log in as (what RabbitMQ puts in ``user_id``).

    For a certificate login (:func:`uses_certificate_login`) it is the certificate's
    subject as RabbitMQ spells it (RFC 4514, broker/dn.py).  Every URL of a list must
    log in as the same user: a caller has one identity.
    """
    users = set()
    for url in settings.urls:
        if uses_certificate_login(url):
            from diracmq.broker import tlsconfig

            files = tlsconfig.find_tls_files(settings)
            if files.cert is None:
                raise ValueError(f"{url} logs in with a certificate, but none was found "
                                 f"(X509_USER_PROXY, X509_USER_CERT/KEY or tls_cert)")
            users.add(tlsconfig.certificate_info(files.cert).subject)
        else:
            users.add(str(getattr(pika.URLParameters(url).credentials, "username", "")))
    if len(users) != 1:
        raise ValueError(f"the broker URLs log in as different users ({sorted(users)}); "
                         f"a process has one identity")
    return users.pop()


def _final(exc: BaseException) -> bool:
    """True for errors another attempt, on this node or another, would repeat."""
    if isinstance(exc, FINAL) or isinstance(exc, ssl.SSLCertVerificationError):
        return True
    if isinstance(exc, pika.exceptions.ConnectionClosedByBroker):
        # 320 CONNECTION_FORCED (a node stopping) and 541 are worth another node;
        # ACCESS_REFUSED (403), NOT_ALLOWED (530: vhost) and the like will repeat.
        return exc.reply_code not in (320, 541)
    # The broker refused our certificate (expired, unknown CA, ...) with a TLS alert, or
    # we refused its certificate.  With TLS 1.3 the alert arrives after the handshake,
    # so pika reports it as a lost stream whose text alone names the alert.
    return bool(_CERTIFICATE_REFUSED.search(repr(exc)))


_CERTIFICATE_REFUSED = re.compile(
    r"ALERT_(UNKNOWN_CA|CERTIFICATE_EXPIRED|BAD_CERTIFICATE|CERTIFICATE_REVOKED|"
    r"CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|CERTIFICATE_REQUIRED|ACCESS_DENIED)|"
    r"CERTIFICATE_VERIFY_FAILED", re.IGNORECASE)


def _describe(params: pika.URLParameters) -> str:
    return f"{params.host}:{params.port} (vhost {params.virtual_host!r})"


def connect(settings: Settings, name: str, timeout: float | None = None,
            retry: bool = True) -> pika.BlockingConnection:
    """Open a connection to one of the broker's nodes within ``timeout`` seconds.

    Each attempt walks the URL list (:func:`connection_parameters`) and takes the first
    node that accepts; when none does, tenacity waits (exponential backoff with jitter)
    and walks it again.  Errors that would repeat (authentication, access, a refused
    certificate, see :func:`_final`) are not retried.  Raises :class:`BrokerUnreachable`
    with the last error when time runs out or the broker refuses us.  ``retry=False``
    walks the list once, with no back-off (a caller with its own, the worker, logs one
    line per attempt).
    """
    candidates = connection_parameters(settings, name)
    limit = settings.connect_timeout if timeout is None else timeout
    retrying = Retrying(
        retry=retry_if_exception(lambda exc: _worth_retrying(exc) and not _final(exc)),
        # never sleep past the limit
        stop=stop_before_delay(max(limit, 0.0)) if retry else stop_after_attempt(1),
        wait=wait_exponential_jitter(multiplier=0.1, max=2.0, jitter=0.2),
        reraise=True,
        before_sleep=lambda rs: log.warning(
            "broker unreachable at %s (%r); retrying",
            ", ".join(_describe(p) for p in candidates),
            rs.outcome.exception() if rs.outcome else None,
        ),
    )
    give_up = time.monotonic() + limit
    last: list[pika.URLParameters] = [candidates[0]]

    def attempt() -> pika.BlockingConnection:
        error: BaseException | None = None
        for params in candidates:
            # One handshake may not outlast the whole limit either (pika's own default
            # is 10 s): a caller with 2 s left must not wait 10 s on a silent network.
            left = max(0.2, give_up - time.monotonic())
            params.socket_timeout = min(5.0, left)
            params.stack_timeout = min(10.0, left)
            last[0] = params
            try:
                return pika.BlockingConnection(params)
            except Exception as exc:
                if _final(exc) or not _worth_retrying(exc):
                    raise
                mark_failed(params.host, params.port)
                # DEBUG: the caller logs one line per attempt, naming every node tried
                log.debug("broker node %s unreachable (%r); trying the next", _describe(params),
                         exc)
                error = exc
        assert error is not None
        raise error

    try:
        return retrying(attempt)
    except Exception as exc:
        params = last[0]
        if not isinstance(exc, RETRYABLE):
            raise
        user = getattr(params.credentials, "username", "(certificate)")
        if _final(exc):
            raise BrokerUnreachable(
                f"broker {_describe(params)} refused user {user!r}: {exc!r}") from exc
        raise BrokerUnreachable(
            f"cannot reach the broker at {', '.join(_describe(p) for p in candidates)} "
            f"within {round(limit, 2):g}s: {exc!r}") from exc

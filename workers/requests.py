"""What a worker accepts from the wire: request bodies, reply destinations, deadlines.

Everything here reads values another broker user chose, so every function checks
types before it uses a value and answers with a reason rather than an exception.
The rules are docs/protocol.md's and docs/security.md's; tests/hostile/ checks them
against the real broker.
"""

from __future__ import annotations

import base64
import binascii
import logging
import struct
import time
from typing import Any

from diracmq.broker import codec, topology
from diracmq.broker.derrno import EMQDECODE, EMQENCODE
from diracmq.broker.driver import Properties
from diracmq.broker.returnvalues import S_ERROR, DReturnType
from diracmq.workers.handler import Request
from diracmq.workers.identity import credentials_for

__all__ = ["BadRequest", "encode_reply", "parse_request", "deadline_passed",
           "reply_refusal", "valid_direct_reply_to"]

log = logging.getLogger(__name__)

#: Most items (container elements and table cells) one request may decode to.  A
#: 5 MB message can hold a table of 5 million rows, i.e. 5 million dicts (over 1 GiB);
#: this bound keeps what one request costs to decode in the tens of MB whatever its size.
MAX_DECODED_ITEMS = 1_000_000


class BadRequest(ValueError):
    """A request that cannot be run: its reply is an S_ERROR(EMQDECODE)."""


def parse_request(service: str, props: Properties, body: bytes, message: Any = None,
                  max_items: int = MAX_DECODED_ITEMS) -> Request:
    """Decode and validate one request body; raise :class:`BadRequest` with a clear reason.

    ``message`` is the body already decoded, when the caller had to decode it anyway.
    """
    if message is None:
        try:
            message = codec.unpackb(body, max_items=max_items)
        except codec.DecodeError as exc:
            raise BadRequest(
                f"Malformed request to {service}: body is not valid msgpack ({exc})") from None
    if not isinstance(message, dict):
        raise BadRequest(f"Malformed request to {service}: body is a "
                         f"{type(message).__name__}, expected a map")
    version = message.get("v")
    # Exactly the integer: True == 1 and 1.0 == 1 in Python, but neither is protocol v1.
    if type(version) is not int or version != topology.PROTOCOL_VERSION:
        raise BadRequest(f"Unsupported protocol version {version!r} in request to {service} "
                         f"(this worker speaks the integer {topology.PROTOCOL_VERSION})")
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
        # (x-death for a classic queue's retry loop; x-delivery-count for a quorum queue).
        # (Only a request that carries either header can have died before: the queue's
        # name is not worth building for every first delivery.)
        redelivered=headers is not None
        and ("x-death" in headers or "x-delivery-count" in headers)
        and topology.death_count(headers, topology.service_queue_name(service)) > 0,
        credentials=credentials_for(user, headers),
    )


def encode_reply(result: DReturnType, where: str, max_bytes: int = codec.MAX_BODY) -> bytes:
    """Encode a result for the wire: ``CallStack`` stays here; a value that cannot be
    encoded, or whose encoding is over ``max_bytes`` (the broker would close the channel
    rather than take it), becomes S_ERROR(EMQENCODE)."""
    if "CallStack" in result:
        result = {k: v for k, v in result.items() if k != "CallStack"}
    try:
        body = codec.packb(result)
    except codec.EncodeError as exc:
        log.error("cannot encode the reply of %s: %s", where, exc)
        return _error_body(EMQENCODE, f"cannot encode the reply of {where}: {exc}")
    if len(body) > max_bytes:
        log.error("the reply of %s is %d bytes, over the limit of %d", where, len(body),
                  max_bytes)
        return _error_body(EMQENCODE, f"the reply of {where} is {len(body)} bytes, over the "
                                      f"message size limit of {max_bytes} bytes")
    return body


def _error_body(code: int, message: str) -> bytes:
    error = S_ERROR(code, message)
    del error["CallStack"]
    return codec.packb(error)


def bad_request_reply(exc: BadRequest) -> bytes:
    """The reply body for a request that could not be decoded or validated."""
    return _error_body(EMQDECODE, str(exc))


def deadline_passed(props: Properties) -> bool:
    """Whether the request's ``x-deadline`` header (epoch ms) has passed."""
    headers = props.headers if isinstance(props.headers, dict) else {}
    deadline = headers.get("x-deadline")
    return isinstance(deadline, int) and not isinstance(deadline, bool) \
        and deadline < time.time() * 1000


def reply_refusal(user: object, reply_to: object) -> str | None:
    """Why a worker must not publish a reply to ``reply_to`` for ``user``, or None.

    A worker publishes nowhere but the caller's own reply destination
    (docs/security.md): RabbitMQ's Direct Reply-to of the caller's channel, or a reply
    queue of the caller's broker user (``dirac.reply.<user>.…``, which needs a
    ``user_id`` the broker has checked).  Anything else (the parking queue, a service
    queue, another user's reply queue, a queue of any other name) is refused, so a
    client cannot make a worker write into a queue it could not write to itself.
    """
    if not isinstance(reply_to, str) or not reply_to:
        return "no reply_to"
    if reply_to.startswith(topology.DIRECT_REPLY_TO + "."):
        if not valid_direct_reply_to(reply_to):
            return "a Direct Reply-to name the broker did not make"
        return None
    if not isinstance(user, str) or not user:
        return "a reply queue without a user_id the broker checked"
    if topology.is_reply_queue_of(user, reply_to):
        return None
    return "not a reply destination of the caller's"


# Erlang external term format tags (what RabbitMQ encodes a channel's pid with).
_VERSION = 131
_PID_EXT, _NEW_PID_EXT = 103, 88
_ATOM_LEN2 = {100, 118}  # ATOM_EXT, ATOM_UTF8_EXT
_ATOM_LEN1 = {115, 119}  # SMALL_ATOM_EXT, SMALL_ATOM_UTF8_EXT


def valid_direct_reply_to(name: str) -> bool:
    """Whether ``name`` is a Direct Reply-to address RabbitMQ can decode.

    The broker makes these as ``amq.rabbitmq.reply-to.<base64 of the channel's Erlang
    pid>.<key>``.  Publishing to one whose pid part does not decode makes RabbitMQ 3.10
    close the *publisher's* connection (541), and the request comes back to close it
    again; a well-formed pid with a wrong key is merely dropped by the broker.  So the
    pid part must be strict base64 of exactly one Erlang pid term.
    """
    rest = name[len(topology.DIRECT_REPLY_TO) + 1:]
    parts = rest.split(".")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return False
    try:
        term = base64.b64decode(parts[0], validate=True)
    except (binascii.Error, ValueError):
        return False
    return _is_pid_term(term)


def _is_pid_term(term: bytes) -> bool:
    if len(term) < 4 or term[0] != _VERSION or term[1] not in (_PID_EXT, _NEW_PID_EXT):
        return False
    at = 2
    tag = term[at]
    if tag in _ATOM_LEN2:
        if len(term) < at + 3:
            return False
        (size,) = struct.unpack_from(">H", term, at + 1)
        at += 3
    elif tag in _ATOM_LEN1:
        size = term[at + 1] if len(term) > at + 1 else -1
        at += 2
    else:
        return False
    if size < 1 or len(term) < at + size:
        return False
    try:
        term[at:at + size].decode("utf-8" if tag in (118, 119) else "latin-1")
    except UnicodeDecodeError:
        return False
    at += size
    tail = 9 if term[1] == _PID_EXT else 12  # ID, Serial, Creation (1 or 4 bytes)
    if len(term) != at + tail:
        return False
    if term[1] == _PID_EXT:
        pid_id, serial = struct.unpack_from(">II", term, at)
        return bool(pid_id < 1 << 15 and serial < 1 << 13 and term[at + 8] < 4)
    return True

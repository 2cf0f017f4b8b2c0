"""Helpers of the hostile-input tests: misbehaving handlers' workers, raw AMQP, counting.

Nothing here fakes the broker: hostile messages go through a real RabbitMQ, either the
session's shared broker (a vhost per test module) or a private node
(:class:`HostileNode`) for the cases that make a worker hammer its broker.
"""

from __future__ import annotations

import re
import struct
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pika
import pika.spec
from diracmq.broker.config import Settings
from fault.faultlib import FaultPool
from fault.rabbitnode import RabbitNode

__all__ = ["HostileNode", "HostilePool", "RawProperties", "assert_alive", "count_lines",
           "field_table", "nested_tables", "pace_calls", "queue_messages", "publish_raw",
           "settings_for",
           "timestamp_table", "vm_hwm_kb"]

#: docs/protocol.md: the request exchange.
REQUEST_EXCHANGE = "dirac.rpc"


class HostilePool(FaultPool):
    """Workers serving ``diractest_hostile``'s handler (service ``<System>/Hostile``)."""

    ALIAS_EXTENSION = "diractest_hostile"
    ALIAS_SYSTEM = "Hostile"
    ALIAS_PREFIX = "H"


class HostileNode(RabbitNode):
    """A private RabbitMQ node whose ``max_message_size`` is small (case 3).

    The cases that make a worker reconnect in a loop or log in thousands of times
    run here too, never against the shared broker.
    """

    MAX_MESSAGE_SIZE = 4 * 1024 * 1024

    def __init__(self) -> None:
        super().__init__(label="hostile")
        with (self.dir / "rabbitmq.conf").open("a") as conf:
            conf.write(f"max_message_size = {self.MAX_MESSAGE_SIZE}\n")

    def fresh_vhost(self) -> str:
        """A new vhost on this node for one test; its AMQP URL (guest)."""
        return self.add_vhost(f"hostile-{uuid.uuid4().hex[:10]}")

    def log_text(self) -> str:
        return "\n".join(path.read_text(errors="replace")
                         for path in sorted(self.log_dir.glob("*.log")) if path.is_file())


def settings_for(url: str, **kw: Any) -> Settings:
    """Client settings with test-sized timeouts (nothing read from the environment)."""
    values = {"rpc_timeout": 10.0, "connect_timeout": 5.0, "heartbeat": 30}
    values.update(kw)
    return Settings(url=url, **values)


# ----------------------------------------------------------- raw AMQP frames
def shortstr(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return struct.pack(">B", len(data)) + data


def field_table(fields: list[tuple[str, bytes]]) -> bytes:
    """An AMQP field table from (name, type tag + encoded value) pairs, built by hand."""
    payload = b"".join(shortstr(name) + value for name, value in fields)
    return struct.pack(">I", len(payload)) + payload


def timestamp_table(seconds: int = 2**64 - 1) -> bytes:
    """A headers table holding one timestamp field of ``seconds`` (valid AMQP: a uint64)."""
    return field_table([("x-when", b"T" + struct.pack(">Q", seconds))])


def nested_tables(depth: int = 1500) -> bytes:
    """A headers table nesting ``depth`` field tables (pika cannot encode it: recursion)."""
    table = field_table([])
    for _ in range(depth):
        table = field_table([("n", b"F" + table)])
    return table


class RawProperties(pika.BasicProperties):
    """Basic properties whose ``headers`` table is given as raw bytes.

    pika refuses to encode some valid tables (a timestamp past year 9999, 1,500 nested
    tables), so the content header is written here field by field, in the order and
    with the flags of AMQP 0-9-1's basic class.
    """

    def __init__(self, raw_headers: bytes, *, correlation_id: str, reply_to: str | None,
                 message_id: str, content_type: str = "application/x-msgpack") -> None:
        super().__init__(content_type=content_type, correlation_id=correlation_id,
                         reply_to=reply_to, message_id=message_id)
        self.raw_headers = raw_headers

    def encode(self) -> list[bytes]:
        spec = pika.spec.BasicProperties
        flags = spec.FLAG_CONTENT_TYPE | spec.FLAG_HEADERS | spec.FLAG_CORRELATION_ID \
            | spec.FLAG_MESSAGE_ID
        pieces = [shortstr(self.content_type), self.raw_headers,
                  shortstr(self.correlation_id)]
        if self.reply_to is not None:
            flags |= spec.FLAG_REPLY_TO
            pieces.append(shortstr(self.reply_to))
        pieces.append(shortstr(self.message_id))
        return [struct.pack(">H", flags), *pieces]


def publish_raw(url: str, service: str, body: bytes, raw_headers: bytes,
                reply_to: str | None = None) -> str:
    """Publish one request with hand-made headers (publisher confirms on); its id."""
    corr_id = uuid.uuid4().hex
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        queue = reply_to or channel.queue_declare("", exclusive=True).method.queue
        channel.basic_publish(REQUEST_EXCHANGE, service, body,
                              RawProperties(raw_headers, correlation_id=corr_id,
                                            reply_to=queue, message_id=corr_id),
                              mandatory=True)
    finally:
        conn.close()
    return corr_id


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


# ----------------------------------------------------------- observing
def queue_messages(ctl: Callable[..., Any], vhost: str, queue: str) -> int | None:
    """Messages in ``queue`` (ready + unacknowledged), by rabbitmqctl; None if no queue."""
    output = ctl("list_queues", "-q", "-p", vhost, "name", "messages")
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == queue:
            return int(parts[1])
    return None


def assert_alive(worker: Any, why: str) -> None:
    """Fail with the worker's log if it exited (its exit is then this failure, not also
    the teardown's)."""
    if worker.returncode is not None:
        worker.expected_returncode = None
        raise AssertionError(worker.diagnostics(why))


def count_lines(lines: list[str], pattern: str) -> int:
    regex = re.compile(pattern)
    return sum(1 for line in lines if regex.search(line))


def vm_hwm_kb(pid: int) -> int:
    """The peak resident memory of ``pid`` so far (VmHWM), in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")


def pace_calls(call: Callable[[], dict], seconds: float, pause: float = 0.1,
               alive: Callable[[], bool] = lambda: True) -> tuple[int, list[dict]]:
    """Make ``call()`` repeatedly for ``seconds`` (a steady trickle of innocent calls).

    Returns (calls answered OK, the failed results); stops early when ``alive()``
    turns false (the worker died: no need to keep failing).
    """
    ok, failed = 0, []
    end = time.monotonic() + seconds
    while time.monotonic() < end and alive():
        result = call()
        if result.get("OK"):
            ok += 1
        else:
            failed.append(result)
        time.sleep(pause)  # pacing the load, not waiting for an event
    return ok, failed

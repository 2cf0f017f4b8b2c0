"""Raw pika counterpart of the storage element transfers, for bench/dms_bench.py.

``sink QUEUE PATH``: consume chunk messages (``offset`` header, body = bytes) from
QUEUE, ``pwrite`` each at its offset into PATH, acknowledge; after the message with
header ``last`` the file is fsynced and ``done`` is published to its ``reply_to``.

``source QUEUE``: consume requests ``{path, chunk}`` (JSON) from QUEUE, read the file in
chunks and publish each to the request's ``reply_to`` (``offset`` header, ``last`` on
the final one).

The same 4 MiB chunks as the SE transfers, through the same broker, with no RPC, no
msgpack, no checksum and no rights: what the broker and pika alone cost.
"""

from __future__ import annotations

import json
import os
import sys

import pika


def sink(url: str, queue: str, path: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(queue, auto_delete=True)
    channel.basic_qos(prefetch_count=8)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    print("ready", flush=True)

    def on_message(ch, method, props, body) -> None:
        os.pwrite(fd, body, int(props.headers["offset"]))
        ch.basic_ack(method.delivery_tag)
        if props.headers.get("last"):
            os.fsync(fd)
            ch.basic_publish("", props.reply_to, b"done")
            ch.stop_consuming()

    channel.basic_consume(queue, on_message)
    channel.start_consuming()
    os.close(fd)
    connection.close()


def source(url: str, queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(queue, auto_delete=True)
    print("ready", flush=True)
    for method, props, body in channel.consume(queue):
        request = json.loads(body)
        channel.basic_ack(method.delivery_tag)
        if request.get("stop"):
            break
        size = os.path.getsize(request["path"])
        with open(request["path"], "rb") as fh:
            offset = 0
            while offset < size:
                data = fh.read(request["chunk"])
                headers = {"offset": offset, "last": offset + len(data) >= size}
                channel.basic_publish("", props.reply_to, data,
                                      pika.BasicProperties(headers=headers))
                offset += len(data)
    connection.close()


if __name__ == "__main__":
    mode, url, queue, *rest = sys.argv[1:]
    if mode == "sink":
        sink(url, queue, rest[0])
    else:
        source(url, queue)

"""Physical-limit baseline: sync RPC with pika BlockingConnection + msgpack.

Request  {method, args}          -> queue QUEUE (default exchange)
Reply    {OK: True, Value: ...}  -> props.reply_to, same correlation_id
Reply modes: "direct" = RabbitMQ Direct Reply-to (amq.rabbitmq.reply-to),
             "exclusive" = one exclusive server-named reply queue per client.
Scenarios: benchlib.standard_scenarios (sequential blocking calls and 10 or 100 pipelined
in-flight calls from one client), each for both reply modes; run.py adds the scale-out
family (benchlib.scale_scenarios) over processes only, as the server is single-threaded.

Started as a copy of ../shared/bench/raw_pika_rpc.py.  Changes: the in-flight scenarios
run with the exclusive reply queue too, to pair with diracmq's named reply queue; the
server also has the scale-out methods ``sleep`` (10 ms) and ``cpu`` (5 ms of pure
Python, ``BENCH_CPU_ITERATIONS`` iterations of benchlib.spin, else calibrated), the same
work as diracmq's ``Bench/Echo`` handler, run inline in the consumer callback.

Run:  .venv/bin/python bench/raw_pika_rpc.py [--duration 1.5] [--warmup 0.3] [--filter REGEX]
"""
import functools
import itertools
import os
import sys
import time

import benchlib
import msgpack
import pika

#: run.py sets BENCH_RAW_QUEUE=bench.run.rpc, away from other tools using bench.rpc
QUEUE = os.environ.get("BENCH_RAW_QUEUE", "bench.rpc")
PREFETCH = 10
METHODS = {"echo": lambda x: x}


def _sleep(value):
    time.sleep(benchlib.SLEEP_MS / 1000)
    return value


def _cpu(value, iterations=None):
    benchlib.spin(iterations)
    return value


def params():
    return pika.URLParameters(benchlib.AMQP_URL)


def serve(queue=QUEUE):
    METHODS["sleep"] = _sleep
    METHODS["cpu"] = functools.partial(_cpu, iterations=benchlib.cpu_iterations())
    conn = pika.BlockingConnection(params())
    ch = conn.channel()
    ch.queue_declare(queue, durable=False, auto_delete=False)
    ch.basic_qos(prefetch_count=PREFETCH)

    def on_request(ch, method, props, body):
        req = msgpack.unpackb(body)
        try:
            reply = {"OK": True, "Value": METHODS[req["method"]](*req["args"])}
        except Exception as exc:
            reply = {"OK": False, "Message": repr(exc)}
        ch.basic_publish("", props.reply_to, msgpack.packb(reply),
                         pika.BasicProperties(correlation_id=props.correlation_id))
        ch.basic_ack(method.delivery_tag)

    ch.basic_consume(queue, on_request)
    print("READY", flush=True)
    ch.start_consuming()


class Client:
    def __init__(self, reply="direct", queue=QUEUE, method=None, futures=False):
        if futures:
            raise ValueError("raw pika pipelines on its one connection: no futures variant")
        self.queue = queue
        self.method = method or "echo"
        self.conn = pika.BlockingConnection(params())
        self.ch = self.conn.channel()
        if reply == "direct":
            self.reply_to = "amq.rabbitmq.reply-to"
        else:  # exclusive, auto-deleted with the connection
            self.reply_to = self.ch.queue_declare("", exclusive=True).method.queue
        self.ch.basic_consume(self.reply_to, self._on_reply, auto_ack=True)
        self.ids = itertools.count()
        self.replies = {}

    def _on_reply(self, ch, method, props, body):
        self.replies[props.correlation_id] = body

    def send(self, value, method=None):
        """Publish a request; returns wait() -> Value (lets callers pipeline requests)."""
        corr = str(next(self.ids))
        body = msgpack.packb({"method": method or self.method, "args": [value]})
        self.ch.basic_publish("", self.queue, body,
                              pika.BasicProperties(reply_to=self.reply_to, correlation_id=corr))
        return functools.partial(self._wait, corr)

    def _wait(self, corr):
        while corr not in self.replies:
            self.conn.process_data_events(time_limit=None)
        res = msgpack.unpackb(self.replies.pop(corr))
        if not res["OK"]:
            raise RuntimeError(res["Message"])
        return res["Value"]

    def call(self, value, method=None):
        return self.send(value, method)()

    def close(self):
        self.conn.close()
        return []


BENCH = "raw_pika_rpc"
PACKAGES = ["pika", "msgpack"]
REPLY_MODES = ("direct", "exclusive")


def scenarios(scale=False, per_thread=2):
    """The echo families; with ``scale``, also the scale-out family over processes."""
    out = benchlib.standard_scenarios(REPLY_MODES)
    if scale:
        out += benchlib.scale_scenarios("exclusive", threads=(None,), per_thread=per_thread)
    return out


def prepare(admin):
    admin.queue_delete(QUEUE)


def cleanup(admin, leftover):
    admin.queue_delete(QUEUE)


def main():
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role == "server":
        return serve()
    if role == "client":
        return benchlib.client_main(Client, QUEUE)
    benchlib.run(BENCH, __file__, scenarios(), PACKAGES, prepare=prepare, cleanup=cleanup)


if __name__ == "__main__":
    main()

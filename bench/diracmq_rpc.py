"""diracmq side by side with raw pika: our ``Worker`` serving ``Bench/Echo``, our ``Client``.

Server: ``workers.server.Worker`` run in-process on the handler of
``benchext/BenchSystem/Service/EchoHandler.py`` (found by ``workers.loader`` as a
DIRAC extension), with ``BENCH_WORKER_THREADS`` handler threads (default 10) and
prefetch ``BENCH_PREFETCH`` (default 10, as every baseline).  It prints READY once
its consumer is registered (the Worker's "worker ready" log line).

Client: one ``client.base.Client("Bench/Echo")`` per client process; the request
travels the product's own path (``client.transport.RPCTransport``).  Reply modes:
``queue`` (a named reply queue per process, the product's default) and ``direct``
(Direct Reply-to), chosen with ``Settings.load(reply_mode=...)``.  With more than one
call in flight, ``send()`` submits the call to a pool of 100 threads sharing that one
``Client``, which is how a DIRAC script gets concurrency.

``BENCH_METHOD`` (echo, sleep or cpu; default echo) picks the handler method, for
scale-out runs.

Run:  .venv/bin/python bench/diracmq_rpc.py [--duration 1.5] [--warmup 0.3] [--filter REGEX]
"""
import logging
import os
import resource
import sys
from concurrent.futures import ThreadPoolExecutor

import benchlib

SYSTEM = "Bench"
SERVICE = "Bench/Echo"
EXTENSION = "benchext"
INFLIGHT = 100
THREADS = int(os.environ.get("BENCH_WORKER_THREADS", "10"))
PREFETCH = int(os.environ.get("BENCH_PREFETCH", "10"))
METHOD = os.environ.get("BENCH_METHOD", "echo")
REPLY_MODES = ("queue", "direct")


def settings(reply="queue"):
    from broker.config import Settings
    return Settings.load(url=benchlib.AMQP_URL, reply_mode=reply)


def queue_name():
    from broker import topology
    return topology.service_queue_name(SERVICE)


class _SayReady(logging.Handler):
    """Print READY on stdout at the Worker's first "worker ready" log line (it is consuming)."""

    said = False

    def emit(self, record):
        if not self.said and record.getMessage().startswith("worker ready"):
            self.said = True
            print("READY", flush=True)


def serve():
    from workers.loader import load_handlers
    from workers.server import Worker

    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.WARNING)
    stderr.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[stderr])
    server_log = logging.getLogger("workers.server")
    server_log.setLevel(logging.INFO)  # for "worker ready"; stderr still shows WARNING+ only
    server_log.addHandler(_SayReady())

    handlers = load_handlers(SYSTEM, [EXTENSION], ["Echo"])
    worker = Worker(handlers, settings(), threads=THREADS, prefetch=PREFETCH,
                    graceful_timeout=5.0, name="bench")
    status = worker.run()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"diracmq_rpc server {os.getpid()}: max RSS {rss:.0f} MB, {worker.counters['requests']} "
          f"requests", file=sys.stderr)
    sys.exit(status)


class Client:
    def __init__(self, reply="queue", queue=None):
        from client.base import Client as DiracClient
        from client.transport import get_transport

        self.settings = settings(reply)
        self.transport = get_transport(self.settings)
        result = self.transport.connect_now()
        if not result["OK"]:
            raise RuntimeError(result["Message"])
        self.rpc = getattr(DiracClient(url=SERVICE, timeout=60, settings=self.settings), METHOD)
        self.pool = None

    def call(self, value):
        result = self.rpc(value)
        if not result["OK"]:
            raise RuntimeError(result["Message"])
        return result["Value"]

    def send(self, value):
        """Submit one call to the pool (threads sharing this one Client); wait() -> value."""
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=INFLIGHT, thread_name_prefix="caller")
        return self.pool.submit(self.call, value).result

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        reply_queue = self.transport._reply_queue  # deleted by close(); expires anyway
        self.transport.close()
        return [reply_queue] if reply_queue else []


BENCH = "diracmq_rpc"
PACKAGES = ["diracmq", "pika", "msgpack"]


def scenarios():
    return benchlib.standard_scenarios(REPLY_MODES, INFLIGHT)


def prepare(admin):
    admin.queue_delete(queue_name())  # a stale queue may carry other arguments


def cleanup(admin, leftover):
    for queue in [queue_name(), *leftover]:
        admin.queue_delete(queue)


def main():
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role == "server":
        return serve()
    if role == "client":
        return benchlib.client_main(Client, queue_name())
    benchlib.run(BENCH, __file__, scenarios(), PACKAGES, prepare=prepare, cleanup=cleanup)


if __name__ == "__main__":
    main()

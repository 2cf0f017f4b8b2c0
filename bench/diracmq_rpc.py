"""diracmq side by side with raw pika: our ``Worker`` serving ``Bench/Echo``, our ``Client``.

Server: ``workers.server.Worker`` run in-process on the handler of
``benchext/BenchSystem/Service/EchoHandler.py`` (found by ``workers.loader`` as a
DIRAC extension).  ``server [--threads N] [--prefetch N]`` sets its handler threads
and prefetch; the defaults are ``BENCH_WORKER_THREADS`` (10) and ``BENCH_PREFETCH``
(10, as every baseline; 0 means the Worker's own default, 2 x threads).  It prints
READY once its consumer is registered (the Worker's "worker ready" log line).

Client: one ``client.base.Client("Bench/Echo")`` per client process; the request
travels the product's own path (``client.transport.RPCTransport``).  Reply modes:
``queue`` (a named reply queue per process, the product's default) and ``direct``
(Direct Reply-to), chosen with ``Settings.load(reply_mode=...)``.  With N calls in
flight, N threads share that one ``Client``, each making sequential calls, which is how
a DIRAC script gets concurrency.  The futures variant (scenario names ending in ``f``)
keeps a window of N ``Client.submit(method, *args)`` futures instead, waited on in order
like raw pika's pipeline, once the client has ``submit`` (:func:`has_futures`).

The handler method is the scenario's (run.py: echo, sleep or cpu); standalone runs call
``BENCH_METHOD`` (default echo).

Run:  .venv/bin/python bench/diracmq_rpc.py [--duration 1.5] [--warmup 0.3] [--filter REGEX]
"""
import logging
import os
import resource
import sys

import benchlib

SYSTEM = "Bench"
EXTENSION = "benchext"
#: The service name the Worker serves the Bench/Echo handler under (its queue is
#: ``dirac.rpc.<System>.<Service>``).  run.py sets ``BenchRun/Echo``, so that other tools
#: serving Bench/Echo on the same broker do not consume its requests.
SERVICE = os.environ.get("BENCH_SERVICE", "Bench/Echo")
THREADS = int(os.environ.get("BENCH_WORKER_THREADS", "10"))
PREFETCH = int(os.environ.get("BENCH_PREFETCH", "10"))
METHOD = os.environ.get("BENCH_METHOD", "echo")
REPLY_MODES = ("queue", "direct")


def has_futures():
    """Whether ``client.base.Client`` has the futures API (``submit``)."""
    from diracmq.client.base import Client as DiracClient
    return hasattr(DiracClient, "submit")


def settings(reply="queue"):
    from diracmq.broker.config import Settings
    return Settings.load(url=benchlib.AMQP_URL, reply_mode=reply)


def queue_name():
    from diracmq.broker import topology
    return topology.service_queue_name(SERVICE)


class _SayReady(logging.Handler):
    """Print READY on stdout at the Worker's first "worker ready" log line (it is consuming)."""

    said = False

    def emit(self, record):
        if not self.said and record.getMessage().startswith("worker ready"):
            self.said = True
            print("READY", flush=True)


def server_args(argv):
    """(threads, prefetch) from ``[--threads N] [--prefetch N]``; prefetch None: 2 x threads."""
    import argparse
    ap = argparse.ArgumentParser(prog="diracmq_rpc.py server")
    ap.add_argument("--threads", type=int, default=THREADS)
    ap.add_argument("--prefetch", type=int, default=PREFETCH,
                    help="0: the Worker's default (2 x threads)")
    opts = ap.parse_args(argv)
    return opts.threads, opts.prefetch or None


def serve(argv=()):
    from diracmq.workers.loader import load_handlers
    from diracmq.workers.server import Worker

    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.WARNING)
    stderr.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[stderr])
    server_log = logging.getLogger("diracmq.workers.server")
    server_log.setLevel(logging.INFO)  # for "worker ready"; stderr still shows WARNING+ only
    server_log.addHandler(_SayReady())

    threads, prefetch = server_args(list(argv))
    handlers = {SERVICE: load_handlers(SYSTEM, [EXTENSION], ["Echo"])[f"{SYSTEM}/Echo"]}
    worker = Worker(handlers, settings(), threads=threads, prefetch=prefetch,
                    graceful_timeout=5.0, name="bench")
    status = worker.run()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"diracmq_rpc server {os.getpid()}: max RSS {rss:.0f} MB, {worker.counters['requests']} "
          f"requests", file=sys.stderr)
    sys.exit(status)


class Client:
    def __init__(self, reply="queue", queue=None, method=None, futures=False):
        from diracmq.broker import allocator
        from diracmq.client.base import Client as DiracClient
        from diracmq.client.transport import get_transport

        self.settings = settings(reply)
        # What docs/configuration.md tells a process making large calls to do (a worker
        # does it by itself): keep freed buffers instead of faulting pages in per call.
        allocator.keep_freed_memory(self.settings.malloc_keep_mb)
        self.transport = get_transport(self.settings)
        result = self.transport.connect_now()
        if not result["OK"]:
            raise RuntimeError(result["Message"])
        self.method = method or METHOD
        self.client = DiracClient(url=SERVICE, timeout=60, settings=self.settings)
        self.rpc = getattr(self.client, self.method)
        if futures and not hasattr(DiracClient, "submit"):
            raise RuntimeError("client.base.Client has no submit(): no futures variant")
        self.futures = futures

    def call(self, value):
        return _value(self.rpc(value))

    @property
    def in_flight(self):
        """How benchlib keeps calls in flight: futures (a window of send()) or threads."""
        return "window" if self.futures else "threads"

    def send(self, value):
        """Futures: start one call with ``Client.submit``; wait() -> value."""
        future = self.client.submit(self.method, value)
        return lambda: _value(future.result())

    def close(self):
        reply_queue = self.transport._reply_queue  # deleted by close(); expires anyway
        self.transport.close()
        return [reply_queue] if reply_queue else []


def _value(result):
    if not result["OK"]:
        raise RuntimeError(result["Message"])
    return result["Value"]


BENCH = "diracmq_rpc"
PACKAGES = ["diracmq", "pika", "msgpack"]


def scenarios(scale=False, per_thread=2):
    """The echo families (with the futures variant once the client has ``submit``); with
    ``scale``, also the scale-out family over handler threads and worker processes, with
    ``per_thread`` calls in flight per handler thread."""
    out = benchlib.standard_scenarios(REPLY_MODES, futures=has_futures())
    if scale:
        out += benchlib.scale_scenarios("queue", per_thread=per_thread)
    return out


def prepare(admin):
    admin.queue_delete(queue_name())  # a stale queue may carry other arguments


def cleanup(admin, leftover):
    for queue in [queue_name(), *leftover]:
        admin.queue_delete(queue)


def main():
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role == "server":
        return serve(sys.argv[2:])
    if role == "client":
        return benchlib.client_main(Client, queue_name())
    benchlib.run(BENCH, __file__, scenarios(), PACKAGES, prepare=prepare, cleanup=cleanup)


if __name__ == "__main__":
    main()

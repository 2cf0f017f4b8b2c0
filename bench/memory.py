"""Memory of diracmq processes against the local broker: idle worker, idle client, bursts.

What it measures (RSS = ``VmRSS`` of ``/proc/<pid>/status``, in MB = 2**20 bytes):

1. **Idle workers**, 2 s after their "worker ready" log line, before any request:
   (a) the real command ``dirac-worker WorkloadManagement`` with default settings
   (15 handler threads, prefetch 30); (b) a worker serving the ``Bench/Echo`` handler of
   ``bench/benchext``, built in-process as ``bench/diracmq_rpc.py`` does, with the
   Worker's defaults (15 threads, prefetch 2 x 15).  The Echo handler is served under
   the private service name ``MemBench/Echo`` (queue ``dirac.rpc.MemBench.Echo``) so that
   a ``bench/run.py`` running at the same time neither deletes nor consumes our queue.
2. **Idle clients**: a user script (``import DIRAC``, one call, then sleep), 2 s after its
   call: ``JobMonitoringClient().whoami()`` and ``Client(url="MemBench/Echo").echo(1)``.
3. **Burst**: a fresh Echo worker, warmed up with 200 calls, idle 2 s (RSS *before*);
   then, with the worker paused (SIGSTOP), this process queues 10,000 ``echo`` requests
   at the broker (raw pika, wire protocol v1 of docs/protocol.md: msgpack
   ``{"v": 1, "method": "echo", "args": [value]}``, a ``message_id`` per request, to
   exchange ``dirac.rpc``), lets the worker go (SIGCONT) and collects the 10,000
   replies.  The worker's RSS is sampled every 20 ms, and its peak is also read from
   ``VmHWM`` (reset through ``/proc/<pid>/clear_refs`` just before the burst);
   *after* is the RSS 2 s after the last reply.  The worker then reports its reply
   cache (``workers/dedup.py``: entries and bytes held) on SIGUSR1.  Each payload
   (``small`` = the int 42, ``10KB`` = a 10 KiB str, as in bench/benchlib.py) runs with
   the default reply cache (10,000 replies / 8 MiB) and with a small one (100 replies),
   set by replacing ``Worker._replies`` in this bench-only worker (product code is
   untouched), so the growth splits into reply cache and everything else.  The
   *prefetch window* is what the worker may hold by design: prefetch x (request +
   reply) bytes.

Run:  .venv/bin/python bench/memory.py            # about 2 minutes on 2 cores
      .venv/bin/python bench/memory.py --payload 10KB --extra-cache 2000:16777216

Prints a markdown table, and writes every figure to ``bench/results/memory-<UTC>.json``.
Every process it starts is stopped by pid; every queue it created is deleted at the end
(queues that existed before, e.g. the WorkloadManagement ones, are left alone).
"""
import argparse
import datetime
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")

SERVICE = "MemBench/Echo"
QUEUE = "dirac.rpc.MemBench.Echo"
BURST = 10_000
WARMUP = 200
IDLE_S = 2.0
SAMPLE_S = 0.02
GOAL_MB = 60
PAYLOADS = {"small": 42, "10KB": "x" * 10 * 1024}
DEFAULT_CACHE = (10_000, 8 * 1024 * 1024)  # workers/dedup.py's ReplyCache defaults
SMALL_CACHE = (100, 8 * 1024 * 1024)
MB = 1024 * 1024

CLIENT_SCRIPTS = {
    # The typical user script (examples/seed_list_jobs.py), cut to one call.
    "JobMonitoringClient().whoami()": (
        "import sys\n"
        "import DIRAC\n"
        "from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import "
        "JobMonitoringClient\n"
        "result = JobMonitoringClient().whoami()\n"
        "print('CALLED', result['OK'], flush=True)\n"
        "sys.stdin.readline()\n"),
    f'Client(url="{SERVICE}").echo(1)': (
        "import sys\n"
        "import DIRAC\n"
        "from client.base import Client\n"
        f"result = Client(url={SERVICE!r}).echo(1)\n"
        "print('CALLED', result['OK'], flush=True)\n"
        "sys.stdin.readline()\n"),
}


# ------------------------------------------------------------------ /proc helpers
def proc_status(pid):
    """VmRSS, VmHWM, RssAnon, RssFile (MB) and Threads of ``pid``; {} once it is gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                    out[key] = int(value.split()[0]) / 1024
                elif key == "Threads":
                    out[key] = int(value)
    except OSError:
        pass
    return out


def reset_peak(pid):
    """Reset ``VmHWM`` of ``pid`` to its current RSS (Linux >= 4.0); False if refused."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class Sampler(threading.Thread):
    """Read the RSS of ``pid`` every SAMPLE_S seconds until stop(); keeps max and count."""

    def __init__(self, pid):
        super().__init__(daemon=True, name="rss-sampler")
        self.pid, self.peak, self.samples = pid, 0.0, 0
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            rss = proc_status(self.pid).get("VmRSS")
            if rss is not None:
                self.peak = max(self.peak, rss)
                self.samples += 1
            self._stop_event.wait(SAMPLE_S)

    def stop(self):
        self._stop_event.set()
        self.join()
        return self.peak


# ------------------------------------------------------------------ the Echo worker
def serve(threads, prefetch, cache_size, cache_bytes):
    """Child role: the Bench/Echo handler under SERVICE, in-process, as diracmq_rpc.py."""
    import logging

    from diracmq.workers.dedup import ReplyCache
    from diracmq.workers.loader import load_handlers
    from diracmq.workers.server import Worker

    sys.path.insert(0, HERE)  # benchext

    class SayReady(logging.Handler):
        said = False

        def emit(self, record):
            if not self.said and record.getMessage().startswith("worker ready"):
                self.said = True
                print("READY", flush=True)

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s")
    server_log = logging.getLogger("diracmq.workers.server")
    server_log.setLevel(logging.INFO)
    server_log.addHandler(SayReady())
    from diracmq.broker.config import Settings

    echo = load_handlers("Bench", ["benchext"], ["Echo"])["Bench/Echo"]
    worker = Worker({SERVICE: echo}, Settings.load(url=AMQP_URL), threads=threads,
                    prefetch=prefetch, graceful_timeout=5.0, name="membench")
    if (cache_size, cache_bytes) != (worker._replies.size, worker._replies.max_bytes):
        worker._replies = ReplyCache(size=cache_size, max_bytes=cache_bytes)  # bench only

    def report(_signum, _frame):
        cache = worker._replies
        print(json.dumps({"cache_entries": len(cache._replies), "cache_bytes": cache._bytes,
                          "cache_size": cache.size, "cache_max_bytes": cache.max_bytes,
                          "prefetch": worker.prefetch, "threads": worker.threads,
                          "counters": dict(worker.counters)}), flush=True)

    signal.signal(signal.SIGUSR1, report)
    sys.exit(worker.run())


class Proc:
    """A child process we started: waits for readiness, stops it by pid."""

    def __init__(self, cmd, ready, log_path=None, ready_in_log=True, env=None):
        self.ready = ready
        self.log_path = log_path if ready_in_log else None
        self.log = open(log_path, "w") if log_path else None
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log if self.log else None, text=True, bufsize=1, env=env)
        self.pid = self.proc.pid

    def readline(self, timeout):
        """The next stdout line, or None after ``timeout`` s."""
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline() if ready else None

    def wait_ready(self, timeout=60.0):
        """Wait for the ready line on stdout (or in the log); raise if it dies first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.proc.args} exited with {self.proc.returncode}"
                                   f"{self._log_tail()}")
            if self.log_path:
                with open(self.log_path) as fh:
                    if self.ready in fh.read():
                        return
                time.sleep(0.05)
            else:
                line = self.readline(0.2)
                if line and line.startswith(self.ready):
                    return line
        raise RuntimeError(f"{self.proc.args} not ready within {timeout} s{self._log_tail()}")

    def _log_tail(self):
        if not self.log_path:
            return ""
        with open(self.log_path) as fh:
            return ":\n" + "".join(fh.readlines()[-10:])

    def stop(self, stdin_first=False):
        """Stop it: close its stdin first (a client script then exits normally), or
        SIGTERM it (a worker); SIGKILL after 15 s."""
        if stdin_first:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream and not stream.closed:
                stream.close()
        if self.log:
            self.log.close()


def start_echo_worker(tmp, cache, threads=15, prefetch=None):
    cmd = [sys.executable, os.path.abspath(__file__), "worker", "--threads", str(threads),
           "--prefetch", str(prefetch or 0), "--cache", f"{cache[0]}:{cache[1]}"]
    proc = Proc(cmd, "READY", log_path=os.path.join(tmp, f"echo-{time.time_ns()}.log"),
                ready_in_log=False)
    proc.wait_ready()
    return proc


def worker_report(proc):
    proc.proc.send_signal(signal.SIGUSR1)
    line = proc.readline(10.0)
    return json.loads(line) if line else {}


# ------------------------------------------------------------------ broker helpers
class Admin:
    """Queue book-keeping: remember which queues pre-existed, delete the others at the end."""

    NAMES = ["dirac.rpc.retry", "dirac.rpc.parked", QUEUE,
             "dirac.rpc.WorkloadManagement.JobManager",
             "dirac.rpc.WorkloadManagement.JobMonitoring",
             "dirac.rpc.WorkloadManagement.JobStateUpdate"]

    def __init__(self):
        self.before = set(self._each(self._exists))

    def _each(self, fn):
        """fn(connection, name) for every name, on a short-lived connection; the truthy."""
        import pika
        conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        try:
            return [name for name in self.NAMES if fn(conn, name)]
        finally:
            conn.close()

    @staticmethod
    def _exists(conn, name):
        import pika.exceptions
        channel = conn.channel()
        try:
            channel.queue_declare(name, passive=True)
            return True
        except pika.exceptions.ChannelClosedByBroker:
            return False
        finally:
            if channel.is_open:
                channel.close()

    def _delete(self, conn, name):
        import pika.exceptions
        if name in self.before or not self._exists(conn, name):
            return False
        channel = conn.channel()
        try:
            channel.queue_delete(name, if_unused=True, if_empty=True)
            return True
        except pika.exceptions.ChannelClosedByBroker as exc:
            print(f"left queue {name}: {exc}", file=sys.stderr)
            return False
        finally:
            if channel.is_open:
                channel.close()

    def cleanup(self):
        """Delete the queues that did not exist when we started (if empty and unused)."""
        return self._each(self._delete)


class RawCaller:
    """Publishes protocol-v1 requests with raw pika and counts the replies (this process)."""

    def __init__(self):
        import pika
        self.pika = pika
        self.user = pika.URLParameters(AMQP_URL).credentials.username
        self.conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        self.channel = self.conn.channel()
        # Exclusive (deleted by the broker when this connection closes), and named as a
        # reply queue of our broker user: a worker replies nowhere else
        # (docs/security.md), so a server-named queue would get no replies.
        from diracmq.broker import topology
        self.reply_to = self.channel.queue_declare(
            topology.reply_queue_name(self.user), exclusive=True).method.queue
        self.channel.basic_consume(self.reply_to, self._on_reply, auto_ack=True)
        self.replies = self.errors = 0

    def _on_reply(self, _channel, _method, _props, body):
        import msgpack
        self.replies += 1
        if not msgpack.unpackb(body).get("OK"):
            self.errors += 1

    def publish(self, value, n):
        import msgpack
        body = msgpack.packb({"v": 1, "method": "echo", "args": [value]})
        for i in range(n):
            request_id = uuid.uuid4().hex
            self.channel.basic_publish("dirac.rpc", SERVICE, body, self.pika.BasicProperties(
                content_type="application/x-msgpack", delivery_mode=1, reply_to=self.reply_to,
                correlation_id=request_id, message_id=request_id, user_id=self.user))
            if i % 500 == 499:
                self.conn.process_data_events(0)  # take replies meanwhile
        return len(body)

    def wait(self, expected, timeout=120.0):
        deadline = time.monotonic() + timeout
        while self.replies < expected and time.monotonic() < deadline:
            self.conn.process_data_events(0.1)
        if self.replies < expected:
            raise RuntimeError(f"only {self.replies}/{expected} replies within {timeout} s")

    def close(self):
        self.conn.close()


# ------------------------------------------------------------------ measurements
def idle_rss(pid):
    time.sleep(IDLE_S)
    return proc_status(pid)


def measure_wms(tmp):
    """The real ``dirac-worker WorkloadManagement`` (defaults), idle; its client, idle."""
    command = os.path.join(os.path.dirname(sys.executable), "dirac-worker")
    worker = Proc([command, "WorkloadManagement"], "worker ready",
                  log_path=os.path.join(tmp, "wms.log"))
    try:
        worker.wait_ready()
        status = idle_rss(worker.pid)
        row = {"what": "idle worker: dirac-worker WorkloadManagement (defaults)",
               "pid": worker.pid, **status}
        client = measure_client("JobMonitoringClient().whoami()")
    finally:
        worker.stop()
    return row, client


def measure_client(name):
    proc = Proc([sys.executable, "-c", CLIENT_SCRIPTS[name]], "CALLED")
    try:
        line = proc.wait_ready()
        status = idle_rss(proc.pid)
    finally:
        proc.stop(stdin_first=True)  # it exits normally: atexit deletes its reply queue
    return {"what": f"idle client: import DIRAC; {name}", "pid": proc.pid,
            "call_ok": line.split()[1] == "True", **status}


def burst(tmp, payload, cache, idle_rows=None, threads=15, prefetch=None):
    """One fresh Echo worker: RSS before, peak during, after a burst of BURST calls."""
    worker = start_echo_worker(tmp, cache, threads, prefetch)
    caller = None
    try:
        if idle_rows is not None:  # the idle figures, before its first request
            idle_rows.append({"what": "idle worker: Bench/Echo handler, in-process Worker "
                                      "(defaults)", "pid": worker.pid,
                              **idle_rss(worker.pid)})
            idle_rows.append(measure_client(f'Client(url="{SERVICE}").echo(1)'))
        caller = RawCaller()
        value = PAYLOADS[payload]
        caller.publish(value, WARMUP)
        caller.wait(WARMUP)
        before = idle_rss(worker.pid)
        cache_before = worker_report(worker).get("cache_bytes") or 0
        # Queue the whole burst at the broker first: the worker is stopped (SIGSTOP)
        # while we publish, so it then faces 10,000 waiting requests, not a trickle.
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            request_bytes = caller.publish(value, BURST)
            t_published = time.monotonic() - t0
            caller.conn.process_data_events(0.5)  # let the broker settle the queue
            queued = caller.channel.queue_declare(QUEUE, passive=True).method.message_count
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        peak_reset = reset_peak(worker.pid)
        sampler = Sampler(worker.pid)
        sampler.start()
        t0 = time.monotonic()
        caller.wait(WARMUP + BURST)
        elapsed = time.monotonic() - t0
        sampled_peak = sampler.stop()
        during = proc_status(worker.pid)
        after = idle_rss(worker.pid)
        report = worker_report(worker)
    finally:
        if caller is not None:
            caller.close()
        worker.stop()
    import msgpack
    reply_bytes = len(msgpack.packb({"OK": True, "Value": value}))
    peak = max(sampled_peak, during.get("VmHWM", 0) if peak_reset else 0)
    window = report.get("prefetch", 0) * (request_bytes + reply_bytes)
    return {
        "payload": payload, "cache_size": cache[0], "cache_max_bytes": cache[1],
        "pid": worker.pid, "calls": BURST, "errors": caller.errors,
        "publish_s": round(t_published, 3), "elapsed_s": round(elapsed, 3),
        "calls_per_s": round(BURST / elapsed), "queued_at_start": queued,
        "request_bytes": request_bytes,
        "reply_bytes": reply_bytes, "prefetch": report.get("prefetch"),
        "prefetch_window_kb": window / 1024,
        "rss_before_mb": before["VmRSS"], "rss_peak_mb": peak,
        "rss_peak_sampled_mb": sampled_peak, "rss_samples": sampler.samples,
        "vmhwm_reset": peak_reset, "rss_after_mb": after["VmRSS"],
        "growth_peak_mb": peak - before["VmRSS"],
        "growth_after_mb": after["VmRSS"] - before["VmRSS"],
        "rss_anon_before_mb": before["RssAnon"], "rss_anon_after_mb": after["RssAnon"],
        "threads_after": after.get("Threads"),
        "cache_entries": report.get("cache_entries"),
        "cache_payload_mb": (report.get("cache_bytes") or 0) / MB,
        "cache_payload_growth_mb": ((report.get("cache_bytes") or 0) - cache_before) / MB,
        "worker_counters": report.get("counters"),
    }


IMPORT_STEPS = ["pika", "msgpack", "diracmq.client.base", "DIRAC",
                "DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient",
                "diracmq.workers.server", "diracmq.workers.cli", "sqlalchemy",
                "DIRAC.WorkloadManagementSystem.Service.JobMonitoringHandler",
                "DIRAC.WorkloadManagementSystem.Service.JobManagerHandler",
                "DIRAC.WorkloadManagementSystem.Service.JobStateUpdateHandler"]


def import_costs():
    """RSS (MB) of a fresh interpreter after each import of IMPORT_STEPS, in order."""
    script = (
        "import importlib, json, sys\n"
        "def rss():\n"
        "    with open('/proc/self/status') as fh:\n"
        "        return next(int(l.split()[1]) / 1024 for l in fh if l.startswith('VmRSS'))\n"
        "out = [['(interpreter)', rss()]]\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "    out.append([name, rss()])\n"
        "print(json.dumps(out))\n")
    run = subprocess.run([sys.executable, "-c", script, *IMPORT_STEPS], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    steps = json.loads(run.stdout)
    return [{"module": name, "rss_mb": rss, "delta_mb": rss - (steps[i - 1][1] if i else 0)}
            for i, (name, rss) in enumerate(steps)]


# ------------------------------------------------------------------ report
def verdict(mb):
    return "ok" if mb < GOAL_MB else f"**over {GOAL_MB}**"


def print_report(res):
    print(f"\n## Idle processes (RSS {IDLE_S:.0f} s after ready; goal < {GOAL_MB} MB)\n")
    print("| process | RSS MB | anon MB | file MB | threads | goal |")
    print("|---|---:|---:|---:|---:|---|")
    for row in res["idle"]:
        print(f"| {row['what']} | {row['VmRSS']:.1f} | {row['RssAnon']:.1f} | "
              f"{row['RssFile']:.1f} | {row['Threads']} | {verdict(row['VmRSS'])} |")
    print(f"\n## Burst: {BURST} echo calls queued to one Echo worker (15 threads)\n")
    print("| payload | reply cache | before MB | peak MB | after MB | growth peak MB | "
          "growth after MB | cache held MB (entries) | cache growth MB | prefetch window KB | "
          "calls/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for b in res["bursts"]:
        cache = f"{b['cache_size']} / {b['cache_max_bytes'] // MB} MiB"
        print(f"| {b['payload']} | {cache} | {b['rss_before_mb']:.1f} | {b['rss_peak_mb']:.1f} | "
              f"{b['rss_after_mb']:.1f} | {b['growth_peak_mb']:+.1f} | "
              f"{b['growth_after_mb']:+.1f} | {b['cache_payload_mb']:.1f} "
              f"({b['cache_entries']}) | {b['cache_payload_growth_mb']:+.1f} | "
              f"{b['prefetch_window_kb']:.1f} | {b['calls_per_s']} |")
    print("\nbefore = after 200 warm-up calls (their replies are in the cache already); "
          "cache held = reply bytes in the reply cache after the burst, cache growth = the "
          "same minus before (payload only, without the ~330 B of Python objects per entry); "
          "prefetch window = prefetch x (request + reply body bytes)")
    print("\n## RSS after each import (fresh interpreter, cumulative)\n")
    print("| import | RSS MB | + MB |")
    print("|---|---:|---:|")
    for step in res["imports"]:
        print(f"| {step['module']} | {step['rss_mb']:.1f} | {step['delta_mb']:+.1f} |")


def parse_cache(text):
    size, _, max_bytes = text.partition(":")
    return int(size), int(max_bytes or DEFAULT_CACHE[1])


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        ap = argparse.ArgumentParser()
        ap.add_argument("role")
        ap.add_argument("--threads", type=int, default=15)
        ap.add_argument("--prefetch", type=int, default=0)
        ap.add_argument("--cache", type=parse_cache, default=DEFAULT_CACHE)
        opts = ap.parse_args()
        return serve(opts.threads, opts.prefetch or None, *opts.cache)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--payload", action="append", choices=PAYLOADS,
                    help="burst payloads (default: all)")
    ap.add_argument("--extra-cache", action="append", type=parse_cache, default=[],
                    metavar="SIZE[:MAX_BYTES]",
                    help="also burst with this reply cache bound (repeatable)")
    ap.add_argument("--no-idle", action="store_true", help="skip the idle WMS measurements")
    opts = ap.parse_args()

    admin = Admin()
    res = {"time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
           "broker": AMQP_URL.split("@")[-1], "python": sys.version.split()[0],
           "cpus": os.cpu_count(), "goal_mb": GOAL_MB, "idle": [], "bursts": []}
    try:
        with tempfile.TemporaryDirectory(prefix="diracmq-memory.") as tmp:
            if not opts.no_idle:
                print("idle: dirac-worker WorkloadManagement", file=sys.stderr)
                wms, wms_client = measure_wms(tmp)
                res["idle"] += [wms, wms_client]
            caches = [DEFAULT_CACHE, SMALL_CACHE, *opts.extra_cache]
            first = True
            for payload in opts.payload or PAYLOADS:
                for cache in caches:
                    print(f"burst: {payload}, reply cache {cache}", file=sys.stderr)
                    res["bursts"].append(burst(tmp, payload, cache,
                                               idle_rows=res["idle"] if first else None))
                    first = False
        res["imports"] = import_costs()
    finally:
        res["queues_deleted"] = admin.cleanup()
    print_report(res)
    os.makedirs(RESULTS, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = os.path.join(RESULTS, f"memory-{stamp}.json")
    with open(path, "w") as fh:
        json.dump(res, fh, indent=1)
    print(f"\nwritten: {os.path.relpath(path, ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()

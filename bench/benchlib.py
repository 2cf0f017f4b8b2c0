"""Shared harness for the RPC-over-RabbitMQ baselines.

Started as a copy of ../shared/bench/benchlib.py.  Since then: the scenario
builders of bench/ (echo families and the scale-out family, with a handler method,
handler threads and a futures variant), the CPU work shared by both servers
(:func:`spin`, :func:`calibrate`) and environment variables for children.

A benchmark script provides a server entry point and a client factory; this
module runs everything else:

* the parent spawns server processes and long-lived client worker processes
  (the same script, argv[1] = "server" / "client"), all stopped by PID at the end;
* each scenario: the parent asks the involved clients to connect and warm up,
  waits until all are ready (barrier), then lets them run for a fixed duration;
* each client reports its per-call latencies; the parent aggregates and prints
  ONE JSON line on stdout (progress goes to stderr).

Client worker protocol (JSON lines on stdin/stdout):
  parent -> {"cmd": "prepare", "reply": .., "payload": .., "concurrency": .., "warmup": s,
             "method": "echo"|"sleep"|"cpu" (optional), "futures": bool (optional)}
  client -> {"ready": true}
  parent -> {"cmd": "run", "duration": s}
  client -> {"n": .., "elapsed": .., "lat_us": [..], "leftover": [queue names]}
"""
import argparse
import asyncio
import collections
import ctypes
import datetime
import importlib.metadata
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time

AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")

# "small" is the echo of an int; the others are str payloads of 10 KiB and 1 MiB.
PAYLOADS = {"small": 42, "10KB": "x" * 10 * 1024, "1MB": "x" * 1024 * 1024}

# (clients, servers) topologies of the sequential echo rows (4c4s: small payload only)
TOPOLOGIES = [(1, 1), (4, 1), (4, 2)]

#: Handler methods: echo (the RPC layer's own cost), sleep (10 ms, I/O-bound), cpu (5 ms of
#: pure Python, CPU-bound).  Both servers implement them with the same work.
SLEEP_MS = float(os.environ.get("BENCH_SLEEP_MS", "10"))  # as EchoHandler
CPU_MS = float(os.environ.get("BENCH_CPU_MS", "5"))

#: The scale-out family: handler threads of our Worker, worker processes.
SCALE_THREADS = (1, 2, 5, 10, 20)
SCALE_PROCESSES = (1, 2, 4)
SCALE_METHODS = ("sleep", "cpu")


def scenario(payload, clients, servers, reply="-", concurrency=1, method="echo",
             threads=None, futures=False):
    """One scenario.  Names: ``<reply>/<payload>/<c>c<s>s[/x<n>[f]]`` for echo and
    ``<reply>/<method>/<c>c<s>s[/t<threads>]/x<n>`` for the sleep and cpu handlers.

    ``threads``: handler threads of a multi-threaded server (None: the script's own
    server, e.g. raw pika's single thread).  ``futures``: keep the calls in flight with
    ``Client.submit`` futures instead of a thread pool (ours only).
    """
    if method == "echo":
        name = f"{reply}/{payload}/{clients}c{servers}s"
    else:
        name = f"{reply}/{method}/{clients}c{servers}s"
        if threads is not None:
            name += f"/t{threads}"
    if concurrency > 1 or method != "echo":
        name += f"/x{concurrency}" + ("f" if futures else "")
    return dict(name=name, reply=reply, payload=payload, clients=clients,
                servers=servers, concurrency=concurrency, method=method,
                threads=threads, futures=futures,
                family="echo" if method == "echo" else "scale")


def standard_scenarios(reply_modes, futures=False):
    """The echo families, for each reply mode: the same list for every implementation.

    * sequential calls (1 in flight per client): 1c1s, 4c1s, 4c2s for every payload, and
      4c4s for the small one (calls/s against worker processes 1, 2, 4);
    * one client with 10 and 100 calls in flight against one server (every payload),
      100 against 2 servers (every payload) and against 4 (small);
    * ``futures``: the same 10 and 100 in flight against one server, kept with futures
      (names end in ``f``); for the implementations that have them.
    """
    out = []
    for reply in reply_modes:
        out += [scenario(p, c, s, reply) for c, s in TOPOLOGIES for p in PAYLOADS]
        out.append(scenario("small", 4, 4, reply))
    for reply in reply_modes:
        out += [scenario(p, 1, 1, reply, concurrency=n) for n in (10, 100) for p in PAYLOADS]
        out += [scenario(p, 1, 2, reply, concurrency=100) for p in PAYLOADS]
        out.append(scenario("small", 1, 4, reply, concurrency=100))
    if futures:
        for reply in reply_modes:
            out += [scenario(p, 1, 1, reply, concurrency=n, futures=True)
                    for n in (10, 100) for p in PAYLOADS]
    return out


def scale_inflight(threads, processes, per_thread=2):
    """Calls kept in flight for a scale-out scenario: 2 per handler thread, at least 10."""
    return max(10, round(per_thread * threads * processes))


def scale_scenarios(reply, threads=SCALE_THREADS, methods=SCALE_METHODS, per_thread=2):
    """The scale-out family (small payload, one client process) for one reply mode.

    ``threads``: handler threads per worker process, e.g. SCALE_THREADS; ``(None,)`` for a
    single-threaded server (raw pika), whose scale-out is over processes only.
    ``per_thread``: calls in flight per handler thread (at least 10 in all).
    """
    return [scenario("small", 1, p, reply, method=m, threads=t,
                     concurrency=scale_inflight(t or 1, p, per_thread))
            for t in threads for p in SCALE_PROCESSES for m in methods]


def ideal_calls_per_s(method, threads, processes, cores=None):
    """The ideal throughput of a scale-out scenario (None for echo).

    sleep: every handler thread busy all the time, ``threads * processes / 10 ms``.
    cpu: every worker process busy on its own core, ``min(processes, cores) / 5 ms``
    (the GIL serialises the threads of one process).
    """
    if method == "sleep":
        return (threads or 1) * processes * 1000.0 / SLEEP_MS
    if method == "cpu":
        cores = cores or os.cpu_count() or 1
        return min(processes, cores) * 1000.0 / CPU_MS
    return None


# --------------------------------------------------------------------------- handler work

def spin(iterations):
    """Pure-Python CPU work (the same loop as EchoHandler's ``cpu`` method)."""
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


def calibrate(target_ms=CPU_MS):
    """Iterations of :func:`spin` that take ``target_ms`` on an idle core here.

    The best of 40 probes of about 1 ms, 2 ms apart: on a shared machine most probes are
    slowed down, and a slow best probe would make the work too short."""
    probe = 20_000

    def timed():
        time.sleep(0.002)
        start = time.perf_counter()
        spin(probe)
        return time.perf_counter() - start

    best = min(timed() for _ in range(40))
    return max(1, int(probe * target_ms / 1000 / best))


def cpu_iterations():
    """``BENCH_CPU_ITERATIONS`` (set by run.py for every server), else calibrated here."""
    fixed = os.environ.get("BENCH_CPU_ITERATIONS")
    return int(fixed) if fixed else calibrate()


def percentile(sorted_vals, q):
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, round(q / 100 * (len(sorted_vals) - 1))))
    return sorted_vals[k]


# --------------------------------------------------------------------------- client side

def _emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _timed_sequential(call, value, duration):
    pc = time.perf_counter
    lat = []
    t0 = pc()
    end = t0 + duration
    while True:
        t = pc()
        call(value)
        t2 = pc()
        lat.append(t2 - t)
        if t2 >= end:
            return lat, t2 - t0


def _timed_window(send, value, duration, concurrency):
    """Keep `concurrency` calls in flight; send(value) returns a zero-arg wait() -> result."""
    pc = time.perf_counter
    lat = []
    t0 = pc()
    end = t0 + duration
    window = collections.deque((pc(), send(value)) for _ in range(concurrency))
    while window:
        ts, wait = window.popleft()
        wait()
        t2 = pc()
        lat.append(t2 - ts)
        if t2 < end:
            window.append((pc(), send(value)))
    return lat, pc() - t0


def _timed_threads(call, value, duration, concurrency):
    """`concurrency` threads, each making sequential calls (a closed loop per thread).

    Unlike a window waited on in order, a slow call holds up only its own thread."""
    pc = time.perf_counter
    lats = [[] for _ in range(concurrency)]
    gate = threading.Barrier(concurrency + 1)
    end = [0.0]

    def loop(lat):
        gate.wait()
        while True:
            t = pc()
            call(value)
            t2 = pc()
            lat.append(t2 - t)
            if t2 >= end[0]:
                return

    threads = [threading.Thread(target=loop, args=(lat,), daemon=True) for lat in lats]
    for thread in threads:
        thread.start()
    t0 = pc()
    end[0] = t0 + duration
    gate.wait()
    for thread in threads:
        thread.join()
    return [x for lat in lats for x in lat], pc() - t0


async def _timed_async(call, value, duration, concurrency):
    pc = time.perf_counter
    lat = []
    t0 = pc()
    end = t0 + duration

    async def loop():
        while True:
            t = pc()
            await call(value)
            t2 = pc()
            lat.append(t2 - t)
            if t2 >= end:
                return

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return lat, pc() - t0


def _result(lat, elapsed, leftover):
    return {"n": len(lat), "elapsed": elapsed,
            "lat_us": [round(x * 1e6) for x in lat], "leftover": list(leftover or [])}


def client_main(make_caller, queue):
    """Worker loop for a synchronous client.

    make_caller(reply, queue, method=None, futures=False) -> object with call(value) -> value,
    close() -> [leftover queues], and optionally send(value) -> wait() callable returning the
    value (used when concurrency > 1: a window of calls in flight, waited on in order).  An
    object whose ``in_flight`` is "threads" gets one thread per call in flight instead, each
    making sequential calls.  ``method``: the handler method (None: the script's default);
    ``futures``: keep calls in flight with futures (send()) rather than threads.
    """
    for line in sys.stdin:
        cmd = json.loads(line)
        value = PAYLOADS[cmd["payload"]]
        conc = cmd["concurrency"]
        caller = make_caller(cmd["reply"], queue, method=cmd.get("method"),
                             futures=cmd.get("futures", False))
        assert caller.call(value) == value, "echo mismatch"
        if conc > 1 and getattr(caller, "in_flight", "window") == "threads":
            def timed(d, caller=caller, value=value, conc=conc):
                return _timed_threads(caller.call, value, d, conc)
        elif conc > 1:
            def timed(d, caller=caller, value=value, conc=conc):
                return _timed_window(caller.send, value, d, conc)
        else:
            def timed(d, caller=caller, value=value):
                return _timed_sequential(caller.call, value, d)
        timed(cmd["warmup"])
        _emit({"ready": True})
        lat, elapsed = timed(json.loads(sys.stdin.readline())["duration"])
        _emit(_result(lat, elapsed, caller.close()))


def client_main_async(make_caller, queue):
    """Worker loop for an asyncio client: await make_caller(reply, queue) -> object with
    async call(value) -> value and async close() -> [leftover queues]."""

    async def main():
        loop = asyncio.get_running_loop()
        def readline():
            return loop.run_in_executor(None, sys.stdin.readline)
        while line := await readline():
            cmd = json.loads(line)
            value = PAYLOADS[cmd["payload"]]
            conc = cmd["concurrency"]
            caller = await make_caller(cmd["reply"], queue)
            assert await caller.call(value) == value, "echo mismatch"
            await _timed_async(caller.call, value, cmd["warmup"], conc)
            _emit({"ready": True})
            duration = json.loads(await readline())["duration"]
            lat, elapsed = await _timed_async(caller.call, value, duration, conc)
            _emit(_result(lat, elapsed, await caller.close()))

    asyncio.run(main())


# --------------------------------------------------------------------------- parent side

def _die_with_parent():
    # children get SIGTERM if the parent dies (Linux prctl PR_SET_PDEATHSIG)
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    except Exception:
        pass


class Child:
    def __init__(self, script, role, args, env=None):
        """``env``: variables added to this process's environment for the child."""
        cmd = [sys.executable, script, role] + list(args)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1, preexec_fn=_die_with_parent,
                                     env={**os.environ, **env} if env else None)

    def send(self, obj):
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def recv_line(self):
        line = self.proc.stdout.readline()
        if not line:
            rc = self.proc.wait()
            raise RuntimeError(f"child {self.proc.pid} ({self.proc.args[2]}) exited: rc={rc}")
        return line

    def recv(self):
        return json.loads(self.recv_line())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()          # SIGTERM by PID
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _versions(packages):
    out = {}
    for p in packages:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = None
    return out


def _with_admin(fn):
    """fn(channel) on a short-lived pika connection (queue cleanup, broker version)."""
    import pika
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        return fn(conn.channel())
    finally:
        if conn.is_open:
            conn.close()


def _broker_version(admin):
    version = admin.connection._impl.server_properties.get("version", b"?")
    return version.decode() if isinstance(version, bytes) else str(version)


def prepare_command(sc, warmup):
    """The client's "prepare" message for scenario ``sc``.  An echo scenario sends no
    method, so that a script's own default (e.g. ``BENCH_METHOD``) applies."""
    return {"cmd": "prepare", "reply": sc["reply"], "payload": sc["payload"],
            "concurrency": sc["concurrency"], "warmup": warmup,
            "method": None if sc.get("method", "echo") == "echo" else sc["method"],
            "futures": sc.get("futures", False)}


def _aggregate(sc, reports):
    lat = sorted(x for r in reports for x in r["lat_us"])
    rate = sum(r["n"] / r["elapsed"] for r in reports)
    def ms(us):
        return None if us is None else round(us / 1000, 3)
    return dict(sc, calls_per_s=round(rate, 1), n=len(lat),
                p50_ms=ms(percentile(lat, 50)), p99_ms=ms(percentile(lat, 99)),
                mean_ms=ms(sum(lat) / len(lat)) if lat else None)


def run(bench, script, scenarios, packages, prepare=None, cleanup=None, server_args=(),
        argv=None):
    """Parent entry point. prepare(admin) runs before servers start, cleanup(admin, leftover)
    after all children are stopped; `admin` is a pika BlockingChannel."""
    ap = argparse.ArgumentParser(description=f"{bench} baseline")
    ap.add_argument("--duration", type=float, default=1.5, help="measured seconds per scenario")
    ap.add_argument("--warmup", type=float, default=0.3, help="warm-up seconds per scenario")
    ap.add_argument("--filter", default="", help="regex on scenario names, e.g. 'small'")
    ap.add_argument("--timeout", type=float, default=300, help="hard limit for the whole run (s)")
    opts = ap.parse_args(argv)
    scenarios = [s for s in scenarios if re.search(opts.filter, s["name"])]
    declared = [s["name"] for s in scenarios]
    scenarios.sort(key=lambda s: s["servers"])   # run order: servers are only ever added

    if not scenarios:
        sys.exit(f"{bench}: no scenario matches --filter {opts.filter!r}")

    def on_alarm(*_):
        raise TimeoutError(f"{bench}: exceeded --timeout {opts.timeout}s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.setitimer(signal.ITIMER_REAL, opts.timeout)

    t_start = time.time()

    def setup(admin):
        if prepare:
            prepare(admin)
        return _broker_version(admin)

    broker = _with_admin(setup)
    servers, clients, leftover, results = [], [], [], []
    try:
        clients = [Child(script, "client", []) for _ in range(max(s["clients"] for s in scenarios))]
        for sc in scenarios:
            while len(servers) < sc["servers"]:
                srv = Child(script, "server", list(server_args))
                servers.append(srv)
                assert srv.recv_line().strip() == "READY"
            workers = clients[:sc["clients"]]
            for w in workers:
                w.send(prepare_command(sc, opts.warmup))
            for w in workers:
                assert w.recv().get("ready")
            for w in workers:
                w.send({"cmd": "run", "duration": opts.duration})
            reports = [w.recv() for w in workers]
            for r in reports:
                leftover += r["leftover"]
            res = _aggregate(sc, reports)
            results.append(res)
            print(f"{bench:14s} {res['name']:28s} {res['calls_per_s']:9.1f} calls/s  "
                  f"p50 {res['p50_ms']:8.3f} ms  p99 {res['p99_ms']:8.3f} ms  n={res['n']}",
                  file=sys.stderr, flush=True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for c in clients + servers:
            c.stop()
        if cleanup:
            try:
                _with_admin(lambda admin: cleanup(admin, leftover))
            except Exception as exc:  # never mask the real error
                print(f"{bench}: cleanup failed: {exc!r}", file=sys.stderr)

    print(json.dumps({
        "bench": bench,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "env": {"nproc": os.cpu_count(), "python": platform.python_version(),
                "rabbitmq": broker, "versions": _versions(packages)},
        "params": {"duration_s": opts.duration, "warmup_s": opts.warmup,
                   "server_args": list(server_args)},
        "wall_s": round(time.time() - t_start, 1),
        "results": sorted(results, key=lambda r: declared.index(r["name"])),
    }))

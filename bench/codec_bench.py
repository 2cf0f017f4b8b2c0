"""Cost of the codec on a typical DIRAC reply, against plain msgpack and pickle; and the call.

Codec mode (default): encode, decode and encode+decode, in µs per operation, of

* ``small``: ``{"OK": True, "Value": 42}``;
* ``jobs100``: ``S_OK`` of 100 job records (``EchoHandler.job_records``: 21 fields,
  5 datetimes of which 2 may be ``None``), with a new ``str`` object per value, as a
  database driver returns them;
* ``jobs100-shared-str``: the same records with their repeated strings as one
  object each: pickle's best case, as its memo sends a repeated object once.

with ``codec`` (``broker.codec``, as in the working tree), ``codec@REF`` (the same
file at git revision REF, with ``--against REF``), ``msgpack`` (plain
``msgpack.packb/unpackb`` on the same value with datetimes made ISO strings
beforehand: the structure's cost without any type fidelity), ``pickle5`` and
``pickle4`` (Python 3.11's default protocol).  The cells are measured
interleaved: every round times one batch (``--batch-ms``, gc off, as timeit) of
each cell in turn, so a burst of load from other processes hits all formats
alike.  The table shows the best round (``--rounds``), as timeit advises: on a
shared machine the other processes only ever add time; the JSON has the median
too.  ``ratio`` is a format's time over the faster pickle's.

Call mode (``--call``): starts the Bench worker (``bench/diracmq_rpc.py server``)
in a subprocess and measures sequential calls through ``client.base.Client``:
``jobs(100)`` against ``echo(42)``, alternating 0.25 s slices of each for
``--call-seconds`` per method, and reports calls/s, p50 and p90 latency and the
ratio of the p50s.  The broker is ``BENCH_AMQP_URL`` (as every benchmark here): a
``bench/run.py`` running at the same time deletes the Bench/Echo queue, so on a
shared broker give this run a vhost of its own.

Run:  .venv/bin/python bench/codec_bench.py [--against HEAD] [--call]
JSON: bench/results/codec-<UTC stamp>.json (git-ignored)
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.util
import json
import os
import pickle
import platform
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path

import msgpack

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path[:0] = [str(REPO_DIR), str(BENCH_DIR)]

from benchext.BenchSystem.Service.EchoHandler import job_records  # noqa: E402
from diracmq.broker import codec  # noqa: E402

OPS = ("encode", "decode", "total")


def _shared_strings(records):
    """The records with every repeated str value one object (pickle memoizes those)."""
    seen = {}
    return [{k: seen.setdefault(v, v) if type(v) is str else v for k, v in r.items()}
            for r in records]


def _iso_datetimes(value):
    """``value`` with datetimes as ISO text: what plain msgpack can carry."""
    if isinstance(value, dict):
        return {k: _iso_datetimes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso_datetimes(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def envelopes():
    """name -> value of the envelopes measured."""
    records = job_records(100)
    return {
        "small": {"OK": True, "Value": 42},
        "jobs100": {"OK": True, "Value": records},
        "jobs100-shared-str": {"OK": True, "Value": _shared_strings(records)},
    }


def load_codec_at(ref):
    """``broker/codec.py`` as it is at git revision ``ref``, imported as its own module."""
    source = subprocess.run(["git", "-C", str(REPO_DIR), "show", f"{ref}:broker/codec.py"],
                            check=True, capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader(f"codec_at_{ref}", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"{ref}:broker/codec.py", "exec"), module.__dict__)
    return module


def formats(against=None):
    """name -> (encode, decode, prepare value) of every format measured."""
    out = {"codec": (codec.packb, codec.unpackb, None)}
    if against:
        old = load_codec_at(against)
        out[f"codec@{against}"] = (old.packb, old.unpackb, None)
    out["msgpack"] = (msgpack.packb, msgpack.unpackb, _iso_datetimes)
    out["pickle5"] = (lambda v: pickle.dumps(v, 5), pickle.loads, None)
    out["pickle4"] = (lambda v: pickle.dumps(v, 4), pickle.loads, None)
    return out


def _same(got, want):
    """Equal with the same types all the way down (a tuple is not a list)."""
    if type(got) is not type(want):
        return False
    if isinstance(want, dict):
        return list(got) == list(want) and all(_same(got[k], v) for k, v in want.items())
    if isinstance(want, list):
        return len(got) == len(want) and all(map(_same, got, want))
    return got == want


def _cells(envs, fmts):
    """One cell per (envelope, format): its callables per op and its encoded size."""
    cells = []
    for env_name, value in envs.items():
        for fmt_name, (enc, dec, prepare) in fmts.items():
            obj = prepare(value) if prepare else value
            blob = enc(obj)
            if not _same(dec(blob), obj):
                raise AssertionError(f"{fmt_name} does not round-trip {env_name}")
            cells.append({
                "envelope": env_name, "format": fmt_name, "bytes": len(blob),
                "calls": {"encode": lambda enc=enc, obj=obj: enc(obj),
                          "decode": lambda dec=dec, blob=blob: dec(blob),
                          "total": lambda enc=enc, dec=dec, obj=obj: dec(enc(obj))},
            })
    return cells


def measure_codecs(envs, fmts, rounds, batch_s):
    """Interleaved timing of every cell and op; returns the cells with µs statistics."""
    cells = _cells(envs, fmts)
    timers = []
    for cell in cells:
        for op, fn in cell["calls"].items():
            timer = timeit.Timer(fn)
            fn()  # warm caches (and lru caches) before calibrating
            number = 1
            while timer.timeit(number) < batch_s / 4:
                number *= 2
            number = max(1, int(number * batch_s / max(timer.timeit(number), 1e-9)))
            timers.append((cell, op, timer, number, []))
    for _ in range(rounds):
        for _cell, _op, timer, number, samples in timers:
            samples.append(timer.timeit(number) / number * 1e6)
    for cell, op, _timer, number, samples in timers:
        cell[op] = {"median_us": statistics.median(samples), "min_us": min(samples),
                    "number": number, "rounds": len(samples)}
    for cell in cells:
        del cell["calls"]
    _add_ratios(cells)
    return cells


def _add_ratios(cells):
    for cell in cells:
        pickles = [c for c in cells if c["envelope"] == cell["envelope"]
                   and c["format"].startswith("pickle")]
        cell["ratio_to_pickle"] = {
            op: cell[op]["min_us"] / min(p[op]["min_us"] for p in pickles)
            for op in OPS}


def codec_table(cells):
    """Markdown table of :func:`measure_codecs`' cells."""
    lines = ["| envelope | format | bytes | encode µs | decode µs | enc+dec µs "
             "| ratio to pickle (enc / dec / total) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for c in cells:
        r = c["ratio_to_pickle"]
        lines.append(
            f"| {c['envelope']} | {c['format']} | {c['bytes']} "
            + "".join(f"| {c[op]['min_us']:.1f} " for op in OPS)
            + f"| {r['encode']:.2f} / {r['decode']:.2f} / **{r['total']:.2f}** |")
    return "\n".join(lines)


# ------------------------------------------------------------------------ call mode

def _start_worker(stderr):
    """The Bench worker (``diracmq_rpc.py server``) in a subprocess, once it is consuming."""
    proc = subprocess.Popen([sys.executable, str(BENCH_DIR / "diracmq_rpc.py"), "server"],
                            cwd=REPO_DIR, stdout=subprocess.PIPE, stderr=stderr, text=True)
    line = proc.stdout.readline().strip()
    if line != "READY":
        proc.kill()
        stderr.seek(0)
        raise RuntimeError(f"the Bench worker said {line!r}, not READY:\n{stderr.read()}")
    return proc


def _other_consumers(diracmq_rpc):
    """Consumers of the Bench/Echo queue (0 if it does not exist yet)."""
    import pika
    from diracmq.broker import topology

    connection = pika.BlockingConnection(pika.URLParameters(diracmq_rpc.settings().url))
    try:
        channel = connection.channel()
        try:
            queue = topology.service_queue_name(diracmq_rpc.SERVICE)
            return channel.queue_declare(queue, passive=True).method.consumer_count
        except pika.exceptions.ChannelClosedByBroker:
            return 0
    finally:
        connection.close()


def _pct(sorted_vals, q):
    return sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))]


def measure_calls(seconds, n_jobs=100, slice_s=0.25, extra=None):
    """Sequential calls of ``echo(42)`` and ``jobs(n_jobs)`` (and ``extra``: name ->
    (method name, argument)), in alternating slices of ``slice_s``."""
    import tempfile

    import diracmq_rpc
    from diracmq.client.base import Client

    if _other_consumers(diracmq_rpc):
        # Calls would be shared with a worker that is not ours (another benchmark).
        raise RuntimeError(f"{diracmq_rpc.SERVICE} already has a consumer: not measuring")
    stderr = tempfile.TemporaryFile("w+")  # shown if the worker fails to start
    worker = _start_worker(stderr)
    try:
        client = Client(url=diracmq_rpc.SERVICE, timeout=30, settings=diracmq_rpc.settings())
        methods = {"echo(42)": (client.echo, 42), f"jobs({n_jobs})": (client.jobs, n_jobs)}
        for name, (method, arg) in (extra or {}).items():
            methods[name] = (getattr(client, method), arg)
        for rpc, arg in methods.values():  # connect, warm up, check
            for _ in range(20):
                result = rpc(arg)
                if not result["OK"]:
                    raise RuntimeError(f"{result['Message']} (another benchmark on this "
                                       "broker may have deleted the queue: see --help)")
        want = job_records(n_jobs)
        if client.jobs(n_jobs)["Value"] != want:
            raise AssertionError("jobs() did not come back as sent")
        latencies = {name: [] for name in methods}
        busy = {name: 0.0 for name in methods}
        deadline = time.perf_counter() + seconds * len(methods)
        while time.perf_counter() < deadline:
            for name, (rpc, arg) in methods.items():
                lat = latencies[name]
                start = time.perf_counter()
                end = start + slice_s
                t0 = start
                while t0 < end:
                    result = rpc(arg)
                    if not result["OK"]:
                        raise RuntimeError(f"{name} failed: {result['Message']}")
                    t1 = time.perf_counter()
                    lat.append(t1 - t0)
                    t0 = t1
                busy[name] += t0 - start
    finally:
        worker.terminate()
        worker.wait(10)
        stderr.close()
    out = {}
    for name, lat in latencies.items():
        lat.sort()
        out[name] = {"calls": len(lat), "calls_per_s": len(lat) / busy[name],
                     "p50_ms": _pct(lat, 0.5) * 1e3, "p90_ms": _pct(lat, 0.9) * 1e3}
    small, big = out["echo(42)"], out[f"jobs({n_jobs})"]
    out["ratio_p50"] = big["p50_ms"] / small["p50_ms"]
    out["ratio_calls_per_s"] = small["calls_per_s"] / big["calls_per_s"]
    return out


def call_table(calls):
    """Markdown table of :func:`measure_calls`' result."""
    lines = ["| call | calls | calls/s | p50 ms | p90 ms |", "|---|---:|---:|---:|---:|"]
    for name, r in calls.items():
        if isinstance(r, dict):
            lines.append(f"| {name} | {r['calls']} | {r['calls_per_s']:.0f} "
                         f"| {r['p50_ms']:.2f} | {r['p90_ms']:.2f} |")
    lines.append(f"\njobs/echo: p50 ratio **{calls['ratio_p50']:.2f}**, "
                 f"time per call ratio {calls['ratio_calls_per_s']:.2f} (goal: <= 1.5)")
    return "\n".join(lines)


def main(argv=None):
    """Run the codec measurement (and with ``--call``, the call one); print and save."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=11, help="timed rounds per cell")
    parser.add_argument("--batch-ms", type=float, default=4.0, help="length of one batch")
    parser.add_argument("--against", metavar="REF",
                        help="also measure broker/codec.py at this git revision")
    parser.add_argument("--call", action="store_true",
                        help="also measure jobs(100) vs echo(42) through a Bench worker")
    parser.add_argument("--call-only", action="store_true", help="only the call measurement")
    parser.add_argument("--call-seconds", type=float, default=1.5,
                        help="seconds of calls per method")
    args = parser.parse_args(argv)

    report = {
        "bench": "codec",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "env": {"nproc": os.cpu_count(), "loadavg": os.getloadavg(),
                "python": platform.python_version(), "msgpack": msgpack.version,
                "msgpack_c_ext": msgpack.Packer.__module__ != "msgpack.fallback",
                "pickle_default_protocol": pickle.DEFAULT_PROTOCOL},
        "settings": vars(args),
    }
    if not args.call_only:
        gc.collect()
        cells = measure_codecs(envelopes(), formats(args.against), args.rounds,
                               args.batch_ms / 1000)
        report["codec"] = cells
        print(f"Codec, µs per operation (best of {args.rounds} interleaved rounds; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)\n")
        print(codec_table(cells))
    if args.call or args.call_only:
        calls = measure_calls(args.call_seconds)
        report["call"] = calls
        print("\nSequential calls through client.base.Client, Bench worker in a subprocess\n")
        print(call_table(calls))
    out_dir = BENCH_DIR / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"codec-{stamp}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nJSON: {path.relative_to(REPO_DIR)}")


if __name__ == "__main__":
    main()

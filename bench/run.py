"""One command: diracmq and raw pika, side by side, interleaved scenario by scenario.

Starts the servers and client processes of both benchmarks (``raw_pika_rpc.py`` and
``diracmq_rpc.py``) and keeps them for the whole session.  Every scenario is then run
``--runs`` times.  Within a run, our scenario and its raw pika counterpart run back to
back, and the order alternates from run to run.  Both sides of a ratio therefore see the
same background load, seconds apart.  For every measurement it also records how much CPU
processes other than the benchmark's own (and the broker) used meanwhile.  With
``--max-others PCT`` it measures again when that exceeds PCT%.

Output: JSON lines (one per benchmark and run, the format of ``benchlib.run``) in
``bench/results/<UTC stamp>.jsonl``; markdown tables on stdout (our calls/s, p50, p99,
the ratio ours/raw per scenario, the reply-mode comparison), also written with the
per-benchmark detail to ``bench/results/summary.md``.

Run (from the project root):
    .venv/bin/python bench/run.py                 # 3 runs, about 6-7 minutes on 2 cores
    .venv/bin/python bench/run.py --quick         # 1 run, shorter scenarios, about 1.5 minutes
    .venv/bin/python bench/run.py --runs 5 --max-others 20 --filter '/1c1s'
    .venv/bin/python bench/run.py --summarize bench/results/<stamp>.jsonl   # tables only

The broker is ``$BENCH_AMQP_URL``, else amqp://guest:guest@127.0.0.1:5672/%2F.
"""
import argparse
import collections
import contextlib
import datetime
import io
import json
import os
import re
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402
import diracmq_rpc  # noqa: E402
import procstat  # noqa: E402
import raw_pika_rpc  # noqa: E402
import summarize  # noqa: E402

RESULTS = os.path.join(HERE, "results")
OURS, RAW = diracmq_rpc.BENCH, raw_pika_rpc.BENCH
MODULES = {RAW: raw_pika_rpc, OURS: diracmq_rpc}
#: our reply mode -> the raw pika mode it is compared with
PAIRS = {"queue": "exclusive", "direct": "direct"}
PAYLOAD_ORDER = ("small", "10KB", "1MB")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=None,
                    help="measurements of every scenario (default 3; --quick: 1)")
    ap.add_argument("--quick", action="store_true",
                    help="1 run, 0.5 s measured + 0.2 s warm-up per scenario")
    ap.add_argument("--duration", type=float, default=None,
                    help="measured seconds per scenario (default 1.5; --quick: 0.5)")
    ap.add_argument("--warmup", type=float, default=None,
                    help="warm-up seconds per scenario (default 0.3; --quick: 0.2)")
    ap.add_argument("--filter", default="", help="regex on scenario names, e.g. 'small/1c1s$'")
    ap.add_argument("--only", choices=("both", "ours", "raw"), default="both",
                    help="run only one side (the ratios need both)")
    ap.add_argument("--max-others", type=float, default=None, metavar="PCT",
                    help="measure a scenario again (up to --retries times) when other "
                         "processes used more than PCT%% of the machine meanwhile")
    ap.add_argument("--retries", type=int, default=2, help="with --max-others (default 2)")
    ap.add_argument("--timeout", type=float, default=1800, help="hard limit (s) for the session")
    ap.add_argument("--summarize", nargs="+", metavar="JSONL",
                    help="do not measure: print the tables of existing result files")
    opts = ap.parse_args(argv)
    opts.runs = opts.runs or (1 if opts.quick else 3)
    opts.duration = opts.duration or (0.5 if opts.quick else 1.5)
    opts.warmup = opts.warmup or (0.2 if opts.quick else 0.3)
    return opts


def project_version():
    """``git describe`` of the project (``-dirty``: measured with uncommitted changes)."""
    import subprocess
    try:
        out = subprocess.run(["git", "-C", os.path.dirname(HERE), "describe", "--always",
                              "--dirty", "--exclude", "*"], capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def check_broker():
    import pika
    try:
        pika.BlockingConnection(pika.URLParameters(benchlib.AMQP_URL)).close()
    except Exception as exc:
        sys.exit(f"bench: no broker at {benchlib.AMQP_URL} ({exc!r}). Start RabbitMQ first "
                 f"(see bench/README.md) or set BENCH_AMQP_URL.")


# ----------------------------------------------------------------------- measuring

class Session:
    """Both benchmarks' servers and clients, alive for the whole session."""

    def __init__(self, benches, opts):
        self.opts = opts
        self.benches = benches
        self.scripts = {b: os.path.join(HERE, f"{b}.py") for b in benches}
        self.clients = {b: [] for b in benches}
        self.servers = {b: [] for b in benches}
        self.leftover = {b: [] for b in benches}
        self.broker_pid = procstat.broker_pid(_amqp_port())

    def children(self):
        return [c for b in self.benches for c in self.clients[b] + self.servers[b]]

    def start(self, max_clients):
        for bench in self.benches:
            benchlib._with_admin(MODULES[bench].prepare)
            self.clients[bench] = [benchlib.Child(self.scripts[bench], "client", [])
                                   for _ in range(max_clients)]

    def ensure_servers(self, count):
        for bench in self.benches:
            while len(self.servers[bench]) < count:
                server = benchlib.Child(self.scripts[bench], "server", [])
                self.servers[bench].append(server)
                line = server.recv_line().strip()
                if line != "READY":
                    raise RuntimeError(f"{bench} server said {line!r}, not READY")

    def _own_cpu_ns(self):
        pids = [c.proc.pid for c in self.children()] + [os.getpid()]
        own = sum(procstat.cpu_ns(pid) for pid in pids)
        return own + (procstat.cpu_ns(self.broker_pid) if self.broker_pid else 0)

    def measure(self, bench, sc):
        """Run one scenario once; its aggregated result, with ``others_cpu_pct``."""
        workers = self.clients[bench][:sc["clients"]]
        for w in workers:
            w.send({"cmd": "prepare", "reply": sc["reply"], "payload": sc["payload"],
                    "concurrency": sc["concurrency"], "warmup": self.opts.warmup})
        for w in workers:
            if not w.recv().get("ready"):
                raise RuntimeError(f"{bench} client not ready for {sc['name']}")
        busy0, own0, t0 = procstat.machine_busy_ns(), self._own_cpu_ns(), time.monotonic()
        for w in workers:
            w.send({"cmd": "run", "duration": self.opts.duration})
        reports = [w.recv() for w in workers]
        busy1, own1, t1 = procstat.machine_busy_ns(), self._own_cpu_ns(), time.monotonic()
        for r in reports:
            self.leftover[bench] += r["leftover"]
        res = benchlib._aggregate(sc, reports)
        if busy0 is not None:
            others = (busy1 - busy0) - (own1 - own0)
            res["others_cpu_pct"] = round(max(0.0, 100 * others / 1e9 / (t1 - t0)
                                              / (os.cpu_count() or 1)), 1)
        return res

    def stop(self):
        for child in self.children():
            child.stop()
        for bench in self.benches:
            try:
                benchlib._with_admin(
                    lambda admin, b=bench: MODULES[b].cleanup(admin, self.leftover[b]))
            except Exception as exc:  # never mask the real error
                print(f"{bench}: cleanup failed: {exc!r}", file=sys.stderr)


def _amqp_port():
    import pika
    return pika.URLParameters(benchlib.AMQP_URL).port


def plan(benches, opts):
    """Rows of paired scenarios: (servers, key) -> [(bench, scenario), ...] in run order."""
    rows = collections.defaultdict(list)
    for bench in benches:
        for sc in MODULES[bench].scenarios():
            if re.search(opts.filter, sc["name"]):
                key = (sc["servers"], sc["clients"], sc["concurrency"] > 1,
                       PAYLOAD_ORDER.index(sc["payload"]))
                rows[key].append((bench, sc))
    # ours queue, raw exclusive, ours direct, raw direct: each next to its counterpart
    rank = {(OURS, "queue"): 0, (RAW, "exclusive"): 1, (OURS, "direct"): 2, (RAW, "direct"): 3}
    for items in rows.values():
        items.sort(key=lambda item: rank.get((item[0], item[1]["reply"]), 9))
    return dict(sorted(rows.items()))


def measure(opts):
    check_broker()
    benches = {"both": [RAW, OURS], "ours": [OURS], "raw": [RAW]}[opts.only]
    rows = plan(benches, opts)
    if not rows:
        sys.exit(f"bench: no scenario matches --filter {opts.filter!r}")
    os.makedirs(RESULTS, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = os.path.join(RESULTS, f"{stamp}.jsonl")

    def on_alarm(*_):
        raise TimeoutError(f"bench: exceeded --timeout {opts.timeout}s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.setitimer(signal.ITIMER_REAL, opts.timeout)
    t_start = time.time()
    broker = benchlib._with_admin(benchlib._broker_version)
    commit = project_version()
    results = {(b, run): [] for b in benches for run in range(opts.runs)}
    session = Session(benches, opts)
    n_items = sum(len(items) for items in rows.values()) * opts.runs
    done = 0
    try:
        session.start(max(sc["clients"] for items in rows.values() for _, sc in items))
        for servers in sorted({key[0] for key in rows}):
            session.ensure_servers(servers)
            for run in range(opts.runs):
                for key, items in rows.items():
                    if key[0] != servers:
                        continue
                    for bench, sc in (items if run % 2 == 0 else items[::-1]):
                        res = measure_one(session, bench, sc, opts)
                        results[bench, run].append(res)
                        done += 1
                        print(f"[{done:3d}/{n_items}] run {run + 1} {bench:13s} "
                              f"{res['name']:26s} {res['calls_per_s']:8.1f} calls/s  p50 "
                              f"{res['p50_ms']:8.3f} ms  p99 {res['p99_ms']:8.3f} ms  "
                              f"n={res['n']:<5d} others {res.get('others_cpu_pct', '?')}%",
                              file=sys.stderr, flush=True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        session.stop()

    docs = []
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    for (bench, run), res in results.items():
        declared = [sc["name"] for sc in MODULES[bench].scenarios()]
        docs.append({
            "bench": bench, "run": run, "date": date,
            "env": {"nproc": os.cpu_count(), "python": sys.version.split()[0],
                    "rabbitmq": broker, "project_commit": commit,
                    "versions": benchlib._versions(MODULES[bench].PACKAGES)},
            "params": {"duration_s": opts.duration, "warmup_s": opts.warmup,
                       "server_args": [], "interleaved": "scenario",
                       "max_others_pct": opts.max_others},
            "wall_s": round(time.time() - t_start, 1),
            "results": sorted(res, key=lambda r: declared.index(r["name"])),
        })
    with open(path, "a") as fh:
        for doc in docs:
            fh.write(json.dumps(doc) + "\n")
    print(f"== {n_items} measurements in {time.time() - t_start:.0f} s -> {path}",
          file=sys.stderr)
    return docs, [path]


def measure_one(session, bench, sc, opts):
    best = None
    for attempt in range(1 + (opts.retries if opts.max_others is not None else 0)):
        res = session.measure(bench, sc)
        res["attempts"] = attempt + 1
        others = res.get("others_cpu_pct")
        if best is None or (others or 0) < (best.get("others_cpu_pct") or 0):
            best = res
        if opts.max_others is None or others is None or others <= opts.max_others:
            break
        print(f"      {bench} {sc['name']}: other processes used {others}% of the CPUs; "
              f"measuring again", file=sys.stderr, flush=True)
    return best


# ------------------------------------------------------------------------ tables

def _row_key(r):
    topo = f"{r['clients']}c{r['servers']}s"
    if r["concurrency"] > 1:
        topo += f" x{r['concurrency']}"
    return topo, r["payload"]


def _sort_key(key):
    (topo, payload), reply = key
    return ("x" in topo, topo, PAYLOAD_ORDER.index(payload), list(PAIRS).index(reply))


def _med(rs, field):
    values = [r[field] for r in rs if r.get(field) is not None]
    return statistics.median(values) if values else None


def _fmt(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"


def _ratio(a, b):
    return None if a is None or not b else a / b


def collect(docs):
    """(bench, reply, row) -> {run: result}."""
    cells = collections.defaultdict(dict)
    for n, doc in enumerate(docs):
        for r in doc["results"]:
            cells[doc["bench"], r["reply"], _row_key(r)][doc.get("run", n)] = r
    return cells


def _paired(ours, raw, field):
    """Ratios ours/raw of ``field``, run by run (the two ran seconds apart)."""
    return [_ratio(ours[k].get(field), raw[k].get(field)) for k in sorted(ours) if k in raw]


def ratio_table(docs):
    cells = collect(docs)
    keys = sorted({(row, reply) for bench, reply, row in cells if bench == OURS}, key=_sort_key)
    out = ["| scenario | payload | reply: ours vs raw | ours calls/s | ours p50 ms | "
           "ours p99 ms | raw calls/s | raw p50 ms | raw p99 ms | **ratio calls/s** | "
           "ratio p99 | per-run calls/s ratios |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row, reply in keys:
        raw_reply = PAIRS[reply]
        ours = cells[OURS, reply, row]
        raw = cells.get((RAW, raw_reply, row), {})
        o, w = list(ours.values()), list(raw.values())
        rates = [x for x in _paired(ours, raw, "calls_per_s") if x is not None]
        p99s = [x for x in _paired(ours, raw, "p99_ms") if x is not None]
        ratio = statistics.median(rates) if rates else None
        p99 = statistics.median(p99s) if p99s else None
        out.append(
            f"| {row[0]} | {row[1]} | {reply} vs {raw_reply} | "
            f"{_fmt(_med(o, 'calls_per_s'), 0)} | {_fmt(_med(o, 'p50_ms'), 2)} | "
            f"{_fmt(_med(o, 'p99_ms'), 2)} | {_fmt(_med(w, 'calls_per_s'), 0)} | "
            f"{_fmt(_med(w, 'p50_ms'), 2)} | {_fmt(_med(w, 'p99_ms'), 2)} | "
            f"**{_fmt(ratio, 2)}** | {_fmt(p99, 2)} | "
            f"{' '.join(_fmt(x, 2) for x in rates)} |")
    return "\n".join(out)


def _cell(rs):
    return (f"{_fmt(_med(rs, 'calls_per_s'), 0)} ({_fmt(_med(rs, 'p50_ms'), 2)} "
            f"/ {_fmt(_med(rs, 'p99_ms'), 2)})")


def reply_mode_table(docs):
    cells = collect(docs)
    rows = sorted({row for bench, _reply, row in cells if bench == OURS},
                  key=lambda row: _sort_key((row, "queue")))
    out = ["| scenario | payload | queue calls/s (p50 / p99 ms) | direct calls/s (p50 / p99 ms) "
           "| direct / queue |",
           "|---|---|---:|---:|---:|"]
    for row in rows:
        q = list(cells.get((OURS, "queue", row), {}).values())
        d = list(cells.get((OURS, "direct", row), {}).values())
        out.append(f"| {row[0]} | {row[1]} | {_cell(q)} | {_cell(d)} | "
                   f"{_fmt(_ratio(_med(d, 'calls_per_s'), _med(q, 'calls_per_s')), 2)} |")
    return "\n".join(out)


def header(docs, paths):
    env = docs[-1]["env"]
    params = docs[-1]["params"]
    runs = len({d.get("run", n) for n, d in enumerate(docs)})
    versions = dict.fromkeys(f"{k} {v}" for d in docs for k, v in d["env"]["versions"].items())
    others = [r["others_cpu_pct"] for d in docs for r in d["results"]
              if r.get("others_cpu_pct") is not None]
    noise = (f"; CPU used by other processes during the measurements: median "
             f"{statistics.median(others):.0f}%, max {max(others):.0f}%") if others else ""
    how = ("interleaved scenario by scenario" if params.get("interleaved") == "scenario"
           else "interleaved")
    commit = env.get("project_commit")
    commit = f", project at {commit}" if commit else ""
    return (f"{min(d['date'] for d in docs)} .. {max(d['date'] for d in docs)}; {runs} "
            f"run(s), {how}; {params['duration_s']} s measured + {params['warmup_s']} s "
            f"warm-up per scenario.  nproc={env['nproc']}, python {env['python']}, RabbitMQ "
            f"{env['rabbitmq']}, {', '.join(versions)}{commit}{noise}.  Data: {', '.join(paths)}")


def report(docs, paths):
    """The markdown printed on stdout and written to results/summary.md."""
    benches = {d["bench"] for d in docs}
    parts = [f"## diracmq vs raw pika\n\n{header(docs, paths)}\n"]
    if {OURS, RAW} <= benches:
        parts.append("### Ratios ours / raw pika\n\nours and raw columns: median of the runs; "
                     "ratios: median of the per-run ratios (each pair measured back to back)."
                     "\n\n" + ratio_table(docs))
    if OURS in benches:
        parts.append("### Reply mode: named queue vs Direct Reply-to (ours)\n\n"
                     + reply_mode_table(docs))
    return "\n\n".join(parts) + "\n"


def detail(docs):
    runs = collections.defaultdict(list)
    for d in docs:
        runs[d["bench"]].append(d)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        summarize.compare(runs)
        for bench, bench_docs in sorted(runs.items()):
            summarize.detail(bench, bench_docs)
    return buf.getvalue()


def main(argv=None):
    opts = parse_args(argv)
    if opts.summarize:
        paths = opts.summarize
        docs = []
        for i, path in enumerate(paths):  # keep the runs of different sessions apart
            with open(path) as fh:
                docs += [dict(doc, run=(i, doc.get("run", n)))
                         for n, doc in enumerate(json.loads(ln) for ln in fh if ln.strip())]
    else:
        docs, paths = measure(opts)
    paths = [os.path.relpath(p) for p in paths]
    text = report(docs, paths)
    print(text)
    if not opts.summarize:
        with open(os.path.join(RESULTS, "summary.md"), "w") as fh:
            fh.write(text + "\n## Detail (all columns, median of runs)\n\n" + detail(docs))
        print(f"wrote {os.path.relpath(os.path.join(RESULTS, 'summary.md'))}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""One command: diracmq and raw pika, side by side, interleaved scenario by scenario.

Starts the client processes of both benchmarks (``raw_pika_rpc.py`` and
``diracmq_rpc.py``) and keeps them for the whole session; servers are started as the
scenarios need them.  Every scenario is then run ``--runs`` times (the scale-out family
``--scale-runs`` times).  Within a run, our scenario and its raw pika counterpart run
back to back, and the order alternates from run to run.  Both sides of a ratio therefore
see the same background load, seconds apart.  For every measurement it also records the
CPU used by the scenario's clients, servers and the broker, and by other processes
meanwhile.  With ``--max-others PCT`` it measures again when the latter exceeds PCT%.

Families (see README.md): echo (payloads small/10KB/1MB; 1 and 4 client processes;
1, 10 and 100 calls in flight; 1, 2 and 4 worker processes; a futures variant once
``client.base.Client`` has ``submit``) and scale-out (handlers ``sleep``, 10 ms I/O-bound,
and ``cpu``, 5 ms of pure Python; ours over handler threads 1/2/5/10/20 x worker
processes 1/2/4, raw pika over processes).

Output: JSON lines (one per benchmark and run, the format of ``benchlib.run``) in
``bench/results/<UTC stamp>.jsonl``; markdown tables on stdout (ratios ours/raw with
Nameko's calls/s from ../shared/bench/RESULTS.md, reply modes, scale-out against the
ideal), also written with the per-benchmark detail to ``bench/results/summary.md``; PNG
plots (bench/plot.py) in ``bench/results/plots/`` when matplotlib is installed.

Run (from the project root):
    .venv/bin/python bench/run.py                 # the full run, about 13 minutes on 2 cores
    .venv/bin/python bench/run.py --quick         # 1 run, shorter scenarios, about 2-3 minutes
    .venv/bin/python bench/run.py --quick --filter 'sleep/1c1s/t(1|10)/'   # a smoke test
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
# Queues of this runner's own (inherited by its children): other tools on the same broker
# serve Bench/Echo and bench.rpc, and would consume this runner's requests.
os.environ["BENCH_SERVICE"] = "BenchRun/Echo"
os.environ["BENCH_RAW_QUEUE"] = "bench.run.rpc"

import benchlib  # noqa: E402
import diracmq_rpc  # noqa: E402
import procstat  # noqa: E402
import raw_pika_rpc  # noqa: E402
import summarize  # noqa: E402

RESULTS = os.path.join(HERE, "results")
PLOTS = os.path.join(RESULTS, "plots")
#: The peers' results (Nameko's column): ../shared/bench/RESULTS.md of the project root
PEERS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "bench", "RESULTS.md")
OURS, RAW = diracmq_rpc.BENCH, raw_pika_rpc.BENCH
MODULES = {RAW: raw_pika_rpc, OURS: diracmq_rpc}
#: our reply mode -> the raw pika mode it is compared with
PAIRS = {"queue": "exclusive", "direct": "direct"}
PAYLOAD_ORDER = ("small", "10KB", "1MB")
SCALE_ORDER = ("sleep", "cpu")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=None,
                    help="measurements of every echo scenario (default 3; --quick: 1)")
    ap.add_argument("--scale-runs", type=int, default=None,
                    help="measurements of every scale-out scenario (default 2; --quick: 1)")
    ap.add_argument("--quick", action="store_true",
                    help="1 run, 0.5 s measured + 0.2 s warm-up per scenario")
    ap.add_argument("--duration", type=float, default=None,
                    help="measured seconds per scenario (default 1.5; --quick: 0.5)")
    ap.add_argument("--warmup", type=float, default=None,
                    help="warm-up seconds per scenario (default 0.3; --quick: 0.2)")
    ap.add_argument("--family", choices=("all", "echo", "scale"), default="all",
                    help="echo scenarios, the scale-out family, or both (default)")
    ap.add_argument("--filter", default="", help="regex on scenario names, e.g. 'small/1c1s$'")
    ap.add_argument("--only", choices=("both", "ours", "raw"), default="both",
                    help="run only one side (the ratios need both)")
    ap.add_argument("--scale-prefetch", type=float, default=2.0, metavar="FACTOR",
                    help="our Worker's prefetch in scale-out runs, x handler threads "
                         "(default 2: the Worker's own default; 1 shows the artefact)")
    ap.add_argument("--scale-inflight", type=float, default=2.0, metavar="PER_THREAD",
                    help="calls in flight per handler thread in scale-out runs (default 2; "
                         "at least 10 in all)")
    ap.add_argument("--max-others", type=float, default=None, metavar="PCT",
                    help="measure a scenario again (up to --retries times) when other "
                         "processes used more than PCT%% of the machine meanwhile")
    ap.add_argument("--retries", type=int, default=2, help="with --max-others (default 2)")
    ap.add_argument("--timeout", type=float, default=2400, help="hard limit (s) for the session")
    ap.add_argument("--plots", default=None, metavar="DIR",
                    help=f"where the PNG plots go (default {os.path.relpath(PLOTS)}; "
                         f"'none': no plots)")
    ap.add_argument("--peers", default=PEERS, metavar="RESULTS_MD",
                    help="the peers' RESULTS.md for the Nameko column (default "
                         "../shared/bench/RESULTS.md)")
    ap.add_argument("--summarize", nargs="+", metavar="JSONL",
                    help="do not measure: print the tables of existing result files "
                         "(and draw their plots with --plots DIR)")
    opts = ap.parse_args(argv)
    opts.runs = opts.runs or (1 if opts.quick else 3)
    opts.scale_runs = opts.scale_runs or (1 if opts.quick else 2)
    opts.duration = opts.duration or (0.5 if opts.quick else 1.5)
    opts.warmup = opts.warmup or (0.2 if opts.quick else 0.3)
    opts.plots_given = opts.plots is not None
    opts.plots = opts.plots or PLOTS
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
    """Both benchmarks' clients, alive for the whole session, and their servers.

    Servers are started as scenarios need them: a side's servers are restarted when a
    scenario needs another server configuration (our Worker's handler threads and
    prefetch), and stopped or added to match the scenario's number of servers.
    """

    def __init__(self, benches, opts, env):
        self.opts = opts
        self.benches = benches
        self.env = env
        self.scripts = {b: os.path.join(HERE, f"{b}.py") for b in benches}
        self.clients = {b: [] for b in benches}
        self.servers = {b: [] for b in benches}
        self.server_args = {b: None for b in benches}
        self.leftover = {b: [] for b in benches}
        self.broker_pid = procstat.broker_pid(_amqp_port())

    def children(self):
        return [c for b in self.benches for c in self.clients[b] + self.servers[b]]

    def start(self, max_clients):
        for bench in self.benches:
            benchlib._with_admin(MODULES[bench].prepare)
            self.clients[bench] = [benchlib.Child(self.scripts[bench], "client", [],
                                                  env=self.env)
                                   for _ in range(max_clients)]

    def ensure_servers(self, bench, args, count):
        """Exactly ``count`` servers of ``bench`` started with ``args``, all consuming."""
        servers = self.servers[bench]
        if self.server_args[bench] != args:
            while servers:
                servers.pop().stop()
            self.server_args[bench] = args
        while len(servers) > count:
            servers.pop().stop()
        new = [benchlib.Child(self.scripts[bench], "server", args, env=self.env)
               for _ in range(count - len(servers))]
        servers += new
        for server in new:  # started together, then each waited for
            line = server.recv_line().strip()
            if line != "READY":
                raise RuntimeError(f"{bench} server said {line!r}, not READY")

    def _own_cpu_ns(self):
        pids = [c.proc.pid for c in self.children()] + [os.getpid()]
        own = sum(procstat.cpu_ns(pid) for pid in pids)
        return own + (procstat.cpu_ns(self.broker_pid) if self.broker_pid else 0)

    def _group_cpu_ns(self, bench, workers):
        return {"clients": sum(procstat.cpu_ns(w.proc.pid) for w in workers),
                "servers": sum(procstat.cpu_ns(s.proc.pid) for s in self.servers[bench]),
                "broker": procstat.cpu_ns(self.broker_pid) if self.broker_pid else 0}

    def measure(self, bench, sc):
        """Run one scenario once; its aggregated result, with ``others_cpu_pct`` and
        ``cpu_pct`` (CPU used by its clients, its servers and the broker, % of one core)."""
        self.ensure_servers(bench, sc["server_args"], sc["servers"])
        workers = self.clients[bench][:sc["clients"]]
        prepare = dict(benchlib.prepare_command(sc, self.opts.warmup), method=sc["method"])
        for w in workers:
            w.send(prepare)
        for w in workers:
            if not w.recv().get("ready"):
                raise RuntimeError(f"{bench} client not ready for {sc['name']}")
        busy0, own0, t0 = procstat.machine_busy_ns(), self._own_cpu_ns(), time.monotonic()
        group0 = self._group_cpu_ns(bench, workers)
        for w in workers:
            w.send({"cmd": "run", "duration": self.opts.duration})
        reports = [w.recv() for w in workers]
        busy1, own1, t1 = procstat.machine_busy_ns(), self._own_cpu_ns(), time.monotonic()
        group1 = self._group_cpu_ns(bench, workers)
        for r in reports:
            self.leftover[bench] += r["leftover"]
        res = benchlib._aggregate({k: v for k, v in sc.items() if k != "server_args"}, reports)
        res["cpu_pct"] = {k: round(100 * (group1[k] - group0[k]) / 1e9 / (t1 - t0))
                          for k in group0}
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


def configure(bench, sc, opts):
    """``sc`` with its server configuration: ``threads``, ``prefetch`` and ``server_args``."""
    sc = dict(sc)
    if bench == RAW:
        sc.update(threads=1, prefetch=raw_pika_rpc.PREFETCH, server_args=[])
        return sc
    if sc["family"] == "echo":
        threads, prefetch = diracmq_rpc.THREADS, diracmq_rpc.PREFETCH or 2 * diracmq_rpc.THREADS
    else:
        threads = sc["threads"]
        prefetch = max(1, round(opts.scale_prefetch * threads))
    sc.update(threads=threads, prefetch=prefetch,
              server_args=["--threads", str(threads), "--prefetch", str(prefetch)])
    return sc


def plan(benches, opts):
    """Blocks of measurements: block -> row -> [(bench, scenario), ...] in run order.

    A block shares one server configuration (echo: the baseline Worker; scale-out: one
    thread count) and number of servers, so servers restart only between blocks.  A row
    holds our scenarios and their raw pika counterparts, measured back to back.
    """
    blocks = collections.defaultdict(lambda: collections.defaultdict(list))
    futures_skipped = False
    for bench in benches:
        module = MODULES[bench]
        scenarios = module.scenarios(scale=opts.family != "echo",
                                     per_thread=opts.scale_inflight)
        if bench == OURS and not diracmq_rpc.has_futures():
            futures_skipped = True
        for sc in scenarios:
            if opts.family != "all" and sc["family"] != opts.family:
                continue
            if not re.search(opts.filter, sc["name"]):
                continue
            sc = configure(bench, sc, opts)
            if sc["family"] == "echo":
                block = (0, 0, sc["servers"])
                row = (sc["clients"], sc["concurrency"], PAYLOAD_ORDER.index(sc["payload"]))
            else:  # raw pika's single thread pairs with our 1-thread Worker
                block = (1, sc["threads"], sc["servers"])
                row = (SCALE_ORDER.index(sc["method"]), sc["concurrency"])
            blocks[block][row].append((bench, sc))
    if futures_skipped and opts.family != "scale":
        print("bench: client.base.Client has no submit() yet: the futures variant (x10f, "
              "x100f) is skipped", file=sys.stderr)
    # ours queue, raw exclusive, ours direct, raw direct: each next to its counterpart
    rank = {(OURS, "queue"): 0, (RAW, "exclusive"): 1, (OURS, "direct"): 2, (RAW, "direct"): 3}
    for rows in blocks.values():
        for items in rows.values():
            items.sort(key=lambda item: (rank.get((item[0], item[1]["reply"]), 9),
                                         item[1]["futures"]))
    return {block: dict(sorted(rows.items())) for block, rows in sorted(blocks.items())}


def measure(opts):
    check_broker()
    benches = {"both": [RAW, OURS], "ours": [OURS], "raw": [RAW]}[opts.only]
    blocks = plan(benches, opts)
    if not blocks:
        sys.exit(f"bench: no scenario matches --filter {opts.filter!r}")
    os.makedirs(RESULTS, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = os.path.join(RESULTS, f"{stamp}.jsonl")

    def on_alarm(*_):
        raise TimeoutError(f"bench: exceeded --timeout {opts.timeout}s")

    def runs_of(block):
        return opts.runs if block[0] == 0 else opts.scale_runs

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.setitimer(signal.ITIMER_REAL, opts.timeout)
    t_start = time.time()
    broker = benchlib._with_admin(benchlib._broker_version)
    commit = project_version()
    iterations = int(os.environ.get("BENCH_CPU_ITERATIONS") or benchlib.calibrate())
    env = {"BENCH_CPU_ITERATIONS": str(iterations)}  # the same CPU work in every server
    n_runs = max(runs_of(block) for block in blocks)
    results = {(b, run): [] for b in benches for run in range(n_runs)}
    session = Session(benches, opts, env)
    n_items = sum(len(items) * runs_of(block)
                  for block, rows in blocks.items() for items in rows.values())
    done = 0
    try:
        session.start(max(sc["clients"] for rows in blocks.values()
                          for items in rows.values() for _, sc in items))
        for block, rows in blocks.items():
            for run in range(runs_of(block)):
                for items in rows.values():
                    for bench, sc in (items if run % 2 == 0 else items[::-1]):
                        res = measure_one(session, bench, sc, opts)
                        results[bench, run].append(res)
                        done += 1
                        cpu = res["cpu_pct"]
                        print(f"[{done:3d}/{n_items}] run {run + 1} {bench:13s} "
                              f"{res['name']:28s} {res['calls_per_s']:8.1f} calls/s  p50 "
                              f"{res['p50_ms']:8.3f} ms  p99 {res['p99_ms']:8.3f} ms  "
                              f"n={res['n']:<5d} cpu% c/s/b {cpu['clients']}/"
                              f"{cpu['servers']}/{cpu['broker']}  "
                              f"others {res.get('others_cpu_pct', '?')}%",
                              file=sys.stderr, flush=True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        session.stop()

    docs = []
    date = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    for (bench, run), res in results.items():
        if not res:
            continue
        declared = [sc["name"] for sc in MODULES[bench].scenarios(
            scale=True, per_thread=opts.scale_inflight)]
        docs.append({
            "bench": bench, "run": run, "date": date,
            "env": {"nproc": os.cpu_count(), "python": sys.version.split()[0],
                    "rabbitmq": broker, "project_commit": commit,
                    "versions": benchlib._versions(MODULES[bench].PACKAGES)},
            "params": {"duration_s": opts.duration, "warmup_s": opts.warmup,
                       "server_args": [], "interleaved": "scenario",
                       "max_others_pct": opts.max_others, "runs": opts.runs,
                       "scale_runs": opts.scale_runs, "scale_prefetch": opts.scale_prefetch,
                       "scale_inflight": opts.scale_inflight,
                       "cpu_iterations": iterations},
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

def _echo(r):
    return r.get("method", "echo") == "echo"


def _row_key(r):
    topo = f"{r['clients']}c{r['servers']}s"
    if r["concurrency"] > 1:
        topo += f" x{r['concurrency']}" + ("f" if r.get("futures") else "")
    return topo, r["payload"]


def _raw_row(row):
    """The raw pika row an echo row is compared with (futures: the pipelined xN)."""
    return row[0].removesuffix("f"), row[1]


def _sort_key(key):
    (topo, payload), reply = key
    inflight = int(topo.split(" x")[1].rstrip("f")) if " x" in topo else 1
    return (inflight > 1, topo.split()[0], inflight, topo.endswith("f"),
            PAYLOAD_ORDER.index(payload), list(PAIRS).index(reply))


def _med(rs, field):
    values = [r[field] for r in rs if r.get(field) is not None]
    return statistics.median(values) if values else None


def _fmt(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"


def _ratio(a, b):
    return None if a is None or not b else a / b


def collect(docs, echo=True):
    """(bench, reply, row) -> {run: result}, for the echo rows (or the scale-out rows)."""
    cells = collections.defaultdict(dict)
    for n, doc in enumerate(docs):
        for r in doc["results"]:
            if _echo(r) == echo:
                key = _row_key(r) if echo else _scale_key(r)
                cells[doc["bench"], r["reply"], key][doc.get("run", n)] = r
    return cells


def _paired(ours, raw, field):
    """Ratios ours/raw of ``field``, run by run (the two ran seconds apart)."""
    return [_ratio(ours[k].get(field), raw[k].get(field)) for k in sorted(ours) if k in raw]


def load_peers(path=PEERS):
    """Nameko's calls/s from the side-by-side table of ../shared/bench/RESULTS.md.

    Returns ({(topology, payload): calls/s}, column name, date) or None without the file.
    Topologies are this report's (``1c1s x100`` for the peers' ``1c1s x100 in flight``).
    """
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError:
        return None
    lines = text.splitlines()
    try:
        start = next(i for i, ln in enumerate(lines) if ln.startswith("| clients x servers |"))
    except StopIteration:
        return None
    cols = [c.strip() for c in lines[start].strip().strip("|").split("|")]
    col = next((i for i, c in enumerate(cols) if c.startswith("nameko")), None)
    if col is None:
        return None
    values = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        number = re.match(r"[\d.]+", cells[col]) if len(cells) > col else None
        if number:
            topo = cells[0].replace(" in flight", "").strip()
            values[topo, cells[1]] = float(number.group())
    date = re.search(r"Measured (\d{4}-\d{2}-\d{2})", text)
    return values, cols[col], date.group(1) if date else "?"


def ratio_table(docs, peers=None):
    cells = collect(docs)
    keys = sorted({(row, reply) for bench, reply, row in cells if bench == OURS}, key=_sort_key)
    nameko = peers[0] if peers else {}
    out = ["| scenario | payload | reply: ours vs raw | ours calls/s | ours p50 ms | "
           "ours p99 ms | raw calls/s | raw p50 ms | raw p99 ms | **ratio calls/s** | "
           "ratio p99 | per-run calls/s ratios | nameko calls/s † | ours / nameko † |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for row, reply in keys:
        raw_reply = PAIRS[reply]
        ours = cells[OURS, reply, row]
        raw = cells.get((RAW, raw_reply, _raw_row(row)), {})
        o, w = list(ours.values()), list(raw.values())
        rates = [x for x in _paired(ours, raw, "calls_per_s") if x is not None]
        p99s = [x for x in _paired(ours, raw, "p99_ms") if x is not None]
        ratio = statistics.median(rates) if rates else None
        p99 = statistics.median(p99s) if p99s else None
        peer = nameko.get(_raw_row(row))
        out.append(
            f"| {row[0]} | {row[1]} | {reply} vs {raw_reply} | "
            f"{_fmt(_med(o, 'calls_per_s'), 0)} | {_fmt(_med(o, 'p50_ms'), 2)} | "
            f"{_fmt(_med(o, 'p99_ms'), 2)} | {_fmt(_med(w, 'calls_per_s'), 0)} | "
            f"{_fmt(_med(w, 'p50_ms'), 2)} | {_fmt(_med(w, 'p99_ms'), 2)} | "
            f"**{_fmt(ratio, 2)}** | {_fmt(p99, 2)} | "
            f"{' '.join(_fmt(x, 2) for x in rates)} | {_fmt(peer, 0)} | "
            f"{_fmt(_ratio(_med(o, 'calls_per_s'), peer), 1)} |")
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
        if not q or not d:
            continue
        out.append(f"| {row[0]} | {row[1]} | {_cell(q)} | {_cell(d)} | "
                   f"{_fmt(_ratio(_med(d, 'calls_per_s'), _med(q, 'calls_per_s')), 2)} |")
    return "\n".join(out) if len(out) > 2 else ""


def _scale_key(r):
    return r["method"], r["servers"], r.get("threads") or 1


def _cpu_cell(rs):
    cpus = [r["cpu_pct"] for r in rs if r.get("cpu_pct")]
    if not cpus:
        return "-"
    return "/".join(f"{statistics.median(c[k] for c in cpus):.0f}"
                    for k in ("clients", "servers", "broker"))


def scale_table(docs):
    """Scale-out: calls/s against the ideal, ours over threads x processes, raw over processes."""
    cells = collect(docs, echo=False)
    nproc = docs[-1]["env"]["nproc"]
    keys = sorted({key for bench, _reply, key in cells if bench == OURS},
                  key=lambda k: (SCALE_ORDER.index(k[0]), k[2], k[1]))
    raw_keys = {key for bench, _reply, key in cells if bench == RAW}
    if not keys and not raw_keys:
        return ""
    if not keys:  # raw pika only
        keys = sorted(raw_keys, key=lambda k: (SCALE_ORDER.index(k[0]), k[2], k[1]))
    out = ["| handler | worker processes | threads / process | prefetch | in flight | "
           "ours calls/s | ours p50 ms | ideal calls/s | **ours / ideal** | "
           "**ours x 1 process** | CPU % clients/servers/broker | "
           "raw pika calls/s (1 thread) | raw ideal | **raw / ideal** | "
           "**raw x 1 process** | raw CPU % c/s/b |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|"]
    for key in keys:
        method, servers, threads = key
        o = list(cells.get((OURS, "queue", key), {}).values())
        w = list(cells.get((RAW, "exclusive", key), {}).values()) if threads == 1 else []
        ideal = benchlib.ideal_calls_per_s(method, threads, servers, nproc)
        raw_ideal = benchlib.ideal_calls_per_s(method, 1, servers, nproc)
        first = (o or w)[0]
        rate, raw_rate = _med(o, "calls_per_s"), _med(w, "calls_per_s")
        # Speed-up over one worker process with the same threads: the figure the goal
        # for the CPU-bound handler is stated in, and one that a drift of the core's
        # speed over the run affects less than the ideal computed from 5 ms.
        one = _med(list(cells.get((OURS, "queue", (method, 1, threads)), {}).values()),
                   "calls_per_s")
        raw_one = _med(list(cells.get((RAW, "exclusive", (method, 1, threads)), {}).values()),
                       "calls_per_s") if threads == 1 else None
        out.append(
            f"| {method} | {servers} | {threads if o else '-'} | "
            f"{first['prefetch'] if o else '-'} | {first['concurrency']} | {_fmt(rate, 0)} | "
            f"{_fmt(_med(o, 'p50_ms'), 1)} | {_fmt(ideal, 0) if o else '-'} | "
            f"**{_fmt(_ratio(rate, ideal), 2) if o else '-'}** | "
            f"**{_fmt(_ratio(rate, one), 2) if o else '-'}** | {_cpu_cell(o)} | "
            f"{_fmt(raw_rate, 0)} | {_fmt(raw_ideal, 0) if w else '-'} | "
            f"**{_fmt(_ratio(raw_rate, raw_ideal), 2)}** | "
            f"**{_fmt(_ratio(raw_rate, raw_one), 2) if w else '-'}** | {_cpu_cell(w)} |")
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
    scale = (f" (scale-out family: {params['scale_runs']} run(s), our prefetch "
             f"{params['scale_prefetch']:g} x threads; cpu handler "
             f"{params['cpu_iterations']} iterations)") if "scale_runs" in params else ""
    return (f"{min(d['date'] for d in docs)} .. {max(d['date'] for d in docs)}; {runs} "
            f"run(s){scale}, {how}; {params['duration_s']} s measured + "
            f"{params['warmup_s']} s warm-up per scenario.  nproc={env['nproc']}, python "
            f"{env['python']}, RabbitMQ {env['rabbitmq']}, {', '.join(versions)}{commit}"
            f"{noise}.  Data: {', '.join(paths)}")


def report(docs, paths, peers_path=PEERS):
    """The markdown printed on stdout and written to results/summary.md."""
    benches = {d["bench"] for d in docs}
    echo = any(_echo(r) for d in docs for r in d["results"])
    parts = [f"## diracmq vs raw pika\n\n{header(docs, paths)}\n"]
    if {OURS, RAW} <= benches and echo:
        peers = load_peers(peers_path)
        if peers:
            note = (f"† `{peers[1]}` calls/s copied from the side-by-side table of "
                    f"`{os.path.relpath(peers_path)}`: measured {peers[2]} in another run, "
                    f"not in this session (the same kind of machine; indicative only). "
                    f"Nameko's x100 is `call_async`; its figure is shown for both x100 "
                    f"and x100f.")
        else:
            note = f"† no peers' results at `{os.path.relpath(peers_path)}`: no Nameko column."
        parts.append("### Ratios ours / raw pika\n\nours and raw columns: median of the runs; "
                     "ratios: median of the per-run ratios (each pair measured back to back). "
                     "`xN`: N calls in flight from one client process (ours: a thread per "
                     "call sharing one `Client`; raw: pipelined); `xNf`: ours with "
                     "`Client.submit` futures, against raw's pipelined `xN`.\n\n"
                     + ratio_table(docs, peers) + "\n\n" + note)
    if OURS in benches and echo:
        table = reply_mode_table(docs)
        if table:
            parts.append("### Reply mode: named queue vs Direct Reply-to (ours)\n\n" + table)
    table = scale_table(docs)
    if table:
        parts.append(
            "### Scale-out: sleep (10 ms, I/O-bound) and cpu (5 ms pure Python, CPU-bound)\n\n"
            "One client process keeps 2 calls in flight per handler thread (at least 10). "
            "Ideal: sleep `threads x processes / 10 ms`; cpu `min(processes, cores) / 5 ms` "
            "(5 ms as calibrated before the run; the core's speed drifts on a shared VM, so "
            "for cpu read `x 1 process`: the speed-up over one worker process with the same "
            "threads, measured in the same run). "
            "Raw pika's server is single-threaded: its row is the 1-thread one. CPU %: "
            "% of one core used by the client, the servers and the broker (nproc "
            f"{docs[-1]['env']['nproc']}).\n\n" + table)
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


def draw(paths, out):
    """The PNG plots of ``paths`` into ``out`` (bench/plot.py), when matplotlib is there."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("bench: matplotlib is not installed: no plots (pip install -e '.[bench]', "
              "then .venv/bin/python bench/plot.py)", file=sys.stderr)
        return
    import plot
    for png in plot.draw_all(plot.load(paths), out):
        print(f"wrote {os.path.relpath(png)}", file=sys.stderr)


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
    text = report(docs, paths, opts.peers)
    print(text)
    if not opts.summarize:
        with open(os.path.join(RESULTS, "summary.md"), "w") as fh:
            fh.write(text + "\n## Detail (all columns, median of runs)\n\n" + detail(docs))
        print(f"wrote {os.path.relpath(os.path.join(RESULTS, 'summary.md'))}", file=sys.stderr)
    if opts.plots != "none" and (not opts.summarize or opts.plots_given):
        draw(paths, opts.plots)


if __name__ == "__main__":
    main()

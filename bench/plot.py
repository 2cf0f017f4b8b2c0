"""PNG plots of a bench/run.py session: calls/s against calls in flight, payload size,
worker processes and handler threads, ours against raw pika, and the scale-out ideal.

Run (from the project root; needs matplotlib: ``pip install -e '.[bench]'``):
    .venv/bin/python bench/plot.py                          # the newest bench/results/*.jsonl
    .venv/bin/python bench/plot.py bench/results/<stamp>.jsonl --out bench/plots

Every point is the median over the runs of the file(s).  Files written into ``--out``
(default ``bench/results/plots/``), each only when the data has its scenarios:

* ``inflight.png``: one client process against one server, 1, 10 and 100 calls in
  flight, one panel per payload (and the futures variant ``xNf`` when measured);
* ``payload.png``: calls/s against payload size (small, 10 KB, 1 MB), one panel per
  topology;
* ``processes.png``: echo of the small payload against 1, 2 and 4 worker processes (4
  sequential clients; 1 client with 100 in flight);
* ``scale_sleep.png``: the 10 ms I/O-bound handler: calls/s against handler threads
  (one line per worker-process count, with its ideal) and against worker processes;
* ``scale_cpu.png``: the 5 ms CPU-bound handler against worker processes 1, 2, 4, with
  the cores-bounded ideal.
"""
import argparse
import collections
import glob
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402

RESULTS = os.path.join(HERE, "results")
PLOTS = os.path.join(RESULTS, "plots")
OURS, RAW = "diracmq_rpc", "raw_pika_rpc"
PAYLOADS = ("small", "10KB", "1MB")
PAYLOAD_BYTES = {"small": 1, "10KB": 10 * 1024, "1MB": 1024 * 1024}
SERIES = {  # (bench, reply, futures) -> label, style
    (OURS, "queue", False): ("diracmq (queue)", dict(color="C0", marker="o")),
    (OURS, "direct", False): ("diracmq (direct)", dict(color="C0", marker="s", ls="--")),
    (OURS, "queue", True): ("diracmq futures (queue)", dict(color="C2", marker="^")),
    (OURS, "direct", True): ("diracmq futures (direct)", dict(color="C2", marker="v", ls="--")),
    (RAW, "exclusive", False): ("raw pika (exclusive)", dict(color="C1", marker="o")),
    (RAW, "direct", False): ("raw pika (direct)", dict(color="C1", marker="s", ls="--")),
}


def newest():
    paths = sorted(glob.glob(os.path.join(RESULTS, "*.jsonl")))
    if not paths:
        sys.exit(f"plot: no results in {os.path.relpath(RESULTS)}; run bench/run.py first")
    return paths[-1]


def load(paths):
    """{(bench, scenario name): median result over runs} of the JSON-lines files."""
    runs = collections.defaultdict(list)
    nproc = None
    for path in paths:
        with open(path) as fh:
            for line in fh:
                if line.strip():
                    doc = json.loads(line)
                    nproc = doc["env"].get("nproc") or nproc
                    for r in doc["results"]:
                        runs[doc["bench"], r["name"]].append(r)
    data = {}
    for key, rs in runs.items():
        r = dict(rs[-1])
        r["calls_per_s"] = statistics.median(x["calls_per_s"] for x in rs)
        data[key] = r
    return {"results": data, "nproc": nproc or os.cpu_count(), "source": paths}


def _select(data, **want):
    """Results matching ``want`` (field -> value), keyed by (bench, reply, futures)."""
    out = collections.defaultdict(list)
    for (bench, _name), r in data["results"].items():
        if all(r.get(k, "echo" if k == "method" else None) == v for k, v in want.items()):
            out[bench, r["reply"], bool(r.get("futures"))].append(r)
    return out


def _series(ax, groups, x_of):
    drawn = False
    for key, (label, style) in SERIES.items():
        points = sorted((x_of(r), r["calls_per_s"]) for r in groups.get(key, []))
        points = [p for p in points if p[0] is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, label=label, **style)
            drawn = True
    return drawn


def _finish(fig, axes, title, data, out, name, legend="figure"):
    """Grid, labels, legend (one for the figure, or one per panel), title, save."""
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.set_ylabel("calls/s")
        if legend == "axes":
            ax.legend(fontsize="small")
    if legend == "axes":
        src = ", ".join(os.path.basename(p) for p in data["source"])
        fig.suptitle(f"{title}\n({src}; median of runs)", fontsize="medium")
        fig.tight_layout()
        return _save(fig, out, name)
    handles, labels = {}, []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    ncol = max(1, min(4, len(labels), int(fig.get_figwidth() // 2.6)))
    rows = -(-len(labels) // ncol)
    fig.legend([handles[lab] for lab in labels], labels, loc="lower center", ncol=ncol,
               fontsize="small")
    src = ", ".join(os.path.basename(p) for p in data["source"])
    fig.suptitle(f"{title}\n({src}; median of runs)", fontsize="medium")
    fig.tight_layout(rect=(0, 0.25 * rows / fig.get_figheight(), 1, 1))
    return _save(fig, out, name)


def _save(fig, out, name):
    path = os.path.join(out, name)
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path


def plot_inflight(data, out, plt):
    panels = [(p, _select(data, method="echo", clients=1, servers=1, payload=p))
              for p in PAYLOADS]
    panels = [(p, g) for p, g in panels if any(r["concurrency"] > 1 for rs in g.values()
                                              for r in rs)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.2), squeeze=False)
    axes = axes[0]
    for ax, (payload, groups) in zip(axes, panels, strict=True):
        _series(ax, groups, lambda r: r["concurrency"])
        ax.set_xscale("log")
        ax.set_xticks([1, 10, 100], ["1", "10", "100"])
        ax.set_xlabel("calls in flight (one client process, one server)")
        ax.set_title(f"payload {payload}")
        ax.set_ylim(bottom=0)
    return _finish(fig, axes, "calls/s against calls in flight", data, out, "inflight.png")


def plot_payload(data, out, plt):
    topologies = [(1, 1, 1), (4, 1, 1), (4, 2, 1), (1, 1, 100), (1, 2, 100)]
    panels = []
    for c, s, n in topologies:
        groups = _select(data, method="echo", clients=c, servers=s, concurrency=n)
        groups = {k: [r for r in v if not r.get("futures")] for k, v in groups.items()}
        if len({r["payload"] for rs in groups.values() for r in rs}) > 1:
            panels.append((f"{c}c{s}s" + (f" x{n} in flight" if n > 1 else ""), groups))
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.8 * rows), squeeze=False)
    axes = axes.flatten()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    axes = axes[:len(panels)]
    for ax, (title, groups) in zip(axes, panels, strict=True):
        _series(ax, groups, lambda r: PAYLOAD_BYTES[r["payload"]])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(list(PAYLOAD_BYTES.values()), list(PAYLOAD_BYTES))
        ax.set_xlabel("payload")
        ax.set_title(title)
    return _finish(fig, axes, "calls/s against payload size", data, out, "payload.png")


def plot_processes(data, out, plt):
    panels = [("4 client processes, sequential, small",
               _select(data, method="echo", clients=4, concurrency=1, payload="small")),
              ("1 client process, 100 in flight, small",
               _select(data, method="echo", clients=1, concurrency=100, payload="small"))]
    panels = [(t, {k: v for k, v in g.items() if not k[2]}) for t, g in panels]
    panels = [(t, g) for t, g in panels if len({r["servers"] for rs in g.values()
                                                for r in rs}) > 1]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False)
    axes = axes[0]
    for ax, (title, groups) in zip(axes, panels, strict=True):
        _series(ax, groups, lambda r: r["servers"])
        ax.set_xticks([1, 2, 4])
        ax.set_xlabel("worker (server) processes")
        ax.set_title(title)
        ax.set_ylim(bottom=0)
    return _finish(fig, axes, "echo: calls/s against worker processes", data, out,
                   "processes.png")


def _scale(data, method):
    ours = collections.defaultdict(dict)  # threads -> {processes: calls/s}
    raw = {}
    for (bench, _name), r in data["results"].items():
        if r.get("method") != method:
            continue
        if bench == OURS:
            ours[r["threads"]][r["servers"]] = r["calls_per_s"]
        elif bench == RAW:
            raw[r["servers"]] = r["calls_per_s"]
    return ours, raw


def plot_sleep(data, out, plt):
    ours, raw = _scale(data, "sleep")
    if not ours and not raw:
        return None
    fig, (by_threads, by_procs) = plt.subplots(1, 2, figsize=(12, 5))
    procs = sorted({p for row in ours.values() for p in row} | set(raw))
    threads = sorted(ours)
    for i, p in enumerate(procs):
        points = sorted((t, row[p]) for t, row in ours.items() if p in row)
        if points:
            xs, ys = zip(*points, strict=True)
            by_threads.plot(xs, ys, marker="o", color=f"C{i}",
                            label=f"diracmq, {p} process{'es' if p > 1 else ''}")
            by_threads.plot(xs, [benchlib.ideal_calls_per_s("sleep", t, p) for t in xs],
                            ls=":", color=f"C{i}")
    by_threads.set_xscale("log")
    by_threads.set_yscale("log")
    if threads:
        by_threads.set_xticks(threads, [str(t) for t in threads])
    by_threads.set_xlabel("handler threads per worker process")
    by_threads.set_title("against handler threads")
    for i, t in enumerate(threads):
        points = sorted(ours[t].items())
        xs, ys = zip(*points, strict=True)
        by_procs.plot(xs, ys, marker="o", color=f"C{i + 3}", label=f"diracmq, {t} thread"
                      f"{'s' if t > 1 else ''}")
        by_procs.plot(xs, [benchlib.ideal_calls_per_s("sleep", t, p) for p in xs], ls=":",
                      color=f"C{i + 3}")
    if raw:
        xs, ys = zip(*sorted(raw.items()), strict=True)
        by_procs.plot(xs, ys, marker="s", color="k", ls="--", label="raw pika (1 thread)")
    by_procs.set_yscale("log")
    by_procs.set_xticks(procs)
    by_procs.set_xlabel("worker processes")
    by_procs.set_title("against worker processes")
    return _finish(fig, [by_threads, by_procs],
                   "sleep handler (10 ms, I/O-bound): calls/s; dotted: ideal, threads x "
                   "processes / 10 ms", data, out, "scale_sleep.png", legend="axes")


def plot_cpu(data, out, plt):
    ours, raw = _scale(data, "cpu")
    if not ours and not raw:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.6))
    procs = sorted({p for row in ours.values() for p in row} | set(raw))
    for i, t in enumerate(sorted(ours)):
        xs, ys = zip(*sorted(ours[t].items()), strict=True)
        ax.plot(xs, ys, marker="o", color=f"C{i}",
                label=f"diracmq, {t} thread{'s' if t > 1 else ''}")
    if raw:
        xs, ys = zip(*sorted(raw.items()), strict=True)
        ax.plot(xs, ys, marker="s", color="k", ls="--", label="raw pika (1 thread)")
    # The ideal from the measured one-process rate, not from the 5 ms calibrated before
    # the run: this VM's core speed drifts (the same loop took 5-12 ms within minutes),
    # so only rates measured minutes apart are comparable.
    base = raw.get(1) or (ours.get(1) or {}).get(1)
    if base:
        ax.plot(procs, [min(p, data["nproc"]) * base for p in procs], ls=":", color="gray",
                label=f"ideal: min(processes, {data['nproc']} cores) x 1-process rate")
    ax.set_xticks(procs)
    ax.set_xlabel("worker processes")
    ax.set_ylim(bottom=0)
    return _finish(fig, [ax], "cpu handler (5 ms of pure Python, CPU-bound): calls/s", data,
                   out, "scale_cpu.png", legend="axes")


def draw_all(data, out=PLOTS):
    """Draw every plot the data has scenarios for; the paths of the PNGs written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(out, exist_ok=True)
    paths = [draw(data, out, plt) for draw in (plot_inflight, plot_payload, plot_processes,
                                                plot_sleep, plot_cpu)]
    return [p for p in paths if p]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("jsonl", nargs="*", help="results file(s) (default: the newest in "
                                             "bench/results/)")
    ap.add_argument("--out", default=PLOTS,
                    help=f"directory of the PNGs (default {os.path.relpath(PLOTS)})")
    opts = ap.parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        sys.exit("plot: matplotlib is not installed: .venv/bin/pip install -e '.[bench]'")
    paths = opts.jsonl or [newest()]
    written = draw_all(load(paths), opts.out)
    if not written:
        print(f"plot: nothing to draw from {', '.join(paths)}", file=sys.stderr)
    for path in written:
        print(f"wrote {os.path.relpath(path)}")


if __name__ == "__main__":
    main()

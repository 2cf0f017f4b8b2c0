"""Median-of-runs markdown tables from the JSON lines the benchmarks print.

Copied from ../shared/bench/summarize.py; since then: lint fixes, and rows that tell
the handler method, threads and futures variant apart (bench/run.py's scenarios).

Run:  .venv/bin/python summarize.py results/*.jsonl
"""
import collections
import json
import statistics
import sys

PAYLOAD_ORDER = ("small", "10KB", "1MB")


def med(rs, key):
    values = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(values) if values else None


def fmt(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"


def cell(rs):
    return (f"{fmt(med(rs, 'calls_per_s'), 0)} ({fmt(med(rs, 'p50_ms'), 2)}"
            f" / {fmt(med(rs, 'p99_ms'), 2)})")


def compare(runs):
    """One side-by-side table: rows = topology x payload, columns = bench (reply mode)."""
    cells, cols, rows = collections.defaultdict(list), [], []
    for bench, docs in runs.items():
        if bench == "serialization":
            continue
        for d in docs:
            for r in d["results"]:
                col = f"{bench.removesuffix('_rpc')} ({r['reply']})"
                topo = f"{r['clients']}c{r['servers']}s"
                method = r.get("method", "echo")
                if method != "echo":  # scale-out rows: handler and threads
                    topo = f"{method} {topo} t{r.get('threads') or 1}"
                if r["concurrency"] > 1:
                    topo += f" x{r['concurrency']}{'f' if r.get('futures') else ''} in flight"
                row = (topo, r["payload"])
                cols += [col] if col not in cols else []
                rows += [row] if row not in rows else []
                cells[row, col].append(r)
    if not cells:
        return
    rows.sort(key=lambda r: ("x" in r[0], r[0], PAYLOAD_ORDER.index(r[1])))
    print("### Side by side: calls/s (p50 / p99 latency ms), median of runs\n")
    print("| clients x servers | payload | " + " | ".join(cols) + " |")
    print("|---|---|" + "---:|" * len(cols))
    for row in rows:
        out = [cell(cells[row, col]) if (row, col) in cells else "" for col in cols]
        print(f"| {row[0]} | {row[1]} | " + " | ".join(out) + " |")
    print()


def detail(bench, docs):
    env = docs[-1]["env"]
    print(f"### {bench} ({len(docs)} runs, median)\n")
    print("env: " + ", ".join(f"{k}={v}" for k, v in env.items()) + "\n")
    if bench == "serialization":
        rows = collections.defaultdict(list)
        for d in docs:
            for r in d["results"]:
                rows[r["envelope"], r["format"]].append(r)
        print("| envelope | format | bytes | encode µs | decode µs | enc+dec µs |")
        print("|---|---|---:|---:|---:|---:|")
        for (env_name, fmt_name), rs in rows.items():
            print(f"| {env_name} | {fmt_name} | {rs[0]['bytes']} | {fmt(med(rs, 'encode_us'))} | "
                  f"{fmt(med(rs, 'decode_us'))} | {fmt(med(rs, 'roundtrip_us'))} |")
    else:
        p = docs[-1]["params"]
        walls = ", ".join(str(d["wall_s"]) for d in docs)
        print(f"params: {p['duration_s']} s measured + {p['warmup_s']} s warm-up per scenario; "
              f"wall per run: {walls} s\n")
        rows = collections.defaultdict(list)
        for d in docs:
            for r in d["results"]:
                rows[r["name"]].append(r)
        print("| scenario | calls/s | p50 ms | p99 ms | calls measured |")
        print("|---|---:|---:|---:|---:|")
        for name, rs in rows.items():
            print(f"| {name} | {fmt(med(rs, 'calls_per_s'), 0)} | {fmt(med(rs, 'p50_ms'), 2)} | "
                  f"{fmt(med(rs, 'p99_ms'), 2)} | {fmt(med(rs, 'n'), 0)} |")
    print()


def main(paths):
    runs = collections.defaultdict(list)
    for path in paths:
        with open(path) as f:
            for line in f:
                if line.strip():
                    d = json.loads(line)
                    runs[d["bench"]].append(d)
    def order(kv):
        return (kv[0] != "raw_pika_rpc", kv[0] == "serialization", kv[0])
    runs = dict(sorted(runs.items(), key=order))  # raw pika first, serialization last
    compare(runs)
    for bench, docs in runs.items():
        detail(bench, docs)


if __name__ == "__main__":
    main(sys.argv[1:])

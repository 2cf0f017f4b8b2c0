"""Cluster and TLS figures in one run: classic on 1 node vs quorum on 3 nodes, TLS vs plain.

Each setup starts its own RabbitMQ node(s) on loopback (broker/localrabbit.py, never the
shared broker), one ``dirac-worker Bench --processes 2`` serving bench/benchext's
``Bench/Echo`` (the same handler as bench/run.py), and measures from this process:

* ``seq``: one thread, sequential ``echo`` calls (calls/s and median latency);
* ``inflight100``: a window of 100 ``Client.submit`` futures (calls/s);
* ``failover gap`` (cluster setups): one thread calls sequentially; the node holding the
  queue's leader (classic: the only node) is SIGKILLed; the gap is the time from the kill
  to the end of the first call made after it that succeeded.  For the single classic
  node that includes restarting the node; for the quorum cluster the node stays dead.

Setups (in this order): ``classic-1`` (classic queue, 1 node, plain),
``classic-1-confirms`` (the same with publisher confirms on, as a URL list has them),
``quorum-3`` (quorum queue, 3 nodes, plain: RabbitMQ's defaults), ``quorum-3-onenode``
(the same, but the worker and the client both connect to the first node only, which then
holds the queue's leader: what the inter-node hops cost; not a deployment setting),
``quorum-3-nosync`` (Ra's ``wal_sync_method = none``: the write-ahead log is not synced
to disk before an enqueue is confirmed; **gives up durability** against a simultaneous
power loss of a majority of nodes, docs/configuration.md), ``quorum-3-notify`` (Ra's
``wal_write_strategy = sync_after_notify``: an entry counts as written before its sync;
gives up durability over that sync's time), ``quorum-3-shm`` (the nodes' data on
/dev/shm: no disk at all, to show what the disk costs; not a deployment setting),
``tls-1`` (classic, 1 node, ``amqps://`` with certificate login) and ``plain-1`` again
right after it (so the TLS ratio compares neighbours).  Ratios are printed between
setups of this run only.  The client uses the deployment defaults unless ``--confirms``
says otherwise: publisher confirms ``auto`` (on for the 3-node setups, which get the URL
list; off for the single nodes).  ``--erl-args`` gives every node of every setup the same
extra Erlang VM flags.  The machine's load average is printed before and after
(``/proc/loadavg``).

By default the setups run one after the other (each started, measured, stopped).  With
``--rounds N`` (N > 1) the chosen setups are started together and measured in turn, N
rounds of ``--duration`` seconds each (the order rotating), so the load of a shared
machine weighs on every setup alike; each ratio is then printed with its median,
minimum and maximum over the rounds.  Failover gaps are measured at the end.

Run:  .venv/bin/python bench/cluster.py [--duration 5] [--json out.json]
                                         [--setups classic-1,quorum-3,...] [--rounds N]
                                         [--erl-args FLAGS] [--confirms auto|on|off]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from diracmq.broker import dn
from diracmq.broker.config import Settings
from diracmq.broker.localrabbit import LocalCluster
from diracmq.broker.testcerts import Authority
from diracmq.client.base import Client
from diracmq.client.transport import get_transport

from DIRAC.Core.Security.BrokerPermissions import client_permissions

HERE = Path(__file__).resolve().parent
SERVICE = "Bench/Echo"
#: A tmpfs for the nodes of the ``quorum-3-shm`` setup (no disk under the fsyncs).
SHM = "/dev/shm"


def start_worker(url: str, queue_type: str, workdir: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env.update({"DIRAC_BROKER_URL": url, "DIRAC_QUEUE_TYPE": queue_type,
                "PYTHONPATH": str(HERE), "DIRAC_LOG_LEVEL": "INFO",
                "DIRAC_DATA_DIR": str(workdir)})
    log = (workdir / f"worker-{time.monotonic_ns()}.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("dirac-worker")), "Bench",
                             "--extension", "benchext", "--processes", "2"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    return proc


def wait_served(client: Client, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.echo("x", timeout=5)["OK"]:
            return
        time.sleep(0.2)
    raise RuntimeError("the worker never answered")


def sequential(client: Client, duration: float) -> list[float]:
    """The latencies (s) of sequential ``echo`` calls made for ``duration`` seconds."""
    lat = []
    end = time.monotonic() + duration
    while time.monotonic() < end:
        t = time.perf_counter()
        result = client.echo("x" * 100, timeout=30)
        lat.append(time.perf_counter() - t)
        assert result["OK"], result
    return lat


def seq_figures(lat: list[float]) -> dict:
    """calls/s (one thread: 1 / mean latency) and the median latency of ``lat``."""
    return {"calls_per_s": len(lat) / sum(lat), "median_ms": statistics.median(lat) * 1000,
            "calls": len(lat)}


def in_flight(client: Client, duration: float, window: int = 100) -> dict:
    done = 0
    pending = [client.submit("echo", "x" * 100, timeout=60) for _ in range(window)]
    start = time.monotonic()
    end = start + duration
    while time.monotonic() < end:
        result = pending.pop(0).result()
        assert result["OK"], result
        done += 1
        pending.append(client.submit("echo", "x" * 100, timeout=60))
    elapsed = time.monotonic() - start
    for future in pending:
        future.result()
    return {"calls_per_s": done / elapsed}


def leader_index(cluster: LocalCluster, queue: str) -> int:
    out = cluster.nodes[0].ctl("-q", "list_queues", "name", "leader")
    for line in out.splitlines():
        name, _, leader = line.partition("\t")
        if name == queue and leader:
            return next(i for i, n in enumerate(cluster.nodes) if n.name == leader)
    return 0


def failover_gap(cluster: LocalCluster, client: Client, restart: bool) -> float:
    victim = cluster.nodes[leader_index(cluster, "dirac.rpc.Bench.Echo")]
    killed = time.monotonic()
    victim.kill()
    if restart:
        victim.start()
    while True:
        started = time.monotonic()
        if client.echo("x", timeout=10)["OK"] and started >= killed:
            return time.monotonic() - killed
        if time.monotonic() - killed > 120:
            raise RuntimeError("no successful call within 120 s of the kill")


class Setup:
    """One setup's node(s), worker and client, kept alive between measurements."""

    def __init__(self, name: str, nodes: int, queue_type: str, tls: dict | None,
                 gap: bool, workdir: Path, settings_kw: dict, folder: Path | None = None,
                 wal_sync_method: str | None = None, erl_args: tuple[str, ...] = (),
                 one_node: bool = False, wal_write_strategy: str | None = None) -> None:
        self.name, self.nodes, self.queue_type, self.tls = name, nodes, queue_type, tls
        self.gap, self.workdir, self.settings_kw = gap, workdir, dict(settings_kw)
        self.folder, self.wal_sync_method, self.erl_args = folder, wal_sync_method, erl_args
        self.one_node, self.wal_write_strategy = one_node, wal_write_strategy
        self.cluster = LocalCluster(nodes, folder, label=f"bench{name}", tls=tls,
                                    wal_sync_method=wal_sync_method, erl_args=erl_args,
                                    wal_write_strategy=wal_write_strategy)
        self.worker: subprocess.Popen | None = None
        self.settings: Settings | None = None
        self.client: Client | None = None
        self.closed = False

    def start(self) -> None:
        """Start the node(s) and the worker; wait until a call is served; warm up."""
        cluster = self.cluster
        cluster.start()
        settings_kw = dict(self.settings_kw)
        if self.tls:
            user = settings_kw.pop("_user")
            ctl = cluster.nodes[0].ctl
            ctl("add_user", user, "unused")
            ctl("clear_password", user)
            ctl("set_permissions", user, *client_permissions(user))
        # one_node: the worker and the client all on the first node (which then holds
        # the queue's leader): what the inter-node hops cost, not a deployment setting
        pick = slice(0, 1) if self.one_node else slice(None)
        self.worker = start_worker(",".join(cluster.urls()[pick]), self.queue_type,
                                   self.workdir)
        urls = cluster.urls(tls=bool(self.tls))[pick]
        self.settings = Settings(url=",".join(urls), rpc_timeout=30, connect_timeout=20,
                                 **settings_kw)
        self.client = Client(url=SERVICE, settings=self.settings)
        wait_served(self.client)
        sequential(self.client, 1.0)  # warm-up

    def describe(self) -> dict:
        assert self.settings is not None
        return {"setup": self.name, "nodes": self.nodes, "queue_type": self.queue_type,
                "tls": bool(self.tls),
                "wal_sync_method": self.wal_sync_method or "datasync (default)",
                "wal_write_strategy": self.wal_write_strategy or "default",
                "publish_confirms": self.settings.confirms, "erl_args": " ".join(self.erl_args)}

    def failover_gap(self) -> float:
        assert self.client is not None
        return failover_gap(self.cluster, self.client, restart=self.nodes == 1)

    def close(self) -> None:
        """Stop the client, the worker and the node(s) (once)."""
        if self.closed:
            return
        self.closed = True
        if self.settings is not None:
            get_transport(self.settings).close()
        if self.worker is not None:
            self.worker.terminate()
            try:
                self.worker.wait(30)
            except subprocess.TimeoutExpired:
                self.worker.kill()
        self.cluster.close()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def run_one(setup: Setup, duration: float) -> dict:
    """One setup alone: start it, measure, measure its failover gap, stop it."""
    try:
        setup.start()
        assert setup.client is not None
        out = {**setup.describe(), "seq": seq_figures(sequential(setup.client, duration)),
               "inflight100": in_flight(setup.client, duration)}
        if setup.gap:
            out["failover_gap_s"] = setup.failover_gap()
        return out
    finally:
        setup.close()


def run_interleaved(setups: list[Setup], duration: float, rounds: int) -> tuple[list, dict]:
    """All setups alive at once, measured in turn, ``rounds`` times (each turn
    ``duration`` seconds; the order rotates each round): the machine's load then weighs
    on every setup alike, and each round gives its own ratios (their spread is printed).
    Failover gaps are measured at the end, one setup at a time."""
    lat: dict[str, list[float]] = {s.name: [] for s in setups}
    flight: dict[str, list[float]] = {s.name: [] for s in setups}
    per_round: list[dict] = []
    try:
        for setup in setups:
            setup.start()
        for r in range(rounds):
            order = setups[r % len(setups):] + setups[:r % len(setups)]
            this: dict = {}
            for setup in order:
                assert setup.client is not None
                got = sequential(setup.client, duration)
                lat[setup.name] += got
                this[setup.name] = {"seq": seq_figures(got),
                                    "inflight100": in_flight(setup.client, duration)}
                flight[setup.name].append(this[setup.name]["inflight100"]["calls_per_s"])
            per_round.append(this)
        results = []
        for setup in setups:
            out = {**setup.describe(), "seq": seq_figures(lat[setup.name]),
                   "inflight100": {"calls_per_s": statistics.median(flight[setup.name])}}
            if setup.gap:
                out["failover_gap_s"] = setup.failover_gap()
            results.append(out)
            setup.close()
        return results, {"rounds": per_round}
    finally:
        for setup in setups:
            setup.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--setups", default=",".join(SETUPS),
                        help=f"comma-separated, among {', '.join(SETUPS)} (default: all)")
    parser.add_argument("--erl-args", default="",
                        help="extra Erlang VM flags for every node of every setup (e.g. "
                             "'+S 1:1'), so that the setups compare like with like")
    parser.add_argument("--rounds", type=int, default=1,
                        help="N > 1: start the chosen setups together and measure them in "
                             "turn, N rounds of --duration seconds each (the load of a "
                             "shared machine then weighs on all alike; per-round ratios "
                             "show the spread); 1 (default): one setup after the other")
    parser.add_argument("--confirms", choices=("auto", "on", "off"), default="auto",
                        help="the client's publish_confirms in every setup (default: auto, "
                             "the deployment default: on with a URL list, off on one node)")
    args = parser.parse_args()
    wanted = [name.strip() for name in args.setups.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(SETUPS))
    if unknown:
        parser.error(f"unknown setups {unknown}; choose among {', '.join(SETUPS)}")
    load_before = loadavg()
    workdir = Path(tempfile.mkdtemp(prefix="diracmq-bench-cluster-"))
    certs = workdir / "certs"
    certs.mkdir()
    ca = Authority()
    (certs / "ca.pem").write_bytes(ca.ca_pem())
    from cryptography import x509

    cert, key = ca.issue(x509.Name.from_rfc4514_string("CN=localhost"),
                         hosts=["localhost", "127.0.0.1"])
    (certs / "host.pem").write_bytes(cert)
    (certs / "host.key").write_bytes(key)
    user_pem = ca.user("bench")
    (certs / "bench.pem").write_bytes(user_pem)
    user = dn.subject_to_rfc4514(x509.load_pem_x509_certificate(user_pem).subject)
    tls = {"ca": str(certs / "ca.pem"), "cert": str(certs / "host.pem"),
           "key": str(certs / "host.key")}
    common = {"erl_args": tuple(args.erl_args.split()), "workdir": workdir}

    def kw() -> dict:
        return {"publish_confirms": args.confirms}

    runs = {
        "classic-1": lambda: Setup("classic-1", 1, "classic", None, gap=True,
                                   settings_kw=kw(), **common),
        # the single node with the client settings the URL list gets (confirms on)
        "classic-1-confirms": lambda: Setup(
            "classic-1-confirms", 1, "classic", None, gap=False,
            settings_kw={"publish_confirms": "on" if args.confirms == "auto"
                         else args.confirms}, **common),
        "quorum-3": lambda: Setup("quorum-3", 3, "quorum", None, gap=True,
                                  settings_kw=kw(), **common),
        # client and worker on one node, the leader's: what the inter-node hops cost
        # (one URL: confirms on, as the URL list has them by default)
        "quorum-3-onenode": lambda: Setup(
            "quorum-3-onenode", 3, "quorum", None, gap=False, one_node=True,
            settings_kw={"publish_confirms": "on" if args.confirms == "auto"
                         else args.confirms}, **common),
        # Ra's WAL not synced: what a deployment may choose, trading durability
        "quorum-3-nosync": lambda: Setup("quorum-3-nosync", 3, "quorum", None, gap=False,
                                         settings_kw=kw(), wal_sync_method="none", **common),
        # Ra told "written" before the sync: a sync-long window, durability traded too
        "quorum-3-notify": lambda: Setup("quorum-3-notify", 3, "quorum", None, gap=False,
                                         settings_kw=kw(),
                                         wal_write_strategy="sync_after_notify", **common),
        # quorum-3 on tmpfs: what the quorum queues' write-ahead log costs on this disk
        "quorum-3-shm": lambda: Setup(
            "quorum-3-shm", 3, "quorum", None, gap=False, settings_kw=kw(),
            folder=Path(tempfile.mkdtemp(prefix="diracmq-bench-", dir=SHM)), **common),
        "tls-1": lambda: Setup("tls-1", 1, "classic", tls, gap=False,
                               settings_kw={**kw(), "tls_cert": str(certs / "bench.pem"),
                                            "tls_ca": str(certs / "ca.pem"), "_user": user},
                               **common),
        "plain-1": lambda: Setup("plain-1", 1, "classic", None, gap=False, settings_kw=kw(),
                                 **common),
    }
    chosen = [name for name in SETUPS if name in wanted]
    spread: dict = {}
    if args.rounds > 1:
        results, spread = run_interleaved([runs[name]() for name in chosen], args.duration,
                                          args.rounds)
    else:
        results = [run_one(runs[name](), args.duration) for name in chosen]
    load_after = loadavg()
    by = {r["setup"]: r for r in results}
    print(f"{'setup':<16} {'seq calls/s':>12} {'seq median ms':>14} {'100 in flight/s':>16}"
          f" {'failover gap s':>15}")
    for r in results:
        gap = f"{r['failover_gap_s']:.2f}" if "failover_gap_s" in r else "-"
        print(f"{r['setup']:<16} {r['seq']['calls_per_s']:>12.0f}"
              f" {r['seq']['median_ms']:>14.2f} {r['inflight100']['calls_per_s']:>16.0f}"
              f" {gap:>15}")
    pairs = {
        "quorum3/classic1 seq": ("quorum-3", "classic-1", "seq"),
        "quorum3/classic1 inflight100": ("quorum-3", "classic-1", "inflight100"),
        "quorum3/classic1 with confirms seq": ("quorum-3", "classic-1-confirms", "seq"),
        "quorum3 client+worker on the leader's node/classic1 seq": ("quorum-3-onenode",
                                                                    "classic-1", "seq"),
        "quorum3 wal_sync_method=none/classic1 seq": ("quorum-3-nosync", "classic-1", "seq"),
        "quorum3 wal_sync_method=none/classic1 inflight100": ("quorum-3-nosync", "classic-1",
                                                              "inflight100"),
        "quorum3 wal_write_strategy=sync_after_notify/classic1 seq": ("quorum-3-notify",
                                                                      "classic-1", "seq"),
        "quorum3 on tmpfs/classic1 seq": ("quorum-3-shm", "classic-1", "seq"),
        "tls/plain seq": ("tls-1", "plain-1", "seq"),
        "tls/plain inflight100": ("tls-1", "plain-1", "inflight100"),
    }
    ratios = {label: by[a][kind]["calls_per_s"] / by[b][kind]["calls_per_s"]
              for label, (a, b, kind) in pairs.items() if a in by and b in by}
    for label, value in ratios.items():
        line = f"{label}: {value:.2f}x"
        a, b, kind = pairs[label]
        each = [r[a][kind]["calls_per_s"] / r[b][kind]["calls_per_s"]
                for r in spread.get("rounds", ())]
        if each:
            line += (f" (rounds: median {statistics.median(each):.2f}x, "
                     f"min {min(each):.2f}x, max {max(each):.2f}x)")
        print(line)
    print(f"load average before: {load_before}; after: {load_after}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "ratios": ratios, **spread,
                                         "loadavg": [load_before, load_after]}, indent=2))
    return 0


#: The setups, in the order they run.
SETUPS = ("classic-1", "classic-1-confirms", "quorum-3", "quorum-3-onenode",
          "quorum-3-nosync", "quorum-3-notify", "quorum-3-shm", "tls-1", "plain-1")


def loadavg() -> str:
    """The machine's 1, 5 and 15 minute load averages (as ``uptime`` prints them)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())

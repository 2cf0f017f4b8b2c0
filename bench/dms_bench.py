"""The DataManagement System's benchmark: catalogue operations and SE throughput.

    .venv/bin/python bench/dms_bench.py           # the issue's sizes (the defaults below)
    .venv/bin/python bench/dms_bench.py --meta-files 200000 --se-mb 256 --runs 1  # quicker

Catalogue (one ``dirac-worker DataManagement --service FileCatalog`` per backend, SQLite
then PostgreSQL on 127.0.0.1:5432 in a database made and dropped here), every figure
through the broker with ``FileCatalogClient``:

* ``addFile`` of ``--files`` new LFNs in one bulk call, ``getReplicas`` of them;
* ``listDirectory`` of a directory holding ``--dir-files`` files;
* ``findFilesByMetadata({"Run": n})`` over ``--meta-files`` files in 1000 directories
  carrying a directory field ``Run`` (each query returns one directory's files):
  latency percentiles over ``--queries`` queries.

The large data sets are loaded first, through the broker too, in bulk ``addFile`` calls
of ``--load-batch`` LFNs (10,000): the load's rate (all its files over all its time) is
the table's first column.

Storage element (one ``dirac-worker DataManagement --service StorageElement_SE_BENCH``):
a ``--se-mb`` file put and got with ``StorageElement`` (4 MiB chunks, 4 in flight),
against raw pika pushing the same chunks through the same broker to a process that
writes them (bench/dms_raw_pika.py), and a plain file copy on the same disk; diracmq and
raw pika alternate within each run.  Prints a markdown table and writes JSON to
``bench/results/dms-<UTC stamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pika

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CHUNK = 4 << 20


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


class Worker:
    """A ``dirac-worker`` subprocess, stopped by PID."""

    def __init__(self, args: list[str], env: dict[str, str], logfile: Path) -> None:
        self.logfile = logfile
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dirac-worker"), *args],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(logfile, "w"))
        deadline = time.monotonic() + 60
        while "worker ready" not in logfile.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {logfile.read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def worker_env(workdir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIRAC_")}
    env.update(DIRAC_BROKER_URL=AMQP_URL, DIRAC_DATA_DIR=str(workdir / "data"),
               DIRAC_LOG_LEVEL="INFO", **extra)  # INFO: the "worker ready" line
    return env


# ------------------------------------------------------------------ catalogue
def timed(call):
    started = time.perf_counter()
    result = call()
    elapsed = time.perf_counter() - started
    if not result.get("OK"):
        raise RuntimeError(result)
    return elapsed, result["Value"]


def populate(client, lfns: list[str], batch: int) -> float:
    """Register ``lfns`` through the broker in bulk ``addFile`` calls of ``batch`` LFNs;
    the seconds it took."""
    started = time.perf_counter()
    for start in range(0, len(lfns), batch):
        part = {lfn: {"Size": 1000 + i, "Checksum": "0badcafe", "SE": "SE-BENCH",
                      "PFN": f"diracmq://SE-BENCH{lfn}"}
                for i, lfn in enumerate(lfns[start:start + batch])}
        _elapsed, value = timed(lambda p=part: client.addFile(p))
        assert not value["Failed"], str(value["Failed"])[:500]
    return time.perf_counter() - started


def bench_catalogue(backend: str, url: str, args: argparse.Namespace, workdir: Path,
                    settings) -> dict:
    from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB
    from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient

    db = FileCatalogDB(url)
    db.dropTables()
    assert db.initialize()["OK"]
    db.engine.dispose()  # the worker does the rest
    base = "/dirac/bench"
    cs = workdir / f"cs-{backend}.toml"
    user = pika.URLParameters(AMQP_URL).credentials.username
    cs.write_text(f'[Registry.Users.{user}]\nGroups = ["admins"]\n'
                  '[Registry.Groups.admins]\nProperties = ["FileCatalogManagement"]\n')
    worker = Worker(["DataManagement", "--service", "FileCatalog"],
                    worker_env(workdir, {"DIRAC_FILECATALOGDB_URL": url,
                                         "DIRAC_CS_FILE": str(cs)}),
                    workdir / f"worker-fc-{backend}.log")
    try:
        client = FileCatalogClient(settings=settings, timeout=600)
        # The data sets, loaded through the broker as a user would (bulk addFile calls
        # of --load-batch LFNs): the load is a figure of its own.
        log(f"[{backend}] loading {args.dir_files} files into one directory ...")
        big = populate(client, [f"{base}/big/f{i:07d}" for i in range(args.dir_files)],
                       args.load_batch)
        log(f"[{backend}]   {big:.0f}s")
        log(f"[{backend}] loading {args.meta_files} files in 1000 directories ...")
        assert client.addMetadataField("Run", "INT", "-d")["OK"]
        per_dir = max(1, args.meta_files // 1000)
        lfns = [f"{base}/meta/run{r:04d}/f{i:05d}" for r in range(1000)
                for i in range(per_dir)]
        meta = populate(client, lfns, args.load_batch)
        for r in range(1000):
            assert client.setMetadata(f"{base}/meta/run{r:04d}", {"Run": r})["OK"]
        log(f"[{backend}]   {meta:.0f}s ({len(lfns) / meta:,.0f} files/s)")
        del lfns
        out: dict = {"backend": backend, "addFile_s": [], "getReplicas_s": [],
                     "listDirectory_s": [], "query_ms": [],
                     "load_files": args.dir_files + per_dir * 1000, "load_s": big + meta}
        for run in range(args.runs):
            names = [f"{base}/bulk/run{run}/f{i:06d}" for i in range(args.files)]
            bulk = {lfn: {"Size": 10, "Checksum": "00000001", "SE": "SE-BENCH",
                          "PFN": f"diracmq://SE-BENCH{lfn}"} for lfn in names}
            elapsed, value = timed(lambda b=bulk: client.addFile(b))
            assert not value["Failed"], str(value["Failed"])[:300]
            out["addFile_s"].append(elapsed)
            elapsed, value = timed(lambda n=names: client.getReplicas(n))
            assert len(value["Successful"]) == args.files
            out["getReplicas_s"].append(elapsed)
            elapsed, value = timed(lambda: client.listDirectory(f"{base}/big"))
            assert len(value["Successful"][f"{base}/big"]["Files"]) == args.dir_files
            out["listDirectory_s"].append(elapsed)
        for q in range(args.queries):
            run_number = (q * 37) % 1000
            elapsed, value = timed(lambda r=run_number: client.findFilesByMetadata(
                {"Run": r}, f"{base}/meta"))
            assert len(value) == per_dir, len(value)
            out["query_ms"].append(elapsed * 1000)
        return out
    finally:
        worker.stop()
        db.dropTables()
        db.engine.dispose()


def pg_database() -> tuple[str, object] | None:
    try:
        import sqlalchemy as sa

        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT",
                                 connect_args={"connect_timeout": 3})
        name = f"diracmq_bench_dms_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no server, no driver: the PostgreSQL rows are skipped
        log(f"PostgreSQL unavailable ({exc}); skipping it")
        return None

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    url = sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(False)
    return url, drop


# ------------------------------------------------------------ storage element
def make_file(path: Path, megabytes: int) -> None:
    block = bytearray(os.urandom(1 << 20))
    with open(path, "wb") as fh:
        for index in range(megabytes):
            block[:8] = index.to_bytes(8, "little")
            fh.write(block)


def raw_push(src: Path, dst: Path) -> float:
    """Seconds for raw pika to carry ``src`` in chunks to a process writing ``dst``."""
    queue = f"bench.dms.sink.{uuid.uuid4().hex[:8]}"
    helper = subprocess.Popen([sys.executable, str(HERE / "dms_raw_pika.py"), "sink",
                               AMQP_URL, queue, str(dst)], stdout=subprocess.PIPE, text=True)
    assert helper.stdout.readline().strip() == "ready"
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    reply = channel.queue_declare("", exclusive=True).method.queue
    size = src.stat().st_size
    started = time.perf_counter()
    with open(src, "rb") as fh:
        offset = 0
        while offset < size:
            data = fh.read(CHUNK)
            channel.basic_publish("", queue, data, pika.BasicProperties(
                reply_to=reply, headers={"offset": offset, "last": offset + len(data) >= size}))
            offset += len(data)
    for _method, _props, _body in channel.consume(reply, auto_ack=True):
        break
    elapsed = time.perf_counter() - started
    connection.close()
    helper.wait(30)
    return elapsed


def raw_pull(src: Path, dst: Path) -> float:
    """Seconds for raw pika to bring ``src`` in chunks from a process reading it."""
    queue = f"bench.dms.source.{uuid.uuid4().hex[:8]}"
    helper = subprocess.Popen([sys.executable, str(HERE / "dms_raw_pika.py"), "source",
                               AMQP_URL, queue], stdout=subprocess.PIPE, text=True)
    assert helper.stdout.readline().strip() == "ready"
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    reply = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_qos(prefetch_count=8)
    started = time.perf_counter()
    channel.basic_publish("", queue, json.dumps({"path": str(src), "chunk": CHUNK}).encode(),
                          pika.BasicProperties(reply_to=reply))
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for method, props, body in channel.consume(reply):
        os.pwrite(fd, body, int(props.headers["offset"]))
        channel.basic_ack(method.delivery_tag)
        if props.headers.get("last"):
            break
    os.fsync(fd)
    os.close(fd)
    elapsed = time.perf_counter() - started
    channel.cancel()
    channel.basic_publish("", queue, json.dumps({"stop": True}).encode())
    connection.close()
    helper.wait(30)
    return elapsed


def bench_se(args: argparse.Namespace, workdir: Path, settings) -> dict:
    from DIRAC.Resources.Storage.StorageElement import StorageElement

    base = workdir / "SE-BENCH"
    cs = workdir / "cs-se.toml"
    cs.write_text(f'[Resources.StorageElements.SE-BENCH]\nBasePath = "{base}"\n')
    worker = Worker(["DataManagement", "--service", "StorageElement_SE_BENCH"],
                    worker_env(workdir, {"DIRAC_CS_FILE": str(cs)}), workdir / "worker-se.log")
    source = workdir / "source.bin"
    make_file(source, args.se_mb)
    size_mb = source.stat().st_size / 2**20
    se = StorageElement("SE-BENCH", settings=settings, timeout=600)
    user = pika.URLParameters(AMQP_URL).credentials.username
    out: dict = {"size_mb": size_mb, "ours_put": [], "ours_get": [], "raw_put": [],
                 "raw_get": [], "copy": []}
    try:
        for run in range(args.runs):
            lfn = f"/dirac/user/{user[0]}/{user}/bench/run{run}.bin"
            order = ("ours", "raw") if run % 2 == 0 else ("raw", "ours")
            for side in order:
                target = workdir / f"{side}-{run}.bin"
                if side == "ours":
                    t0 = time.perf_counter()
                    put = se.putOne(lfn, source)
                    t1 = time.perf_counter()
                    got = se.getOne(lfn, target)
                    t2 = time.perf_counter()
                    assert put["OK"] and got["OK"], (put, got)
                    out["ours_put"].append(size_mb / (t1 - t0))
                    out["ours_get"].append(size_mb / (t2 - t1))
                    se.removeFile(lfn)
                else:
                    sunk = workdir / f"raw-sink-{run}.bin"
                    out["raw_put"].append(size_mb / raw_push(source, sunk))
                    out["raw_get"].append(size_mb / raw_pull(sunk, target))
                    sunk.unlink()
                target.unlink()
            t0 = time.perf_counter()
            shutil.copyfile(source, workdir / "copy.bin")
            with open(workdir / "copy.bin", "rb") as fh:
                os.fsync(fh.fileno())
            out["copy"].append(size_mb / (time.perf_counter() - t0))
            (workdir / "copy.bin").unlink()
            log(f"[SE] run {run}: put {out['ours_put'][-1]:.0f} MB/s (raw "
                f"{out['raw_put'][-1]:.0f}), get {out['ours_get'][-1]:.0f} MB/s (raw "
                f"{out['raw_get'][-1]:.0f}), copy {out['copy'][-1]:.0f} MB/s")
        return out
    finally:
        worker.stop()
        source.unlink(missing_ok=True)


# --------------------------------------------------------------------- report
def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def report(results: dict, args: argparse.Namespace) -> str:
    lines = [f"Sizes: addFile/getReplicas {args.files} LFNs, listDirectory {args.dir_files} "
             f"files, metadata query over {args.meta_files} files, SE file {args.se_mb} MB; "
             f"{args.runs} runs (medians).", "",
             "| backend | load LFN/s | addFile LFN/s | getReplicas LFN/s | listDirectory s | "
             "query p50 ms | query p95 ms |", "|---|---|---|---|---|---|---|"]
    if not results["catalogue"]:  # --backends "": the SE part alone
        del lines[-2:]
    for cat in results["catalogue"]:
        lines.append(
            f"| {cat['backend']} | {cat['load_files'] / cat['load_s']:,.0f} | "
            f"{args.files / statistics.median(cat['addFile_s']):,.0f} | "
            f"{args.files / statistics.median(cat['getReplicas_s']):,.0f} | "
            f"{statistics.median(cat['listDirectory_s']):.2f} | "
            f"{pct(cat['query_ms'], 50):.1f} | {pct(cat['query_ms'], 95):.1f} |")
    se = results.get("se")
    if se:
        med = {k: statistics.median(v) for k, v in se.items() if isinstance(v, list)}
        lines += ["", "| SE transfer | diracmq MB/s | raw pika MB/s | ratio | plain copy MB/s |",
                  "|---|---|---|---|---|",
                  f"| put | {med['ours_put']:.0f} | {med['raw_put']:.0f} | "
                  f"{med['ours_put'] / med['raw_put']:.2f} | {med['copy']:.0f} |",
                  f"| get | {med['ours_get']:.0f} | {med['raw_get']:.0f} | "
                  f"{med['ours_get'] / med['raw_get']:.2f} | {med['copy']:.0f} |"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--dir-files", type=int, default=100_000)
    parser.add_argument("--meta-files", type=int, default=1_000_000)
    parser.add_argument("--load-batch", type=int, default=10_000,
                        help="LFNs per addFile call when loading the data sets")
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--se-mb", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="catalogue backends, comma-separated (\"\": none, SE only)")
    parser.add_argument("--skip-se", action="store_true")
    args = parser.parse_args()

    from diracmq.broker.config import Settings

    settings = Settings.load(url=AMQP_URL, rpc_timeout=600.0)
    results: dict = {"when": datetime.datetime.now(datetime.UTC).isoformat(),
                     "args": vars(args), "catalogue": []}
    with tempfile.TemporaryDirectory(prefix="dms-bench-") as tmp:
        workdir = Path(tmp)
        for backend in filter(None, args.backends.split(",")):
            if backend == "sqlite":
                url, drop = f"sqlite:///{workdir / 'fc.sqlite'}", None
            else:
                made = pg_database()
                if made is None:
                    continue
                url, drop = made
            try:
                results["catalogue"].append(bench_catalogue(backend, url, args, workdir,
                                                            settings))
            finally:
                if drop:
                    drop()
        if not args.skip_se:
            results["se"] = bench_se(args, workdir, settings)
    text = report(results, args)
    print(text)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / f"dms-{stamp}.json").write_text(json.dumps(results, indent=1))
    log(f"results: bench/results/dms-{stamp}.json")


if __name__ == "__main__":
    main()

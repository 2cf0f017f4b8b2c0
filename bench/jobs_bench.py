"""Jobs benchmark: submission, submission-to-Done, and the web summary over 100,000 jobs.

    .venv/bin/python bench/jobs_bench.py [--backends sqlite,postgresql] [--jobs 2000]
                                         [--agents 4] [--slots 2] [--summary-jobs 100000]
                                         [--only submit,e2e,summary] [--profile DIR]

Everything runs against the local broker in a vhost of its own (made and deleted with
rabbitmqctl) and real ``dirac-worker`` / ``dirac-job-agent`` processes; PostgreSQL in a
fresh database on 127.0.0.1:5432 (dropped after).  Prints one JSON line per measurement
on stdout (progress on stderr); bench/RESULTS.md quotes them.

* ``submit``: jobs/s of single submissions (``JobManagerClient.submitJob``, sequential,
  one client) and the time of one parametric JDL of 1,000 jobs;
* ``e2e``: ``--jobs`` trivial jobs (``/bin/true``, parametric bulks of 1,000) from the first
  submission until all are Done, through a WorkloadManagement worker, an Optimizers worker
  and ``--agents`` job agents; where the time goes from the jobs' logging records (phases
  per job, and when the last job reached each stage), CPU seconds per kind of process
  from /proc (bench/procstat.py), py-spy stacks of every process with ``--profile``;
  ``--agents 0``: no job agent, until all are Waiting (the optimizers alone);
* ``summary``: ``getJobPageSummaryWeb`` (sorted, filtered, paged) over ``--summary-jobs``
  jobs inserted directly into the JobDB: latency percentiles through the broker.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import procstat  # noqa: E402  (bench/procstat.py)

BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

CS = """\
[Registry]
DefaultGroup = ["dirac_user"]
[Registry.Users.guest]
BrokerUser = "guest"
Groups = ["dirac_user", "dirac_pilot"]
[Registry.Groups.dirac_user]
Properties = ["NormalUser", "JobAdministrator"]
[Registry.Groups.dirac_pilot]
Properties = ["GenericPilot"]
"""


def say(*args):
    print(*args, file=sys.stderr, flush=True)


def emit(obj):
    print(json.dumps(obj), flush=True)


def pct(values, q):
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


def ctl(*args):
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)


@contextlib.contextmanager
def vhost():
    name = f"diracmq-bench-jobs-{uuid.uuid4().hex[:8]}"
    ctl("add_vhost", name)
    ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    try:
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        ctl("delete_vhost", name)


@contextlib.contextmanager
def database(backend, tmp):
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'JobDB.sqlite'}"
        return
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"diracmq_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(False)
    finally:
        from DIRAC.WorkloadManagementSystem.DB import JobDB as module

        for engine in module._engines.values():
            engine.dispose()
        module._engines.clear()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


class Procs:
    """Processes started by the benchmark, stopped by PID (SIGTERM, then SIGKILL)."""

    def __init__(self, env, tmp):
        self.env, self.tmp, self.procs, self.names = env, tmp, [], []

    def start(self, name, argv, ready=None, extra_env=None):
        log = self.tmp / f"{name}-{len(self.procs)}.log"
        self.names.append(name)
        with log.open("w") as fh:
            proc = subprocess.Popen(argv, env=dict(self.env, **(extra_env or {})),
                                    stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        deadline = time.monotonic() + 60
        while ready and ready not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        return proc

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []
        self.names = []

    def cpu(self, db_url=None):
        """CPU seconds used so far per process kind (wms, opt, agent), the broker's and,
        for a PostgreSQL ``db_url``, its server processes serving that database
        (``postgres``: those connected now; a connection closed meanwhile is missed)."""
        out = {}
        import psutil

        for name, proc in zip(self.names, self.procs, strict=True):
            kind = name.rstrip("0123456789")
            pids = [proc.pid]  # and its worker processes (--processes N)
            with contextlib.suppress(psutil.Error):
                pids += [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
            out[kind] = out.get(kind, 0.0) + sum(procstat.cpu_ns(p) for p in pids) / 1e9
        broker = procstat.broker_pid()
        if broker:
            out["broker"] = procstat.cpu_ns(broker) / 1e9
        if db_url and db_url.startswith("postgresql"):
            out["postgres"] = sum(procstat.cpu_ns(p) for p in pg_backends(db_url)) / 1e9
        busy = procstat.machine_busy_ns()
        if busy is not None:
            out["machine"] = busy / 1e9
        return out

    def profile(self, directory, seconds):
        """py-spy every process for ``seconds`` (flame graphs as SVG in ``directory``)."""
        spies = []
        for name, proc in zip(self.names, self.procs, strict=True):
            spies.append(subprocess.Popen(
                [str(BIN / "py-spy"), "record", "--pid", str(proc.pid), "--duration",
                 str(int(seconds)), "--rate", "200", "--nonblocking", "--format", "raw",
                 *os.environ.get("BENCH_PYSPY_FLAGS", "").split(),
                 "--output", str(Path(directory) / f"{name}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return spies


@contextlib.contextmanager
def deployment(backend, broker_url, processes=1):
    with tempfile.TemporaryDirectory(prefix="jobs-bench-") as tmp, \
            database(backend, Path(tmp)) as db_url:
        tmp = Path(tmp)
        (tmp / "cs.toml").write_text(CS)
        env = dict(os.environ, DIRAC_BROKER_URL=broker_url, DIRAC_JOBDB_URL=db_url,
                   DIRAC_DATA_DIR=str(tmp / "data"), DIRAC_CS_FILE=str(tmp / "cs.toml"),
                   DIRAC_WMS_MAX_PARAMETRIC_JOBS="1000", DIRAC_GROUP="",
                   DIRAC_LOG_LEVEL="WARNING", DIRAC_WMS_OPTIMIZER_SWEEP="5")
        procs = Procs(env, tmp)
        try:
            procs.start("wms", [str(BIN / "dirac-worker"), "WorkloadManagement",
                                "--processes", str(processes)], ready=None)
            procs.start("opt", [str(BIN / "dirac-worker"), "Optimizers"], ready=None)
            from diracmq.client import transport

            from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import (
                JobMonitoringClient,
            )

            transport.close_all()  # the previous measurement's vhost is gone
            deadline = time.monotonic() + 60
            while not JobMonitoringClient(settings=settings(broker_url)).ping()["OK"]:
                if time.monotonic() > deadline:
                    raise RuntimeError("the WorkloadManagement worker did not answer")
            time.sleep(2)  # the Optimizers worker (no RPC needed to be ready)
            yield procs, db_url, tmp
        finally:
            procs.stop()


def pg_backends(db_url):
    """Pids of the PostgreSQL server processes connected to ``db_url``'s database."""
    import sqlalchemy as sa

    name = sa.engine.make_url(db_url).database
    admin = sa.create_engine(PG_ADMIN)
    try:
        with admin.connect() as conn:
            return [int(p) for p in conn.scalars(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :name"), {"name": name})]
    finally:
        admin.dispose()


def settings(broker_url):
    from diracmq.broker.config import Settings

    return Settings.load(url=broker_url, rpc_timeout=120.0, group="")


def bench_submit(backend, broker_url, singles=300):
    from DIRAC.WorkloadManagementSystem.Client.JobManagerClient import JobManagerClient

    with deployment(backend, broker_url):
        manager = JobManagerClient(settings=settings(broker_url))
        jdl = '[Executable = "/bin/true"; JobName = "bench-single"; Site = "Nowhere.org";]'
        for _ in range(20):  # warm-up
            manager.submitJob(jdl)
        started = time.perf_counter()
        latencies = []
        for _ in range(singles):
            t0 = time.perf_counter()
            assert manager.submitJob(jdl)["OK"]
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        emit({"bench": "jobs.submit.single", "backend": backend, "jobs": singles,
              "jobs_per_s": round(singles / elapsed, 1),
              "p50_ms": round(pct(latencies, 50) * 1e3, 2),
              "p99_ms": round(pct(latencies, 99) * 1e3, 2)})
        bulk = '[Executable = "/bin/echo"; Arguments = "%s"; Parameters = 1000; ' \
               'Site = "Nowhere.org";]'
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            result = manager.submitJob(bulk, timeout=120)
            times.append(time.perf_counter() - t0)
            assert result["OK"] and len(result["Value"]) == 1000, result
        emit({"bench": "jobs.submit.bulk1000", "backend": backend,
              "seconds": [round(t, 3) for t in times],
              "median_s": round(statistics.median(times), 3),
              "jobs_per_s": round(1000 / statistics.median(times), 1)})


def bench_e2e(backend, broker_url, jobs, agents, slots, processes, profile=None):
    from DIRAC.WorkloadManagementSystem.Client.JobManagerClient import JobManagerClient
    from DIRAC.WorkloadManagementSystem.DB.JobDB import JobDB

    with deployment(backend, broker_url, processes) as (procs, db_url, tmp):
        for n in range(agents):
            procs.start(f"agent{n}", [str(BIN / "dirac-job-agent"), "--slots", str(slots),
                                      "--poll", "0.2", "--heartbeat", "30", "--workdir",
                                      str(tmp / f"agent{n}")],
                        ready="job agent ready", extra_env={"DIRAC_GROUP": "dirac_pilot"})
        manager = JobManagerClient(settings=settings(broker_url))
        bulk = '[Executable = "/bin/true"; Parameters = {n}; JobName = "e2e-%n";]'
        cpu_before = procs.cpu(db_url)
        spies = procs.profile(profile, max(5, jobs / 40)) if profile else []
        started = time.time()
        ids = []
        left = jobs
        while left:
            n = min(1000, left)
            result = manager.submitJob(bulk.format(n=n), timeout=120)
            assert result["OK"], result
            ids += result["Value"]
            left -= n
        submitted = time.time()
        db = JobDB(db_url)
        progress, progressed = None, time.time()
        while True:
            # the database is this run's: count every job (cheaper than by ID)
            counts = dict((k["Status"], v) for k, v in db.getCounters(
                "Jobs", ["Status"])["Value"])
            # --agents 0: the optimizers alone (submission -> Waiting)
            if counts.get("Done" if agents else "Waiting", 0) + counts.get("Failed", 0) \
                    >= len(ids):
                break
            if time.time() - started > 1800:
                raise RuntimeError(f"not done after 30 min: {counts}")
            dead = [n for n, p in zip(procs.names, procs.procs, strict=True)
                    if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} stopped (logs in {tmp}): {counts}")
            if counts != progress:
                progress, progressed = counts, time.time()
            elif time.time() - progressed > 120:
                raise RuntimeError(f"no job changed state for 2 min (logs in {tmp}): {counts}")
            time.sleep(0.2)
        ended = time.time()
        cpu_after = procs.cpu(db_url)
        for spy in spies:
            spy.wait()
        # the last job to reach each stage (from every job's logging records)
        import sqlalchemy as sa

        from DIRAC.WorkloadManagementSystem.DB.JobDB import loggingTable

        t = loggingTable.c
        stages = {}
        with db.engine.connect() as conn:
            for status, minor in (("Waiting", "Pilot Agent Submission"),
                                  ("Matched", "Assigned"), ("Done", "Execution Complete")):
                last = conn.scalar(sa.select(sa.func.max(t.StatusTime)).where(
                    t.Status == status, t.MinorStatus == minor))
                stages[status] = None if last is None else round(
                    last.replace(tzinfo=datetime.UTC).timestamp() - started, 2)
        # where the time goes, from the logging records
        phases = {"optimize": [], "wait_match": [], "run": []}
        sample = random.sample(ids, min(300, len(ids)))
        first = {}
        for job_id in sample:
            log = db.getJobLoggingInfo(job_id)["Value"]
            t = {}
            for status, minor, _app, when, _src in log:
                t.setdefault((status, minor), when.replace(tzinfo=datetime.UTC).timestamp())
            rec = t[("Received", "Job accepted")]
            wait = t[("Waiting", "Pilot Agent Submission")]
            match = t.get(("Matched", "Assigned"), wait)
            done = t.get(("Done", "Execution Complete"), match)
            phases["optimize"].append(wait - rec)
            phases["wait_match"].append(match - wait)
            phases["run"].append(done - match)
            first[job_id] = wait
        emit({"bench": "jobs.e2e", "backend": backend, "jobs": len(ids), "agents": agents,
              "slots": slots, "wms_processes": processes,
              "failed": counts.get("Failed", 0),
              "submit_s": round(submitted - started, 2),
              "total_s": round(ended - started, 2),
              "jobs_per_s": round(len(ids) / (ended - started), 1),
              "phases_p50_s": {k: round(pct(v, 50), 3) for k, v in phases.items()},
              "phases_p90_s": {k: round(pct(v, 90), 3) for k, v in phases.items()},
              "last_reached_s": stages,
              "cpu_s": {k: round(cpu_after[k] - cpu_before.get(k, 0), 1) for k in cpu_after}})


def bench_summary(backend, broker_url, count, calls=60):
    from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient
    from DIRAC.WorkloadManagementSystem.DB.JobDB import JobDB
    from DIRAC.WorkloadManagementSystem.Utilities.JobDescription import PreparedJob, prepareJobs

    with deployment(backend, broker_url) as (_procs, db_url, _tmp):
        db = JobDB(db_url)
        assert db.initialize()["OK"]
        t0 = time.perf_counter()
        sites = ["LCG.CERN.cern", "LCG.IN2P3.fr", "LCG.RAL.uk", "LCG.PIC.es"]
        templates = [prepareJobs(f'[Executable = "x"; Site = "{site}";]')[0] for site in sites]
        for start in range(0, count, 5000):
            prepared = []
            for i in range(start, min(count, start + 5000)):
                template = templates[i % 4]
                prepared.append(PreparedJob(
                    dict(template.attributes, JobName=f"j{i}", JobGroup=f"g{i % 50}"),
                    template.classAd))
            assert db.insertNewJobs(prepared, f"user{start // 5000 % 10}", "users")["OK"]
        say(f"{backend}: {count} jobs inserted in {time.perf_counter() - t0:.0f}s")
        if backend == "sqlite":
            # As a deployment does: the Optimizers worker's sweep (every 5 s here)
            # refreshes SQLite's planner statistics once the number of jobs has doubled,
            # and the WorkloadManagement worker's connections reload them within 10 s.
            time.sleep(16)
        monitor = JobMonitoringClient(settings=settings(broker_url))
        queries = [
            ({"Site": "LCG.CERN.cern"}, [["JobID", "DESC"]], 0, 25),
            ({"Owner": "user3", "Status": "Received"}, [["SubmissionTime", "DESC"]], 100, 50),
            ({}, [["LastUpdateTime", "DESC"]], 5000, 25),
            ({"JobGroup": ["g1", "g2"]}, [["JobName", "ASC"]], 0, 100),
        ]
        latencies = []
        for n in range(calls):
            select, sort, startItem, maxItems = queries[n % len(queries)]
            t = time.perf_counter()
            result = monitor.getJobPageSummaryWeb(select, sort, startItem, maxItems)
            latencies.append(time.perf_counter() - t)
            assert result["OK"], result
        emit({"bench": "jobs.summary", "backend": backend, "jobs": count, "calls": calls,
              "p50_ms": round(pct(latencies, 50) * 1e3, 1),
              "p90_ms": round(pct(latencies, 90) * 1e3, 1),
              "max_ms": round(max(latencies) * 1e3, 1)})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--only", default="submit,e2e,summary")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--wms-processes", type=int, default=1)
    parser.add_argument("--summary-jobs", type=int, default=100000)
    parser.add_argument("--profile", metavar="DIR",
                        help="py-spy every process during e2e (raw stacks in DIR)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    for backend in args.backends.split(","):
        for what in args.only.split(","):
            with vhost() as url:
                say(f"== {what} on {backend}")
                if what == "submit":
                    bench_submit(backend, url)
                elif what == "e2e":
                    bench_e2e(backend, url, args.jobs, args.agents, args.slots,
                              args.wms_processes, args.profile)
                elif what == "summary":
                    bench_summary(backend, url, args.summary_jobs)


if __name__ == "__main__":
    main()

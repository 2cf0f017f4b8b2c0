"""Jobs from submission to Done through the real broker, real workers and real job agents.

One module-wide deployment: a ``dirac-worker WorkloadManagement`` and a
``dirac-worker Optimizers`` (SQLite JobDB and sandbox directory in a temporary data
dir; the Registry from a file: ``alice`` and ``bob`` are users, ``pilot`` has
``GenericPilot``), all with real broker users.  Job agents are ``dirac-job-agent``
processes logged in as ``pilot``.  Every test gives its jobs its own site name, and
its agents only that site, so tests never take each other's jobs.
(tests/integration/test_jobs_pg.py runs the path on PostgreSQL.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil
import pytest
from diracmq.broker.config import Settings
from diracmq.broker.derrno import ENOAUTH, EWMSNOMATCH
from diracmq_testing import (
    WorkerPool,
    environment,
    free_closed_port,
    url_vhost,
    url_with_vhost,
    wait_until,
)

from DIRAC.Interfaces.API.Dirac import Dirac
from DIRAC.Interfaces.API.Job import Job
from DIRAC.WorkloadManagementSystem.Client import JobStatus as JS
from DIRAC.WorkloadManagementSystem.Client.MatcherClient import MatcherClient
from DIRAC.WorkloadManagementSystem.Client.SandboxStoreClient import SandboxStoreClient

from .test_observability import scrape
from .test_observability import value as sample_sum
from .wms_conftest_helpers import broker_user, error, ok

pytestmark = pytest.mark.timeout(300)

HEARTBEAT = 0.5
#: Freed memory goes back to the OS at once (no diracmq allocator tuning, glibc's mmap
#: threshold fixed at 128 KiB instead of growing): a process's peak RSS is then what it
#: held at once, which the 200 MB sandbox test bounds.
HELD_ONLY = {"DIRAC_MALLOC_KEEP_MB": "0", "MALLOC_MMAP_THRESHOLD_": "131072",
             "MALLOC_TRIM_THRESHOLD_": "131072"}
BIN = Path(sys.executable).parent


@dataclass
class Deployment:
    pool: WorkerPool
    settings: dict[str, Settings]
    urls: dict[str, str]
    workdir: Path
    env: dict[str, str]
    optimizers: object

    def dirac(self, user: str = "alice") -> Dirac:
        return Dirac(settings=self.settings[user])


CS = """\
[Registry]
DefaultGroup = ["users"]

[Registry.Users.alice]
BrokerUser = "{alice}"
Groups = ["users"]

[Registry.Users.bob]
BrokerUser = "{bob}"
Groups = ["users"]

[Registry.Users.pilot]
BrokerUser = "{pilot}"
Groups = ["pilots"]

[Registry.Groups.users]
Properties = ["NormalUser"]

[Registry.Groups.pilots]
Properties = ["GenericPilot"]
"""


def start_system(pool: WorkerPool, system: str, env: dict[str, str]):
    with environment(**env):
        return pool.start(system, pythonpath=[])


@pytest.fixture(scope="module")
def deployment(vhost_url, private_vhost, tmp_path_factory):
    if not private_vhost:
        pytest.skip("needs rabbitmqctl (a private vhost and broker users)")
    vhost = url_vhost(vhost_url)
    workdir = tmp_path_factory.mktemp("jobs")
    with contextlib.ExitStack() as stack:
        names, urls, settings = {}, {}, {}
        for role in ("alice", "bob", "pilot"):
            name, password = stack.enter_context(broker_user(vhost, role))
            names[role] = name
            urls[role] = url_with_vhost(f"amqp://{quote(name)}:{password}@127.0.0.1:5672/",
                                        vhost)
            settings[role] = Settings.load(url=urls[role], rpc_timeout=30.0,
                                           connect_timeout=5.0, group="")
        cs = workdir / "cs.toml"
        cs.write_text(CS.format(**names))
        env = {"DIRAC_CS_FILE": str(cs), "DIRAC_DATA_DIR": str(workdir / "data"),
               "DIRAC_JOBDB_URL": "", "DIRAC_WMS_OPTIMIZER_SWEEP": "0.5",
               "DIRAC_WMS_OPTIMIZER_LEASE": "3", "DIRAC_WMS_STALLED_TIME": "3",
               "DIRAC_WMS_FAILED_TIME": "3", "DIRAC_WMS_MAX_PARAMETRIC_JOBS": "1000",
               "DIRAC_GROUP": None,
               **HELD_ONLY}
        pool = WorkerPool(vhost_url, workdir, private_vhost)
        start_system(pool, "WorkloadManagement", env)
        optimizers = start_system(pool, "Optimizers", env)
        try:
            yield Deployment(pool, settings, urls, workdir, env, optimizers)
        finally:
            problems = pool.stop_all()
            assert not problems, problems


@contextlib.contextmanager
def agents(deployment: Deployment, site: str, count: int = 1, *args: str):
    """``count`` dirac-job-agent processes (as the pilot) offering ``site``; SIGTERM after."""
    procs = []
    env = dict(os.environ, DIRAC_BROKER_URL=deployment.urls["pilot"], DIRAC_GROUP="",
               PYTHONUNBUFFERED="1")
    env.pop("DIRAC_CS_FILE", None)
    for n in range(count):
        with open(deployment.workdir / f"agent-{site}-{n}.log", "w") as log:
            procs.append(subprocess.Popen(
                [str(BIN / "dirac-job-agent"), "--site", site, "--heartbeat", str(HEARTBEAT),
                 "--poll", "0.2", "--workdir", str(deployment.workdir / f"run-{site}-{n}"),
                 "--timeout", "30", *args],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def site_name() -> str:
    return f"Test.{uuid.uuid4().hex[:8]}.org"


def status(dirac: Dirac, job_id: int) -> dict:
    return ok(dirac.getJobStatus(job_id))[job_id]


def wait_status(dirac: Dirac, job_id: int, wanted: set[str], timeout: float = 60) -> dict:
    return wait_until(lambda: (s := status(dirac, job_id))["Status"] in wanted and s,
                      timeout, f"job {job_id} in {wanted}")


SLEEPER = "-c 'echo $$; exec sleep 120'"  # prints its pid, then sleeps


def payload_pid(dirac: Dirac, job_id: int) -> int:
    """The pid a SLEEPER job printed (seen through peekJob once it runs)."""
    wait_until(lambda: dirac.peekJob(job_id).get("Value"), 60, f"job {job_id} to run")
    return int(ok(dirac.peekJob(job_id)).split()[0])


def make_job(site: str, executable: str, arguments: str = "", **extra) -> Job:
    job = Job()
    ok(job.setExecutable(executable, arguments=arguments))
    ok(job.setDestination(site))
    for name, value in extra.items():
        ok(getattr(job, name)(value))
    return job


# ------------------------------------------------------------------- the path
def test_a_job_with_an_input_sandbox_runs_to_done_and_its_output_comes_back(
        deployment, tmp_path):
    dirac = deployment.dirac("alice")
    site = site_name()
    (tmp_path / "input.txt").write_text("hello from the input sandbox\n")
    script = tmp_path / "work.sh"
    script.write_text("#!/bin/sh\ncat input.txt\necho \"args: $*\"\necho result > out.dat\n"
                      "echo oops >&2\n")
    job = make_job(site, "work.sh", "one 'two words'",
                   setInputSandbox=[str(tmp_path / "input.txt"), str(script)],
                   setOutputSandbox=["*.dat"], setName="e2e-sandbox")
    job_id = ok(dirac.submitJob(job))
    wait_status(dirac, job_id, {JS.WAITING}, 30)
    with agents(deployment, site, 1, "--max-jobs", "1") as (agent,):
        assert agent.wait(60) == 0
    final = status(dirac, job_id)
    assert (final["Status"], final["MinorStatus"]) == (JS.DONE, "Execution Complete")
    assert final["ApplicationStatus"] == "Application Finished Successfully"
    assert final["Site"] == site
    steps = [(s, m) for s, m, *_ in ok(dirac.getJobLoggingInfo(job_id))]
    assert steps[:4] == [(JS.RECEIVED, "Job accepted"), (JS.CHECKING, "JobSanity"),
                         (JS.CHECKING, "JobScheduling"),
                         (JS.WAITING, "Pilot Agent Submission")]
    for expected in [(JS.MATCHED, "Assigned"), (JS.RUNNING, "Job Initialization"),
                     (JS.RUNNING, "Application"), (JS.COMPLETING, "Uploading Output Sandbox"),
                     (JS.DONE, "Execution Complete")]:
        assert expected in steps
    out = tmp_path / "out"
    ok(dirac.getOutputSandbox(job_id, outputDir=str(out)))
    stdout = (out / str(job_id) / "std.out").read_text()
    assert stdout == "hello from the input sandbox\nargs: one two words\n"
    assert (out / str(job_id) / "std.err").read_text() == "oops\n"
    assert (out / str(job_id) / "out.dat").read_text() == "result\n"
    assert ok(dirac.peekJob(job_id)) == stdout
    ok(dirac.getInputSandbox(job_id, outputDir=str(out)))
    assert (out / f"InputSandbox{job_id}" / "input.txt").exists()
    jdl = ok(dirac.getJobJDL(job_id))
    assert jdl["InputSandbox"][0].startswith("SB:SandboxSE|")
    # deleting the job removes its sandboxes
    ok(dirac.deleteJob(job_id))
    assert not error(dirac.getOutputSandbox(job_id, outputDir=str(out / "again")))["OK"]


def test_failures_of_the_payload_end_failed_with_the_reason(deployment):
    dirac = deployment.dirac("alice")
    site = site_name()
    exit3 = ok(dirac.submitJob(make_job(site, "/bin/sh", "-c 'exit 3'")))
    missing = ok(dirac.submitJob(make_job(site, "/no/such/program")))
    cpu = ok(dirac.submitJob(make_job(site, "/bin/sh", "-c 'while :; do :; done'",
                                      setCPUTime=1)))
    wall = make_job(site, "/bin/sleep", "60")
    wall.attributes["MaxWallClockTime"] = 1
    wall = ok(dirac.submitJob(wall))
    with agents(deployment, site, 1, "--slots", "4", "--max-jobs", "4") as (agent,):
        assert agent.wait(90) == 0
    results = {job: status(dirac, job) for job in (exit3, missing, cpu, wall)}
    assert all(r["Status"] == JS.FAILED for r in results.values()), results
    assert results[exit3]["MinorStatus"] == "Application Finished With Errors"
    assert results[exit3]["ApplicationStatus"] == "exit code 3"
    assert results[missing]["ApplicationStatus"] == "exit code 127"
    assert results[cpu]["MinorStatus"].startswith("CPU time limit exceeded")
    assert results[wall]["MinorStatus"].startswith("Wall clock time limit exceeded")
    assert "Application" in [m for _, m, *_ in ok(dirac.getJobLoggingInfo(exit3))]


def test_killing_a_running_job_stops_its_process_within_a_heartbeat(deployment):
    dirac = deployment.dirac("alice")
    site = site_name()
    job_id = ok(dirac.submitJob(make_job(site, "/bin/sh", SLEEPER)))
    with agents(deployment, site, 1, "--max-jobs", "1") as (agent,):
        pid = payload_pid(dirac, job_id)
        assert psutil.pid_exists(pid)
        ok(dirac.killJob(job_id))
        killed_at = time.monotonic()
        wait_until(lambda: not psutil.pid_exists(pid) or
                   psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
                   HEARTBEAT * 4 + 2, "the payload to end")
        assert time.monotonic() - killed_at < HEARTBEAT * 4 + 2
        assert agent.wait(30) == 0
    assert status(dirac, job_id)["Status"] == JS.KILLED


@pytest.mark.parametrize("count", [2, 3])
def test_concurrent_agents_never_run_a_job_twice(deployment, tmp_path, count):
    dirac = deployment.dirac("alice")
    site = site_name()
    runs = tmp_path / "runs.txt"
    job = make_job(site, "/bin/sh", f"-c 'echo $DIRACJOBID >> {runs}'")
    ok(job.setParameterSequence("n", list(range(24))))
    ids = ok(dirac.submitJob(job))
    with agents(deployment, site, count, "--slots", "2", "--idle-timeout", "3"):
        for job_id in ids:
            wait_status(dirac, job_id, {JS.DONE, JS.FAILED}, 90)
    assert {status(dirac, j)["Status"] for j in ids} == {JS.DONE}
    assert sorted(int(x) for x in runs.read_text().split()) == sorted(ids)
    for job_id in ids:
        matched = [s for s, *_ in ok(dirac.getJobLoggingInfo(job_id)) if s == JS.MATCHED]
        assert len(matched) == 1


def test_sigkilled_agent_leaves_its_job_stalled_then_failed(deployment):
    dirac = deployment.dirac("alice")
    site = site_name()
    job_id = ok(dirac.submitJob(make_job(site, "/bin/sh", SLEEPER)))
    with agents(deployment, site, 1) as (agent,):
        pid = payload_pid(dirac, job_id)
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # the payload has its own session
    assert status(dirac, job_id)["Status"] == JS.RUNNING
    wait_status(dirac, job_id, {JS.STALLED}, 30)
    final = wait_status(dirac, job_id, {JS.FAILED}, 30)
    assert final["MinorStatus"].startswith("Stalling for more than")


def test_sigterm_agent_fails_its_running_job_cleanly(deployment):
    dirac = deployment.dirac("alice")
    site = site_name()
    job_id = ok(dirac.submitJob(make_job(site, "/bin/sh", SLEEPER)))
    with agents(deployment, site, 1) as (agent,):
        pid = payload_pid(dirac, job_id)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0
    final = status(dirac, job_id)
    assert (final["Status"], final["MinorStatus"]) == (JS.FAILED, "Job agent stopped")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert ok(SandboxStoreClient(settings=deployment.settings["alice"])
              .getSandboxesForJob(job_id))["Output"]


def test_an_output_sandbox_stored_before_is_assigned_by_name_or_stored_again(deployment,
                                                                           tmp_path):
    from DIRAC.WorkloadManagementSystem.Agent.JobAgent import JobAgent

    dirac = deployment.dirac("alice")
    site = site_name()
    agent = JobAgent(site=site, slots=1, heartbeat=HEARTBEAT, pollInterval=0.2,
                     workDir=tmp_path / "agent",
                     clientOptions={"settings": deployment.settings["pilot"]})
    uploads = []
    upload = agent.sandboxes.uploadFile
    agent.sandboxes.uploadFile = lambda path: uploads.append(path) or upload(path)
    sandboxes = SandboxStoreClient(settings=deployment.settings["alice"])

    def run_one() -> int:
        job_id = ok(dirac.submitJob(make_job(site, "/bin/echo", "same output")))
        wait_status(dirac, job_id, {JS.WAITING}, 30)
        agent.maxJobs += 1
        assert agent.run() == 0
        assert status(dirac, job_id)["Status"] == JS.DONE
        return job_id

    first = run_one()
    second = run_one()
    assert len(uploads) == 1  # the same content: assigned by name, not stored again
    output = {ok(sandboxes.getSandboxesForJob(j))["Output"][0] for j in (first, second)}
    assert len(output) == 1
    for job_id in (first, second):  # the store removes the sandbox with its last job
        ok(dirac.deleteJob(job_id))
    third = run_one()
    assert len(uploads) == 2  # refused by name: stored again
    ok(dirac.getOutputSandbox(third, outputDir=str(tmp_path / "out")))
    assert (tmp_path / "out" / str(third) / "std.out").read_text() == "same output\n"
    assert [m for s, m, *_ in ok(dirac.getJobLoggingInfo(third)) if s == JS.RUNNING] == [
        "Job Initialization", "Application"]  # reported with the end: a short payload


# ------------------------------------------------------------------ matcher
def test_matcher_is_for_pilots_and_says_no_match_in_dirac_terms(deployment):
    refused = MatcherClient(settings=deployment.settings["alice"]).requestJob({"Site": "X"})
    assert error(refused)["Errno"] == ENOAUTH
    nothing = MatcherClient(settings=deployment.settings["pilot"]).requestJob(
        {"Site": site_name(), "CPUTime": 1})
    assert error(nothing)["Errno"] == EWMSNOMATCH
    bad = MatcherClient(settings=deployment.settings["pilot"]).requestJob({"Site": 3})
    assert not bad["OK"] and "Site" in bad["Message"]
    # several slots at once (what dirac-job-agent --slots N asks)
    pilot = MatcherClient(settings=deployment.settings["pilot"])
    assert error(MatcherClient(settings=deployment.settings["alice"]).requestJobs(
        {"Site": "X"}, 2))["Errno"] == ENOAUTH
    assert ok(pilot.requestJobs({"Site": site_name(), "CPUTime": 1}, 4)) == []
    assert "count" in error(pilot.requestJobs({"Site": "X"}, 0))["Message"]
    dirac = deployment.dirac("alice")
    site = site_name()
    ids = {ok(dirac.submitJob(make_job(site, "/bin/true"))) for _ in range(3)}
    for job_id in ids:
        wait_status(dirac, job_id, {JS.WAITING}, 30)
    matched = ok(pilot.requestJobs({"Site": site, "NumberOfProcessors": 4}, 4))
    assert {m["JobID"] for m in matched} == ids
    assert all(m["Owner"] and m["JDL"] for m in matched)
    assert {status(dirac, j)["Status"] for j in ids} == {JS.MATCHED}


# ------------------------------------------------------------------ sandboxes
def test_sandboxes_are_read_only_by_those_who_may_see_the_job(deployment, tmp_path):
    alice = SandboxStoreClient(settings=deployment.settings["alice"])
    bob = SandboxStoreClient(settings=deployment.settings["bob"])
    (tmp_path / "secret.txt").write_text("alice only")
    name = ok(alice.uploadFilesAsSandbox([tmp_path / "secret.txt"]))
    assert ok(alice.uploadFilesAsSandbox([tmp_path / "secret.txt"])) == name  # not twice
    assert error(bob.rpc.getSandboxInfo(name))["Errno"] == ENOAUTH
    assert error(bob.rpc.downloadChunk(name, 0, 100))["Errno"] == ENOAUTH
    assert error(bob.downloadSandbox(name, str(tmp_path / "bob")))["Errno"] == ENOAUTH
    assert ok(alice.downloadSandbox(name, str(tmp_path / "alice"))) == ["secret.txt"]
    # a job's output: its owner reads it, another user does not
    dirac = deployment.dirac("alice")
    site = site_name()
    job_id = ok(dirac.submitJob(make_job(site, "/bin/echo", "private output")))
    with agents(deployment, site, 1, "--max-jobs", "1") as (agent,):
        assert agent.wait(60) == 0
    assert status(dirac, job_id)["Status"] == JS.DONE
    assert error(deployment.dirac("bob").getOutputSandbox(job_id, str(tmp_path / "b")))
    assert error(bob.unassignJobs([job_id]))["Errno"] == ENOAUTH
    ok(dirac.getOutputSandbox(job_id, str(tmp_path / "a")))
    assert (tmp_path / "a" / str(job_id) / "std.out").read_text() == "private output\n"


ROUND_TRIP = textwrap.dedent("""\
    import hashlib, os, sys
    from pathlib import Path
    from diracmq.broker.config import Settings
    from DIRAC.WorkloadManagementSystem.Client.SandboxStoreClient import SandboxStoreClient
    url, src, dst = sys.argv[1:4]
    client = SandboxStoreClient(settings=Settings.load(url=url, rpc_timeout=60.0,
                                                      malloc_keep_mb=0))
    name = client.uploadFile(src)
    assert name["OK"], name
    got = client.downloadToFile(name["Value"], Path(dst))
    assert got["OK"], got
    # VmHWM of this process's own memory: ru_maxrss would include the RSS of the
    # parent (pytest) at fork time, which Linux carries over through exec.
    print(int(next(line.split()[1] for line in open("/proc/self/status")
                   if line.startswith("VmHWM:"))) // 1024)
""")


def test_a_200_mb_sandbox_round_trip_stays_within_bounded_memory(deployment, tmp_path):
    src, dst = tmp_path / "big.bin", tmp_path / "back.bin"
    with src.open("wb") as fh:
        for _ in range(200):
            fh.write(os.urandom(1 << 20))
    wms = deployment.pool.workers[0]
    done = subprocess.run([sys.executable, "-c", ROUND_TRIP, deployment.urls["alice"],
                           str(src), str(dst)], capture_output=True, text=True, timeout=240,
                          env=dict(os.environ, **HELD_ONLY))
    assert done.returncode == 0, done.stderr
    client_peak_mb = int(done.stdout.strip())
    status_text = Path(f"/proc/{wms.pid}/status").read_text()
    worker_peak_mb = int(next(line.split()[1] for line in status_text.splitlines()
                              if line.startswith("VmHWM:"))) // 1024
    assert src.stat().st_size == dst.stat().st_size == 200 << 20
    assert src.read_bytes() == dst.read_bytes()
    # neither side ever held the 200 MB (chunks of 1 MiB, 4 in flight); both processes
    # run with HELD_ONLY, so their peak is what they held, not freed memory kept
    assert client_peak_mb < 120, client_peak_mb
    assert worker_peak_mb < 160, worker_peak_mb


# ------------------------------------------------------------------ optimizers
def test_optimizers_restart_with_jobs_in_flight_loses_and_repeats_nothing(deployment):
    dirac = deployment.dirac("alice")
    site = site_name()
    job = make_job(site, "/bin/true")
    ok(job.setParameterSequence("n", list(range(150))))
    deployment.optimizers.kill()
    first = ok(dirac.submitJob(job))
    # nobody optimizes: the jobs wait in Received (and in the durable queue)
    assert {status(dirac, first[0])["Status"], status(dirac, first[-1])["Status"]} == {
        JS.RECEIVED}
    replacement = start_system(deployment.pool, "Optimizers", deployment.env)
    second = ok(dirac.submitJob(job))
    # kill it in the middle of its work, then start another one
    wait_until(lambda: status(dirac, second[0])["Status"] == JS.WAITING, 60, "optimizing")
    replacement.kill()
    deployment.optimizers = start_system(deployment.pool, "Optimizers", deployment.env)
    for job_id in (*first, *second):
        wait_status(dirac, job_id, {JS.WAITING}, 90)
    for job_id in (*first[:20], *second):
        history = [s for s, *_ in ok(dirac.getJobLoggingInfo(job_id))]
        assert history.count(JS.WAITING) == 1, (job_id, history)
    queues = ok(MatcherClient(settings=deployment.settings["pilot"]).getActiveTaskQueues())
    assert sum(q["Jobs"] for q in queues.values() if q["Sites"] == [site]) == 300


def test_an_input_sandbox_that_cannot_be_downloaded_fails_the_job(deployment, tmp_path):
    dirac = deployment.dirac("alice")
    site = site_name()
    (tmp_path / "lost.txt").write_text(f"content unique to this test {uuid.uuid4()}\n")
    job_id = ok(dirac.submitJob(make_job(site, "/bin/cat", "lost.txt",
                                         setInputSandbox=[str(tmp_path / "lost.txt")])))
    wait_status(dirac, job_id, {JS.WAITING}, 30)
    name = ok(dirac.getJobJDL(job_id))["InputSandbox"][0]
    sha = name.rsplit("/", 1)[-1].split(".")[0]
    (deployment.workdir / "data" / "sandboxes" / sha[:2] / sha).unlink()  # the store lost it
    with agents(deployment, site, 1, "--max-jobs", "1") as (agent,):
        assert agent.wait(60) == 0
    final = status(dirac, job_id)
    assert (final["Status"], final["MinorStatus"]) == (JS.FAILED, "Input Sandbox Download")
    assert "missing from the store" in final["ApplicationStatus"]


def test_job_agent_metrics_follow_a_real_job(deployment, tmp_path):
    """``dirac-job-agent --metrics-port``: scraped while a job waits, runs and ends."""
    dirac = deployment.dirac("alice")
    site = site_name()
    go = tmp_path / "go"
    port = free_closed_port()

    def scraped() -> dict:
        with contextlib.suppress(OSError):
            return scrape(port)
        return {}

    def when(what: str, **expected: float) -> dict:
        """The first scrape where every ``name__outcome`` (or ``name``) has its value."""
        def check() -> dict:
            samples = scraped()
            for key, wanted in expected.items():
                name, _, outcome = key.partition("__")
                labels = {"outcome": outcome} if outcome else {}
                if sample_sum(samples, f"dirac_job_agent_{name}", **labels) < wanted:
                    return {}
            return samples
        return wait_until(check, 60, what)

    # no --max-jobs: the agent (and its endpoint) stays up after the jobs, until SIGTERM
    with agents(deployment, site, 1, "--metrics-port", str(port),
                "--metrics-addr", "127.0.0.1") as (agent,):
        idle = when("a 'no match' answer", match_requests_total__EWMSNOMATCH=1)
        assert sample_sum(idle, "dirac_job_agent_jobs_started_total") == 0
        assert sample_sum(idle, "dirac_job_agent_jobs_running") == 0
        assert sample_sum(idle, "dirac_job_agent_slots") == 1
        waiting = ok(dirac.submitJob(make_job(
            site, "/bin/sh", f"-c 'while [ ! -e {go} ]; do sleep 0.05; done'")))
        running = when("the job running, with heartbeats", jobs_running=1,
                       heartbeats_total__OK=2)
        assert sample_sum(running, "dirac_job_agent_jobs_started_total") == 1
        assert sample_sum(running, "dirac_job_agent_match_requests_total", outcome="OK") == 1
        assert sample_sum(running, "dirac_job_agent_jobs_finished_total") == 0
        go.touch()
        failing = ok(dirac.submitJob(make_job(site, "/bin/sh", "-c 'exit 4'")))
        wait_status(dirac, waiting, {JS.DONE})
        wait_status(dirac, failing, {JS.FAILED})
        ended = when("both jobs counted", jobs_finished_total__Done=1,
                     jobs_finished_total__Failed=1)
    assert agent.returncode == 0
    assert sample_sum(ended, "dirac_job_agent_jobs_started_total") == 2
    assert sample_sum(ended, "dirac_job_agent_jobs_running") == 0
    assert sample_sum(ended, "dirac_job_agent_match_requests_total", outcome="OK") == 2
    for outcome in ("Done", "Failed"):
        assert sample_sum(ended, "dirac_job_agent_job_duration_seconds_count", outcome=outcome) == 1
    assert sample_sum(ended, "dirac_job_agent_kill_commands_total") == 0
    # bounded labels: no job ID, site or user among them
    labels = {v for (name, lab), _ in ended.items() if name.startswith("dirac_job_agent")
              for k, v in lab if k != "le"}
    assert labels <= {"OK", "EWMSNOMATCH", "Done", "Failed", "Killed", "other"}, labels


def test_job_agent_refuses_a_bad_metrics_port():
    done = subprocess.run([str(BIN / "dirac-job-agent"), "--metrics-port", "70000"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "--metrics-port" in done.stderr

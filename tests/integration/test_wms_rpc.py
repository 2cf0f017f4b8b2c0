"""The WorkloadManagement System end to end: DIRAC's clients -> RabbitMQ -> a real
``dirac-worker WorkloadManagement --processes 2`` -> JobDB (SQLite file, then PostgreSQL).

Identities are real broker users (created with rabbitmqctl on this module's vhost and
deleted after): the caller is who the broker says it is, and owns what it submits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
from diracmq.broker.config import Settings
from diracmq.broker.derrno import ENOAUTH, EWMSJDL, EWMSSTATUS
from diracmq_testing import REPO_DIR, WorkerPool, url_vhost, url_with_vhost

from DIRAC.WorkloadManagementSystem.Client.JobManagerClient import JobManagerClient
from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient
from DIRAC.WorkloadManagementSystem.Client.JobStateUpdateClient import JobStateUpdateClient

from .wms_conftest_helpers import broker_user, error, fresh_postgres_database, ok

pytestmark = pytest.mark.timeout(300)

JDL = '[ Executable = "/bin/echo"; Arguments = "hello"; JobName = "{name}"; ]'


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def wms(request, vhost_url, private_vhost, tmp_path_factory):
    """A ``dirac-worker WorkloadManagement`` (2 processes) on a fresh JobDB of each kind."""
    workdir = tmp_path_factory.mktemp(f"wms-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            env = {"DIRAC_DATA_DIR": str(workdir / "data"), "DIRAC_JOBDB_URL": ""}
        else:
            env = {"DIRAC_JOBDB_URL": stack.enter_context(fresh_postgres_database("wmsrpc"))}
        pool = WorkerPool(vhost_url, workdir, private_vhost)
        with pytest.MonkeyPatch.context() as mp:  # the worker inherits os.environ
            for name, value in env.items():
                mp.setenv(name, value)
            pool.start("WorkloadManagement", processes=2, pythonpath=[])
        try:
            yield request.param
        finally:
            problems = pool.stop_all()
            assert not problems, problems
    if request.param == "sqlite":
        assert (workdir / "data" / "JobDB.sqlite").exists()


@pytest.fixture(scope="module")
def users(vhost_url):
    """Two real broker users on this module's vhost: name -> Settings for their clients."""
    vhost = url_vhost(vhost_url)
    with broker_user(vhost, "alice") as (alice, pw_a), broker_user(vhost, "bob") as (bob, pw_b):
        made = {}
        for name, password in ((alice, pw_a), (bob, pw_b)):
            url = url_with_vhost(f"amqp://{quote(name)}:{password}@127.0.0.1:5672/", vhost)
            made[name] = Settings.load(url=url, rpc_timeout=30.0, connect_timeout=5.0)
        yield made


def clients(settings):
    return (JobManagerClient(settings=settings), JobMonitoringClient(settings=settings),
            JobStateUpdateClient(settings=settings))


def test_submit_status_kill_and_logging(wms, settings):
    manager, monitor, updater = clients(settings)
    me = ok(monitor.whoami())["username"]
    result = manager.submitJob(JDL.format(name=f"e2e-{wms}"))
    job_id = ok(result)
    assert isinstance(job_id, int) and result["JobID"] == job_id
    assert job_id in ok(monitor.getJobs({"owner": me}))
    assert ok(monitor.getJobsStatus([job_id])) == {job_id: {"Status": "Received"}}
    attrs = ok(monitor.getJobAttributes(job_id))
    assert (attrs["Owner"], attrs["JobName"]) == (me, f"e2e-{wms}")
    assert isinstance(attrs["SubmissionTime"], dt.datetime)
    for status in ("Checking", "Waiting", "Matched", "Running"):
        assert ok(updater.setJobStatus(job_id, status, f"now {status}", "pilot")) is None
    assert ok(updater.setJobApplicationStatus(job_id, "step 1", "app")) is None
    assert ok(updater.sendHeartBeat(job_id, {"Load": 0.5}, {"Node": "wn1"})) == {}
    assert ok(monitor.getJobParameters(job_id)) == {job_id: {"Node": "wn1"}}
    refused = updater.setJobStatus(job_id, "Waiting", "", "pilot")
    assert refused["Errno"] == EWMSSTATUS and "Running to Waiting" in refused["Message"]
    assert "CallStack" not in refused
    assert ok(manager.killJob(job_id)) == [job_id]
    assert ok(updater.sendHeartBeat(job_id, {}, {})) == {"Kill": "Job is Killed"}
    assert ok(monitor.getJobsStates(job_id)) == {job_id: {
        "Status": "Killed", "MinorStatus": "Marked for termination",
        "ApplicationStatus": "step 1"}}
    log = ok(monitor.getJobLoggingInfo(job_id))
    assert [r[0] for r in log] == ["Received", "Checking", "Waiting", "Matched", "Running",
                                   "Running", "Killed"]
    assert log[0][4] == "JobManager" and log[1][4] == "pilot"
    assert all(isinstance(r, tuple) and isinstance(r[3], dt.datetime) for r in log)
    assert [r[3] for r in log] == sorted(r[3] for r in log)
    assert ok(manager.deleteJob([str(job_id)])) == [job_id]
    assert ok(monitor.getJobAttribute(job_id, "Status")) == "Deleted"


def test_parametric_and_malformed_submissions(wms, settings):
    manager, monitor, _ = clients(settings)
    result = manager.submitJob('[ Executable = "x"; JobName = "par-%s"; '
                               'Parameters = {"a", "b", "c", "d"} ]')
    ids = ok(result)
    assert result["JobID"] == ids and len(set(ids)) == 4
    names = ok(monitor.getJobsSummary(ids))
    assert sorted(names[i]["JobName"] for i in ids) == ["par-a", "par-b", "par-c", "par-d"]
    bad = manager.submitJob('[ Executable = "x"; Arguments = "unterminated ]')
    assert bad["Errno"] == EWMSJDL and "unterminated string" in bad["Message"]
    assert "JobID" not in bad and "CallStack" not in bad


def test_monitoring_summaries(wms, settings):
    manager, monitor, _ = clients(settings)
    me = ok(monitor.whoami())["username"]
    ids = [ok(manager.submitJob(JDL.format(name=f"web{n}"))) for n in range(3)]
    page = ok(monitor.getJobPageSummaryWeb({"Owner": me, "JobName": ["web0", "web1", "web2"]},
                                           [["JobID", "DESC"]], 0, 2))
    assert page["TotalRecords"] == 3 and [r[0] for r in page["Records"]] == ids[::-1][:2]
    assert page["Extras"] == {"Received": 3}
    assert ok(monitor.getJobStats("JobName", {"JobName": "web1"})) == {"web1": 1}
    assert me in ok(monitor.getOwners())
    assert "Received" in ok(monitor.getStates())
    counters = ok(monitor.getCounters(["JobName"], {"JobName": ["web0", "web2"]}))
    assert counters == [({"JobName": "web0"}, 1), ({"JobName": "web2"}, 1)]
    assert ok(monitor.getJobs({"JobName": "web0"}, "2000-01-01 00:00:00")) == [ids[0]]


def test_each_user_owns_and_controls_only_its_jobs(wms, users):
    (alice, a_settings), (bob, b_settings) = users.items()
    a_manager, a_monitor, a_updater = clients(a_settings)
    b_manager, b_monitor, b_updater = clients(b_settings)
    assert ok(a_monitor.whoami())["username"] == alice
    assert ok(b_monitor.whoami())["username"] == bob
    a_jobs = [ok(a_manager.submitJob(JDL.format(name="alice-job"))) for _ in range(2)]
    b_job = ok(b_manager.submitJob(JDL.format(name="bob-job")))
    assert ok(a_monitor.getJobs({"owner": alice})) == a_jobs
    assert ok(b_monitor.getJobs({"Owner": bob})) == [b_job]
    assert ok(a_monitor.getJobAttributes(b_job, ["Owner"])) == {"Owner": bob}
    # bob may not touch alice's jobs
    for method in ("killJob", "deleteJob", "rescheduleJob", "resetJob"):
        refused = getattr(b_manager, method)(a_jobs)
        assert refused["OK"] is False and refused["NonauthorizedJobIDs"] == a_jobs, method
    denied = b_updater.setJobStatus(a_jobs[0], "Checking", "", "bob")
    assert denied["Errno"] == ENOAUTH
    mixed = b_manager.killJob([b_job, a_jobs[0], "bogus"])
    assert mixed["NonauthorizedJobIDs"] == [a_jobs[0]] and mixed["InvalidJobIDs"] == ["bogus"]
    assert "FailedJobIDs" not in mixed
    assert ok(a_monitor.getJobsStatus(a_jobs)) == {j: {"Status": "Received"} for j in a_jobs}
    # alice may
    assert ok(a_updater.setJobStatus(a_jobs[0], "Checking", "", "alice")) is None
    assert ok(a_manager.killJob(a_jobs)) == a_jobs
    # the web summary shows each user its own jobs
    a_page = ok(a_monitor.getJobPageSummaryWeb({}, [], 0, 100))
    assert sorted(r[0] for r in a_page["Records"]) == a_jobs


def test_the_seed_script_lists_the_callers_jobs(wms, users, tmp_path):
    name, settings = next(iter(users.items()))
    manager, monitor, _ = clients(settings)
    submitted = ok(manager.submitJob(JDL.format(name="seed")))
    expected = ok(monitor.getJobs({"owner": name}))
    assert submitted in expected
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DIRAC_", "DIRACTEST_", "PYTHONPATH"))}
    env["DIRAC_BROKER_URL"] = settings.url
    done = subprocess.run([sys.executable, str(REPO_DIR / "examples" / "seed_list_jobs.py")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Job IDs for {name} are: {expected}\n"


def test_concurrent_clients_never_duplicate_a_job(wms, settings):
    manager, monitor, _ = clients(settings)

    def work(n):
        ids = [ok(manager.submitJob(JDL.format(name=f"conc{n}"))) for _ in range(10)]
        ok(manager.killJob(ids[::2]))
        return ids

    with ThreadPoolExecutor(6) as pool:
        chunks = list(pool.map(work, range(6)))
    ids = [i for chunk in chunks for i in chunk]
    assert len(ids) == len(set(ids)) == 60
    states = ok(monitor.getJobsStatus(ids))
    killed = {i for chunk in chunks for i in chunk[::2]}
    assert {i for i, s in states.items() if s["Status"] == "Killed"} == killed
    assert {i for i, s in states.items() if s["Status"] == "Received"} == set(ids) - killed
    for n, chunk in enumerate(chunks):
        assert ok(monitor.getJobs({"JobName": f"conc{n}"})) == sorted(chunk)


def test_bad_arguments_over_the_wire(wms, settings):
    manager, monitor, updater = clients(settings)
    assert error(manager.submitJob(42))["Message"].startswith("Type mismatch in parameter 0")
    assert "Unknown job attribute" in error(monitor.getJobs({"colour": "red"}))["Message"]
    assert error(updater.setJobStatus(99999999, "Running", "", "x"))["Message"].endswith(
        "Job 99999999 not found)")

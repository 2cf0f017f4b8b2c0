"""The InputData optimizer's database side on SQLite and PostgreSQL: the chain of a job
with InputData, its failures (data missing, no candidate site, an unreachable
catalogue retried then failed), and submission refusing bad data attributes.

The catalogue here is a stand-in answering ``getReplicasForJobs`` from a dict (the
step's logic against a real JobDB); tests/integration/test_jobs_data_e2e.py runs the
same path against a real ``dirac-worker DataManagement`` through the broker.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from diracmq.broker.returnvalues import S_ERROR, S_OK

from DIRAC.WorkloadManagementSystem.Client import JobStatus as JS
from DIRAC.WorkloadManagementSystem.DB.JobDB import JobDB, jobsTable
from DIRAC.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB
from DIRAC.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB
from DIRAC.WorkloadManagementSystem.Executor import InputData
from DIRAC.WorkloadManagementSystem.Executor.Optimizers import JobOptimizer

from . import wms_conftest_helpers as helpers
from .wms_conftest_helpers import error, ok

jobdb_url = helpers.jobdb_url
postgres_url = helpers.postgres_url

pytestmark = pytest.mark.timeout(240)

CONFIG = {"Resources": {"Sites": {"LCG": {
    "LCG.CERN.cern": {"SE": ["CERN-DISK"]},
    "LCG.IN2P3.fr": {"SE": "IN2P3-DISK, IN2P3-USER"}}}}}


class Catalogue:
    """``getReplicasForJobs`` from ``files`` ({lfn: [SE]}); ``down``: S_ERROR instead."""

    def __init__(self, files: dict[str, list[str]]) -> None:
        self.files = files
        self.down = False
        self.calls = 0

    def getReplicasForJobs(self, lfns, allStatus=False, timeout=None):
        self.calls += 1
        if self.down:
            return S_ERROR("No worker serves DataManagement/FileCatalog")
        return S_OK({"Successful": {lfn: {se: f"diracmq://{se}{lfn}" for se in self.files[lfn]}
                                    for lfn in lfns if lfn in self.files},
                     "Failed": {lfn: "No such file or directory" for lfn in lfns
                                if lfn not in self.files}})


@pytest.fixture
def setup(jobdb_url, tmp_path, monkeypatch):
    """(JobDB, TaskQueueDB, JobOptimizer, Catalogue), sites from CONFIG."""
    from DIRAC.Core.Utilities import SiteSEMapping

    real = SiteSEMapping.getSiteSEMapping
    monkeypatch.setattr(SiteSEMapping, "getSiteSEMapping",
                        lambda tree=None: real(CONFIG if tree is None else tree))
    db = JobDB(jobdb_url)
    tq, sb = TaskQueueDB(db), SandboxMetadataDB(db, tmp_path / "sandboxes")
    tq.dropTables()
    sb.dropTables()
    catalogue = Catalogue({"/vo/data/a": ["CERN-DISK"], "/vo/data/b": ["CERN-DISK",
                                                                         "IN2P3-DISK"],
                           "/vo/data/c": ["IN2P3-USER"], "/vo/data/free": ["SE-USER"]})
    optimizer = JobOptimizer(db, tq, sb, lease=60, catalog=catalogue)
    ok(optimizer.initialize())
    yield db, tq, optimizer, catalogue
    tq.dropTables()
    sb.dropTables()


def submit(db, extra):
    return ok(db.submitJob(f'[Executable = "/bin/true"; {extra}]', "alice", "users"))


def attrs(db, job):
    return ok(db.getJobAttributes(job, ["Status", "MinorStatus", "ApplicationStatus"]))


def params(db, job):
    return ok(db.getJobParameters([job]))[job]


def test_a_job_with_input_data_goes_through_inputdata_to_the_sites_holding_it(setup):
    db, tq, optimizer, _ = setup
    job = submit(db, 'InputData = {"LFN:/vo/data/a", "/vo/data/b"};')
    assert ok(optimizer.optimizeJob(job)) == JS.WAITING
    minors = [m for _, m, *_ in ok(db.getJobLoggingInfo(job))]
    assert minors[-3:] == [InputData.INPUT_DATA, "JobScheduling", "Pilot Agent Submission"]
    values = params(db, job)
    assert values["OptimizerChain"] == "JobPath,JobSanity,InputData,JobScheduling"
    assert values["InputDataSites"] == '["LCG.CERN.cern"]'
    (queue,) = ok(tq.getActiveTaskQueues()).values()
    assert queue["Sites"] == ["LCG.CERN.cern"]


def test_a_job_without_input_data_keeps_the_short_chain(setup):
    db, _, optimizer, catalogue = setup
    job = submit(db, "")
    assert ok(optimizer.optimizeJob(job)) == JS.WAITING
    assert params(db, job)["OptimizerChain"] == "JobPath,JobSanity,JobScheduling"
    assert catalogue.calls == 0


def test_data_at_no_configured_site_does_not_restrict_the_job(setup):
    db, tq, optimizer, _ = setup
    job = submit(db, 'InputData = "/vo/data/free";')
    assert ok(optimizer.optimizeJob(job)) == JS.WAITING
    (queue,) = ok(tq.getActiveTaskQueues()).values()
    assert queue["Sites"] == []


def test_missing_input_data_fails_the_job_naming_the_files(setup):
    db, tq, optimizer, _ = setup
    job = submit(db, 'InputData = {"/vo/data/a", "/vo/data/nope", "/vo/data/gone"};')
    assert ok(optimizer.optimizeJob(job)) == JS.FAILED
    info = attrs(db, job)
    assert (info["Status"], info["MinorStatus"]) == (JS.FAILED, "InputData optimizer")
    last = ok(db.getJobLoggingInfo(job))[-1]
    assert last[2].startswith("Input data not available")
    assert "/vo/data/nope" in last[2] and "/vo/data/gone" in last[2]
    assert "/vo/data/a " not in last[2]
    assert ok(tq.getActiveTaskQueues()) == {}


@pytest.mark.parametrize(("extra", "reason"), [
    ('Site = "LCG.IN2P3.fr";', "the input data are at LCG.CERN.cern"),
    ('BannedSites = {"LCG.CERN.cern"};', "every site holding the input data"),
])
def test_no_site_left_for_the_data_fails_in_jobscheduling(setup, extra, reason):
    db, tq, optimizer, _ = setup
    job = submit(db, f'InputData = "/vo/data/a"; {extra}')
    assert ok(optimizer.optimizeJob(job)) == JS.FAILED
    info = attrs(db, job)
    assert info["MinorStatus"] == "JobScheduling optimizer"
    assert "No candidate sites available" in info["ApplicationStatus"]
    assert reason in info["ApplicationStatus"]
    assert ok(tq.getActiveTaskQueues()) == {}


def test_files_at_no_common_site_fail_the_job(setup):
    db, _, optimizer, _ = setup
    job = submit(db, 'InputData = {"/vo/data/a", "/vo/data/c"};')
    assert ok(optimizer.optimizeJob(job)) == JS.FAILED
    assert "no site holds all the input data" in attrs(db, job)["ApplicationStatus"]


def test_a_requested_site_holding_the_data_is_kept(setup):
    db, tq, optimizer, _ = setup
    job = submit(db, 'InputData = "/vo/data/b"; Site = {"LCG.IN2P3.fr", "LCG.Other.org"};')
    assert ok(optimizer.optimizeJob(job)) == JS.WAITING
    (queue,) = ok(tq.getActiveTaskQueues()).values()
    assert queue["Sites"] == ["LCG.IN2P3.fr"]


def _age(db, job):
    """Make the job look left by an optimizer long ago (past the lease)."""
    with db.engine.begin() as conn:
        conn.execute(sa.update(jobsTable).where(jobsTable.c.JobID == job).values(
            LastUpdateTime=dt.datetime(2000, 1, 1)))


def test_an_unreachable_catalogue_leaves_the_job_for_a_retry_then_fails_it(setup,
                                                                             monkeypatch):
    db, _, optimizer, catalogue = setup
    monkeypatch.setattr("DIRAC.WorkloadManagementSystem.Executor.Optimizers.MAX_WAIT", 600)
    catalogue.down = True
    job = submit(db, 'InputData = "/vo/data/a";')
    assert ok(optimizer.optimizeJob(job)) is None  # left for later
    info = attrs(db, job)
    assert (info["Status"], info["MinorStatus"]) == (JS.CHECKING, "InputData")
    assert info["ApplicationStatus"].startswith("waiting for the file catalogue (since ")
    assert job not in ok(optimizer.jobsToRecover())  # within the lease: nobody takes it
    _age(db, job)
    assert job in ok(optimizer.jobsToRecover())
    # the catalogue is back: the retry goes through
    catalogue.down = False
    optimizer._catalogDown = None  # as CATALOG_BACKOFF seconds later
    assert ok(optimizer.optimizeJob(job)) == JS.WAITING
    assert attrs(db, job)["ApplicationStatus"] == "Input data resolved"
    assert params(db, job)["InputDataWaitingSince"] == ""
    # another job with the catalogue down for good: retried while within MAX_WAIT ...
    catalogue.down = True
    other = submit(db, 'InputData = "/vo/data/a";')
    for _ in range(3):
        assert ok(optimizer.optimizeJob(other)) is None
        _age(db, other)
        optimizer._catalogDown = None
    since = params(db, other)["InputDataWaitingSince"]
    assert since  # the first failure's time, kept
    # ... then failed once it waited longer
    monkeypatch.setattr("DIRAC.WorkloadManagementSystem.Executor.Optimizers.MAX_WAIT", 0)
    assert ok(optimizer.optimizeJob(other)) == JS.FAILED
    info = attrs(db, other)
    assert info["MinorStatus"] == "InputData optimizer"
    assert "the file catalogue has not answered for" in info["ApplicationStatus"]
    assert "No worker serves" in info["ApplicationStatus"]


def test_while_the_catalogue_is_down_jobs_do_not_each_wait_for_it(setup):
    db, _, optimizer, catalogue = setup
    catalogue.down = True
    jobs = [submit(db, 'InputData = "/vo/data/a";') for _ in range(3)]
    for job in jobs:
        assert ok(optimizer.optimizeJob(job)) is None
        assert attrs(db, job)["MinorStatus"] == "InputData"
    assert catalogue.calls == 1  # the next two were put back at once
    assert "No worker serves" in attrs(db, jobs[2])["ApplicationStatus"]


@pytest.mark.parametrize(("extra", "reason"), [
    ('InputData = "vo/data/a";', "invalid InputData"),
    ('InputData = "/vo/../etc";', "invalid InputData"),
    ('OutputData = "../out";', "invalid OutputData"),
    ('OutputData = "LFN:relative";', "invalid OutputData"),
    ('OutputData = "o"; OutputPath = "a/../../b";', "invalid OutputPath"),
    ('OutputData = "o"; OutputSE = "bad SE name";', "invalid OutputSE"),
])
def test_submission_refuses_bad_data_attributes(setup, extra, reason):
    db = setup[0]
    refused = error(db.submitJob(f'[Executable = "/bin/true"; {extra}]', "alice", "users"))
    assert reason in refused["Message"]

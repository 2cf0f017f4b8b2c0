"""The job path's database side on SQLite and PostgreSQL: the optimizer chain (every
state, every failure branch, exactly once under concurrency, recovery of jobs left in
Checking), the TaskQueueDB (requirements, fair shares, atomic matching under
concurrent matchers), the StalledJobAgent and the sandbox records.

No broker here: these are the transactions the Optimizers, Matcher and SandboxStore
services run (tests/integration/test_jobs_e2e.py drives them through the broker).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from diracmq.broker.derrno import EVALUE, EWMSNOMATCH

from DIRAC.Interfaces.API.Job import Job
from DIRAC.WorkloadManagementSystem.Agent.StalledJobAgent import StalledJobAgent
from DIRAC.WorkloadManagementSystem.Client import JobStatus as JS
from DIRAC.WorkloadManagementSystem.DB.JobDB import JobDB, jobsTable
from DIRAC.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB
from DIRAC.WorkloadManagementSystem.DB.TaskQueueDB import TaskQueueDB, taskQueueJobsTable
from DIRAC.WorkloadManagementSystem.Executor.Optimizers import JobOptimizer

from . import wms_conftest_helpers as helpers
from .wms_conftest_helpers import error, ok

jobdb_url = helpers.jobdb_url
postgres_url = helpers.postgres_url

pytestmark = pytest.mark.timeout(240)

RESOURCE = {"Site": "LCG.CERN.cern", "CPUTime": 100000, "Tag": [], "NumberOfProcessors": 1}


@pytest.fixture
def dbs(jobdb_url, tmp_path):
    """(JobDB, TaskQueueDB, SandboxMetadataDB, JobOptimizer) on a fresh database."""
    db = JobDB(jobdb_url)
    tq, sb = TaskQueueDB(db), SandboxMetadataDB(db, tmp_path / "sandboxes")
    tq.dropTables()
    sb.dropTables()
    optimizer = JobOptimizer(db, tq, sb, lease=60)
    ok(optimizer.initialize())
    yield db, tq, sb, optimizer
    tq.dropTables()
    sb.dropTables()


def submit(db, jdl='[Executable = "/bin/true";]', owner="alice", group="users"):
    return ok(db.submitJob(jdl, owner, group))


def history(db, job_id):
    return [(s, m) for s, m, *_ in ok(db.getJobLoggingInfo(job_id))]


def attrs(db, job_id):
    return ok(db.getJobAttributes(job_id, ["Status", "MinorStatus", "ApplicationStatus",
                                           "Site"]))


# ------------------------------------------------------------------ optimizers
def test_chain_takes_a_job_from_received_to_waiting_in_its_task_queue(dbs):
    db, tq, _, optimizer = dbs
    job = submit(db, '[Executable = "/bin/true"; Site = {"LCG.CERN.cern", "LCG.IN2P3.fr"}; '
                     'BannedSites = "LCG.IN2P3.fr"; CPUTime = 500; Tags = {"GPU"};]')
    assert ok(optimizer.optimizeJob(job)) == JS.WAITING
    assert history(db, job) == [
        (JS.RECEIVED, "Job accepted"), (JS.CHECKING, "JobSanity"),
        (JS.CHECKING, "JobScheduling"), (JS.WAITING, "Pilot Agent Submission")]
    params = ok(db.getJobParameters([job]))[job]
    assert params["OptimizerChain"] == "JobPath,JobSanity,JobScheduling"
    assert '"Sites": ["LCG.CERN.cern"]' in params["JobRequirements"]
    assert "JobRequirements" in ok(db.getJobJDL(job))
    (queue,) = ok(tq.getActiveTaskQueues()).values()
    assert queue["Sites"] == ["LCG.CERN.cern"] and queue["BannedSites"] == ["LCG.IN2P3.fr"]
    assert queue["CPUTime"] == 500 and queue["Tags"] == ["GPU"] and queue["Jobs"] == 1
    # a second run (a redelivered announcement) changes nothing
    assert ok(optimizer.optimizeJob(job)) is None
    assert len(history(db, job)) == 4


@pytest.mark.parametrize(("jdl", "step", "reason"), [
    ('[Executable = "/bin/true"; InputSandbox = {"local.txt"};]', "JobSanity",
     "was not uploaded"),
    ('[Executable = "/bin/true"; InputSandbox = {"SB:SandboxSE|/SandBox/x/y.tar"};]',
     "JobSanity", "does not exist"),
    ('[Executable = "/bin/true"; Site = "A.B.c"; BannedSites = {"A.B.c"};]', "JobScheduling",
     "Impossible site requirement"),
])
@pytest.mark.parametrize("batch", [False, True], ids=["alone", "in-a-batch"])
def test_each_optimizer_failure_fails_the_job_saying_why(dbs, jdl, step, reason, batch):
    db, tq, _, optimizer = dbs
    job = submit(db, jdl)
    if batch:  # with good jobs before and after it in the batch's transaction
        good = [submit(db), job, submit(db)]
        outcome = ok(optimizer.optimizeJobs(good))
        assert [ok(outcome[j]) for j in good] == [JS.WAITING, JS.FAILED, JS.WAITING]
        for other in (good[0], good[2]):
            assert [s for s, _ in history(db, other)] == [
                JS.RECEIVED, JS.CHECKING, JS.CHECKING, JS.WAITING]
            assert ok(db.getJobParameters([other]))[other]["OptimizerChain"]
        assert len(history(db, job)) == (4 if step == "JobScheduling" else 3)
        ok(tq.deleteJobs([good[0], good[2]]))
    else:
        assert ok(optimizer.optimizeJob(job)) == JS.FAILED
    info = attrs(db, job)
    assert (info["Status"], info["MinorStatus"]) == (JS.FAILED, f"{step} optimizer")
    assert reason in info["ApplicationStatus"]
    last = ok(db.getJobLoggingInfo(job))[-1]
    assert last[0] == JS.FAILED and reason in last[2] and last[4] == step
    assert ok(tq.getActiveTaskQueues()) == {}


def test_input_sandbox_must_be_the_owners_and_is_assigned_to_the_job(dbs, tmp_path):
    db, _, sb, optimizer = dbs
    name_of = {}
    for owner, content in (("alice", b"alice's"), ("bob", b"bob's")):
        import hashlib

        sha = hashlib.sha256(content).hexdigest()
        started = ok(sb.initiateUpload(sha, len(content), owner, "users"))
        ok(sb.uploadChunk(started["UploadID"], 0, content, owner))
        name_of[owner] = ok(sb.finishUpload(started["UploadID"], owner))
    mine = submit(db, f'[Executable = "x"; InputSandbox = {{"{name_of["alice"]}"}};]')
    assert ok(optimizer.optimizeJob(mine)) == JS.WAITING
    assert ok(sb.getSandboxesAssignedToEntity(f"Job:{mine}")) == [
        (name_of["alice"], "Input", len(b"alice's"))]
    stolen = submit(db, f'[Executable = "x"; InputSandbox = {{"{name_of["bob"]}"}};]')
    assert ok(optimizer.optimizeJob(stolen)) == JS.FAILED
    assert "not the job owner's" in attrs(db, stolen)["ApplicationStatus"]


def test_a_job_is_optimized_exactly_once_by_concurrent_optimizers(dbs):
    db, tq, sb, _ = dbs
    jobs = [submit(db) for _ in range(30)]
    optimizers = [JobOptimizer(db, tq, sb, lease=60) for _ in range(4)]
    outcomes: Counter = Counter()
    lock = threading.Lock()

    def work(optimizer):
        for job in jobs:
            value = ok(optimizer.optimizeJob(job))
            with lock:
                outcomes[value] += 1

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, optimizers))
    assert outcomes[JS.WAITING] == len(jobs) and outcomes[None] == 3 * len(jobs)
    for job in jobs:
        assert [s for s, _ in history(db, job)].count(JS.WAITING) == 1
    assert sum(q["Jobs"] for q in ok(tq.getActiveTaskQueues()).values()) == len(jobs)


def test_a_job_left_in_checking_is_taken_over_after_the_lease_only(dbs):
    db, tq, sb, _ = dbs
    job = submit(db)
    ok(db.setJobStatus(job, JS.CHECKING, "JobSanity", "a dead optimizer"))
    patient = JobOptimizer(db, tq, sb, lease=3600)
    assert ok(patient.optimizeJob(job)) is None  # somebody else's, still within its lease
    assert job not in ok(patient.jobsToRecover())
    eager = JobOptimizer(db, tq, sb, lease=0)
    assert job in ok(eager.jobsToRecover())
    assert ok(eager.optimizeJob(job)) == JS.WAITING


def test_killed_while_checking_is_left_killed(dbs):
    db, tq, sb, optimizer = dbs
    job = submit(db)
    ok(db.killJob(job))
    assert ok(optimizer.optimizeJob(job)) is None
    assert attrs(db, job)["Status"] == JS.KILLED


# ------------------------------------------------------------------ matching
def waiting(db, optimizer, jdl='[Executable = "/bin/true"; CPUTime = 100;]', owner="alice",
            group="users"):
    job = submit(db, jdl, owner, group)
    assert ok(optimizer.optimizeJob(job)) == JS.WAITING
    return job


def test_matching_respects_sites_bans_tags_cpu_and_processors(dbs):
    db, tq, _, optimizer = dbs
    site_job = waiting(db, optimizer, '[Executable = "x"; Site = "LCG.IN2P3.fr";]')
    banned = waiting(db, optimizer, '[Executable = "x"; BannedSites = {"LCG.CERN.cern"};]')
    tagged = waiting(db, optimizer, '[Executable = "x"; Tags = {"GPU"};]')
    long_job = waiting(db, optimizer, '[Executable = "x"; CPUTime = 200000;]')
    multi = waiting(db, optimizer, '[Executable = "x"; NumberOfProcessors = 4;]')
    plain = waiting(db, optimizer, '[Executable = "x"; CPUTime = 10;]')
    got = ok(tq.matchAndGetJob(RESOURCE))
    assert got["JobID"] == plain
    assert error(tq.matchAndGetJob(RESOURCE))["Errno"] == EWMSNOMATCH
    assert attrs(db, plain)["Status"] == JS.MATCHED
    assert attrs(db, plain)["Site"] == "LCG.CERN.cern"
    assert ok(tq.matchAndGetJob(dict(RESOURCE, Site="LCG.IN2P3.fr")))["JobID"] in (
        site_job, banned)
    assert ok(tq.matchAndGetJob(dict(RESOURCE, Tag=["GPU"])))["JobID"] in (tagged, banned,
                                                                           site_job)
    assert ok(tq.matchAndGetJob(dict(RESOURCE, CPUTime=10 ** 6, NumberOfProcessors=8)))
    left = {long_job, multi, site_job, banned, tagged} - {
        j for j in (long_job, multi, site_job, banned, tagged)
        if attrs(db, j)["Status"] == JS.MATCHED}
    assert len(left) == 2
    assert error(tq.matchAndGetJob({"Site": 3}))["Errno"] == EVALUE
    assert error(tq.matchAndGetJob("not a dict"))["Errno"] == EVALUE


def test_fair_share_one_users_many_jobs_do_not_starve_another(dbs):
    db, tq, _, optimizer = dbs
    for _ in range(60):
        waiting(db, optimizer, owner="hog")
    small = {waiting(db, optimizer, owner="small") for _ in range(5)}
    first = [ok(tq.matchAndGetJob(RESOURCE))["JobID"] for _ in range(20)]
    # uniform over owners: P(none of small's 5 in 20 draws) is about 1e-3
    assert len(small & set(first)) >= 2


def test_a_killed_waiting_job_is_never_matched(dbs):
    db, tq, _, optimizer = dbs
    job = waiting(db, optimizer)
    ok(db.killJob(job))
    assert error(tq.matchAndGetJob(RESOURCE))["Errno"] == EWMSNOMATCH
    assert db._run(lambda c: c.scalar(sa.select(sa.func.count()).select_from(
        taskQueueJobsTable)), write=False) == 0


def test_concurrent_matchers_never_get_the_same_job(dbs):
    db, tq, _, optimizer = dbs
    jobs = {waiting(db, optimizer, owner=f"user{n % 3}") for n in range(60)}
    got: list[int] = []
    lock = threading.Lock()

    def matcher():
        while True:
            result = tq.matchAndGetJob(RESOURCE)
            if not result["OK"]:
                assert result["Errno"] == EWMSNOMATCH, result
                return
            with lock:
                got.append(result["Value"]["JobID"])

    threads = [threading.Thread(target=matcher) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(jobs)
    for job in jobs:
        assert [s for s, _ in history(db, job)].count(JS.MATCHED) == 1


def test_bulk_matching_gives_up_to_count_jobs_each_once(dbs):
    db, tq, _, optimizer = dbs
    plain = {waiting(db, optimizer, owner=f"user{n % 2}") for n in range(5)}
    multi = waiting(db, optimizer, '[Executable = "x"; NumberOfProcessors = 3;]')
    # 4 free slots: the 3-processor job fits the first or second match only
    first = ok(tq.matchAndGetJobs(dict(RESOURCE, NumberOfProcessors=4), 4))
    assert len(first) == 4 and len({m["JobID"] for m in first}) == 4
    assert all(m["JDL"] and m["Owner"] for m in first)
    assert multi not in {m["JobID"] for m in first[2:]}
    for match in first:
        assert attrs(db, match["JobID"])["Status"] == JS.MATCHED
    rest = ok(tq.matchAndGetJobs(dict(RESOURCE, NumberOfProcessors=8), 10))
    assert {m["JobID"] for m in first + rest} == plain | {multi}
    assert ok(tq.matchAndGetJobs(RESOURCE, 3)) == []
    for bad in (0, 1001, "2", True):
        assert error(tq.matchAndGetJobs(RESOURCE, bad))["Errno"] == EVALUE
    assert error(tq.matchAndGetJobs({"Site": 3}, 2))["Errno"] == EVALUE


def test_concurrent_bulk_matchers_never_get_the_same_job(dbs):
    db, tq, _, optimizer = dbs
    jobs = {waiting(db, optimizer, owner=f"user{n % 3}") for n in range(60)}
    got: list[int] = []
    lock = threading.Lock()

    def matcher():
        while True:
            found = ok(tq.matchAndGetJobs(dict(RESOURCE, NumberOfProcessors=4), 4))
            if not found:
                return
            with lock:
                got.extend(m["JobID"] for m in found)

    threads = [threading.Thread(target=matcher) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(jobs)


# ------------------------------------------------------------------ stalled
def test_stalled_job_agent_marks_silent_jobs_stalled_then_failed(dbs):
    db, tq, _, optimizer = dbs
    silent = waiting(db, optimizer)
    alive = waiting(db, optimizer)
    for job in (silent, alive):
        ok(tq.matchAndGetJob(RESOURCE))
        ok(db.setJobStatus(job, JS.RUNNING, "Application", "agent"))
    old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=1)
    db._run(lambda c: c.execute(sa.update(jobsTable).where(jobsTable.c.JobID == silent)
                                .values(HeartBeatTime=old, LastUpdateTime=old)))
    agent = StalledJobAgent(db, stalledTime=600, failedTime=600, matchedTime=600)
    assert ok(agent.execute()) == {"Stalled": 1, "Failed": 0}
    assert attrs(db, silent)["Status"] == JS.STALLED
    assert attrs(db, alive)["Status"] == JS.RUNNING
    # a heartbeat brings it back; silence again -> Stalled; then Failed after failedTime
    ok(db.setHeartBeat(silent, {}, {}))
    assert attrs(db, silent)["Status"] == JS.RUNNING
    db._run(lambda c: c.execute(sa.update(jobsTable).where(jobsTable.c.JobID == silent)
                                .values(HeartBeatTime=old, LastUpdateTime=old)))
    ok(agent.execute())
    assert attrs(db, silent)["Status"] == JS.STALLED
    db._run(lambda c: c.execute(sa.update(jobsTable).where(jobsTable.c.JobID == silent)
                                .values(LastUpdateTime=old)))
    assert ok(agent.execute())["Failed"] == 1
    info = attrs(db, silent)
    assert info["Status"] == JS.FAILED and info["MinorStatus"].startswith("Stalling for")


# ------------------------------------------------------------------ sandboxes
def test_sandbox_upload_checks_size_checksum_and_ownership(dbs):
    import hashlib

    db, _, sb, _ = dbs
    data = b"x" * 1000
    sha = hashlib.sha256(data).hexdigest()
    assert error(sb.initiateUpload("nothex", 10, "alice", ""))["Errno"] == EVALUE
    assert error(sb.initiateUpload(sha, 1 << 40, "alice", ""))["Errno"] == EVALUE
    started = ok(sb.initiateUpload(sha, len(data), "alice", ""))
    assert error(sb.uploadChunk(started["UploadID"], 0, data, "bob"))  # not bob's upload
    assert error(sb.uploadChunk(started["UploadID"], 990, data[:20], "alice"))  # past the end
    ok(sb.uploadChunk(started["UploadID"], 0, data[:500], "alice"))
    assert "incomplete" in error(sb.finishUpload(started["UploadID"], "alice"))["Message"]
    ok(sb.uploadChunk(started["UploadID"], 500, data[500:], "alice"))
    name = ok(sb.finishUpload(started["UploadID"], "alice"))
    assert ok(sb.initiateUpload(sha, len(data), "alice", "")) == {"Exists": True,
                                                                 "Sandbox": name}
    # bob uploading the same content gets his own record (and learns nothing)
    assert ok(sb.initiateUpload(sha, len(data), "bob", ""))["Exists"] is False
    # a user cannot open uploads without end (each may grow to the size limit on disk)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIRAC_SANDBOX_MAX_UPLOADS", "3")
        for _ in range(2):
            ok(sb.initiateUpload(sha, len(data), "carol", ""))
        ok(sb.initiateUpload(sha, len(data), "mallory", ""))
        ok(sb.initiateUpload(sha, len(data), "carol", ""))
        assert "uploads in progress" in error(sb.initiateUpload(sha, 10, "carol", ""))[
            "Message"]
    job = submit(db)
    assert error(sb.assignSandboxesToEntities({f"Job:{job}": [(name, "Input")]}, owner="bob"))
    ok(sb.assignSandboxesToEntities({f"Job:{job}": [(name, "Input")]}, owner="alice"))
    assert ok(sb.readChunk(sha, 10, 5)) == b"xxxxx"
    assert sb.blobPath(sha).exists()
    assert ok(sb.unassignEntities([f"Job:{job}"])) == 1
    assert not sb.blobPath(sha).exists()


def _upload(sb, data, owner, chunks):
    """Upload ``data`` as ``owner`` in chunks of the given sizes (in this order)."""
    import hashlib

    started = ok(sb.initiateUpload(hashlib.sha256(data).hexdigest(), len(data), owner, ""))
    if started["Exists"]:
        return started["Sandbox"]
    offset = 0
    for size in chunks:
        ok(sb.uploadChunk(started["UploadID"], offset, data[offset:offset + size], owner))
        offset += size
    return ok(sb.finishUpload(started["UploadID"], owner))


def test_database_sandbox_store_round_trip_dedup_and_removal(jobdb_url, tmp_path):
    """DIRAC_SANDBOX_BACKEND=db: contents are rows of the JobDB's database."""
    import hashlib
    import os

    from DIRAC.WorkloadManagementSystem.DB import SandboxMetadataDB as module

    db = JobDB(jobdb_url)
    sb = SandboxMetadataDB(db, tmp_path / "unused", backend="db")
    sb.dropTables()
    ok(sb.initialize())
    assert not (tmp_path / "unused").exists()  # nothing on disk
    chunk = module.CHUNK_SIZE
    data = os.urandom(2 * chunk + 12345)  # three content rows, the last one short
    sha = hashlib.sha256(data).hexdigest()
    # chunks not aligned with the content rows, sent out of order, one sent twice
    started = ok(sb.initiateUpload(sha, len(data), "alice", "users"))
    upload = started["UploadID"]
    pieces = [(0, 700_000), (700_000, chunk), (700_000 + chunk, len(data) - 700_000 - chunk)]
    for offset, size in reversed(pieces):
        ok(sb.uploadChunk(upload, offset, data[offset:offset + size], "alice"))
    ok(sb.uploadChunk(upload, 0, data[:700_000], "alice"))  # a retry replaces itself
    # a chunk overlapping another is refused (an upload never stores more than its size)
    assert "overlaps" in error(sb.uploadChunk(upload, 100, data[100:200], "alice"))["Message"]
    name = ok(sb.finishUpload(upload, "alice"))
    assert sb.hasContent(sha)
    rows = db._run(lambda c: c.execute(sa.select(module.contentChunksTable.c.Seq,
                                                 sa.func.length(module.contentChunksTable.c.Data))
                                       .order_by(module.contentChunksTable.c.Seq)).all(),
                   write=False)
    assert [tuple(r) for r in rows] == [(0, chunk), (1, chunk), (2, 12345)]
    assert db._run(lambda c: c.scalar(sa.select(sa.func.count()).select_from(
        module.uploadChunksTable)), write=False) == 0  # the upload's rows are gone
    # reads across row boundaries, past the end, of a whole content
    assert ok(sb.readChunk(sha, chunk - 10, 30)) == data[chunk - 10:chunk + 20]
    assert ok(sb.readChunk(sha, len(data) - 5, 100)) == data[-5:]
    assert ok(sb.readChunk(sha, len(data) + 1, 100)) == b""
    back = b"".join(ok(sb.readChunk(sha, o, module.MAX_CHUNK))
                    for o in range(0, len(data), module.MAX_CHUNK))
    assert back == data
    # dedup: the same owner is told it exists; another owner's upload stores no new rows
    assert ok(sb.initiateUpload(sha, len(data), "alice", "")) == {"Exists": True,
                                                                 "Sandbox": name}
    bobs = _upload(sb, data, "bob", [len(data)])
    assert bobs != name
    assert len(db._run(lambda c: c.execute(sa.select(module.contentChunksTable.c.Seq)).all(),
                       write=False)) == 3
    # an incomplete or corrupt upload is refused
    gap = ok(sb.initiateUpload(hashlib.sha256(b"ab").hexdigest(), 2, "alice", ""))
    ok(sb.uploadChunk(gap["UploadID"], 1, b"b", "alice"))
    assert "incomplete" in error(sb.finishUpload(gap["UploadID"], "alice"))["Message"]
    ok(sb.uploadChunk(gap["UploadID"], 0, b"x", "alice"))
    assert "corrupt" in error(sb.finishUpload(gap["UploadID"], "alice"))["Message"]
    # an empty sandbox is a content too
    empty = _upload(sb, b"", "alice", [])
    assert ok(sb.readChunk(hashlib.sha256(b"").hexdigest(), 0, 10)) == b""
    # removal: the content goes with the last record using it
    job1, job2, job3 = submit(db), submit(db, owner="bob"), submit(db)
    ok(sb.assignSandboxesToEntities({f"Job:{job1}": [(name, "Input")],
                                     f"Job:{job3}": [(empty, "Input")]}))
    ok(sb.assignSandboxesToEntities({f"Job:{job2}": [(bobs, "Input")]}))
    assert ok(sb.unassignEntities([f"Job:{job1}"])) == 0  # bob's record still uses it
    assert sb.hasContent(sha) and ok(sb.readChunk(sha, 0, 4)) == data[:4]
    assert ok(sb.unassignEntities([f"Job:{job2}"])) == 1
    assert not sb.hasContent(sha)
    assert db._run(lambda c: c.scalar(sa.select(sa.func.count()).select_from(
        module.contentChunksTable).where(module.contentChunksTable.c.SHA256 == sha)),
        write=False) == 0
    assert "missing from the store" in error(sb.readChunk(sha, 0, 10))["Message"]
    # uploading it again after the removal stores it again
    again = _upload(sb, data, "alice", [chunk, len(data) - chunk])
    assert again == name and ok(sb.readChunk(sha, len(data) - 3, 3)) == data[-3:]
    sb.dropTables()


def test_database_sandbox_store_limits_are_the_directory_stores(jobdb_url, tmp_path,
                                                                 monkeypatch):
    import hashlib

    db = JobDB(jobdb_url)
    monkeypatch.setenv("DIRAC_SANDBOX_BACKEND", "db")
    sb = SandboxMetadataDB(db)
    assert sb.backend == "db"
    sb.dropTables()
    ok(sb.initialize())
    monkeypatch.setenv("DIRAC_SANDBOX_MAX_SIZE", "1000")
    sha = hashlib.sha256(b"x" * 10).hexdigest()
    assert "larger than the limit" in error(sb.initiateUpload(sha, 1001, "alice", ""))[
        "Message"]
    started = ok(sb.initiateUpload(sha, 10, "alice", ""))
    assert error(sb.uploadChunk(started["UploadID"], 5, b"x" * 6, "alice"))  # past the end
    assert error(sb.uploadChunk(started["UploadID"], 0, b"x" * 10, "bob"))  # not bob's
    monkeypatch.setenv("DIRAC_SANDBOX_BACKEND", "nfs")
    with pytest.raises(ValueError, match="DIRAC_SANDBOX_BACKEND"):
        SandboxMetadataDB(db)
    sb.dropTables()


def test_sqlite_planner_statistics_are_refreshed_when_the_jobs_double(jobdb_url):
    db = JobDB(jobdb_url)
    if not db.isSQLite:
        assert ok(db.refreshStatistics(force=True)) is False  # autovacuum's job
        return
    assert ok(db.refreshStatistics(force=True)) is True
    for _ in range(3):
        submit(db)
    assert ok(db.refreshStatistics()) is True  # 0 -> 3 jobs
    assert ok(db.refreshStatistics()) is False  # nothing changed
    submit(db)
    assert ok(db.refreshStatistics()) is False  # 3 -> 4: not doubled
    plan = db._run(lambda c: c.exec_driver_sql(
        "EXPLAIN QUERY PLAN SELECT JobID FROM Jobs WHERE Owner = 'alice' "
        "AND Status = 'Received'").fetchall(), write=False)
    assert plan  # the statistics exist and the planner reads them
    stats = db._run(lambda c: c.exec_driver_sql(
        "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'Jobs'").scalar(), write=False)
    assert stats >= 1


# ------------------------------------------------------------------ Job API
def test_job_api_builds_a_jdl_the_wms_accepts(dbs):
    db, _, _, optimizer = dbs
    job = Job()
    ok(job.setExecutable("/bin/echo", arguments="value %(n)s"))
    ok(job.setName("api-job"))
    ok(job.setCPUTime(300))
    ok(job.setDestination("LCG.CERN.cern"))
    ok(job.setTag(["GPU"]))
    ok(job.setOutputSandbox(["*.dat"]))
    ok(job.setParameterSequence("n", [1, 2, 3]))
    assert error(job.setPriority(99))["Errno"] == EVALUE
    assert "setPriority" in job.errorDict
    ids = ok(db.submitJob(job._toJDL(), "alice", "users"))
    assert len(ids) == 3
    for job_id in ids:
        assert ok(optimizer.optimizeJob(job_id)) == JS.WAITING
    jdl = ok(db.getJobJDL(ids[1]))
    assert 'Arguments = "value 2"' in jdl and '"*.dat"' in jdl and '"std.out"' in jdl


def test_unprovided_parts_of_the_api_fail_clearly():
    from DIRAC.Interfaces.API.Dirac import Dirac

    dirac = Dirac()
    for method in ("getAccessURL", "getFileMetadata"):
        result = getattr(dirac, method)("/vo/user/a/file")
        assert not result["OK"] and "not part of this API" in result["Message"]
    job = Job()
    assert "expected output file names" in error(job.setOutputData([]))["Message"]
    ok(job.setExecutable("/bin/true"))
    refused = error(dirac.submitJob(job))  # the job has an error recorded: not sent
    assert "setOutputData" in refused["Message"]
    assert "no executable" in error(dirac.submitJob(Job()))["Message"]
    assert error(dirac.submitJob(42))["Errno"] == EVALUE

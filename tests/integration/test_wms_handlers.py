"""The three WMS handlers through ``workers.handler.dispatch`` (types_, auth_, handler code),
on real SQLite and PostgreSQL JobDBs, without the broker (tests/integration/test_wms_rpc.py
goes through the broker).  Credentials are given explicitly, so the rules for the
properties the Registry will hand out (JobAdministrator, JobSharing, ...) are tested now.
"""

from __future__ import annotations

import datetime as dt

import pytest
from diracmq.broker import codec
from diracmq.broker.derrno import ENOAUTH, EVALUE, EWMSJDL, EWMSSTATUS, EWMSUKN
from diracmq.workers.handler import Request, dispatch
from diracmq.workers.loader import load_handlers

from DIRAC.WorkloadManagementSystem.DB.JobDB import JOB_ATTRIBUTES, JobDB
from DIRAC.WorkloadManagementSystem.Service.JobManagerHandler import JobManagerHandler
from DIRAC.WorkloadManagementSystem.Service.JobMonitoringHandler import JobMonitoringHandler
from DIRAC.WorkloadManagementSystem.Service.JobStateUpdateHandler import JobStateUpdateHandler
from DIRAC.WorkloadManagementSystem.Service.MatcherHandler import MatcherHandler
from DIRAC.WorkloadManagementSystem.Service.SandboxStoreHandler import SandboxStoreHandler

from . import wms_conftest_helpers as helpers
from .wms_conftest_helpers import error, ok

# the shared fixtures (one JobDB per test, on SQLite and on PostgreSQL)
jobdb_url = helpers.jobdb_url
postgres_url = helpers.postgres_url

HANDLERS = {"JobManager": JobManagerHandler, "JobMonitoring": JobMonitoringHandler,
            "JobStateUpdate": JobStateUpdateHandler}
#: With the services of the job path (issue 13; tested in test_jobs_*.py).
ALL_HANDLERS = {**HANDLERS, "Matcher": MatcherHandler, "SandboxStore": SandboxStoreHandler}
JDL = '[ Executable = "/bin/true"; JobName = "{name}"; ]'


def creds(user: str, group: str = "", *properties: str) -> dict:
    return {"username": user, "group": group, "properties": list(properties)}


ALICE = creds("alice", "users")
BOB = creds("bob", "users")
ADMIN = creds("root", "admins", "JobAdministrator")
ANONYMOUS = creds("anonymous")


@pytest.fixture
def db(jobdb_url, monkeypatch):
    db = JobDB(jobdb_url)
    for cls in HANDLERS.values():
        monkeypatch.setattr(cls, "jobDB", db)
    return db


def call(service: str, method: str, *args, who: dict = ALICE) -> dict:
    result = dispatch(HANDLERS[service], Request(f"WorkloadManagement/{service}", method,
                                                 tuple(args), credentials=who))
    result.pop("CallStack", None)
    # what travels must survive the wire unchanged (int keys, tuples, datetimes)
    assert codec.unpackb(codec.packb(result)) == result
    return result


def submit(who: dict = ALICE, name: str = "j") -> int:
    result = call("JobManager", "submitJob", JDL.format(name=name), who=who)
    assert result["JobID"] == ok(result)
    return result["Value"]


# ------------------------------------------------------------------ structure
def test_loader_finds_the_services():
    found = load_handlers("WorkloadManagement")
    assert {name: cls.__name__ for name, cls in found.items()} == {
        f"WorkloadManagement/{n}": f"{n}Handler" for n in ALL_HANDLERS}


@pytest.mark.parametrize("cls", ALL_HANDLERS.values(), ids=ALL_HANDLERS)
def test_every_export_has_types_and_auth(cls):
    exports = [name[7:] for name in dir(cls) if name.startswith("export_")]
    assert len(exports) > 3
    for name in exports:
        assert isinstance(getattr(cls, f"types_{name}", None), list), name
        if name not in ("ping", "echo", "whoami"):  # the built-ins are open to all
            assert getattr(cls, f"auth_{name}", None), name


def test_initialize_handler_opens_the_db_named_by_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("DIRAC_JOBDB_URL", raising=False)
    monkeypatch.setenv("DIRAC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(JobManagerHandler, "jobDB", None)
    assert JobManagerHandler.initializeHandler({})["OK"]
    assert JobManagerHandler.jobDB.url == f"sqlite:///{tmp_path / 'data' / 'JobDB.sqlite'}"
    assert (tmp_path / "data" / "JobDB.sqlite").exists()


def test_initialize_handler_reports_an_unusable_db(monkeypatch, tmp_path):
    monkeypatch.setenv("DIRAC_JOBDB_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    monkeypatch.setattr(JobManagerHandler, "jobDB", None)
    result = JobManagerHandler.initializeHandler({})
    assert not result["OK"] and "cannot open the JobDB" in result["Message"]


# ----------------------------------------------------------------- JobManager
def test_submit(db):
    job_id = submit(ALICE)
    attrs = ok(db.getJobAttributes(job_id))
    assert (attrs["Owner"], attrs["OwnerGroup"], attrs["Status"]) == ("alice", "users", "Received")
    result = call("JobManager", "submitJob",
                  '[ Executable = "x"; Parameters = 3; JobName = "p%s" ]', who=BOB)
    assert isinstance(result["Value"], list) and result["JobID"] == result["Value"]
    assert len(result["Value"]) == 3


def test_submit_refusals(db):
    bad = call("JobManager", "submitJob", '[ Executable = "x" JobName = "n" ]')
    assert bad["Errno"] == EWMSJDL and "JobID" not in bad
    assert "line 1, column" in bad["Message"]
    assert call("JobManager", "submitJob", 42)["Message"].startswith(
        "Type mismatch in parameter 0")
    denied = call("JobManager", "submitJob", JDL, who=ANONYMOUS)
    assert denied["Errno"] == ENOAUTH
    many = call("JobManager", "submitJob", '[ Executable = "x"; Parameters = 1000 ]')
    assert many["Errno"] == EWMSJDL and "exceeds the limit" in many["Message"]


@pytest.mark.parametrize("form", [int, str, lambda i: [i], lambda i: [str(i)]],
                         ids=["int", "str", "list", "list-of-str"])
def test_kill_accepts_an_id_a_numeric_string_or_a_list(db, form):
    job_id = submit()
    assert ok(call("JobManager", "killJob", form(job_id))) == [job_id]
    assert ok(db.getJobAttribute(job_id, "Status")) == "Killed"


def test_partial_failure_reports_each_kind_of_job(db):
    mine, theirs, done = submit(ALICE), submit(BOB), submit(ALICE)
    ok(db.setJobStatus(done, "Done", "", "x", force=True))
    result = call("JobManager", "killJob", [mine, theirs, done, "abc", 999999])
    assert result["OK"] is False
    assert result["InvalidJobIDs"] == ["abc", 999999]
    assert result["NonauthorizedJobIDs"] == [theirs]
    assert result["FailedJobIDs"] == [done]
    assert result["SuccessfulJobIDs"] == [mine]
    assert "Done to Killed is not allowed" in result["Message"]
    assert ok(db.getJobsAttributes([mine, theirs, done], ["Status"])) == {
        mine: {"Status": "Killed"}, theirs: {"Status": "Received"}, done: {"Status": "Done"}}


def test_only_the_failing_keys_are_present(db):
    theirs = submit(BOB)
    result = call("JobManager", "deleteJob", theirs)
    assert result["NonauthorizedJobIDs"] == [theirs]
    assert "InvalidJobIDs" not in result and "FailedJobIDs" not in result
    assert error(call("JobManager", "killJob", []))["Errno"] == EVALUE


def test_administrators_and_group_sharing(db):
    theirs = submit(BOB)
    assert ok(call("JobManager", "killJob", theirs, who=ADMIN)) == [theirs]
    shared = submit(BOB)
    sharer = creds("carol", "users", "JobSharing")
    outsider = creds("dave", "other", "JobSharing")
    assert call("JobManager", "killJob", shared, who=outsider)["NonauthorizedJobIDs"] == [shared]
    assert ok(call("JobManager", "killJob", shared, who=sharer)) == [shared]


def test_force_is_for_administrators_only(db):
    job_id = submit()
    ok(db.setJobStatus(job_id, "Done", "", "x", force=True))
    assert call("JobManager", "killJob", job_id, True)["FailedJobIDs"] == [job_id]
    assert ok(call("JobManager", "killJob", job_id, True, who=ADMIN)) == [job_id]


def test_delete_reschedule_reset(db):
    job_id = submit()
    assert ok(call("JobManager", "deleteJob", str(job_id))) == [job_id]
    assert ok(db.getJobAttribute(job_id, "Status")) == "Deleted"
    job_id = submit()
    refused = call("JobManager", "rescheduleJob", job_id)
    assert refused["FailedJobIDs"] == [job_id]
    assert "Received to Rescheduled is not allowed" in refused["Message"]
    ok(db.setJobStatus(job_id, "Running", "", "x", force=True))
    assert ok(call("JobManager", "rescheduleJob", [job_id])) == [job_id]
    assert ok(db.getJobAttributes(job_id, ["Status", "RescheduleCounter"])) == \
        {"Status": "Received", "RescheduleCounter": 1}
    ok(db.setJobStatus(job_id, "Failed", "", "x", force=True))
    assert ok(call("JobManager", "resetJob", job_id)) == [job_id]
    assert ok(db.getJobAttribute(job_id, "RescheduleCounter")) == 0
    assert call("JobManager", "resetJob", job_id, who=BOB)["NonauthorizedJobIDs"] == [job_id]


# -------------------------------------------------------------- JobMonitoring
def test_get_jobs_as_in_the_seed_script(db):
    mine = [submit(ALICE, "a1"), submit(ALICE, "a2")]
    submit(BOB)
    me = ok(call("JobMonitoring", "whoami"))["username"]
    assert ok(call("JobMonitoring", "getJobs", {"owner": me})) == mine
    assert ok(call("JobMonitoring", "getJobs", {"Owner": "alice", "JobName": ["a2", "x"]})) == \
        [mine[1]]
    assert len(ok(call("JobMonitoring", "getJobs"))) == 3
    assert ok(call("JobMonitoring", "getJobs", None, "2000-01-01")) == \
        ok(call("JobMonitoring", "getJobs", {}))
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert ok(call("JobMonitoring", "getJobs", {}, tomorrow)) == []
    assert error(call("JobMonitoring", "getJobs", ["owner"]))["Errno"] == EVALUE
    assert "Unknown job attribute 'colour'" in call("JobMonitoring", "getJobs",
                                                    {"colour": 1})["Message"]
    assert call("JobMonitoring", "getJobs", {}, who=ANONYMOUS)["Errno"] == ENOAUTH


def test_per_job_queries(db):
    a, b = submit(ALICE, "first"), submit(BOB, "second")
    ok(db.setJobStatus(b, "Checking", "checking it", "optimizer"))
    ok(db.setJobApplicationStatus(b, "app", "x"))
    ok(db.setJobParameter(b, "Host", "wn1"))
    assert ok(call("JobMonitoring", "getJobsStatus", [a, b])) == \
        {a: {"Status": "Received"}, b: {"Status": "Checking"}}
    assert ok(call("JobMonitoring", "getJobsStatus", a)) == {a: {"Status": "Received"}}
    assert ok(call("JobMonitoring", "getJobsMinorStatus", [str(b)])) == \
        {b: {"MinorStatus": "checking it"}}
    assert ok(call("JobMonitoring", "getJobsApplicationStatus", [b])) == \
        {b: {"ApplicationStatus": "app"}}
    assert ok(call("JobMonitoring", "getJobsSites", [a])) == {a: {"Site": "ANY"}}
    assert ok(call("JobMonitoring", "getJobsStates", [b, 999999])) == {
        b: {"Status": "Checking", "MinorStatus": "checking it", "ApplicationStatus": "app"}}
    assert error(call("JobMonitoring", "getJobsStatus", ["x"]))["Errno"] == EVALUE
    summary = ok(call("JobMonitoring", "getJobSummary", b))
    assert set(summary) == set(JOB_ATTRIBUTES) and summary["JobName"] == "second"
    assert error(call("JobMonitoring", "getJobSummary", 999999))["Errno"] == EWMSUKN
    both = ok(call("JobMonitoring", "getJobsSummary", [a, b]))
    assert set(both) == {a, b} and both[a]["Owner"] == "alice"
    assert ok(call("JobMonitoring", "getJobAttributes", a, ["Owner", "jobname"])) == \
        {"Owner": "alice", "JobName": "first"}
    assert set(ok(call("JobMonitoring", "getJobAttributes", a))) == set(JOB_ATTRIBUTES)
    assert ok(call("JobMonitoring", "getJobAttributes", 999999)) == {}
    assert ok(call("JobMonitoring", "getJobAttribute", str(a), "Owner")) == "alice"
    assert error(call("JobMonitoring", "getJobAttribute", "x", "Owner"))["Errno"] == EVALUE
    assert ok(call("JobMonitoring", "getJobParameters", [a, b])) == {b: {"Host": "wn1"}}
    assert ok(call("JobMonitoring", "getJobParameter", b, "Host")) == {"Host": "wn1"}
    assert 'JobName = "second";' in ok(call("JobMonitoring", "getJobJDL", b))
    log = ok(call("JobMonitoring", "getJobLoggingInfo", b))
    assert [r[:3] for r in log] == [("Received", "Job accepted", "Unknown"),
                                    ("Checking", "checking it", "Unknown"),
                                    ("Checking", "checking it", "app")]
    assert all(isinstance(r, tuple) and isinstance(r[3], dt.datetime) for r in log)


def test_counters_stats_and_distinct_values(db):
    a, b = submit(ALICE), submit(BOB)
    submit(BOB)
    ok(db.setJobStatus(a, "Checking", "", "x"))
    ok(db.setJobStatus(b, "Checking", "", "x"))
    assert ok(call("JobMonitoring", "getCounters", ["Owner", "Status"])) == [
        ({"Owner": "alice", "Status": "Checking"}, 1),
        ({"Owner": "bob", "Status": "Checking"}, 1),
        ({"Owner": "bob", "Status": "Received"}, 1)]
    assert ok(call("JobMonitoring", "getCounters", ["Status"], {"owner": "bob"})) == [
        ({"Status": "Checking"}, 1), ({"Status": "Received"}, 1)]
    assert ok(call("JobMonitoring", "getJobStats", "Status", {})) == \
        {"Checking": 2, "Received": 1}
    assert ok(call("JobMonitoring", "getJobStats", "Owner", {"Status": "Checking"})) == \
        {"alice": 1, "bob": 1}
    assert ok(call("JobMonitoring", "getOwners")) == ["alice", "bob"]
    assert ok(call("JobMonitoring", "getOwnerGroup")) == ["users"]
    assert ok(call("JobMonitoring", "getSites")) == ["ANY"]
    assert ok(call("JobMonitoring", "getStates")) == ["Checking", "Received"]
    assert ok(call("JobMonitoring", "getMinorStates")) == ["Job accepted"]
    assert ok(call("JobMonitoring", "getApplicationStates")) == ["Unknown"]
    assert ok(call("JobMonitoring", "getJobTypes")) == ["User"]
    assert ok(call("JobMonitoring", "getJobGroups")) == ["00000000"]
    assert ok(call("JobMonitoring", "getJobGroups", {"Owner": "nobody"})) == []


def test_page_summary_shows_users_their_own_jobs(db):
    mine = [submit(ALICE) for _ in range(3)]
    theirs = submit(BOB)
    page = ok(call("JobMonitoring", "getJobPageSummaryWeb", {}, [["JobID", "DESC"]], 0, 2))
    assert set(page) == {"ParameterNames", "Records", "TotalRecords", "Extras"}
    assert page["TotalRecords"] == 3 and page["Extras"] == {"Received": 3}
    assert [r[0] for r in page["Records"]] == mine[::-1][:2]
    assert ok(call("JobMonitoring", "getJobPageSummaryWeb", {"Owner": "bob"}, [], 0, 10))[
        "TotalRecords"] == 0
    monitor = creds("eve", "ops", "JobMonitor")
    everything = ok(call("JobMonitoring", "getJobPageSummaryWeb", None, None, 0, 10, who=monitor))
    assert everything["TotalRecords"] == 4
    assert everything["Records"][-1][0] == theirs
    assert call("JobMonitoring", "getJobPageSummaryWeb", {}, [], -1, 10)["Errno"] == EVALUE
    assert call("JobMonitoring", "getJobPageSummaryWeb", {}, [], "0", 10)["Message"].startswith(
        "Type mismatch in parameter 2")


# ------------------------------------------------------------- JobStateUpdate
def test_owner_walks_its_job_through_the_states(db):
    job_id = submit()
    for status in ("Checking", "Waiting", "Matched", "Running"):
        assert ok(call("JobStateUpdate", "setJobStatus", job_id, status, f"m {status}",
                       "me")) is None
    assert ok(call("JobStateUpdate", "setJobApplicationStatus", job_id, "50%", "app")) is None
    ok(call("JobStateUpdate", "setJobParameter", str(job_id), "CPU", 12.5))
    ok(call("JobStateUpdate", "setJobParameters", job_id, [["A", "1"], ["B", 2]]))
    assert ok(db.getJobParameters([job_id])) == {job_id: {"A": "1", "B": "2", "CPU": "12.5"}}
    assert ok(call("JobStateUpdate", "sendHeartBeat", job_id, {"Load": 1.0}, {"Node": "n"})) == {}
    refused = call("JobStateUpdate", "setJobStatus", job_id, "Waiting", "", "me")
    assert refused["Errno"] == EWMSSTATUS and "Running to Waiting" in refused["Message"]
    assert ok(call("JobStateUpdate", "setJobStatus", job_id, "Waiting", "", "me", None, True)) \
        is None
    assert ok(db.getJobAttribute(job_id, "Status")) == "Waiting"


def test_state_updates_by_others_are_refused(db):
    job_id = submit(ALICE)
    denied = call("JobStateUpdate", "setJobStatus", job_id, "Checking", "", "x", who=BOB)
    assert denied["Errno"] == ENOAUTH and f"not the owner of job {job_id}" in denied["Message"]
    for method, args in [("setJobApplicationStatus", ("a", "b")),
                         ("setJobParameter", ("a", "b")), ("setJobParameters", ([],)),
                         ("sendHeartBeat", ({}, {})), ("setJobStatusBulk", ({},))]:
        assert call("JobStateUpdate", method, job_id, *args, who=BOB)["Errno"] == ENOAUTH
    pilot = creds("pilot1", "pilots", "GenericPilot")
    assert ok(call("JobStateUpdate", "setJobStatus", job_id, "Checking", "", "x", who=pilot)) \
        is None
    unknown = call("JobStateUpdate", "setJobStatus", 999999, "Checking", "", "x")
    assert unknown["Errno"] == EVALUE and "not found" in unknown["Message"]
    assert call("JobStateUpdate", "setJobStatus", [job_id], "Checking", "", "x")[
        "Message"].startswith("Type mismatch in parameter 0")


def test_bulk_status_over_the_handler(db):
    job_id = submit()
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    ok(call("JobStateUpdate", "setJobStatusBulk", job_id, {
        now.isoformat(): {"Status": "Checking", "Source": "a"},
        now + dt.timedelta(seconds=1): {"Status": "Waiting", "MinorStatus": "w",
                                        "Source": "b"}}))
    log = ok(call("JobMonitoring", "getJobLoggingInfo", job_id))
    assert [(r[0], r[4]) for r in log] == [("Received", "JobManager"), ("Checking", "a"),
                                           ("Waiting", "b")]
    assert log[1][3] == now.replace(tzinfo=None)


def _stored_sandbox(sb, owner: str, data: bytes) -> str:
    import hashlib

    started = ok(sb.initiateUpload(hashlib.sha256(data).hexdigest(), len(data), owner, ""))
    ok(sb.uploadChunk(started["UploadID"], 0, data, owner))
    return ok(sb.finishUpload(started["UploadID"], owner))


def test_report_jobs_sets_parameters_statuses_and_sandboxes_per_job(db, tmp_path,
                                                                     monkeypatch):
    from DIRAC.WorkloadManagementSystem.DB.SandboxMetadataDB import SandboxMetadataDB

    sb = SandboxMetadataDB(db, tmp_path / "sandboxes")
    ok(sb.initialize())
    monkeypatch.setattr(JobStateUpdateHandler, "sandboxDB", sb)
    pilot = creds("pilot1", "pilots", "GenericPilot")
    mine = _stored_sandbox(sb, "pilot1", b"output")
    theirs = _stored_sandbox(sb, "bob", b"other")
    done, killed, unknown_sb, not_pilots, malformed = (submit(name=f"r{n}") for n in range(5))
    for job_id in (done, killed, unknown_sb, not_pilots, malformed):
        for status in ("Checking", "Waiting", "Matched"):
            ok(db.setJobStatus(job_id, status, "", "test"))
    ok(db.killJob(killed))
    start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)

    def end(minor: str) -> dict:
        return {"Parameters": [["ApplicationExitCode", "0"], ["StandardOutput", ""]],
                "Status": {start.isoformat(): {"Status": "Running", "MinorStatus": "Application",
                                               "Source": "JobAgent"},
                           (start + dt.timedelta(seconds=1)).isoformat(): {
                               "Status": "Done", "MinorStatus": minor, "Source": "JobAgent"}},
                "Sandboxes": [[mine, "Output"]]}

    result = ok(call("JobStateUpdate", "reportJobs", {
        done: end("Execution Complete"), killed: end("x"),
        unknown_sb: dict(end("x"), Sandboxes=[["SB:SandboxSE|/no/such", "Output"]]),
        not_pilots: dict(end("x"), Sandboxes=[[theirs, "Output"]]),
        malformed: dict(end("x"), Extra=1), 999999: end("x")}, who=pilot))
    assert result["Successful"] == [done]
    failed = result["Failed"]
    assert set(failed) == {killed, unknown_sb, not_pilots, malformed, 999999}
    assert "Killed to Running" in failed[killed]
    assert "no sandbox" in failed[unknown_sb]
    assert "is not pilot1's" in failed[not_pilots]
    assert "unknown keys" in failed[malformed] and "Extra" in failed[malformed]
    assert failed[999999] == "Job 999999 not found"
    attributes = ok(db.getJobsAttributes([done, killed, unknown_sb], ["Status",
                                                                      "MinorStatus"]))
    assert attributes[done] == {"Status": "Done", "MinorStatus": "Execution Complete"}
    assert attributes[killed]["Status"] == "Killed"
    assert attributes[unknown_sb]["Status"] == "Matched"  # all or nothing per job
    params = ok(db.getJobParameters([done, unknown_sb]))
    assert params == {done: {"ApplicationExitCode": "0", "StandardOutput": ""}}
    assert [r[0] for r in ok(sb.getSandboxesAssignedToEntity(f"Job:{done}"))] == [mine]
    assert ok(sb.getSandboxesAssignedToEntity(f"Job:{unknown_sb}")) == []
    history = [(r[0], r[1]) for r in ok(db.getJobLoggingInfo(done))]
    assert history[-2:] == [("Running", "Application"), ("Done", "Execution Complete")]
    # parameters only (what the agent sends for a job killed meanwhile)
    assert ok(call("JobStateUpdate", "reportJobs", {killed: {"Parameters": {"A": "1"}}},
                   who=pilot)) == {"Successful": [killed], "Failed": {}}
    # the caller must be allowed to update the job's state
    denied = ok(call("JobStateUpdate", "reportJobs", {done: {"Parameters": {"B": 1}}},
                     who=BOB))
    assert denied["Successful"] == [] and "not the owner" in denied["Failed"][done]
    assert call("JobStateUpdate", "reportJobs", [done])["Message"].startswith(
        "Type mismatch in parameter 0")
    assert call("JobStateUpdate", "reportJobs", {"x": {}})["Errno"] == EVALUE
    bad = ok(call("JobStateUpdate", "reportJobs", {done: {"Status": {"": "Done"}},
                                                   killed: "nope"}, who=pilot))
    assert bad["Successful"] == [] and set(bad["Failed"]) == {done, killed}
    assert ok(call("JobStateUpdate", "reportJobs", {})) == {"Successful": [], "Failed": {}}


def test_state_machine_is_published(db):
    machine = ok(call("JobStateUpdate", "getStateMachine", who=ANONYMOUS))
    assert machine["Done"] == ["Deleted"] and machine["Deleted"] == []

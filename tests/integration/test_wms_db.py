"""JobDB against real databases: SQLite (a file) and PostgreSQL (127.0.0.1:5432).

Every test runs on both backends (the PostgreSQL variant is skipped, with the reason,
when no server answers).  Covers submission, the state machine through the DB
(every allowed transition, every refused one), logging records, condition dicts,
job control, parameters, and concurrency: threads and processes writing at once
never duplicate a job ID nor lose an update.
"""

from __future__ import annotations

import datetime as dt
import itertools
import multiprocessing
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from diracmq.broker.derrno import EDB, EVALUE, EWMSJDL, EWMSSTATUS, EWMSUKN

from DIRAC.WorkloadManagementSystem.Client import JobStatus as JS
from DIRAC.WorkloadManagementSystem.DB.JobDB import (
    JOB_ATTRIBUTES,
    JobDB,
    jobsTable,
    loggingTable,
)

from . import wms_conftest_helpers as helpers
from .wms_conftest_helpers import error, ok, submit_and_update

# the shared fixtures (one JobDB per test, on SQLite and on PostgreSQL)
jobdb_url = helpers.jobdb_url
postgres_url = helpers.postgres_url

pytestmark = pytest.mark.timeout(240)

JDL = '[ Executable = "/bin/echo"; Arguments = "hi"; JobName = "{name}"; JobGroup = "{group}"; ' \
      'Site = "{site}"; Priority = 3; ]'


@pytest.fixture
def db(jobdb_url):
    return JobDB(jobdb_url, maxRescheduling=3)


def submit(db, owner="alice", group="users", name="job", jobgroup="g1", site="ANY") -> int:
    return ok(db.submitJob(JDL.format(name=name, group=jobgroup, site=site), owner, group))


def status_of(db, job_id) -> str:
    return ok(db.getJobAttribute(job_id, "Status"))


def force_to(db, job_id, status):
    ok(db.setJobStatus(job_id, status, f"forced to {status}", source="test", force=True))


def count(db, table) -> int:
    with db.engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table))


def check_history(db, job_id, start=0):
    """The logged statuses (from record ``start`` on: earlier ones may have been forced) form
    a path the state machine allows, ending at the job's status."""
    records = ok(db.getJobLoggingInfo(job_id))
    statuses = [r[0] for r in records]
    for a, b in itertools.pairwise(statuses[start:]):
        assert JS.isValidTransition(a, b), f"job {job_id}: logged {a} -> {b}: {statuses}"
    assert statuses[-1] == status_of(db, job_id), (job_id, statuses)
    times = [r[3] for r in records]
    assert times == sorted(times)
    return statuses


# ----------------------------------------------------------------- submission
def test_submit_stores_the_job_its_jdl_and_a_logging_record(db):
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    job_id = submit(db, owner="alice", group="users", name="n1", jobgroup="grp", site="S1")
    attrs = ok(db.getJobAttributes(job_id))
    assert set(attrs) == set(JOB_ATTRIBUTES)
    assert attrs["JobID"] == job_id and isinstance(job_id, int)
    assert (attrs["Owner"], attrs["OwnerGroup"]) == ("alice", "users")
    assert (attrs["JobName"], attrs["JobGroup"], attrs["Site"]) == ("n1", "grp", "S1")
    assert (attrs["Status"], attrs["MinorStatus"]) == ("Received", "Job accepted")
    assert attrs["ApplicationStatus"] == "Unknown"
    assert attrs["UserPriority"] == 3 and attrs["RescheduleCounter"] == 0
    assert attrs["JobType"] == "User"
    assert before <= attrs["SubmissionTime"] == attrs["LastUpdateTime"]
    assert attrs["StartExecTime"] is None and attrs["EndExecTime"] is None
    (record,) = ok(db.getJobLoggingInfo(job_id))
    assert record[:3] == ("Received", "Job accepted", "Unknown")
    assert record[3] == attrs["SubmissionTime"] and record[4] == "JobManager"
    jdl = ok(db.getJobJDL(job_id))
    assert f"JobID = {job_id};" in jdl and 'Owner = "alice";' in jdl
    assert 'OwnerGroup = "users";' in jdl


def test_owner_comes_from_the_caller_not_the_jdl(db):
    job_id = ok(db.submitJob('[ Executable = "x"; Owner = "root"; OwnerGroup = "admin" ]',
                             "alice", "users"))
    assert ok(db.getJobAttributes(job_id, ["Owner", "OwnerGroup"])) == \
        {"Owner": "alice", "OwnerGroup": "users"}
    assert "root" not in ok(db.getJobJDL(job_id))


def test_ids_increase_and_are_never_reused(db):
    first = submit(db)
    second = submit(db)
    assert second > first
    ok(db.removeJobFromDB([second]))
    assert submit(db) > second


def test_parametric_submission_gives_a_list_of_jobs(db):
    ids = ok(db.submitJob('[ Executable = "x"; JobName = "p_%s"; Parameters = {"a", "b", "c"} ]',
                          "alice"))
    assert isinstance(ids, list) and len(ids) == 3 and len(set(ids)) == 3
    names = ok(db.getJobsAttributes(ids, ["JobName"]))
    assert [names[i]["JobName"] for i in ids] == ["p_a", "p_b", "p_c"]


def test_malformed_jdl_stores_nothing(db):
    before = count(db, jobsTable)
    result = error(db.submitJob('[ Executable = "x"; JobName = "n" Site = "s" ]', "alice"))
    assert result["Errno"] == EWMSJDL
    assert "missing before the next attribute" in result["Message"]
    error(db.submitJob('[ Executable = "x"; Parameters = 3; Arguments = "%(Q)s" ]', "alice"))
    assert count(db, jobsTable) == before


def test_parametric_limit(db):
    result = error(db.submitJob('[ Executable = "x"; Parameters = 5 ]', "a", maxParametricJobs=4))
    assert result["Errno"] == EWMSJDL and "exceeds the limit of 4" in result["Message"]


# -------------------------------------------------------------- state machine
def test_every_allowed_transition(db):
    failures = []
    transitions = [(a, b) for a, nxt in JS.JOB_TRANSITIONS.items() for b in sorted(nxt)]
    assert len(transitions) == 59  # the documented table
    for current, new in transitions:
        job_id = submit(db, name=f"{current}->{new}")
        force_to(db, job_id, current)
        records = len(ok(db.getJobLoggingInfo(job_id)))
        result = db.setJobStatus(job_id, new, f"now {new}", source="allowed-test")
        if not result["OK"] or status_of(db, job_id) != new:
            failures.append((current, new, result))
            continue
        log = ok(db.getJobLoggingInfo(job_id))
        assert len(log) == records + 1
        assert log[-1][0] == new and log[-1][1] == f"now {new}" and log[-1][4] == "allowed-test"
    assert not failures


def test_every_refused_transition_leaves_the_job_as_it_is(db):
    refused = [(a, b) for a, b in itertools.product(JS.JOB_STATES, JS.JOB_STATES)
               if a != b and not JS.isValidTransition(a, b)]
    assert len(refused) == 16 * 15 - 59
    job_ids = {}
    for state in JS.JOB_STATES:
        job_ids[state] = submit(db, name=state)
        force_to(db, job_ids[state], state)
    for current, new in refused:
        job_id = job_ids[current]
        before = ok(db.getJobAttributes(job_id))
        log_before = ok(db.getJobLoggingInfo(job_id))
        result = error(db.setJobStatus(job_id, new, "should not happen", source="refused"))
        assert result["Errno"] == EWMSSTATUS
        assert f"Transition from {current} to {new} is not allowed" in result["Message"]
        assert ok(db.getJobAttributes(job_id)) == before
        assert ok(db.getJobLoggingInfo(job_id)) == log_before


def test_force_overrides_the_state_machine_and_is_logged(db):
    job_id = submit(db)
    force_to(db, job_id, "Done")
    ok(db.setJobStatus(job_id, "Running", "back", source="admin", force=True))
    assert status_of(db, job_id) == "Running"
    assert ok(db.getJobLoggingInfo(job_id))[-1][:2] == ("Running", "back")


def test_unknown_status_is_refused_even_when_forced(db):
    job_id = submit(db)
    for force in (False, True):
        result = error(db.setJobStatus(job_id, "Exploded", "", source="x", force=force))
        assert result["Errno"] == EWMSSTATUS and "Unknown job status" in result["Message"]
    assert status_of(db, job_id) == "Received"


def test_status_names_are_canonicalised(db):
    job_id = submit(db)
    ok(db.setJobStatus(job_id, "checking", "", source="x"))
    assert status_of(db, job_id) == "Checking"


def test_minor_and_application_status_updates_are_logged(db):
    job_id = submit(db)
    ok(db.setJobStatus(job_id, "", "still waiting", source="optimizer"))
    ok(db.setJobApplicationStatus(job_id, "step 1", "app"))
    ok(db.setJobStatus(job_id, "Received", "same state", source="x"))
    attrs = ok(db.getJobAttributes(job_id, ["Status", "MinorStatus", "ApplicationStatus"]))
    assert attrs == {"Status": "Received", "MinorStatus": "same state",
                     "ApplicationStatus": "step 1"}
    log = ok(db.getJobLoggingInfo(job_id))
    assert [r[:3] for r in log[1:]] == [("Received", "still waiting", "Unknown"),
                                       ("Received", "still waiting", "step 1"),
                                       ("Received", "same state", "step 1")]
    assert [r[4] for r in log[1:]] == ["optimizer", "app", "x"]
    # nothing to change: nothing logged
    ok(db.setJobStatus(job_id, "", "", source="x"))
    assert len(ok(db.getJobLoggingInfo(job_id))) == len(log)


def test_execution_times(db):
    job_id = submit(db)
    for status in ("Checking", "Waiting", "Matched"):
        ok(db.setJobStatus(job_id, status, "", source="x"))
    first = ok(db.getJobAttributes(job_id))
    assert first["StartExecTime"] is None
    ok(db.setJobStatus(job_id, "Running", "", source="x"))
    running = ok(db.getJobAttributes(job_id))
    assert running["StartExecTime"] is not None
    assert running["LastUpdateTime"] >= first["LastUpdateTime"]
    ok(db.setJobStatus(job_id, "Stalled", "", source="x"))
    ok(db.setJobStatus(job_id, "Running", "", source="x"))
    assert ok(db.getJobAttribute(job_id, "StartExecTime")) == running["StartExecTime"]
    ok(db.setJobStatus(job_id, "Done", "", source="x"))
    done = ok(db.getJobAttributes(job_id))
    assert done["EndExecTime"] is not None and done["EndExecTime"] >= done["StartExecTime"]


def test_explicit_dates_keep_microseconds_and_time_zones(db):
    job_id = submit(db)
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    when = when.replace(microsecond=123456)
    cet = dt.timezone(dt.timedelta(hours=1))
    ok(db.setJobStatus(job_id, "Checking", "", source="x", date=when.astimezone(cet)))
    later = when + dt.timedelta(seconds=1, microseconds=1)
    ok(db.setJobStatus(job_id, "Waiting", "", source="x",
                       date=later.replace(tzinfo=None).isoformat(sep=" ")))
    log = ok(db.getJobLoggingInfo(job_id))
    assert log[1][3] == when.replace(tzinfo=None)
    assert log[2][3] == later.replace(tzinfo=None)
    assert log[2][3].microsecond == 123457


def test_an_update_older_than_the_last_is_history_only(db):
    job_id = submit(db)
    ok(db.setJobStatus(job_id, "Checking", "", source="x"))
    old = dt.datetime(2001, 1, 1, 12, 0, 0, 1)
    ok(db.setJobStatus(job_id, "Failed", "late report", source="pilot", date=old))
    assert status_of(db, job_id) == "Checking"
    log = ok(db.getJobLoggingInfo(job_id))
    assert log[0][:4] == ("Failed", "late report", "idem", old)


def test_bad_dates_and_arguments(db):
    job_id = submit(db)
    result = error(db.setJobStatus(job_id, "Checking", "", source="x", date="yesterday"))
    assert result["Errno"] == EVALUE and "invalid status date 'yesterday'" in result["Message"]
    error(db.setJobStatusBulk(job_id, {"": {"Status": "Checking", "Bogus": 1}}))
    error(db.setJobStatusBulk(job_id, {"": "Checking"}))
    error(db.setJobStatusBulk(job_id, {"": {"Status": 3}}))
    assert status_of(db, job_id) == "Received"


def test_bulk_updates_apply_in_date_order(db):
    job_id = submit(db)
    base = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=1)
    updates = {
        (base + dt.timedelta(seconds=3)).isoformat(): {"Status": "Running", "MinorStatus": "r",
                                                       "Source": "pilot"},
        base + dt.timedelta(seconds=1): {"Status": "Waiting", "Source": "optimizer"},
        base: {"Status": "Checking", "MinorStatus": "c", "Source": "optimizer"},
        base + dt.timedelta(seconds=2): {"Status": "Matched", "ApplicationStatus": "m"},
        base + dt.timedelta(seconds=4): {"ApplicationStatus": "app running"},
    }
    ok(db.setJobStatusBulk(job_id, updates))
    assert check_history(db, job_id) == ["Received", "Checking", "Waiting", "Matched", "Running",
                                         "Running"]
    attrs = ok(db.getJobAttributes(job_id))
    assert (attrs["Status"], attrs["MinorStatus"], attrs["ApplicationStatus"]) == \
        ("Running", "r", "app running")
    assert attrs["StartExecTime"] == base + dt.timedelta(seconds=3)


def test_bulk_updates_are_all_or_nothing(db):
    job_id = submit(db)
    base = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=1)
    result = error(db.setJobStatusBulk(job_id, {
        base: {"Status": "Checking"},
        base + dt.timedelta(seconds=1): {"Status": "Done"},  # Checking -> Done: refused
    }))
    assert result["Errno"] == EWMSSTATUS and "Checking to Done" in result["Message"]
    assert status_of(db, job_id) == "Received"
    assert len(ok(db.getJobLoggingInfo(job_id))) == 1


# ----------------------------------------------------------------- job control
def test_kill(db):
    job_id = submit(db)
    for status in ("Checking", "Waiting", "Matched", "Running"):
        ok(db.setJobStatus(job_id, status, "", source="x"))
    assert ok(db.killJob(job_id)) is True
    attrs = ok(db.getJobAttributes(job_id))
    assert (attrs["Status"], attrs["MinorStatus"]) == ("Killed", "Marked for termination")
    assert attrs["EndExecTime"] is not None
    assert ok(db.killJob(job_id)) is False  # already killed: nothing logged
    assert check_history(db, job_id)[-2:] == ["Running", "Killed"]


@pytest.mark.parametrize("state", ["Done", "Completed", "Failed"])
def test_a_finished_job_cannot_be_killed(db, state):
    job_id = submit(db)
    force_to(db, job_id, state)
    result = error(db.killJob(job_id))
    assert result["Errno"] == EWMSSTATUS and f"from {state} to Killed" in result["Message"]
    assert status_of(db, job_id) == state


def test_delete(db):
    waiting = submit(db)
    force_to(db, waiting, "Waiting")
    assert ok(db.deleteJob(waiting)) is True
    assert check_history(db, waiting, start=1)[-2:] == ["Waiting", "Deleted"]
    running = submit(db)
    force_to(db, running, "Running")
    ok(db.deleteJob(running))  # Running may not go to Deleted directly: killed first
    assert check_history(db, running, start=1)[-3:] == ["Running", "Killed", "Deleted"]
    assert ok(db.deleteJob(running)) is False
    completed = submit(db)
    force_to(db, completed, "Completed")  # Completed -> Done/Failed only
    assert error(db.deleteJob(completed))["Errno"] == EWMSSTATUS
    assert status_of(db, completed) == "Completed"


def test_reschedule_and_its_limit(db):
    job_id = submit(db)
    ok(db.setJobParameter(job_id, "Host", "wn1"))
    for counter in (1, 2, 3):
        force_to(db, job_id, "Running")
        assert ok(db.rescheduleJob(job_id)) == {"Status": "Received",
                                                "RescheduleCounter": counter}
        attrs = ok(db.getJobAttributes(job_id))
        assert attrs["RescheduleCounter"] == counter and attrs["RescheduleTime"] is not None
        assert attrs["StartExecTime"] is None and attrs["MinorStatus"] == "Job Rescheduled"
        assert ok(db.getJobParameters([job_id])) == {}
    log = [r[0] for r in ok(db.getJobLoggingInfo(job_id))]
    assert log[-3:] == ["Running", "Rescheduled", "Received"]
    force_to(db, job_id, "Running")
    result = error(db.rescheduleJob(job_id))  # the 4th: beyond maxRescheduling = 3
    assert "maximum number of reschedulings (3) reached" in result["Message"]
    attrs = ok(db.getJobAttributes(job_id))
    assert (attrs["Status"], attrs["MinorStatus"]) == \
        ("Failed", "Maximum of reschedulings reached")
    # reset: counter back to zero
    assert ok(db.rescheduleJob(job_id, reset=True)) == {"Status": "Received",
                                                        "RescheduleCounter": 0}


def test_reschedule_is_refused_where_the_state_machine_says_so(db):
    job_id = submit(db)  # Received -> Rescheduled is not allowed
    result = error(db.rescheduleJob(job_id))
    assert result["Errno"] == EWMSSTATUS and "Received to Rescheduled" in result["Message"]
    assert ok(db.getJobAttribute(job_id, "RescheduleCounter")) == 0


def test_unknown_jobs(db):
    for result in (db.setJobStatus(999999, "Checking", "", "x"), db.killJob(999999),
                   db.deleteJob(999999), db.rescheduleJob(999999),
                   db.setJobParameter(999999, "a", 1), db.setHeartBeat(999999),
                   db.getJobJDL(999999)):
        assert error(result)["Errno"] == EWMSUKN, result
        assert "Job 999999 not found" in result["Message"]
    assert ok(db.getJobAttributes(999999)) == {}
    assert ok(db.getJobAttribute(999999, "Status")) is None
    assert ok(db.getJobLoggingInfo(999999)) == []


# ---------------------------------------------------------------- parameters
def test_parameters_and_heartbeat(db):
    job_id = submit(db)
    ok(db.setJobParameters(job_id, [("CPU", 1.5), ["Host", "wn1"]]))
    ok(db.setJobParameters(job_id, {"Host": "wn2", "Empty": None}))
    ok(db.setJobParameter(job_id, "Memory", 1024))
    assert ok(db.getJobParameters([job_id])) == \
        {job_id: {"CPU": "1.5", "Empty": "", "Host": "wn2", "Memory": "1024"}}
    assert ok(db.getJobParameters([job_id], ["Host"])) == {job_id: {"Host": "wn2"}}
    error(db.setJobParameters(job_id, [("only-a-name",)]))
    force_to(db, job_id, "Matched")
    assert ok(db.setHeartBeat(job_id, {"LoadAverage": 1.0}, {"Node": "n1"})) == {}
    attrs = ok(db.getJobAttributes(job_id))
    assert attrs["Status"] == "Running" and attrs["HeartBeatTime"] is not None
    assert ok(db.getJobParameters([job_id], "Node")) == {job_id: {"Node": "n1"}}
    assert ok(db.getJobLoggingInfo(job_id))[-1][4] == "Heartbeat"
    ok(db.killJob(job_id))
    assert ok(db.setHeartBeat(job_id)) == {"Kill": "Job is Killed"}


# ------------------------------------------------------------ condition dicts
@pytest.fixture
def population(db):
    jobs = {}
    for owner, group, site, status in [("alice", "users", "S1", "Received"),
                                       ("alice", "users", "S2", "Waiting"),
                                       ("bob", "users", "S1", "Running"),
                                       ("bob", "prod", "S2", "Done"),
                                       ("carol", "prod", "S3", "Waiting")]:
        job_id = submit(db, owner=owner, group=group, site=site, jobgroup=group + "-jobs",
                        name=f"{owner}-{status}")
        if status != "Received":
            force_to(db, job_id, status)
        jobs[(owner, status)] = job_id
    return jobs


def test_conditions(db, population):
    p = population
    ids = lambda *keys: sorted(p[k] for k in keys)  # noqa: E731
    assert ok(db.selectJobs({"Owner": "alice"})) == ids(("alice", "Received"), ("alice", "Waiting"))
    assert ok(db.selectJobs({"owner": "alice"})) == ok(db.selectJobs({"OWNER": "alice"}))
    assert ok(db.selectJobs({"status": ["Waiting", "Done"]})) == \
        ids(("alice", "Waiting"), ("bob", "Done"), ("carol", "Waiting"))
    assert ok(db.selectJobs({"Status": "Waiting", "Site": ["S2", "S3"], "OwnerGroup": "prod"})) \
        == ids(("carol", "Waiting"))
    assert ok(db.selectJobs({"Status": []})) == []
    assert ok(db.selectJobs({"jobid": str(p[("bob", "Done")])})) == ids(("bob", "Done"))
    assert ok(db.selectJobs({"JobID": [p[("bob", "Done")], "999999"]})) == ids(("bob", "Done"))
    assert ok(db.selectJobs({"Owner": "nobody"})) == []
    assert ok(db.selectJobs(None)) == sorted(p.values())
    assert ok(db.selectJobs({}, orderAttribute="JobID:DESC")) == sorted(p.values(), reverse=True)
    assert ok(db.selectJobs({}, limit=2)) == sorted(p.values())[:2]


def test_cut_date(db, population):
    everyone = sorted(population.values())
    assert ok(db.selectJobs({}, newer="2000-01-01")) == everyone
    assert ok(db.selectJobs({}, newer=dt.date(2000, 1, 1))) == everyone
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert ok(db.selectJobs({}, newer=future)) == []
    marker = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    job_id = population[("alice", "Received")]
    ok(db.setJobStatus(job_id, "Checking", "", source="x"))
    assert ok(db.selectJobs({}, newer=marker)) == [job_id]
    assert ok(db.selectJobs({}, newer=marker.isoformat() + "Z")) == [job_id]


def test_bad_conditions(db, population):
    result = error(db.selectJobs({"Colour": "red"}))
    assert result["Errno"] == EVALUE and "Unknown job attribute 'Colour'" in result["Message"]
    assert error(db.selectJobs({"JobID": "abc"}))["Errno"] == EVALUE
    assert error(db.selectJobs({"Owner": {"a": 1}}))["Errno"] == EVALUE
    assert error(db.selectJobs(["Owner"]))["Errno"] == EVALUE  # type: ignore[arg-type]
    assert error(db.selectJobs({}, newer="soon"))["Errno"] == EVALUE
    assert error(db.selectJobs({}, orderAttribute="Colour:ASC"))["Errno"] == EVALUE
    assert error(db.selectJobs({}, orderAttribute="JobID:UP"))["Errno"] == EVALUE


def test_counters_and_distinct_values(db, population):
    counters = ok(db.getCounters("Jobs", ["Owner"], {"Status": ["Waiting", "Running", "Done"]}))
    assert counters == [({"Owner": "alice"}, 1), ({"Owner": "bob"}, 2), ({"Owner": "carol"}, 1)]
    by_two = ok(db.getCounters("Jobs", ["OwnerGroup", "Site"]))
    assert ({"OwnerGroup": "users", "Site": "S1"}, 2) in by_two
    assert ok(db.countJobs({"Site": "S1"})) == 2
    assert ok(db.getDistinctJobAttributes("owner")) == ["alice", "bob", "carol"]
    assert ok(db.getDistinctJobAttributes("Status", {"Owner": "bob"})) == ["Done", "Running"]
    assert error(db.getCounters("Jobs", []))["Errno"] == EVALUE
    # DIRAC's signature: getCounters(table, attrList, condDict, older, newer, timeStamp)
    assert error(db.getCounters("JobJDLs", ["Owner"]))["Errno"] == EVALUE
    assert error(db.getCounters("Jobs", ["Owner"], {}, timeStamp="Owner"))["Errno"] == EVALUE
    assert ok(db.getCounters("Jobs", ["Owner"], {}, newer="2999-01-01")) == []
    everyone = ok(db.getCounters("Jobs", ["Owner"], {}, older="2999-01-01",
                                 timeStamp="SubmissionTime"))
    assert sum(n for _, n in everyone) == 5


def test_web_summary(db, population):
    page = ok(db.getSummaryWeb({}, [["JobID", "DESC"]], 0, 2))
    assert page["ParameterNames"] == list(JOB_ATTRIBUTES)
    assert page["TotalRecords"] == 5
    assert page["Extras"] == {"Received": 1, "Waiting": 2, "Running": 1, "Done": 1}
    newest = sorted(population.values(), reverse=True)
    assert [r[0] for r in page["Records"]] == newest[:2]
    assert all(len(r) == len(JOB_ATTRIBUTES) for r in page["Records"])
    nxt = ok(db.getSummaryWeb({}, [["JobID", "DESC"]], 2, 2))
    assert [r[0] for r in nxt["Records"]] == newest[2:4]
    mine = ok(db.getSummaryWeb({"Status": "Waiting"}, [], 0, 10, restrict={"Owner": "alice"}))
    assert mine["TotalRecords"] == 1 and mine["Extras"] == {"Waiting": 1}
    # a condition cannot lift the restriction
    theirs = ok(db.getSummaryWeb({"Owner": "bob"}, [], 0, 10, restrict={"Owner": "alice"}))
    assert theirs["TotalRecords"] == 0 and theirs["Records"] == []
    by_site = ok(db.getSummaryWeb({}, [["Site", "ASC"], ["Owner", "DESC"]], 0, 10))
    index = page["ParameterNames"].index
    assert [(r[index("Site")], r[index("Owner")]) for r in by_site["Records"]] == \
        [("S1", "bob"), ("S1", "alice"), ("S2", "bob"), ("S2", "alice"), ("S3", "carol")]
    counts_only = ok(db.getSummaryWeb({"FromDate": "2000-01-01"}, None, 0, 0))
    assert counts_only["Records"] == [] and counts_only["TotalRecords"] == 5
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    assert ok(db.getSummaryWeb({"ToDate": future}, None, 0, 10))["TotalRecords"] == 5
    assert ok(db.getSummaryWeb({"LastUpdate": future}, None, 0, 10))["TotalRecords"] == 0


# ------------------------------------------------------------------ concurrency
def test_threads_submitting_at_once_never_duplicate_a_job(db):
    def work(n):
        return [submit(db, owner=f"user{n}", name=f"{n}-{i}") for i in range(25)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    ids = [i for chunk in results for i in chunk]
    assert len(ids) == len(set(ids)) == 200
    assert count(db, jobsTable) == 200
    assert count(db, loggingTable) == 200
    for n, chunk in enumerate(results):
        assert ok(db.selectJobs({"Owner": f"user{n}"})) == sorted(chunk)


def test_concurrent_updates_of_one_job_are_all_kept(db):
    job_id = submit(db)
    force_to(db, job_id, "Running")
    before = len(ok(db.getJobLoggingInfo(job_id)))

    def work(n):
        for i in range(15):
            ok(db.setJobApplicationStatus(job_id, f"t{n}-{i}", f"thread{n}"))
            ok(db.setJobParameter(job_id, f"p{n}", i))

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(work, range(6)))
    log = ok(db.getJobLoggingInfo(job_id))
    assert len(log) == before + 6 * 15
    assert {r[2] for r in log[before:]} == {f"t{n}-{i}" for n in range(6) for i in range(15)}
    assert ok(db.getJobParameters([job_id])) == {job_id: {f"p{n}": "14" for n in range(6)}}
    assert ok(db.getJobAttribute(job_id, "ApplicationStatus")) == log[-1][2]


def test_racing_reschedules_of_one_job_have_exactly_one_winner(db):
    db.maxRescheduling = 100
    for _ in range(3):
        job_id = submit(db)
        force_to(db, job_id, "Running")
        barrier = threading.Barrier(8)

        def work(_n, job_id=job_id, barrier=barrier):
            barrier.wait()
            return db.rescheduleJob(job_id)["OK"]

        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(work, range(8)))
        assert outcomes.count(True) == 1, outcomes
        assert ok(db.getJobAttribute(job_id, "RescheduleCounter")) == 1
        assert check_history(db, job_id, start=1) == ["Received", "Running", "Rescheduled",
                                                      "Received"]


def test_racing_kills_and_progress_keep_a_valid_history(db):
    jobs = [submit(db, name=f"race{i}") for i in range(12)]
    path = ["Checking", "Waiting", "Matched", "Running", "Completing", "Done"]

    def advance(job_id):
        for status in path:
            if not db.setJobStatus(job_id, status, "", source="pilot")["OK"]:
                return

    def kill(job_id):
        random.seed(job_id)
        for _ in range(3):
            db.killJob(job_id)

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(advance, j) for j in jobs] + [pool.submit(kill, j) for j in jobs]
        for future in futures:
            future.result()
    for job_id in jobs:
        statuses = check_history(db, job_id)
        assert statuses[-1] in ("Killed", "Done"), statuses
        assert statuses.count("Killed") <= 1


def test_processes_writing_at_once(jobdb_url):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.starmap(submit_and_update,
                               [(jobdb_url, f"proc{n}", 15) for n in range(3)])
    ids = [i for chunk in results for i in chunk]
    assert len(ids) == len(set(ids)) == 45
    db = JobDB(jobdb_url)
    statuses = ok(db.getJobsAttributes(ids, ["Status", "Owner"]))
    assert {a["Status"] for a in statuses.values()} == {"Running"}
    for n, chunk in enumerate(results):
        assert ok(db.selectJobs({"Owner": f"proc{n}"})) == sorted(chunk)
        for job_id in chunk:
            assert len(check_history(db, job_id)) == 5


def _initialize(url):
    return JobDB(url).initialize()["OK"]


def test_schema_created_by_processes_starting_together(jobdb_url):
    JobDB(jobdb_url).dropTables()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        assert pool.map(_initialize, [jobdb_url] * 4) == [True] * 4
    db = JobDB(jobdb_url)
    assert ok(db.initialize()) is None
    assert submit(db) >= 1


def test_database_errors_are_reported_as_EDB(tmp_path):
    db = JobDB(f"sqlite:///{tmp_path / 'empty.sqlite'}")  # no schema: every query fails
    result = error(db.selectJobs({}))
    assert result["Errno"] == EDB and "no such table" in result["Message"]

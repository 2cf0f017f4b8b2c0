"""DIRAC's optimizer chain: JobPath -> JobSanity [-> InputData] -> JobScheduling, once per job.

The JobDB is the record; the broker only says "look at these jobs".  Each step runs
in one database transaction that first locks the job and checks it is still where
this optimizer left it, so a job is optimized exactly once even with several
Optimizers workers and broker redeliveries:

1. **JobPath** claims the job: ``Received`` (or ``Checking`` left by an optimizer that
   died: no change for :data:`CLAIM_LEASE` seconds) -> ``Checking`` / "JobSanity",
   recording a claim token (job parameter ``OptimizerClaim``) and the chain
   (``OptimizerChain``).  A job someone else holds, or that is no longer waiting for
   optimization, is left alone.
2. **JobSanity** (same claim) checks the JDL and the input sandbox: every ``SB:``
   entry must be a sandbox of the job's owner, then assigned to ``Job:<id>``/Input;
   an ``LFN:`` entry must be an LFN (its replicas are the InputData step's).
   -> ``Checking`` / "JobScheduling" (or "InputData" for a job with input data or
   ``LFN:`` input sandbox entries).
3. **InputData** (same claim; only for a job whose JDL has ``InputData`` or ``LFN:``
   entries in its ``InputSandbox``: JobPath then records the chain
   ``JobPath,JobSanity,InputData,JobScheduling``) asks the file catalogue where the
   files are (Executor/InputData.py, outside any transaction), fails the job when one
   has no replica ("Input data not available" / "Input sandbox not available", the
   LFNs in the logging info), else records the candidate sites of the input data (job
   parameter ``InputDataSites``; the input sandbox's LFNs do not restrict the sites)
   -> ``Checking`` / "JobScheduling".  An unreachable catalogue leaves the job in
   ``Checking`` / "InputData" (the logging info says so) for the sweep to retry after
   the lease, and fails it once the catalogue has not answered for it during
   ``DIRAC_WMS_INPUTDATA_MAX_WAIT`` seconds.
4. **JobScheduling** (same claim) computes the requirements (requested sites minus
   banned ones, intersected with InputData's candidate sites, tags, processors, CPU
   time), writes them into the JDL as
   ``JobRequirements``, puts the job in its task queue and sets ``Waiting`` /
   "Pilot Agent Submission", all in one transaction.

A step that finds a problem sets ``Failed`` / "<step> optimizer" with the reason as
the application status (so it shows in the logging info).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import sqlalchemy as sa
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType, SErrorException
from sqlalchemy.engine import Connection

from DIRAC.Core.Utilities.Environment import envNumber
from DIRAC.WorkloadManagementSystem.Client import JobStatus as JS
from DIRAC.WorkloadManagementSystem.DB.JobDB import JobDB, _now, jdlTable, parametersTable
from DIRAC.WorkloadManagementSystem.DB.SandboxMetadataDB import (
    SandboxMetadataDB,
    entityForJob,
    entityTable,
    sandboxesTable,
)
from DIRAC.WorkloadManagementSystem.DB.TaskQueueDB import (
    DEFAULT_CPU_TIME,
    TaskQueueDB,
    insertIgnore,
    normalizeRequirements,
)
from DIRAC.WorkloadManagementSystem.Executor.InputData import (
    INPUT_DATA,
    MAX_WAIT,
    ReplicaSource,
    inputDataLFNs,
    needsCatalogue,
    notAvailable,
    resolveInputData,
    sandboxLFNs,
)
from DIRAC.WorkloadManagementSystem.Utilities.JDL import ClassAd, JDLError, parseJDL

__all__ = ["CHAIN", "CLAIM_LEASE", "INPUT_DATA_CHAIN", "PILOT_AGENT_SUBMISSION",
           "JobOptimizer"]

log = logging.getLogger(__name__)

#: The optimizers every job goes through, in order (DIRAC's default chain).
CHAIN = ("JobPath", "JobSanity", "JobScheduling")
#: The chain of a job with InputData (DIRAC's JobPath adds InputData for it).
INPUT_DATA_CHAIN = ("JobPath", "JobSanity", INPUT_DATA, "JobScheduling")
#: Minor status of a job waiting in a task queue (DIRAC's wording).
PILOT_AGENT_SUBMISSION = "Pilot Agent Submission"
#: Seconds after which a job left in Checking by an optimizer may be claimed again.
CLAIM_LEASE = envNumber("DIRAC_WMS_OPTIMIZER_LEASE", 60.0, minimum=1.0)
SOURCE = "Optimizers"
#: Seconds after a failed catalogue call during which jobs with input data are put back
#: at once instead of each waiting for the catalogue's timeout.
CATALOG_BACKOFF = 10.0
#: Most jobs :meth:`JobOptimizer.optimizeJobs` runs the chain on in one transaction.
JOBS_PER_TRANSACTION = envNumber("DIRAC_WMS_OPTIMIZER_BATCH", 25, minimum=1)

_T = TypeVar("_T")
#: What the chain gives for a job it leaves, within a batch, before the InputData step.
_DEFERRED: DReturnType = {"OK": True, "Value": "deferred"}

# Statements the steps run for every job, built once (values as parameters).
_JDL = sa.select(jdlTable.c.JDL).where(jdlTable.c.JobID == sa.bindparam("jdl_job_id"))
_SET_JDL = sa.update(jdlTable).where(jdlTable.c.JobID == sa.bindparam("jdl_job_id"))


class _Fail(Exception):
    """A step refuses the job: ``reason`` goes into the logging info."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(reason)
        self.step = step
        self.reason = reason


class _Lost(Exception):
    """The job is no longer ours to optimize (killed, or claimed by another)."""


def _sites(ad: ClassAd, *names: str) -> list[str]:
    found: list[str] = []
    for name in names:
        for site in ad.getListFromExpression(name):
            for part in str(site).split(","):
                part = part.strip()
                if part and part.upper() != "ANY" and part not in found:
                    found.append(part)
    return found


def bannedSites() -> list[str]:
    """Sites no job may go to (the site mask): ``DIRAC_WMS_BANNED_SITES``, comma-separated."""
    return [s.strip() for s in os.environ.get("DIRAC_WMS_BANNED_SITES", "").split(",")
            if s.strip()]


def jobRequirements(ad: ClassAd, dataSites: list[str] | None = None) -> dict[str, Any]:
    """What JobScheduling derives from a JDL (raises :class:`_Fail` when impossible).

    ``dataSites``: the InputData optimizer's candidate sites (None: no restriction).
    """
    requested = _sites(ad, "Site", "Destination")
    banned = sorted(set(_sites(ad, "BannedSites", "BannedSite")) | set(bannedSites()))
    allowed = [s for s in requested if s not in banned]
    if requested and not allowed:
        raise _Fail("JobScheduling", f"Impossible site requirement: every requested site "
                                     f"({', '.join(requested)}) is banned")
    if dataSites is not None:
        allowed = _dataSites(requested, allowed, banned, dataSites)
    cpu = ad.getAttributeInt("CPUTime") or ad.getAttributeInt("MaxCPUTime") or DEFAULT_CPU_TIME
    if cpu <= 0:
        raise _Fail("JobScheduling", f"invalid CPUTime {cpu}")
    tags = sorted({*ad.getListFromExpression("Tags"), *ad.getListFromExpression("Tag")})
    processors = ad.getAttributeInt("NumberOfProcessors") or \
        ad.getAttributeInt("MinNumberOfProcessors") or 1
    return normalizeRequirements({"Sites": allowed, "BannedSites": banned, "CPUTime": cpu,
                                  "Tags": tags, "NumberOfProcessors": processors})


def _dataSites(requested: list[str], allowed: list[str], banned: list[str],
               dataSites: list[str]) -> list[str]:
    """The sites left once the input data's candidate sites are taken into account."""
    if not dataSites:
        raise _Fail("JobScheduling", "No candidate sites available: no site holds all the "
                                     "input data")
    if requested:
        kept = [s for s in allowed if s in dataSites]
        if not kept:
            raise _Fail("JobScheduling", f"No candidate sites available: the input data "
                                         f"are at {', '.join(dataSites)}, the job may run "
                                         f"only at {', '.join(allowed)}")
        return kept
    kept = [s for s in dataSites if s not in banned]
    if not kept:
        raise _Fail("JobScheduling", f"No candidate sites available: every site holding "
                                     f"the input data ({', '.join(dataSites)}) is banned")
    return kept


class JobOptimizer:
    """Runs the chain on jobs of one JobDB (thread-safe; one per process is enough)."""

    def __init__(self, jobDB: JobDB, taskQueueDB: TaskQueueDB | None = None,
                 sandboxDB: SandboxMetadataDB | None = None, lease: float | None = None,
                 catalog: ReplicaSource | None = None) -> None:
        self.db = jobDB
        #: The file catalogue the InputData step asks (a FileCatalogClient on first use).
        self.catalog = catalog
        #: (monotonic time, message) of the catalogue's last failure: for
        #: CATALOG_BACKOFF seconds the next jobs do not wait for it again.
        self._catalogDown: tuple[float, str] | None = None
        self.tq = taskQueueDB or TaskQueueDB(jobDB)
        self.sb = sandboxDB or SandboxMetadataDB(jobDB)
        self.lease = CLAIM_LEASE if lease is None else lease
        #: The transaction of the batch this thread is optimizing (see optimizeJobs).
        self._batch = threading.local()

    def initialize(self) -> DReturnType:
        """Create the tables the chain uses."""
        for db in (self.db, self.tq, self.sb):
            result = db.initialize()
            if not result["OK"]:
                return result
        return S_OK()

    # --------------------------------------------------------------- helpers
    def _run(self, work: Callable[[Connection], _T], savepoint: bool = True) -> _T:
        """Run a step: in its own transaction, or within the batch's transaction, in a
        savepoint so that a step that fails leaves nothing of itself behind.  A step
        that refuses a job only before writing anything needs none (``savepoint=False``:
        two round trips less on PostgreSQL); a database error within a batch fails the
        whole batch (see optimizeJobs)."""
        conn: Connection | None = getattr(self._batch, "conn", None)
        if conn is None:
            return self.db._run(work)  # type: ignore[no-any-return]
        if not savepoint:
            return work(conn)
        with conn.begin_nested():
            return work(conn)

    def _held(self, jobID: int, token: str) -> dict[str, Any] | None:
        """Within a batch, what this batch's transaction already holds of a job it
        claimed with ``token``: ``{"job": its locked row (kept up to date by
        JobDB._change), "jdl": its JDL, "ad": the parsed JDL once JobSanity parsed
        it}``; None outside a batch.  The steps after JobPath then neither lock the row
        again nor read and parse the JDL again: three to four round trips less per
        job.  The steps that use it write nothing before they may refuse (no
        savepoint to roll back under them), so the row kept here is the database's."""
        if getattr(self._batch, "conn", None) is None:
            return None
        held: dict[str, Any] | None = self._batch.jobs.get(jobID)
        return held if held is not None and held["token"] == token else None

    def _claimed(self, conn: Connection, jobID: int, token: str, minor: str
                 ) -> dict[str, Any]:
        """The locked job if it is still ours at step ``minor``; else raise _Lost."""
        held = self._held(jobID, token)
        if held is not None:
            job: dict[str, Any] = held["job"]
        else:
            job = self.db._lock(conn, jobID, parameter="OptimizerClaim")
            if job.pop("_parameter") != token:
                raise _Lost()
        if job["Status"] != JS.CHECKING or job["MinorStatus"] != minor:
            raise _Lost()
        return job

    def _step(self, conn: Connection, jobID: int, token: str, job: dict[str, Any],
              parameters: list[tuple[str, Any]] | None = None, **change: Any) -> None:
        """A step's state change (``JobDB._change``'s keywords) and job parameters:
        written now, or, within a batch, planned and written with the job's other steps
        by :meth:`_flush` (one update of the job's row, one insert of its logging
        records and one of its parameters for the whole chain, not one of each per
        step)."""
        held = self._held(jobID, token)
        if held is None:
            if parameters:
                self.db._upsert_parameters(conn, jobID, parameters)
            self.db._change(conn, job, **change)
            return
        held["parameters"] += parameters or []
        values, record = self.db._plan(conn, job, status=change.get("status"),
                                       minor=change.get("minor"),
                                       application=change.get("application"),
                                       source=change["source"], force=False, date=None)
        held["values"].update(values)
        held["records"].append(record)

    def _flush(self, conn: Connection, jobID: int) -> None:
        """Write what the batch's steps planned for a job (see :meth:`_step`)."""
        held = getattr(self._batch, "jobs", {}).get(jobID) \
            if getattr(self._batch, "conn", None) is not None else None
        if held is None:
            return
        if held["parameters"]:
            self.db._upsert_parameters(conn, jobID, held["parameters"])
        self.db._write(conn, jobID, held["written"], held["values"], held["records"])
        held["written"] = held["job"]["Status"]
        held["parameters"], held["values"], held["records"] = [], {}, []

    def _fail(self, jobID: int, token: str, step: str, reason: str) -> None:
        conn = getattr(self._batch, "conn", None)
        if conn is not None:
            self._flush(conn, jobID)  # the steps that passed, as if committed before

        def fail(conn: Connection) -> None:
            job = self._claimed(conn, jobID, token, step)
            self.db._change(conn, job, status=JS.FAILED, minor=f"{step} optimizer",
                            application=reason[:1000], source=step)
        try:
            self._run(fail)
        except _Lost:
            pass

    # ------------------------------------------------------------------ steps
    def _jobPath(self, jobID: int, token: str) -> bool:
        lease_cutoff = _now() - dt.timedelta(seconds=self.lease)

        def claim(conn: Connection) -> bool:
            job = self.db._lock(conn, jobID)
            if job["Status"] == JS.RECEIVED:
                pass
            elif job["Status"] == JS.CHECKING and job["MinorStatus"] in INPUT_DATA_CHAIN and \
                    (job["LastUpdateTime"] is None
                     or job["LastUpdateTime"] < lease_cutoff):
                pass  # left by an optimizer that stopped: take it over
            else:
                return False
            jdl = conn.scalar(_JDL, {"jdl_job_id": jobID})
            chain = INPUT_DATA_CHAIN if self._hasInputData(jdl) else CHAIN
            if getattr(self._batch, "conn", None) is not None:
                self._batch.jobs[jobID] = {"job": job, "token": token, "jdl": jdl,
                                           "written": job["Status"], "parameters": [],
                                           "values": {}, "records": []}
            self._step(conn, jobID, token, job, [("OptimizerClaim", token),
                                                 ("OptimizerChain", ",".join(chain))],
                       status=JS.CHECKING, minor="JobSanity", source="JobPath")
            return True

        try:
            return bool(self._run(claim, savepoint=False))  # refuses before writing
        except SErrorException as exc:
            log.info("job %s: not optimized: %s", jobID, exc.result.get("Message"))
            return False

    def _jobSanity(self, jobID: int, token: str) -> bool:
        def sanity(conn: Connection) -> bool:
            job = self._claimed(conn, jobID, token, "JobSanity")
            held = self._held(jobID, token)
            jdl = held["jdl"] if held is not None else conn.scalar(_JDL, {"jdl_job_id": jobID})
            try:
                ad = parseJDL(jdl or "")
            except JDLError as exc:
                raise _Fail("JobSanity", f"the stored JDL does not parse: {exc}") from None
            if not str(ad.get("Executable", "")).strip():
                raise _Fail("JobSanity", "the JDL has no Executable")
            try:
                hasInputData = bool(inputDataLFNs(ad))
            except ValueError as exc:
                raise _Fail("JobSanity", f"invalid InputData: {exc}") from None
            try:  # LFN: input sandbox entries: the InputData step checks their replicas
                hasInputData = bool(sandboxLFNs(ad)) or hasInputData
            except ValueError as exc:
                raise _Fail("JobSanity", f"invalid input sandbox entry {exc}") from None
            t = sandboxesTable.c
            inputs = []  # checked first, assigned after: nothing written before a refusal
            for entry in ad.getListFromExpression("InputSandbox"):
                entry = entry.strip()
                if entry.startswith("SB:"):
                    sb = conn.execute(sa.select(t.SBId, t.Owner).where(t.Name == entry)
                                      ).first()
                    if sb is None:
                        raise _Fail("JobSanity", f"input sandbox {entry} does not exist")
                    if sb.Owner != job["Owner"]:
                        raise _Fail("JobSanity", f"input sandbox {entry} is not the job "
                                                 f"owner's")
                    inputs.append(sb.SBId)
                elif entry.upper().startswith("LFN:"):
                    pass  # checked above, its replicas by the InputData step
                elif entry:
                    raise _Fail("JobSanity", f"input sandbox file {entry!r} was not uploaded "
                                             f"(submit with WMSClient, Dirac().submitJob or "
                                             f"dirac-wms-job-submit, which upload local "
                                             f"files)")
            for sb_id in inputs:
                insertIgnore(conn, entityTable, dict(SBId=sb_id, EntityId=entityForJob(jobID),
                                                     Type="Input"))
            self._step(conn, jobID, token, job, status=JS.CHECKING,
                       minor=INPUT_DATA if hasInputData else "JobScheduling",
                       source="JobSanity")
            if held is not None:
                held["ad"] = ad  # JobScheduling's, not parsed again
            return hasInputData

        return bool(self._run(sanity, savepoint=False))  # refuses before writing

    # ------------------------------------------------------------- InputData
    @staticmethod
    def _hasInputData(jdl: str | None) -> bool:
        """Whether the job's JDL names input data or ``LFN:`` input sandbox entries (a
        JDL that does not parse: False, JobSanity fails it)."""
        if not jdl or ("InputData" not in jdl and "lfn:" not in jdl.lower()):  # most jobs
            return False
        try:
            return needsCatalogue(parseJDL(jdl))
        except JDLError:
            return False

    @staticmethod
    def _inputDataSites(conn: Connection, jobID: int) -> list[str] | None:
        """The candidate sites the InputData step recorded (None: no restriction)."""
        p = parametersTable.c
        text = conn.scalar(sa.select(p.Value).where(p.JobID == jobID,
                                                    p.Name == "InputDataSites"))
        sites = json.loads(text) if text else None
        return [str(s) for s in sites] if isinstance(sites, list) else None

    def _catalog(self) -> ReplicaSource:
        if self.catalog is None:
            from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient

            try:
                timeout = float(os.environ.get("DIRAC_WMS_INPUTDATA_TIMEOUT") or 30)
            except ValueError:
                timeout = 30.0
            self.catalog = FileCatalogClient(timeout=timeout)
        return self.catalog

    def _inputData(self, jobID: int, token: str) -> bool:
        """The InputData step: True when the job went on to JobScheduling, False when it
        was left in Checking / InputData because the catalogue did not answer (raises
        :class:`_Fail` when the data are not available or after too many tries)."""
        def read(conn: Connection) -> tuple[list[str], list[str]]:
            self._claimed(conn, jobID, token, INPUT_DATA)
            jdl = conn.scalar(sa.select(jdlTable.c.JDL).where(jdlTable.c.JobID == jobID))
            ad = parseJDL(jdl or "")
            return inputDataLFNs(ad), sandboxLFNs(ad)

        lfns, sandbox = self.db._run(read)
        down = self._catalogDown
        if down is not None and time.monotonic() - down[0] < CATALOG_BACKOFF:
            resolved = S_ERROR(f"{down[1]} (less than {CATALOG_BACKOFF:g} s ago)")
        else:
            # Asked outside any transaction: the job row stays unlocked meanwhile.
            resolved = resolveInputData(self._catalog(), lfns, sandbox=sandbox)
            self._catalogDown = None if resolved["OK"] else \
                (time.monotonic(), resolved["Message"])
        if resolved["OK"] and resolved["Value"]["Missing"]:
            raise _Fail(INPUT_DATA, notAvailable(resolved["Value"]["Missing"], sandbox))

        def record(conn: Connection) -> bool:
            job = self._claimed(conn, jobID, token, INPUT_DATA)
            p = parametersTable.c
            if not resolved["OK"]:
                since_text = conn.scalar(sa.select(p.Value).where(
                    p.JobID == jobID, p.Name == "InputDataWaitingSince"))
                now = _now()
                try:
                    since = dt.datetime.fromisoformat(since_text) if since_text else now
                except ValueError:
                    since = now
                waited = (now - since).total_seconds()
                if since_text and waited >= MAX_WAIT:
                    raise _Fail(INPUT_DATA, f"cannot resolve the input data: the file "
                                            f"catalogue has not answered for {waited:.0f} s: "
                                            f"{resolved['Message']}")
                if not since_text:
                    self.db._upsert_parameters(conn, jobID, [
                        ("InputDataWaitingSince", now.isoformat(timespec="seconds"))])
                self.db._change(conn, job, status=JS.CHECKING, minor=INPUT_DATA,
                                application=f"waiting for the file catalogue (since "
                                            f"{since:%Y-%m-%d %H:%M:%S}): "
                                            f"{resolved['Message']}"[:1000],
                                source=INPUT_DATA)
                return False
            waited_before = str(job.get("ApplicationStatus") or "").startswith(
                "waiting for the file catalogue")
            found = [("InputDataSites", json.dumps(resolved["Value"]["Sites"]))]
            if waited_before:  # a rescheduled job waits afresh
                found.append(("InputDataWaitingSince", ""))
            self.db._upsert_parameters(conn, jobID, found)
            self.db._change(conn, job, status=JS.CHECKING, minor="JobScheduling",
                            application="Input data resolved" if waited_before else None,
                            source=INPUT_DATA)
            return True

        return bool(self.db._run(record))

    def _jobScheduling(self, jobID: int, token: str) -> None:
        def schedule(conn: Connection) -> None:
            job = self._claimed(conn, jobID, token, "JobScheduling")
            held = self._held(jobID, token)
            if held is not None and "ad" in held:
                ad = held.pop("ad")  # changed below: this step is its last user
            else:
                ad = parseJDL(conn.scalar(_JDL, {"jdl_job_id": jobID}) or "")
            dataSites = self._inputDataSites(conn, jobID) \
                if ad.getListFromExpression("InputData") else None
            requirements = jobRequirements(ad, dataSites)
            ad["JobRequirements"] = ClassAd({
                "CPUTime": requirements["CPUTime"],
                "NumberOfProcessors": requirements["NumberOfProcessors"],
                "Sites": requirements["Sites"], "BannedSites": requirements["BannedSites"],
                "Tags": requirements["Tags"], "OwnerGroup": job["OwnerGroup"]})
            conn.execute(_SET_JDL, {"jdl_job_id": jobID, "JDL": ad.asJDL()})
            self.tq.insertJobInConn(conn, jobID, requirements, job["Owner"],
                                    job["OwnerGroup"], job["UserPriority"])
            self._step(conn, jobID, token, job,
                       [("JobRequirements", json.dumps(requirements, sort_keys=True))],
                       status=JS.WAITING, minor=PILOT_AGENT_SUBMISSION, source="JobScheduling")

        self._run(schedule, savepoint=False)  # refuses (_Fail, JDLError) before writing

    # ------------------------------------------------------------------ chain
    def optimizeJob(self, jobID: int) -> DReturnType:
        """Run the chain on one job: ``S_OK(final status)`` or ``S_OK(None)`` when the
        job was not ours to optimize; S_ERROR only for database trouble (the job is
        then retried later)."""
        jobID = int(jobID)
        token = uuid.uuid4().hex
        if not self._jobPath(jobID, token):
            return S_OK(None)
        return self._chain(jobID, token, "JobSanity")

    def _chain(self, jobID: int, token: str, step: str) -> DReturnType:
        """The chain from ``step`` (JobSanity, or InputData for a job a batch left
        there) on, for the job this optimizer claimed with ``token``.  Within a batch,
        a job with input data stops after JobSanity (:data:`_DEFERRED`): the InputData
        step asks the catalogue, which must not happen inside a transaction."""
        try:
            hasInputData = step == INPUT_DATA or self._jobSanity(jobID, token)
            step = INPUT_DATA
            if hasInputData and getattr(self._batch, "conn", None) is not None:
                return _DEFERRED
            if hasInputData and not self._inputData(jobID, token):
                return S_OK(None)  # the catalogue did not answer: the sweep retries
            step = "JobScheduling"
            self._jobScheduling(jobID, token)
        except _Lost:
            return S_OK(None)
        except _Fail as exc:
            log.info("job %s failed in %s: %s", jobID, exc.step, exc.reason)
            self._fail(jobID, token, exc.step, exc.reason)
            return S_OK(JS.FAILED)
        except JDLError as exc:
            self._fail(jobID, token, step, f"invalid JDL: {exc}")
            return S_OK(JS.FAILED)
        except (SErrorException, sa.exc.SQLAlchemyError) as exc:
            if getattr(self._batch, "conn", None) is not None:
                # what the step wrote may stay in the batch's transaction (a step without
                # savepoint), or that transaction is spoilt: all of it again, one by one
                raise
            if isinstance(exc, SErrorException):
                log.warning("job %s: %s: %s", jobID, step, exc.result.get("Message"))
                return exc.result
            log.warning("job %s: database error in %s: %s", jobID, step, exc)
            return S_ERROR(f"database error in {step}: {exc}")
        return S_OK(JS.WAITING)

    def optimizeJobs(self, jobIDs: Iterable[int]) -> DReturnType:
        """Run the chain on several jobs, :data:`JOBS_PER_TRANSACTION` per transaction:
        ``S_OK({jobID: outcome})``, outcome as :meth:`optimizeJob` gives (``S_ERROR``
        results included for the jobs that met database trouble).

        Every step of every job is what :meth:`optimizeJob` does (same checks, states
        and logging records), each in a savepoint; what changes is that one commit
        covers many jobs, the costly part of a step.  A transaction that fails as a
        whole is run again by the JobDB's retry, else its jobs go one by one.
        """
        ids = sorted({int(i) for i in jobIDs})  # one lock order for every optimizer
        out: dict[int, DReturnType] = {}
        for start in range(0, len(ids), JOBS_PER_TRANSACTION):
            chunk = ids[start:start + JOBS_PER_TRANSACTION]

            deferred: dict[int, str] = {}  # jobs with input data: their claim tokens

            def batch(conn: Connection, chunk: list[int] = chunk,
                      deferred: dict[int, str] = deferred) -> dict[int, DReturnType]:
                deferred.clear()  # (the transaction may run again)
                self._batch.conn = conn
                self._batch.jobs = {}  # see _held
                done: dict[int, DReturnType] = {}
                try:
                    for job_id in chunk:
                        token = uuid.uuid4().hex
                        if not self._jobPath(job_id, token):
                            done[job_id] = S_OK(None)
                            continue
                        result = self._chain(job_id, token, "JobSanity")
                        self._flush(conn, job_id)
                        if result is _DEFERRED:
                            deferred[job_id] = token
                        else:
                            done[job_id] = result
                    return done
                finally:
                    self._batch.conn = None
                    self._batch.jobs = {}

            try:
                out.update(self.db._run(batch))
            except (SErrorException, sa.exc.SQLAlchemyError) as exc:
                log.warning("optimizing jobs %s..%s together failed (%s); one by one",
                            chunk[0], chunk[-1], exc)
                out.update((job_id, self.optimizeJob(job_id)) for job_id in chunk)
                continue
            # committed: the jobs with input data go on, each step in its own transaction
            out.update((job_id, self._chain(job_id, token, INPUT_DATA))
                       for job_id, token in deferred.items())
        return S_OK(out)

    def jobsToRecover(self, limit: int = 1000) -> DReturnType:
        """Jobs waiting for optimization per the JobDB: Received, or Checking for longer
        than the lease (their optimizer stopped)."""
        received = self.db.selectJobs({"Status": JS.RECEIVED}, limit=limit)
        if not received["OK"]:
            return received
        cutoff = _now() - dt.timedelta(seconds=self.lease)
        checking = self.db.selectJobs({"Status": JS.CHECKING}, limit=limit)
        if not checking["OK"]:
            return checking
        stale = []
        if checking["Value"]:
            attrs = self.db.getJobsAttributes(checking["Value"], ["LastUpdateTime"])
            if not attrs["OK"]:
                return attrs
            stale = [i for i, a in attrs["Value"].items()
                     if a["LastUpdateTime"] is None or a["LastUpdateTime"] < cutoff]
        return S_OK(sorted(set(received["Value"]) | set(stale)))

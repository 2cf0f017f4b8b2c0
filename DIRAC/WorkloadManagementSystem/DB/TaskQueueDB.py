"""TaskQueueDB: waiting jobs grouped by what they need, and atomic matching.

Lives in the JobDB's database (same URL, same engine, same transactions): a job moves
from ``Waiting`` in the JobDB to its task queue, and from there to ``Matched``, in
single transactions, so the two can never disagree.

* A **task queue** is one set of requirements (owner, owner group, CPU time, sites,
  banned sites, tags, processors): jobs with equal requirements share one.
* **Matching** (:meth:`TaskQueueDB.matchAndGetJob`) filters the task queues a resource
  can run, picks an owner group by its share (``DIRAC_WMS_GROUP_SHARES``, e.g.
  ``"lhcb_user=2,dteam=1"``; every group 1 by default), then an owner of that group
  uniformly (one user's 10,000 jobs do not starve another user's ten), then that
  owner's job with the highest ``UserPriority`` (oldest first).  The job leaves its
  task queue and becomes ``Matched`` in the same transaction: a conditional
  ``DELETE`` whose row count says who got it (PostgreSQL also skips rows another
  matcher has locked, ``FOR UPDATE SKIP LOCKED``; SQLite serialises writers).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from diracmq.broker.derrno import EVALUE, EWMSNOMATCH
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType, SErrorException
from sqlalchemy.engine import Connection

from DIRAC.WorkloadManagementSystem.Client import JobStatus as JS
from DIRAC.WorkloadManagementSystem.DB.JobDB import (
    _LAST_OF_JOB,
    JobDB,
    _returns,
    jdlTable,
    jobsTable,
)

__all__ = ["TaskQueueDB", "groupShares", "insertIgnore", "tqMetadata"]

#: Minor status of a job the Matcher gave to a job agent (DIRAC's wording).
ASSIGNED = "Assigned"
#: CPU time (s) of a job whose JDL does not say (DIRAC's default).
DEFAULT_CPU_TIME = 86400

tqMetadata = sa.MetaData()

taskQueuesTable = sa.Table(
    "tq_TaskQueues", tqMetadata,
    sa.Column("TQId", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("Hash", sa.String(64), nullable=False, unique=True),
    sa.Column("Owner", sa.String(255), nullable=False),
    sa.Column("OwnerGroup", sa.String(255), nullable=False),
    sa.Column("CPUTime", sa.BigInteger, nullable=False),
    sa.Column("NumberOfProcessors", sa.Integer, nullable=False, server_default="1"),
    sa.Column("Sites", sa.Text, nullable=False, server_default=""),
    sa.Column("BannedSites", sa.Text, nullable=False, server_default=""),
    sa.Column("Tags", sa.Text, nullable=False, server_default=""),
    sa.Index("ix_tq_TaskQueues_CPUTime", "CPUTime"),
)

taskQueueJobsTable = sa.Table(
    "tq_Jobs", tqMetadata,
    sa.Column("JobID", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("TQId", sa.Integer, nullable=False),
    sa.Column("UserPriority", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_tq_Jobs_TQ_Priority", "TQId", "UserPriority", "JobID"),
)


# Statements run for every job, built once (values as parameters).
_TQ_BY_HASH = sa.select(taskQueuesTable.c.TQId).where(
    taskQueuesTable.c.Hash == sa.bindparam("tq_hash"))
_PICK = (sa.select(taskQueueJobsTable.c.JobID)
         .where(taskQueueJobsTable.c.TQId == sa.bindparam("pick_tq"))
         .order_by(taskQueueJobsTable.c.UserPriority.desc(), taskQueueJobsTable.c.JobID)
         .limit(1))
_PICK_SKIP_LOCKED = _PICK.with_for_update(skip_locked=True)
_TAKE = sa.delete(taskQueueJobsTable).where(
    taskQueueJobsTable.c.JobID == sa.bindparam("take_job_id"))
#: The matched job's row, locked, with its last logging time (JobDB._lock's query) and
#: its JDL: one round trip.
_LOCK_JOB_WITH_JDL = (
    sa.select(jobsTable, _LAST_OF_JOB,
              sa.select(jdlTable.c.JDL).where(jdlTable.c.JobID == jobsTable.c.JobID)
              .scalar_subquery().label("_jdl"))
    .where(jobsTable.c.JobID == sa.bindparam("lock_job_id"))
    .with_for_update(of=jobsTable))
_CANDIDATES = sa.select(taskQueuesTable).where(
    taskQueuesTable.c.CPUTime <= sa.bindparam("max_cpu"),
    sa.exists().where(taskQueueJobsTable.c.TQId == taskQueuesTable.c.TQId))
_INSERTS: dict[tuple[str, str], Any] = {}  # (dialect, table) -> INSERT ... DO NOTHING


def groupShares() -> dict[str, float]:
    """Shares per owner group from ``DIRAC_WMS_GROUP_SHARES`` (``g1=2,g2=1``); others 1."""
    shares: dict[str, float] = {}
    for item in os.environ.get("DIRAC_WMS_GROUP_SHARES", "").split(","):
        name, _, value = item.partition("=")
        try:
            if name.strip() and float(value) > 0:
                shares[name.strip()] = float(value)
        except ValueError:
            continue
    return shares


def _names(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    items = value if isinstance(value, (list, tuple, set)) else str(value).split(",")
    return sorted({str(v).strip() for v in items if str(v).strip()})


def normalizeRequirements(requirements: dict[str, Any]) -> dict[str, Any]:
    """Requirements in canonical form: ``Sites``, ``BannedSites``, ``Tags`` sorted lists,
    ``CPUTime`` and ``NumberOfProcessors`` integers."""
    sites = [s for s in _names(requirements.get("Sites")) if s.upper() != "ANY"]
    return {
        "CPUTime": int(requirements.get("CPUTime") or DEFAULT_CPU_TIME),
        "NumberOfProcessors": max(1, int(requirements.get("NumberOfProcessors") or 1)),
        "Sites": sites,
        "BannedSites": _names(requirements.get("BannedSites")),
        "Tags": _names(requirements.get("Tags")),
    }


def _resource(resource: Any) -> dict[str, Any]:
    """A job agent's resource description, checked: Site, CPUTime, Tag(s), processors."""
    if not isinstance(resource, dict):
        raise SErrorException(S_ERROR(EVALUE, "resourceDescription must be a dict"))
    site = resource.get("Site", "")
    if not isinstance(site, str) or len(site) > 100:
        raise SErrorException(S_ERROR(EVALUE, f"invalid Site {site!r}"))
    try:
        cpu = int(resource.get("CPUTime", DEFAULT_CPU_TIME))
        procs = int(resource.get("NumberOfProcessors", 1) or 1)
    except (TypeError, ValueError):
        raise SErrorException(S_ERROR(EVALUE, "CPUTime and NumberOfProcessors must be "
                                              "integers")) from None
    tags = resource.get("Tag", resource.get("Tags", []))
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
        raise SErrorException(S_ERROR(EVALUE, "Tag must be a list of names"))
    return {"Site": site, "CPUTime": cpu, "NumberOfProcessors": max(1, procs),
            "Tags": set(tags)}


def insertIgnore(conn: Connection, table: sa.Table, values: dict[str, Any]) -> None:
    """INSERT that does nothing when a unique key already holds the row: concurrent
    transactions creating the same row (a task queue, a sandbox record) both succeed."""
    dialect = conn.dialect.name
    stmt = _INSERTS.get((dialect, table.name))
    if stmt is None:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:  # pragma: no cover - other databases: plain insert
            conn.execute(sa.insert(table), values)
            return
        # built once per table (values as parameters): this runs for every job
        stmt = _INSERTS[(dialect, table.name)] = insert(table).on_conflict_do_nothing()
    conn.execute(stmt, values)


def _split(text: str) -> list[str]:
    return [s for s in text.split(";") if s]


class TaskQueueDB:
    """Task queues in the database of ``jobDB`` (thread-safe, like the JobDB)."""

    def __init__(self, jobDB: JobDB) -> None:
        self.jobDB = jobDB
        self._ready = False

    @_returns
    def initialize(self) -> DReturnType:
        """Create the task queue tables that do not exist yet."""
        if not self._ready:
            self.jobDB.createTables(tqMetadata)  # under the schema lock
            self._ready = True
        return S_OK()

    def dropTables(self) -> None:
        """Drop the task queue tables (tests use it)."""
        self.jobDB._run(lambda conn: tqMetadata.drop_all(conn, checkfirst=True))
        self._ready = False

    # ------------------------------------------------------------- insertion
    def insertJobInConn(self, conn: Connection, jobID: int, requirements: dict[str, Any],
                        owner: str, ownerGroup: str, priority: int = 0) -> int:
        """Put a job in its task queue within the caller's transaction; the TQId."""
        req = normalizeRequirements(requirements)
        key = json.dumps([owner, ownerGroup, req], sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()
        tq_id = conn.scalar(_TQ_BY_HASH, {"tq_hash": digest})
        if tq_id is None:
            insertIgnore(conn, taskQueuesTable, dict(
                Hash=digest, Owner=owner, OwnerGroup=ownerGroup, CPUTime=req["CPUTime"],
                NumberOfProcessors=req["NumberOfProcessors"], Sites=";".join(req["Sites"]),
                BannedSites=";".join(req["BannedSites"]), Tags=";".join(req["Tags"])))
            tq_id = conn.scalar(_TQ_BY_HASH, {"tq_hash": digest})
        insertIgnore(conn, taskQueueJobsTable, dict(JobID=int(jobID), TQId=tq_id,
                                                    UserPriority=int(priority)))
        return int(tq_id)

    @_returns
    def insertJob(self, jobID: int, requirements: dict[str, Any], owner: str,
                  ownerGroup: str = "", priority: int = 0) -> DReturnType:
        """Put a job in its task queue (its own transaction): ``S_OK(TQId)``."""
        return S_OK(self.jobDB._run(lambda conn: self.insertJobInConn(
            conn, jobID, requirements, owner, ownerGroup, priority)))

    @_returns
    def deleteJobs(self, jobIDs: Iterable[int]) -> DReturnType:
        """Take jobs out of their task queues (killed, deleted, rescheduled)."""
        ids = [int(i) for i in jobIDs]
        self.jobDB._run(lambda conn: conn.execute(
            sa.delete(taskQueueJobsTable).where(taskQueueJobsTable.c.JobID.in_(ids))))
        return S_OK()

    # --------------------------------------------------------------- reading
    @_returns
    def getActiveTaskQueues(self) -> DReturnType:
        """``S_OK({TQId: {Owner, OwnerGroup, CPUTime, Sites, ..., Jobs}})`` of non-empty TQs."""
        t, j = taskQueuesTable.c, taskQueueJobsTable.c
        stmt = (sa.select(taskQueuesTable, sa.func.count(j.JobID).label("Jobs"))
                .join(taskQueueJobsTable, j.TQId == t.TQId).group_by(*taskQueuesTable.c))

        def read(conn: Connection) -> dict[int, dict[str, Any]]:
            out = {}
            for row in conn.execute(stmt).mappings():
                out[int(row["TQId"])] = {
                    "Owner": row["Owner"], "OwnerGroup": row["OwnerGroup"],
                    "CPUTime": int(row["CPUTime"]),
                    "NumberOfProcessors": int(row["NumberOfProcessors"]),
                    "Sites": _split(row["Sites"]), "BannedSites": _split(row["BannedSites"]),
                    "Tags": _split(row["Tags"]), "Jobs": int(row["Jobs"])}
            return out

        return S_OK(self.jobDB._run(read, write=False))

    @staticmethod
    def _fits(tq: dict[str, Any], resource: dict[str, Any]) -> bool:
        site = resource["Site"]
        sites, banned = _split(tq["Sites"]), _split(tq["BannedSites"])
        if sites and site not in sites:
            return False
        if site and site in banned:
            return False
        if tq["NumberOfProcessors"] > resource["NumberOfProcessors"]:
            return False
        return set(_split(tq["Tags"])) <= resource["Tags"]

    def _candidates(self, conn: Connection, resource: dict[str, Any]) -> list[dict[str, Any]]:
        rows = conn.execute(_CANDIDATES, {"max_cpu": resource["CPUTime"]}).mappings()
        return [dict(r) for r in rows if self._fits(r, resource)]

    @_returns
    def getMatchingTaskQueues(self, resourceDescription: dict) -> DReturnType:
        """``S_OK({TQId: {...}})``: the non-empty task queues this resource could run."""
        resource = _resource(resourceDescription)
        rows = self.jobDB._run(lambda conn: self._candidates(conn, resource), write=False)
        active = self.getActiveTaskQueues()
        if not active["OK"]:
            return active
        return S_OK({r["TQId"]: active["Value"][r["TQId"]] for r in rows
                     if r["TQId"] in active["Value"]})

    # -------------------------------------------------------------- matching
    @staticmethod
    def _pick(candidates: list[dict[str, Any]]) -> dict[str, Any]:
        """Fair share: a group by share, an owner of it uniformly, one of its TQs."""
        shares = groupShares()
        groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for tq in candidates:
            groups.setdefault(tq["OwnerGroup"], {}).setdefault(tq["Owner"], []).append(tq)
        names = sorted(groups)
        group = random.choices(names, weights=[shares.get(g, 1.0) for g in names])[0]
        owner = random.choice(sorted(groups[group]))
        return random.choice(groups[group][owner])

    def _matchOne(self, conn: Connection, resource: dict[str, Any], source: str,
                  candidates: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
        """Match one job to ``resource`` in the caller's transaction (see
        :meth:`matchAndGetJob`); None: nothing to run.  ``candidates``: the task queues
        an earlier match of the same transaction read (emptied ones are dropped from it),
        else they are read now."""
        db = self.jobDB
        if candidates is None:
            candidates = self._candidates(conn, resource)
        candidates[:] = [tq for tq in candidates if self._fits(tq, resource)]
        while candidates:
            tq = self._pick(candidates)
            job_id = conn.scalar(_PICK_SKIP_LOCKED if db.isPostgres else _PICK,
                                 {"pick_tq": tq["TQId"]})
            if job_id is None:
                candidates.remove(tq)
                continue
            taken = conn.execute(_TAKE, {"take_job_id": job_id})
            if taken.rowcount != 1:
                continue  # another matcher was quicker
            row = conn.execute(_LOCK_JOB_WITH_JDL, {"lock_job_id": job_id}).mappings().first()
            if row is None or row["Status"] != JS.WAITING:
                continue  # killed or deleted while it waited: dropped from the TQ
            job = dict(row)
            jdl = job.pop("_jdl")
            extra = {"Site": resource["Site"][:100]} if resource["Site"] else None
            db._change(conn, job, status=JS.MATCHED, minor=ASSIGNED, source=source,
                       extra=extra)
            return {"JobID": int(job_id), "TQId": int(tq["TQId"]), "JDL": jdl or "",
                    "Owner": job["Owner"], "OwnerGroup": job["OwnerGroup"]}
        return None

    @_returns
    def matchAndGetJob(self, resourceDescription: dict, source: str = "Matcher"
                       ) -> DReturnType:
        """Give one job this resource can run: ``S_OK({"JobID", "TQId", "JDL", "Owner",
        "OwnerGroup"})``, the job now ``Matched`` / "Assigned" (Site set to the
        resource's); nothing: ``S_ERROR(EWMSNOMATCH)``.  The job's description is read
        in the matching transaction: what the Matcher hands out costs one transaction."""
        resource = _resource(resourceDescription)
        found = self.jobDB._run(lambda conn: self._matchOne(conn, resource, source))
        if found is None:
            return S_ERROR(EWMSNOMATCH, "No match found")
        return S_OK(found)

    @_returns
    def matchAndGetJobs(self, resourceDescription: dict, count: int,
                        source: str = "Matcher") -> DReturnType:
        """Up to ``count`` jobs for a resource with that many free slots, in one
        transaction: ``S_OK([match, ...])`` (each as :meth:`matchAndGetJob` gives it;
        an empty list: nothing to run).  Each match is made as a request after the
        previous ones would be: with ``NumberOfProcessors`` one fewer per job already
        matched (at least 1); so a job needing more processors than are left is not
        matched here."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
            return S_ERROR(EVALUE, f"count must be an integer from 1 to 1000, not {count!r}")
        resource = _resource(resourceDescription)

        def match(conn: Connection) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            free = resource["NumberOfProcessors"]
            candidates = self._candidates(conn, resource)  # read once for all the matches
            for n in range(count):
                one = self._matchOne(conn, dict(resource, NumberOfProcessors=max(1, free - n)),
                                     source, candidates)
                if one is None:
                    break
                found.append(one)
            return found

        return S_OK(self.jobDB._run(match))

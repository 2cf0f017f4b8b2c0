"""JobDB: jobs, their descriptions, parameters and status history, on SQLAlchemy 2.

Where: ``DIRAC_JOBDB_URL`` when set (``postgresql+psycopg://user@host/db`` when the
workers of a System run on several machines), else an SQLite file ``JobDB.sqlite``
in the data directory (``DIRAC_DATA_DIR``, default ``~/.dirac/data``).  The schema
is created on first use (``JobDB.initialize``), by whichever worker comes first.

Concurrency (several threads in several worker processes, possibly on several
machines, write at once):

* every operation is one transaction, retried from the start when the database
  reports a transient conflict (SQLite busy, PostgreSQL serialization failure or
  deadlock);
* SQLite: WAL journal (readers never block the writer), a busy timeout, and write
  transactions opened with ``BEGIN IMMEDIATE`` so two writers queue on the database
  lock instead of both reading a state and failing to upgrade;
* PostgreSQL: a state change first locks the job's row (``SELECT ... FOR UPDATE``),
  so concurrent changes of one job are serialised and each sees the last one;
* on both, the state change itself is a conditional ``UPDATE ... WHERE Status =
  <the status read>``: were the lock ever missing, a concurrent change makes it
  touch no row and the transaction is retried rather than a change lost;
* job IDs come from the database's own counter (SQLite ``AUTOINCREMENT``, a
  PostgreSQL identity sequence): never reused, never duplicated;
* the schema is created under a lock (a PostgreSQL advisory lock, SQLite's write
  lock) so workers starting together do not race.

Every status change writes a LoggingInfo record in the same transaction.  Times are
stored as naive UTC with microseconds and returned the same way.

Methods return ``S_OK``/``S_ERROR`` as DIRAC's DB classes do; database failures
are ``S_ERROR(EDB, ...)``, refused transitions ``S_ERROR(EWMSSTATUS, ...)``.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from diracmq.broker.derrno import EDB, EVALUE, EWMSJDL, EWMSSTATUS, EWMSSUBM, EWMSUKN
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType, SErrorException
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from DIRAC.Core.Utilities.Environment import envNumber
from DIRAC.WorkloadManagementSystem.Client import JobMinorStatus
from DIRAC.WorkloadManagementSystem.Client import JobStatus as JS
from DIRAC.WorkloadManagementSystem.Utilities.JDL import JDLError
from DIRAC.WorkloadManagementSystem.Utilities.JobDescription import (
    ATTRIBUTE_LENGTHS,
    PreparedJob,
    prepareJobs,
)

__all__ = [
    "JOB_ATTRIBUTES",
    "JobDB",
    "getJobDBURL",
    "jobsTable",
    "loggingTable",
    "metadata",
    "parametersTable",
    "toUTC",
]

log = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., Any])

#: A check of the caller's rights on a job, given the job's locked row (its attributes):
#: raises SErrorException to refuse.  Run inside the update's own transaction, so a
#: state update costs one transaction, not a read for the rights and then the write.
Authorize = Callable[[dict[str, Any]], None]
#: More of a job's report (:meth:`JobDB.reportJobs`) applied in the report's transaction:
#: ``(connection, jobID, report)``; raises SErrorException to refuse the job's report.
JobReportExtra = Callable[[Connection, int, dict[str, Any]], None]

#: SQLite waits this long for the database lock before reporting busy (seconds).
SQLITE_BUSY_TIMEOUT = 30.0
#: Seconds after which a pooled SQLite connection reloads the planner's statistics.
STATISTICS_RELOAD = 10.0
#: Seconds to wait for a PostgreSQL server to accept a connection (unless the URL says).
PG_CONNECT_TIMEOUT = 10.0
#: A transaction hitting a transient conflict is run again up to this many times.
MAX_ATTEMPTS = 8
#: Largest ``IN (...)`` list sent in one statement.
CHUNK = 900
#: Default reschedulings of a job before it is Failed instead (DIRAC's MaxRescheduling).
DEFAULT_MAX_RESCHEDULING = 3
#: Key of the PostgreSQL advisory lock held while creating the schema.
_SCHEMA_LOCK_KEY = 0x4A6F6244420  # "JobDB"

# ---------------------------------------------------------------------- schema
metadata = sa.MetaData()

_L = ATTRIBUTE_LENGTHS

jobsTable = sa.Table(
    "Jobs", metadata,
    sa.Column("JobID", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("JobType", sa.String(_L["JobType"]), nullable=False, server_default="User"),
    sa.Column("JobGroup", sa.String(_L["JobGroup"]), nullable=False, server_default="00000000"),
    sa.Column("Site", sa.String(_L["Site"]), nullable=False, server_default="ANY"),
    sa.Column("JobName", sa.String(_L["JobName"]), nullable=False, server_default="Unknown"),
    sa.Column("Owner", sa.String(_L["Owner"]), nullable=False, server_default="Unknown"),
    sa.Column("OwnerGroup", sa.String(_L["OwnerGroup"]), nullable=False, server_default=""),
    sa.Column("VO", sa.String(_L["VO"]), nullable=False, server_default=""),
    sa.Column("SubmissionTime", sa.DateTime),
    sa.Column("RescheduleTime", sa.DateTime),
    sa.Column("LastUpdateTime", sa.DateTime),
    sa.Column("StartExecTime", sa.DateTime),
    sa.Column("HeartBeatTime", sa.DateTime),
    sa.Column("EndExecTime", sa.DateTime),
    sa.Column("Status", sa.String(32), nullable=False, server_default=JS.RECEIVED),
    sa.Column("MinorStatus", sa.Text, nullable=False, server_default="Unknown"),
    sa.Column("ApplicationStatus", sa.Text, nullable=False, server_default="Unknown"),
    sa.Column("UserPriority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("RescheduleCounter", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_Jobs_Owner", "Owner"),
    sa.Index("ix_Jobs_OwnerGroup", "OwnerGroup"),
    sa.Index("ix_Jobs_Status", "Status"),
    sa.Index("ix_Jobs_Site", "Site"),
    sa.Index("ix_Jobs_JobGroup", "JobGroup"),
    sa.Index("ix_Jobs_JobType", "JobType"),
    sa.Index("ix_Jobs_LastUpdateTime", "LastUpdateTime"),
    sqlite_autoincrement=True,  # IDs of removed jobs are never handed out again
)

jdlTable = sa.Table(
    "JobJDLs", metadata,
    sa.Column("JobID", sa.Integer, sa.ForeignKey("Jobs.JobID", ondelete="CASCADE"),
              primary_key=True, autoincrement=False),
    sa.Column("JDL", sa.Text, nullable=False),
)

parametersTable = sa.Table(
    "JobParameters", metadata,
    sa.Column("JobID", sa.Integer, sa.ForeignKey("Jobs.JobID", ondelete="CASCADE"),
              primary_key=True, autoincrement=False),
    sa.Column("Name", sa.String(255), primary_key=True),
    sa.Column("Value", sa.Text, nullable=False),
)

loggingTable = sa.Table(
    "LoggingInfo", metadata,
    sa.Column("SeqNum", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("JobID", sa.Integer, sa.ForeignKey("Jobs.JobID", ondelete="CASCADE"),
              nullable=False),
    sa.Column("Status", sa.String(32), nullable=False),
    sa.Column("MinorStatus", sa.Text, nullable=False),
    sa.Column("ApplicationStatus", sa.Text, nullable=False),
    sa.Column("StatusTime", sa.DateTime, nullable=False),
    sa.Column("Source", sa.String(255), nullable=False),
    sa.Index("ix_LoggingInfo_JobID_Time", "JobID", "StatusTime", "SeqNum"),
    sqlite_autoincrement=True,
)

# Statements of the state changes, built once: building a statement and its cache key
# per call cost more than running it (the values come as parameters at execution).
#: The job's row, locked, with the time of its last logging record (``_last``: a state
#: change is never dated before it) and optionally one of its parameters
#: (``_parameter``): one round trip where there were two or three.
_LAST_OF_JOB = (sa.select(sa.func.max(loggingTable.c.StatusTime))
                .where(loggingTable.c.JobID == jobsTable.c.JobID)
                .scalar_subquery().label("_last"))
_LOCK_JOB = (sa.select(jobsTable, _LAST_OF_JOB)
             .where(jobsTable.c.JobID == sa.bindparam("lock_job_id"))
             .with_for_update(of=jobsTable))
_LOCK_JOB_WITH_PARAMETER = (
    sa.select(jobsTable, _LAST_OF_JOB,
              sa.select(parametersTable.c.Value)
              .where(parametersTable.c.JobID == jobsTable.c.JobID,
                     parametersTable.c.Name == sa.bindparam("lock_parameter"))
              .scalar_subquery().label("_parameter"))
    .where(jobsTable.c.JobID == sa.bindparam("lock_job_id"))
    .with_for_update(of=jobsTable))
_LAST_TIME = sa.select(sa.func.max(loggingTable.c.StatusTime)).where(
    loggingTable.c.JobID == sa.bindparam("last_job_id"))
#: The conditional update of a state change: the SET clause is the parameters' columns.
_UPDATE_JOB = sa.update(jobsTable).where(jobsTable.c.JobID == sa.bindparam("upd_job_id"),
                                         jobsTable.c.Status == sa.bindparam("upd_status"))
_INSERT_LOG = sa.insert(loggingTable)
_UPSERTS: dict[str, Any] = {}  # dialect name -> the parameters' INSERT ... ON CONFLICT

#: Values of job attributes a prepared job may leave out (executemany needs every key).
_DEFAULTS: dict[str, Any] = {"JobType": "User", "JobGroup": "00000000", "Site": "ANY",
                             "JobName": "Unknown", "UserPriority": 0}

#: The job attributes, in table order.
JOB_ATTRIBUTES: tuple[str, ...] = tuple(c.name for c in jobsTable.columns)
_BY_LOWER = {name.lower(): name for name in JOB_ATTRIBUTES}
_INT_ATTRIBUTES = {"JobID", "UserPriority", "RescheduleCounter"}
_TIME_ATTRIBUTES = {c.name for c in jobsTable.columns if isinstance(c.type, sa.DateTime)}


# ------------------------------------------------------------------- helpers
def getJobDBURL() -> str:
    """The JobDB URL: ``DIRAC_JOBDB_URL``, else SQLite in ``DIRAC_DATA_DIR``.

    (When the Configuration System exists, its JobDB URL option slots in here,
    between the environment and the default.)
    """
    url = os.environ.get("DIRAC_JOBDB_URL", "").strip()
    if url:
        return url
    data = Path(os.environ.get("DIRAC_DATA_DIR") or "~/.dirac/data").expanduser()
    return f"sqlite:///{data / 'JobDB.sqlite'}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def toUTC(value: Any, what: str = "date") -> dt.datetime:
    """A naive UTC datetime from a datetime (aware or naive UTC), a date or ISO text."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            return toUTC(dt.datetime.fromisoformat(text), what)
        except ValueError:
            pass
    raise SErrorException(S_ERROR(EVALUE, f"invalid {what} {value!r}: expected a datetime "
                                          f"or ISO 8601 text such as '2024-05-01 12:00:00'"))


def canonicalAttribute(name: Any) -> str:
    """``Owner`` from ``owner``/``OWNER``; raises for an unknown job attribute."""
    canonical = _BY_LOWER.get(name.lower()) if isinstance(name, str) else None
    if canonical is None:
        raise SErrorException(S_ERROR(EVALUE, f"Unknown job attribute {name!r}; known: "
                                              f"{', '.join(JOB_ATTRIBUTES)}"))
    return canonical


def _coerce(attribute: str, value: Any) -> Any:
    """A condition value in the column's type (``"12"`` -> 12 for JobID, etc.)."""
    if value is None:
        return None
    if attribute in _INT_ATTRIBUTES:
        if isinstance(value, bool):
            raise SErrorException(S_ERROR(EVALUE, f"invalid {attribute} {value!r}"))
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SErrorException(
                S_ERROR(EVALUE, f"invalid {attribute} {value!r}: expected an integer")) from None
    if attribute in _TIME_ATTRIBUTES:
        return toUTC(value, attribute)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise SErrorException(
            S_ERROR(EVALUE, f"invalid {attribute} {value!r}: expected text"))
    return value


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


class _Refusal(Exception):
    """Internal: a job of JobDB.reportJobs was refused; run again with a savepoint each."""


class _Conflict(Exception):
    """Internal: a conditional update touched no row; run the transaction again."""


def _transient(exc: BaseException, write: bool) -> bool:
    """Whether a database error is worth running the transaction again for.

    A lost connection is retried for reads only: a write whose connection died may
    have been committed, and running it again could submit a job twice.
    """
    if isinstance(exc, _Conflict):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return not write
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code in ("40001", "40P01", "55P03"):  # serialization failure, deadlock, lock n/a
        return True
    if type(orig).__module__.startswith("sqlite3"):  # SQLITE_BUSY / SQLITE_LOCKED
        text = str(orig).lower()
        return "locked" in text or "busy" in text
    return False


def _returns(func: _F) -> _F:
    """Turn exceptions into DIRAC results: SErrorException -> its S_ERROR,
    database errors -> S_ERROR(EDB)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> DReturnType:
        try:
            return func(*args, **kwargs)
        except SErrorException as exc:
            return exc.result
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None) or exc
            log.error("JobDB.%s failed: %s: %s", func.__name__, type(orig).__name__, orig)
            log.debug("JobDB.%s traceback", func.__name__, exc_info=True)
            return S_ERROR(EDB, f"JobDB.{func.__name__}: {type(orig).__name__}: {orig}")

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------- engines
_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
_schema_ready: set[str] = set()
_analyzed: dict[str, int] = {}  # SQLite URL -> jobs counted at its last ANALYZE


def _forget_engines() -> None:  # after fork: a child must open its own connections
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()
    _schema_ready.clear()
    _writers.clear()  # a lock held by another thread at fork would never be released
    # (the parent's lock file descriptors are left open: closing one would release
    # the parent's flock, which belongs to the open file, not to a process)


os.register_at_fork(after_in_child=_forget_engines)


def _make_engine(url: str) -> Engine:
    parsed = sa.engine.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT},
            pool_size=20, max_overflow=20, pool_timeout=60,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see below)
            cursor = dbapi_conn.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @event.listens_for(engine, "checkout")
        def _sqlite_statistics(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
            # A connection reads the planner's statistics when it opens: reload them now
            # and then, for the ANALYZE another connection or process ran
            # (refreshStatistics).  Reloading costs some 20 microseconds.
            now = time.monotonic()
            if now - record.info.get("dirac_stats", 0.0) > STATISTICS_RELOAD:
                record.info["dirac_stats"] = now
                dbapi_conn.execute("ANALYZE sqlite_schema")

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # Writers take the database lock up front: no read-then-upgrade deadlock.
            write = conn.get_execution_options().get("dirac_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        connect_args = {} if "connect_timeout" in parsed.query else \
            {"connect_timeout": int(PG_CONNECT_TIMEOUT)}
        return sa.create_engine(parsed, pool_size=10, max_overflow=20, pool_pre_ping=True,
                                pool_timeout=60, connect_args=connect_args)
    return sa.create_engine(parsed, pool_pre_ping=True)


class _SQLiteWriterLock:
    """The turn of one writer of an SQLite database file, among this process's threads
    (a lock) and among processes (``flock`` on ``<database>.writer-lock``).

    SQLite lets one writer in at a time; the others wait in its busy handler, which
    sleeps 1, 2, 5, 10... up to 100 ms between tries, so a writer often sleeps long
    after the lock was free.  Waiting here instead, each is woken the moment the
    previous one is done: the kernel wakes a ``flock`` waiter, the lock a thread.
    Reentrant (a transaction inside another of the same thread takes no second turn).
    """

    def __init__(self, path: str | None) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._path = path
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._lock.acquire()
        try:
            if self._depth == 0 and self._path is not None:
                if self._fd is None:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as exc:  # no lock file (read-only folder...): SQLite's own waiting
            log.debug("no writer lock file %s: %s", self._path, exc)
            self._path = None
        except BaseException:
            self._lock.release()
            raise
        self._depth += 1

    def __exit__(self, *exc_info: Any) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()


_writers: dict[str, _SQLiteWriterLock] = {}


def _sqlite_writer(url: str) -> _SQLiteWriterLock:
    """The writers' lock of the SQLite database ``url`` (see _SQLiteWriterLock)."""
    with _engines_lock:
        lock = _writers.get(url)
        if lock is None:
            database = sa.engine.make_url(url).database or ""
            path = None if database in ("", ":memory:") or database.startswith("file:") \
                else str(Path(database).expanduser()) + ".writer-lock"
            lock = _writers[url] = _SQLiteWriterLock(path)
        return lock


def _engine_for(url: str) -> Engine:
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _make_engine(url)
        return engine


# ----------------------------------------------------------------------- JobDB
class JobDB:
    """The job store.  Thread-safe; one object (and engine) per URL per process is enough.

    ``maxRescheduling``: reschedulings before a job is Failed instead (default
    ``DIRAC_WMS_MAX_RESCHEDULING`` or 3).
    """

    def __init__(self, url: str | None = None, *, maxRescheduling: int | None = None) -> None:
        self.url = url or getJobDBURL()
        self.engine = _engine_for(self.url)
        self.isPostgres = self.engine.dialect.name == "postgresql"
        self.isSQLite = self.engine.dialect.name == "sqlite"
        if maxRescheduling is None:
            maxRescheduling = envNumber("DIRAC_WMS_MAX_RESCHEDULING",
                                        DEFAULT_MAX_RESCHEDULING, minimum=0)
        self.maxRescheduling = maxRescheduling

    def __repr__(self) -> str:
        return f"<JobDB {self.engine.url.render_as_string(hide_password=True)}>"

    # -------------------------------------------------------- transactions
    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Connection]:
        # (FileCatalogDB shares this method: only ``url`` and ``engine`` are assumed)
        if write and self.engine.dialect.name == "sqlite":
            # SQLite has one writer at a time: writers (threads and processes) queue on
            # a lock of ours, each woken the moment the previous one commits, rather
            # than in SQLite's busy handler, which polls with sleeps of 1 to 100 ms.
            with _sqlite_writer(self.url):
                with self.engine.connect() as conn:
                    conn.execution_options(dirac_write=True)
                    with conn.begin():
                        yield conn
            return
        with self.engine.connect() as conn:
            if write:
                conn.execution_options(dirac_write=True)
            with conn.begin():
                yield conn

    def _run(self, work: Callable[[Connection], Any], write: bool = True) -> Any:
        """Run ``work(conn)`` in one transaction, again from the start on a transient error."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self._transaction(write) as conn:
                    return work(conn)
            except (DBAPIError, _Conflict) as exc:
                if attempt == MAX_ATTEMPTS or not _transient(exc, write):
                    if isinstance(exc, _Conflict):
                        raise SErrorException(S_ERROR(
                            EDB, "the job kept changing under this update; try again")) from exc
                    raise
                delay = min(0.5, 0.01 * 2 ** attempt) * (0.5 + random.random())
                log.debug("transient database conflict (%s); attempt %d in %.3fs",
                          exc, attempt + 1, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    # -------------------------------------------------------------- schema
    @_returns
    def initialize(self) -> DReturnType:
        """Create the tables and indexes that do not exist yet (safe to run concurrently)."""
        if self.url in _schema_ready:
            return S_OK()

        self.createTables(metadata)
        _schema_ready.add(self.url)
        return S_OK()

    def createTables(self, tables: sa.MetaData) -> None:
        """Create the tables of ``tables`` that do not exist yet, under the schema lock
        (a PostgreSQL advisory lock; SQLite's write lock): workers starting together
        would otherwise both try to create a table, and one fail."""
        def create(conn: Connection) -> None:
            if self.isPostgres:
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
            tables.create_all(conn, checkfirst=True)

        self._run(create)

    @_returns
    def refreshStatistics(self, force: bool = False) -> DReturnType:
        """Give SQLite's query planner statistics of the tables (``ANALYZE``), when the
        number of jobs has doubled or halved since this process last did (or ``force``):
        ``S_OK(True)`` if it ran.  Every process's connections reload them within
        :data:`STATISTICS_RELOAD` seconds.

        Without them SQLite picks any index that fits a condition: a page of one
        owner's Received jobs was read through the Status index (every job Received)
        instead of the Owner index, 35 ms instead of 3 over 100,000 jobs.  The analysis
        samples each index (``analysis_limit``): tens of milliseconds whatever the size.
        PostgreSQL keeps its statistics itself (autovacuum): nothing to do there.
        """
        if not self.isSQLite:
            return S_OK(False)
        count = self._run(lambda conn: conn.scalar(
            sa.select(sa.func.count()).select_from(jobsTable)), write=False)
        last = _analyzed.get(self.url)
        if not force and last is not None and last // 2 <= count <= max(1, last) * 2:
            return S_OK(False)

        def analyze(conn: Connection) -> None:
            conn.exec_driver_sql("PRAGMA analysis_limit = 20000")
            conn.exec_driver_sql("ANALYZE")

        self._run(analyze)
        _analyzed[self.url] = count
        return S_OK(True)

    def dropTables(self) -> None:
        """Drop every JobDB table (tests use it)."""
        self._run(lambda conn: metadata.drop_all(conn, checkfirst=True))
        _schema_ready.discard(self.url)

    # ---------------------------------------------------------- submission
    @_returns
    def submitJob(self, jdl: str, owner: str, ownerGroup: str = "", vo: str = "",
                  maxParametricJobs: int | None = None, source: str = "JobManager"
                  ) -> DReturnType:
        """Store the job(s) ``jdl`` describes: ``S_OK(jobID)``, ``S_OK([IDs])`` if parametric.

        A JDL that cannot be parsed or validated is ``S_ERROR(EWMSJDL, reason)``.
        """
        try:
            prepared = prepareJobs(jdl, maxParametricJobs)
        except JDLError as exc:
            return S_ERROR(EWMSJDL, str(exc))
        if not owner:
            return S_ERROR(EWMSSUBM, "a job needs an owner")
        for name, value in (("Owner", owner), ("OwnerGroup", ownerGroup), ("VO", vo)):
            if len(value or "") > ATTRIBUTE_LENGTHS[name]:
                return S_ERROR(EWMSSUBM, f"{name} {value[:40]!r}... is too long")
        result = self.insertNewJobs(prepared, owner, ownerGroup, vo, source)
        if not result["OK"]:
            return result
        ids = result["Value"]
        parametric = "ParameterNumber" in prepared[0].classAd
        return S_OK(ids if parametric else ids[0])

    @_returns
    def insertNewJobs(self, jobs: Sequence[PreparedJob], owner: str, ownerGroup: str = "",
                      vo: str = "", source: str = "JobManager") -> DReturnType:
        """Insert prepared jobs in one transaction; ``S_OK([jobIDs])`` in order."""

        def insert(conn: Connection) -> list[int]:
            # One compiled statement per table, executed for all the jobs (executemany;
            # the IDs in input order from RETURNING): building a statement per row costs
            # far more than the database's work for a parametric bulk.
            now = _now()
            rows = [dict(job.attributes, Owner=owner, OwnerGroup=ownerGroup or "",
                         VO=vo or "", SubmissionTime=now, LastUpdateTime=now,
                         Status=JS.RECEIVED, MinorStatus=JobMinorStatus.JOB_ACCEPTED,
                         ApplicationStatus="Unknown") for job in jobs]
            if not rows:
                return []
            keys = sorted({key for row in rows for key in row})
            rows = [{key: row.get(key, _DEFAULTS.get(key)) for key in keys} for row in rows]
            stmt = sa.insert(jobsTable).returning(jobsTable.c.JobID,
                                                  sort_by_parameter_order=True)
            ids = [int(job_id) for job_id in conn.scalars(stmt, rows)]
            descriptions = []
            for job, job_id in zip(jobs, ids, strict=True):
                ad = job.classAd.copy()
                ad["JobID"] = job_id
                ad["Owner"] = owner
                ad["OwnerGroup"] = ownerGroup or ""
                if vo:
                    ad["VO"] = vo
                descriptions.append({"JobID": job_id, "JDL": ad.asJDL()})
            conn.execute(sa.insert(jdlTable), descriptions)
            conn.execute(sa.insert(loggingTable), [
                {"JobID": job_id, "Status": JS.RECEIVED,
                 "MinorStatus": JobMinorStatus.JOB_ACCEPTED, "ApplicationStatus": "Unknown",
                 "StatusTime": now, "Source": source} for job_id in ids])
            return ids

        return S_OK(self._run(insert))

    # ---------------------------------------------------------------- reads
    def _where(self, condDict: dict | None, newer: Any = None, older: Any = None,
               restrict: dict | None = None) -> list[Any]:
        """WHERE clauses: scalar = equality, list = any of; ``newer``: LastUpdateTime >= it."""
        clauses: list[Any] = []
        for conditions in (condDict, restrict):
            if conditions is None:
                continue
            if not isinstance(conditions, dict):
                raise SErrorException(S_ERROR(
                    EVALUE, f"a condition dict is expected, not {type(conditions).__name__}"))
            for key, value in conditions.items():
                name = canonicalAttribute(key)
                column = jobsTable.c[name]
                if isinstance(value, (list, tuple, set, frozenset)):
                    values = [_coerce(name, v) for v in value]
                    clauses.append(column.in_(values) if values else sa.false())
                elif value is None:
                    clauses.append(column.is_(None))
                else:
                    clauses.append(column == _coerce(name, value))
        if newer not in (None, ""):
            clauses.append(jobsTable.c.LastUpdateTime >= toUTC(newer, "cutDate"))
        if older not in (None, ""):
            clauses.append(jobsTable.c.LastUpdateTime < toUTC(older, "older date"))
        return clauses

    @staticmethod
    def _order(sortList: Any) -> list[Any]:
        """ORDER BY from ``[[attr, "ASC"|"DESC"], ...]``, ``"attr:DESC"`` or ``"attr"``."""
        if not sortList:
            return [jobsTable.c.JobID]
        if isinstance(sortList, str):
            sortList = [sortList.split(":", 1)]
        order = []
        for item in sortList:
            if isinstance(item, str):
                item = item.split(":", 1)
            if not isinstance(item, (list, tuple)) or not 1 <= len(item) <= 2:
                raise SErrorException(S_ERROR(EVALUE, f"invalid sort item {item!r}"))
            column = jobsTable.c[canonicalAttribute(item[0])]
            direction = str(item[1]).upper() if len(item) > 1 else "ASC"
            if direction not in ("ASC", "DESC"):
                raise SErrorException(S_ERROR(EVALUE, f"invalid sort direction {item[1]!r}"))
            order.append(column.desc() if direction == "DESC" else column.asc())
        if not any(getattr(o, "element", None) is jobsTable.c.JobID for o in order):
            order.append(jobsTable.c.JobID)  # a stable order across pages
        return order

    @_returns
    def selectJobs(self, condDict: dict | None = None, newer: Any = None, older: Any = None,
                   orderAttribute: Any = None, limit: int | None = None) -> DReturnType:
        """``S_OK([jobIDs])`` of the jobs matching the conditions, by JobID by default."""
        stmt = sa.select(jobsTable.c.JobID).where(*self._where(condDict, newer, older))
        stmt = stmt.order_by(*self._order(orderAttribute))
        if limit:
            stmt = stmt.limit(int(limit))
        return S_OK(self._run(lambda conn: [int(r) for r in conn.scalars(stmt)], write=False))

    @_returns
    def countJobs(self, condDict: dict | None = None, newer: Any = None) -> DReturnType:
        """``S_OK(number of jobs matching)``."""
        stmt = sa.select(sa.func.count()).select_from(jobsTable).where(
            *self._where(condDict, newer))
        return S_OK(int(self._run(lambda conn: conn.scalar(stmt), write=False)))

    def _attributes(self, attrList: Iterable[str] | None) -> list[str]:
        if attrList is None:
            return list(JOB_ATTRIBUTES)
        if isinstance(attrList, str):
            attrList = [attrList]
        return [canonicalAttribute(a) for a in attrList]

    @_returns
    def getJobsAttributes(self, jobIDs: Sequence[int], attrList: Iterable[str] | None = None
                          ) -> DReturnType:
        """``S_OK({jobID: {attribute: value}})`` for the jobs that exist."""
        names = self._attributes(attrList)
        columns = [jobsTable.c.JobID, *(jobsTable.c[n] for n in names if n != "JobID")]
        ids = sorted({int(i) for i in jobIDs})

        def read(conn: Connection) -> dict[int, dict[str, Any]]:
            out: dict[int, dict[str, Any]] = {}
            for chunk in _chunks(ids):
                stmt = sa.select(*columns).where(jobsTable.c.JobID.in_(chunk))
                for row in conn.execute(stmt).mappings():
                    out[int(row["JobID"])] = {n: row[n] for n in names}
            return out

        return S_OK(self._run(read, write=False))

    @_returns
    def getJobAttributes(self, jobID: int, attrList: Iterable[str] | None = None
                         ) -> DReturnType:
        """``S_OK({attribute: value})`` of one job (``{}`` if there is no such job)."""
        result = self.getJobsAttributes([jobID], attrList)
        if not result["OK"]:
            return result
        return S_OK(result["Value"].get(int(jobID), {}))

    @_returns
    def getJobAttribute(self, jobID: int, attribute: str) -> DReturnType:
        """``S_OK(value)`` of one attribute of one job (None if there is no such job)."""
        name = canonicalAttribute(attribute)
        result = self.getJobAttributes(jobID, [name])
        if not result["OK"]:
            return result
        return S_OK(result["Value"].get(name))

    @_returns
    def getDistinctJobAttributes(self, attribute: str, condDict: dict | None = None,
                                 newer: Any = None) -> DReturnType:
        """``S_OK(sorted distinct values)`` of an attribute among the matching jobs."""
        column = jobsTable.c[canonicalAttribute(attribute)]
        stmt = sa.select(column).distinct().where(column.is_not(None),
                                                  *self._where(condDict, newer))
        return S_OK(sorted(self._run(lambda conn: list(conn.scalars(stmt)), write=False)))

    @_returns
    def getCounters(self, table: str, attrList: Iterable[str], condDict: dict | None = None,
                    older: Any = None, newer: Any = None,
                    timeStamp: str = "LastUpdateTime",
                    restrict: dict | None = None) -> DReturnType:
        """``S_OK([({attr: value, ...}, count), ...])`` grouped by ``attrList``.

        DIRAC's signature: ``table`` is ``"Jobs"`` (the only table with job attributes);
        ``newer``/``older``: ``timeStamp`` (a date attribute, default LastUpdateTime)
        on or after / before them.  ``restrict`` (not DIRAC's) adds conditions the
        caller cannot lift, as in getSummaryWeb.
        """
        if table != "Jobs":
            return S_ERROR(EVALUE, f"getCounters: unknown table {table!r} (only 'Jobs')")
        names = self._attributes(attrList)
        if not names:
            return S_ERROR(EVALUE, "getCounters needs at least one attribute")
        stamp = jobsTable.c.get(canonicalAttribute(timeStamp))
        if stamp is None or not isinstance(stamp.type, sa.DateTime):
            return S_ERROR(EVALUE, f"getCounters: {timeStamp!r} is not a date attribute")
        clauses = self._where(condDict, restrict=restrict)
        if newer not in (None, ""):
            clauses.append(stamp >= toUTC(newer, "newer"))
        if older not in (None, ""):
            clauses.append(stamp < toUTC(older, "older"))
        columns = [jobsTable.c[n] for n in names]
        stmt = (sa.select(*columns, sa.func.count().label("n")).select_from(jobsTable)
                .where(*clauses).group_by(*columns).order_by(*columns))

        def read(conn: Connection) -> list[tuple[dict[str, Any], int]]:
            return [({n: row[n] for n in names}, int(row["n"]))
                    for row in conn.execute(stmt).mappings()]

        return S_OK(self._run(read, write=False))

    @_returns
    def getJobJDL(self, jobID: int) -> DReturnType:
        """``S_OK(JDL text)`` as stored (with JobID, Owner and OwnerGroup set)."""
        stmt = sa.select(jdlTable.c.JDL).where(jdlTable.c.JobID == int(jobID))
        jdl = self._run(lambda conn: conn.scalar(stmt), write=False)
        if jdl is None:
            return S_ERROR(EWMSUKN, f"Job {jobID} not found")
        return S_OK(jdl)

    @_returns
    def getJobLoggingInfo(self, jobID: int) -> DReturnType:
        """``S_OK([(Status, MinorStatus, ApplicationStatus, StatusTime, Source), ...])``."""
        t = loggingTable.c
        stmt = (sa.select(t.Status, t.MinorStatus, t.ApplicationStatus, t.StatusTime, t.Source)
                .where(t.JobID == int(jobID)).order_by(t.StatusTime, t.SeqNum))
        return S_OK(self._run(lambda conn: [tuple(r) for r in conn.execute(stmt)],
                              write=False))

    @_returns
    def getJobParameters(self, jobIDs: Sequence[int], paramList: Iterable[str] | None = None
                         ) -> DReturnType:
        """``S_OK({jobID: {name: value}})`` for the jobs that have parameters."""
        ids = sorted({int(i) for i in jobIDs})
        names = [paramList] if isinstance(paramList, str) else \
            list(paramList) if paramList else None
        t = parametersTable.c

        def read(conn: Connection) -> dict[int, dict[str, str]]:
            out: dict[int, dict[str, str]] = {}
            for chunk in _chunks(ids):
                stmt = sa.select(t.JobID, t.Name, t.Value).where(t.JobID.in_(chunk))
                if names:
                    stmt = stmt.where(t.Name.in_(names))
                for job_id, name, value in conn.execute(stmt.order_by(t.JobID, t.Name)):
                    out.setdefault(int(job_id), {})[name] = value
            return out

        return S_OK(self._run(read, write=False))

    @_returns
    def getJobsOwnership(self, jobIDs: Sequence[int]) -> DReturnType:
        """``S_OK({jobID: (Owner, OwnerGroup)})`` for the jobs that exist."""
        result = self.getJobsAttributes(jobIDs, ["Owner", "OwnerGroup"])
        if not result["OK"]:
            return result
        return S_OK({i: (a["Owner"], a["OwnerGroup"]) for i, a in result["Value"].items()})

    @_returns
    def getSummaryWeb(self, selectDict: dict | None, sortList: Any = None, startItem: int = 0,
                      maxItems: int = 25, restrict: dict | None = None) -> DReturnType:
        """One page of jobs, in DIRAC's ``getJobPageSummaryWeb`` shape.

        ``{"ParameterNames": [...], "Records": [[...], ...], "TotalRecords": n,
        "Extras": {status: count}}``.  ``selectDict`` may also hold ``FromDate`` /
        ``LastUpdate`` and ``ToDate`` (LastUpdateTime bounds); ``restrict`` adds
        conditions the caller cannot lift (ownership).
        """
        conditions = dict(selectDict or {})
        newer = older = None
        for key in list(conditions):
            low = str(key).lower()
            if low in ("fromdate", "lastupdate"):
                newer = conditions.pop(key)
            elif low == "todate":
                older = conditions.pop(key)
        where = self._where(conditions, newer, older, restrict)
        startItem, maxItems = max(0, int(startItem or 0)), max(0, int(maxItems or 0))
        names = list(JOB_ATTRIBUTES)
        page = (sa.select(*(jobsTable.c[n] for n in names)).where(*where)
                .order_by(*self._order(sortList)).offset(startItem))
        if maxItems:
            page = page.limit(maxItems)
        counts = (sa.select(jobsTable.c.Status, sa.func.count()).where(*where)
                  .group_by(jobsTable.c.Status))

        def read(conn: Connection) -> dict[str, Any]:
            extras = {status: int(n) for status, n in conn.execute(counts)}
            records = [list(row) for row in conn.execute(page)] if maxItems else []
            return {"ParameterNames": names, "Records": records,
                    "TotalRecords": sum(extras.values()), "Extras": extras}

        return S_OK(self._run(read, write=False))

    # ----------------------------------------------------------- state changes
    def _lock(self, conn: Connection, jobID: int, parameter: str | None = None
              ) -> dict[str, Any]:
        """The job's row, locked until the end of the transaction (PostgreSQL row lock;
        SQLite already holds the database write lock), with ``_last``, the time of its
        last logging record, and with ``parameter``, that job parameter's value (None
        if not set) as ``_parameter``."""
        if parameter is None:
            row = conn.execute(_LOCK_JOB, {"lock_job_id": int(jobID)}).mappings().first()
        else:
            row = conn.execute(_LOCK_JOB_WITH_PARAMETER, {
                "lock_job_id": int(jobID), "lock_parameter": parameter}).mappings().first()
        if row is None:
            raise SErrorException(S_ERROR(EWMSUKN, f"Job {jobID} not found"))
        return dict(row)

    @staticmethod
    def _last_time(conn: Connection, jobID: int) -> dt.datetime | None:
        return conn.scalar(_LAST_TIME, {"last_job_id": int(jobID)})

    def _change(self, conn: Connection, job: dict[str, Any], *, status: str | None = None,
                minor: str | None = None, application: str | None = None,
                source: str, force: bool = False, date: dt.datetime | None = None,
                extra: dict[str, Any] | None = None) -> None:
        """Apply one status update to a locked ``job`` (updated in place) and log it.

        ``status``/``minor``/``application`` None or "" mean "unchanged".  A refused
        transition raises SErrorException(EWMSSTATUS) and changes nothing.
        """
        current = job["Status"]
        values, record = self._plan(conn, job, status=status, minor=minor,
                                    application=application, source=source, force=force,
                                    date=date, extra=extra)
        self._write(conn, job["JobID"], current, values, [record])

    def _plan(self, conn: Connection, job: dict[str, Any], *, status: str | None,
              minor: str | None, application: str | None, source: str, force: bool,
              date: dt.datetime | None, extra: dict[str, Any] | None = None
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The column values and the logging record of one status update of a locked
        ``job``, which is updated in place; nothing written (:meth:`_write` does).  A
        refused transition raises SErrorException(EWMSSTATUS) and changes nothing."""
        current = job["Status"]
        new = current
        if status:
            checked = JS.checkTransition(current, status, force)
            if not checked["OK"]:
                raise SErrorException(checked)
            new = checked["Value"]
        now = _now()
        last = job.get("_last")
        if last is None:
            last = job["_last"] = self._last_time(conn, job["JobID"]) or now
        stamp = date if date is not None else max(now, last)
        values: dict[str, Any] = {"LastUpdateTime": now}
        if new != current:
            values["Status"] = new
        if minor:
            values["MinorStatus"] = str(minor)
        if application:
            values["ApplicationStatus"] = str(application)
        if new == JS.RUNNING and job["StartExecTime"] is None:
            values["StartExecTime"] = stamp
        if new != current and new in JS.JOB_FINAL_STATES:
            values["EndExecTime"] = stamp
        values.update(extra or {})
        job.update(values)
        job["_last"] = max(last, stamp)
        return values, {
            "JobID": job["JobID"], "Status": job["Status"], "MinorStatus": job["MinorStatus"],
            "ApplicationStatus": job["ApplicationStatus"], "StatusTime": stamp,
            "Source": str(source or "Unknown")[:255]}

    @staticmethod
    def _write(conn: Connection, jobID: int, status: str, values: dict[str, Any],
               records: list[dict[str, Any]]) -> None:
        """Write planned changes (:meth:`_plan`) of a job whose status was ``status``:
        one conditional update of its row, its logging records in one statement."""
        if values:
            updated = conn.execute(_UPDATE_JOB, dict(values, upd_job_id=jobID,
                                                     upd_status=status))
            if updated.rowcount != 1:
                raise _Conflict(f"job {jobID} changed status concurrently")
        if records:
            conn.execute(_INSERT_LOG, records)

    @_returns
    def setJobStatus(self, jobID: int, status: str | None = None, minorStatus: str | None = None,
                     source: str = "Unknown", date: Any = None, force: bool = False,
                     applicationStatus: str | None = None, authorize: Authorize | None = None
                     ) -> DReturnType:
        """Change a job's status (and/or minor, application status) and log it.

        The positional order is the one of ``JobStateUpdate.setJobStatus``.

        A transition the state machine does not allow is refused (the job is left as
        it is) with ``S_ERROR(EWMSSTATUS)`` unless ``force``.  With an explicit
        ``date`` older than the job's last logged change, the update is recorded in
        the history only (as DIRAC does for late reports).  ``authorize``: see
        :data:`Authorize`.
        """
        return self.setJobStatusBulk(jobID, {date or "": {
            "Status": status, "MinorStatus": minorStatus,
            "ApplicationStatus": applicationStatus, "Source": source}}, force,
            authorize=authorize)

    @staticmethod
    def _statusUpdates(statusDict: Any) -> list[tuple[dt.datetime | None, dict[str, Any]]]:
        """The updates of a ``statusDict`` checked and in the order they apply (explicit
        dates first in time order, "now" after them all); SErrorException(EVALUE) for a
        malformed one."""
        if not isinstance(statusDict, dict):
            raise SErrorException(S_ERROR(
                EVALUE, "statusDict must be {date: {Status, MinorStatus, ...}}"))
        updates = []
        for key, update in statusDict.items():
            if not isinstance(update, dict):
                raise SErrorException(S_ERROR(EVALUE, f"update for {key!r} must be a dict, "
                                                      f"not {type(update).__name__}"))
            unknown = set(update) - {"Status", "MinorStatus", "ApplicationStatus", "Source"}
            if unknown:
                raise SErrorException(S_ERROR(
                    EVALUE, f"unknown keys in status update: {sorted(unknown)}"))
            for field in ("Status", "MinorStatus", "ApplicationStatus", "Source"):
                if update.get(field) is not None and not isinstance(update[field], str):
                    raise SErrorException(S_ERROR(
                        EVALUE, f"{field} must be text, not {update[field]!r}"))
            date = None if key in (None, "") else toUTC(key, "status date")
            updates.append((date, update))
        updates.sort(key=lambda item: (item[0] is None, item[0] or dt.datetime.min))
        return updates

    def _applyStatusUpdates(self, conn: Connection, job: dict[str, Any],
                            updates: list[tuple[dt.datetime | None, dict[str, Any]]],
                            force: bool) -> None:
        """Apply checked ``updates`` (:meth:`_statusUpdates`) to a locked ``job``: every
        change checked and planned in turn, then one update of the job's row and one
        insert of all the logging records (not one of each per change)."""
        initial = job["Status"]
        values: dict[str, Any] = {}
        records: list[dict[str, Any]] = []
        last = job["_last"]
        for date, update in updates:
            status, minor = update.get("Status"), update.get("MinorStatus")
            application = update.get("ApplicationStatus")
            source = update.get("Source") or "Unknown"
            if not (status or minor or application):
                continue
            if date is not None and last is not None and date < last:
                normalized = status and JS.normalizeStatus(status)
                if status and normalized is None:
                    raise SErrorException(S_ERROR(EWMSSTATUS,
                                                  f"Unknown job status {status!r}"))
                # older than the job's last change: history, not the current state
                records.append({"JobID": job["JobID"], "Status": normalized or "idem",
                                "MinorStatus": minor or "idem",
                                "ApplicationStatus": application or "idem",
                                "StatusTime": date, "Source": str(source)[:255]})
                continue
            changed, record = self._plan(conn, job, status=status, minor=minor,
                                         application=application, source=source,
                                         force=force, date=date)
            values.update(changed)
            records.append(record)
            last = job["_last"]
        self._write(conn, job["JobID"], initial, values, records)

    @_returns
    def setJobStatusBulk(self, jobID: int, statusDict: dict, force: bool = False,
                         authorize: Authorize | None = None) -> DReturnType:
        """Apply ``{date: {Status, MinorStatus, ApplicationStatus, Source}}`` in date order.

        All or nothing: if one update is refused, none is applied.  ``date`` is a
        datetime or ISO text; "" or None means now.  ``authorize``: see
        :data:`Authorize` (checked even when there is nothing to apply).
        """
        updates = self._statusUpdates(statusDict)
        if not updates:
            if authorize is not None:
                self._run(lambda conn: authorize(self._lock(conn, jobID)), write=False)
            return S_OK()

        def apply(conn: Connection) -> None:
            job = self._lock(conn, jobID)
            if authorize is not None:
                authorize(job)
            self._applyStatusUpdates(conn, job, updates, force)

        self._run(apply)
        return S_OK()

    @_returns
    def reportJobs(self, reports: Any, authorize: Authorize | None = None,
                   extra: JobReportExtra | None = None) -> DReturnType:
        """Apply the reports of several jobs in one transaction (the job agent's end of
        a job: its parameters, its last statuses and its output sandbox in one call, for
        all the jobs it finished meanwhile, instead of one transaction each).

        ``reports``: ``{jobID: {"Parameters": [[name, value], ...] or {name: value},
        "Status": {date: {Status, MinorStatus, ApplicationStatus, Source}}, ...}}``
        (both optional); the job's parameters are set, then its statuses applied as
        :meth:`setJobStatusBulk` does.  Other keys go to ``extra(conn, jobID, report)``
        (called last, in the job's part of the transaction; it raises SErrorException to
        refuse), else they are refused.  Each job is all or nothing: a refused report
        leaves that job as it was and the others go on (the transaction runs without
        savepoints, and again with one per job when a job was refused).  ``authorize``:
        see :data:`Authorize`.

        ``S_OK({"Successful": [jobIDs], "Failed": {jobID: message}})``.
        """
        if not isinstance(reports, dict):
            return S_ERROR(EVALUE, "reports must be {jobID: {Parameters, Status, ...}}")
        checked: dict[int, tuple[list[tuple[str, Any]], list[Any], dict[str, Any]]] = {}
        refused: dict[int, str] = {}
        for key, report in reports.items():
            try:
                job_id = int(key)
                if isinstance(key, bool) or job_id <= 0:
                    raise ValueError
            except (TypeError, ValueError):
                return S_ERROR(EVALUE, f"invalid job ID {key!r}")
            try:
                if not isinstance(report, dict):
                    raise SErrorException(S_ERROR(EVALUE, f"the report of job {job_id} must "
                                                          f"be a dict"))
                unknown = set(report) - {"Parameters", "Status"}
                if unknown and extra is None:
                    raise SErrorException(S_ERROR(
                        EVALUE, f"unknown keys in the report of job {job_id}: "
                                f"{sorted(unknown)}"))
                checked[job_id] = (self._pairs(report.get("Parameters")),
                                   self._statusUpdates(report.get("Status") or {}), report)
            except SErrorException as exc:
                refused[job_id] = exc.result["Message"]

        def report(conn: Connection, job_id: int) -> None:
            pairs, updates, report = checked[job_id]
            job = self._lock(conn, job_id)
            if authorize is not None:
                authorize(job)
            self._upsert_parameters(conn, job_id, pairs)
            self._applyStatusUpdates(conn, job, updates, False)
            if extra is not None:
                extra(conn, job_id, report)

        def apply(conn: Connection, savepoints: bool) -> tuple[list[int], dict[int, str]]:
            done, failed = [], dict(refused)
            for job_id in sorted(checked):
                try:
                    if not savepoints:
                        report(conn, job_id)
                    else:
                        with conn.begin_nested():
                            report(conn, job_id)
                except SErrorException as exc:
                    if not savepoints:
                        raise _Refusal() from exc
                    failed[job_id] = exc.result["Message"]
                else:
                    done.append(job_id)
            return done, failed

        if not checked:
            return S_OK({"Successful": [], "Failed": refused})
        try:  # no savepoints (two round trips per job) unless a job is refused
            done, failed = self._run(lambda conn: apply(conn, False))
        except _Refusal:
            done, failed = self._run(lambda conn: apply(conn, True))
        return S_OK({"Successful": done, "Failed": failed})

    @_returns
    def setJobApplicationStatus(self, jobID: int, appStatus: str, source: str = "Unknown"
                                ) -> DReturnType:
        """Set the application status (logged; the status does not change)."""
        return self.setJobStatus(jobID, applicationStatus=appStatus, source=source)

    @_returns
    def killJob(self, jobID: int, source: str = "JobManager", force: bool = False
                ) -> DReturnType:
        """Kill a job: ``S_OK(True)`` if it is now Killed, ``S_OK(False)`` if it already was."""
        def kill(conn: Connection) -> bool:
            job = self._lock(conn, jobID)
            if job["Status"] == JS.KILLED:
                return False
            if job["Status"] == JS.DELETED and not force:
                raise SErrorException(S_ERROR(EWMSSTATUS, f"Job {jobID} is Deleted"))
            self._change(conn, job, status=JS.KILLED,
                         minor=JobMinorStatus.MARKED_FOR_TERMINATION, source=source, force=force)
            return True

        return S_OK(self._run(kill))

    @_returns
    def deleteJob(self, jobID: int, source: str = "JobManager", force: bool = False
                  ) -> DReturnType:
        """Delete a job (status Deleted; a job that may not go there directly is Killed
        first).  ``S_OK(False)`` if it already was Deleted."""
        def delete(conn: Connection) -> bool:
            job = self._lock(conn, jobID)
            current = job["Status"]
            if current == JS.DELETED:
                return False
            if not force and not JS.isValidTransition(current, JS.DELETED):
                if not JS.isValidTransition(current, JS.KILLED):
                    raise SErrorException(JS.checkTransition(current, JS.DELETED))
                self._change(conn, job, status=JS.KILLED,
                             minor=JobMinorStatus.MARKED_FOR_TERMINATION, source=source)
            self._change(conn, job, status=JS.DELETED, minor=JobMinorStatus.JOB_DELETED,
                         source=source, force=force)
            return True

        return S_OK(self._run(delete))

    @_returns
    def rescheduleJob(self, jobID: int, reset: bool = False, source: str = "JobManager"
                      ) -> DReturnType:
        """Send a job back to Received (through Rescheduled), counting reschedulings.

        ``reset`` (``resetJob``) leaves the counter at zero, as DIRAC does.  Beyond
        ``maxRescheduling`` the job is Failed instead and the result is an S_ERROR.
        ``S_OK({"Status": ..., "RescheduleCounter": n})`` otherwise.
        """
        def reschedule(conn: Connection) -> dict[str, Any]:
            job = self._lock(conn, jobID)
            checked = JS.checkTransition(job["Status"], JS.RESCHEDULED)
            if not checked["OK"]:
                raise SErrorException(checked)
            counter = 0 if reset else job["RescheduleCounter"] + 1
            now = _now()
            self._change(conn, job, status=JS.RESCHEDULED, minor=JobMinorStatus.JOB_RESCHEDULED,
                         source=source, extra={"RescheduleCounter": counter,
                                               "RescheduleTime": now})
            if counter > self.maxRescheduling:
                self._change(conn, job, status=JS.FAILED, minor=JobMinorStatus.MAX_RESCHEDULING,
                             source=source)
                return {"Status": JS.FAILED, "RescheduleCounter": counter}
            conn.execute(sa.delete(parametersTable).where(parametersTable.c.JobID == jobID))
            self._change(conn, job, status=JS.RECEIVED, minor=JobMinorStatus.JOB_RESCHEDULED,
                         application="Unknown", source=source,
                         extra={"StartExecTime": None, "EndExecTime": None,
                                "HeartBeatTime": None})
            return {"Status": JS.RECEIVED, "RescheduleCounter": counter}

        outcome = self._run(reschedule)
        if outcome["Status"] == JS.FAILED:
            return S_ERROR(EWMSSTATUS, f"Job {jobID}: maximum number of reschedulings "
                                       f"({self.maxRescheduling}) reached; the job is Failed")
        return S_OK(outcome)

    # ----------------------------------------------------- parameters, heartbeat
    def _upsert_parameters(self, conn: Connection, jobID: int,
                           parameters: Iterable[tuple[str, Any]]) -> None:
        rows = {}
        for name, value in parameters:
            if not isinstance(name, str) or not name or len(name) > 255:
                raise SErrorException(S_ERROR(EVALUE, f"invalid parameter name {name!r}"))
            rows[name] = "" if value is None else str(value)
        if not rows:
            return
        if self.isPostgres:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        elif self.isSQLite:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:  # pragma: no cover - other databases: delete then insert
            conn.execute(sa.delete(parametersTable).where(
                parametersTable.c.JobID == jobID, parametersTable.c.Name.in_(list(rows))))
            conn.execute(sa.insert(parametersTable), [
                {"JobID": jobID, "Name": n, "Value": v} for n, v in rows.items()])
            return
        stmt = _UPSERTS.get(conn.dialect.name)
        if stmt is None:
            stmt = dialect_insert(parametersTable)
            stmt = _UPSERTS[conn.dialect.name] = stmt.on_conflict_do_update(
                index_elements=["JobID", "Name"], set_={"Value": stmt.excluded.Value})
        conn.execute(stmt, [{"JobID": jobID, "Name": n, "Value": v} for n, v in rows.items()])

    @staticmethod
    def _pairs(parameters: Any) -> list[tuple[str, Any]]:
        if isinstance(parameters, dict):
            return list(parameters.items())
        pairs = []
        for item in parameters or ():
            if not isinstance(item, (list, tuple)) or len(item) != 2:
                raise SErrorException(S_ERROR(
                    EVALUE, f"parameters must be [name, value] pairs or a dict, not {item!r}"))
            pairs.append((item[0], item[1]))
        return pairs

    @_returns
    def setJobParameters(self, jobID: int, parameters: Any,
                         authorize: Authorize | None = None) -> DReturnType:
        """Set (insert or replace) job parameters: ``[(name, value), ...]`` or a dict.
        ``authorize``: see :data:`Authorize`."""
        pairs = self._pairs(parameters)

        def store(conn: Connection) -> None:
            job = self._lock(conn, jobID)
            if authorize is not None:
                authorize(job)
            self._upsert_parameters(conn, int(jobID), pairs)

        self._run(store)
        return S_OK()

    @_returns
    def setJobParameter(self, jobID: int, name: str, value: Any,
                        authorize: Authorize | None = None) -> DReturnType:
        """Set one job parameter."""
        return self.setJobParameters(jobID, [(name, value)], authorize=authorize)

    @_returns
    def setHeartBeat(self, jobID: int, dynamicData: dict | None = None,
                     staticData: dict | None = None, source: str = "Heartbeat",
                     authorize: Authorize | None = None) -> DReturnType:
        """Record a heartbeat: ``S_OK({command: argument})`` for the job (``Kill`` when
        it was killed meanwhile).  A Matched or Stalled job becomes Running;
        ``staticData`` is stored as job parameters.  ``authorize``: see
        :data:`Authorize`."""
        del dynamicData  # time series of CPU/memory: not kept (no HeartBeatLoggingInfo yet)
        pairs = self._pairs(staticData or {})

        def beat(conn: Connection) -> dict[str, Any]:
            job = self._lock(conn, jobID)
            if authorize is not None:
                authorize(job)
            conn.execute(sa.update(jobsTable).where(jobsTable.c.JobID == job["JobID"])
                         .values(HeartBeatTime=_now()))
            if pairs:
                self._upsert_parameters(conn, int(jobID), pairs)
            if job["Status"] in (JS.MATCHED, JS.STALLED):
                self._change(conn, job, status=JS.RUNNING, minor=JobMinorStatus.RUNNING_AGAIN,
                             source=source)
            if job["Status"] in (JS.KILLED, JS.DELETED):
                return {"Kill": f"Job is {job['Status']}"}
            return {}

        return S_OK(self._run(beat))

    @_returns
    def removeJobFromDB(self, jobIDs: Sequence[int]) -> DReturnType:
        """Remove jobs and everything about them for good (a cleaning agent's job)."""
        ids = sorted({int(i) for i in jobIDs})

        def remove(conn: Connection) -> int:
            removed = 0
            for chunk in _chunks(ids):
                for table in (parametersTable, loggingTable, jdlTable):
                    conn.execute(sa.delete(table).where(table.c.JobID.in_(chunk)))
                removed += conn.execute(
                    sa.delete(jobsTable).where(jobsTable.c.JobID.in_(chunk))).rowcount
            return removed

        return S_OK(self._run(remove))


@functools.cache
def _shared(url: str) -> JobDB:
    return JobDB(url)


def getJobDB(url: str | None = None) -> JobDB:
    """The process's JobDB for ``url`` (default :func:`getJobDBURL`), created once."""
    return _shared(url or getJobDBURL())

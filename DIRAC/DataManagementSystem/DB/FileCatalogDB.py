"""FileCatalogDB: DIRAC's file catalogue (the DFC's model) on SQLAlchemy 2.

Where: ``DIRAC_FILECATALOGDB_URL`` when set (``postgresql+psycopg://user@host/db`` when
the DataManagement workers run on several machines), else an SQLite file
``FileCatalogDB.sqlite`` in the data directory (``DIRAC_DATA_DIR``, default
``~/.dirac/data``): the same choice as the JobDB's, with the same engines (WAL and
``BEGIN IMMEDIATE`` writers on SQLite, transactions retried on transient conflicts).

What it holds: directories (a row per path, with owner, group and mode), files in
them (size, adler32 checksum, GUID, owner, group, mode, status, dates), replicas per
storage element, and user metadata: typed fields (``int``, ``float``, ``str``,
``date``) declared for directories (``-d``, inherited by everything below) or files
(``-f``), queried with ``=``, ``!=``, ``<``, ``>``, ``<=``, ``>=`` and ``in``.

Permissions (DIRAC's DFC rules, with ``0755``/``0644`` as the modes of what a user
creates): anybody authenticated reads; writing in a directory needs its owner's, its
group's or the others' write bit (``changePathMode`` sets them); a user may always
create its own home ``/<vo>/user/<i>/<name>`` and what lies on the way to it; the
``FileCatalogManagement`` property writes anywhere.  A file is removed by its owner or
by whoever may write in its directory.  A job agent (``GenericPilot``) registers a
job's output data in its owner's name: ``addFile`` and ``createDirectory`` of a path
in ``/<vo>/user/<i>/<name>`` are done with that user's rights, the user as owner
(its home's group as group); it removes nothing but what it may as itself
(docs/security.md, "Job agents and the owner's data").

Every bulk method takes ``{normalised lfn: params}`` and returns DIRAC's
``S_OK({"Successful": {...}, "Failed": {...}})``: a bad LFN lands in Failed, never
fails the others.  Database failures are ``S_ERROR(EDB, ...)``.
"""

from __future__ import annotations

import datetime as dt
import errno
import functools
import logging
import os
import posixpath
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from diracmq.broker.derrno import EDB
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType, SErrorException
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from DIRAC.DataManagementSystem.Utilities.DMSUtilities import (
    JOB_AGENT_PROPERTY,
    getVOForCredentials,
    homeOwner,
    isJobAgent,
    userHome,
)

# The JobDB's engine set-up (SQLite pragmas, PostgreSQL pool, per-process engines
# forgotten after fork) and its transactions serve this database unchanged.
from DIRAC.WorkloadManagementSystem.DB.JobDB import JobDB, _engine_for

__all__ = ["ADMIN_PROPERTY", "FileCatalogDB", "getFileCatalogDB", "getFileCatalogDBURL"]

log = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., Any])

#: The property that lets a group write anywhere in the catalogue (DIRAC's name).
ADMIN_PROPERTY = "FileCatalogManagement"
#: Modes of what a user creates: others (its group included) read, only the owner
#: writes, until the owner opens a directory up with changePathMode.
DIR_MODE = 0o755
FILE_MODE = 0o644
#: Mode of the directories created on the way to a home (nobody's, read-only to users).
SYSTEM_DIR_MODE = 0o755
MAX_ATTEMPTS = 8
CHUNK = 900
#: Replica status visible to ``getReplicas(allStatus=False)``.
ACTIVE_REPLICA = "AprioriGood"
_SCHEMA_LOCK_KEY = 0x46434442  # "FCDB"

#: File attributes a metadata query may name besides the user fields.
FILE_ATTRIBUTES = {"Size": "int", "Owner": "str", "OwnerGroup": "str", "Status": "str",
                   "GUID": "str", "Checksum": "str", "CreationDate": "date",
                   "ModificationDate": "date"}
_OPERATORS = ("=", "!=", "<", ">", "<=", ">=", "in", "nin")

# ---------------------------------------------------------------------- schema
metadata = sa.MetaData()

dirsTable = sa.Table(
    "FC_Directories", metadata,
    sa.Column("DirID", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("Path", sa.String(1024), nullable=False, unique=True),
    sa.Column("Parent", sa.Integer, nullable=True, index=True),
    sa.Column("Owner", sa.String(128), nullable=False, server_default=""),
    sa.Column("OwnerGroup", sa.String(128), nullable=False, server_default=""),
    sa.Column("Mode", sa.Integer, nullable=False, server_default=str(DIR_MODE)),
    sa.Column("CreationDate", sa.DateTime, nullable=False),
    sa.Column("ModificationDate", sa.DateTime, nullable=False),
)

filesTable = sa.Table(
    "FC_Files", metadata,
    sa.Column("FileID", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("DirID", sa.Integer, sa.ForeignKey("FC_Directories.DirID"), nullable=False),
    sa.Column("FileName", sa.String(255), nullable=False),
    sa.Column("Size", sa.BigInteger, nullable=False),
    sa.Column("Checksum", sa.String(16), nullable=False, server_default=""),
    sa.Column("ChecksumType", sa.String(16), nullable=False, server_default="Adler32"),
    sa.Column("GUID", sa.String(64), nullable=False, unique=True),
    sa.Column("Owner", sa.String(128), nullable=False, server_default=""),
    sa.Column("OwnerGroup", sa.String(128), nullable=False, server_default=""),
    sa.Column("Mode", sa.Integer, nullable=False, server_default=str(FILE_MODE)),
    sa.Column("Status", sa.String(32), nullable=False, server_default="AprioriGood"),
    sa.Column("CreationDate", sa.DateTime, nullable=False),
    sa.Column("ModificationDate", sa.DateTime, nullable=False),
    sa.UniqueConstraint("DirID", "FileName", name="uq_FC_Files_DirID_FileName"),
    sa.Index("ix_FC_Files_Size", "Size"),
)

replicasTable = sa.Table(
    "FC_Replicas", metadata,
    sa.Column("FileID", sa.Integer, sa.ForeignKey("FC_Files.FileID", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("SE", sa.String(64), primary_key=True),
    sa.Column("PFN", sa.Text, nullable=False, server_default=""),
    sa.Column("Status", sa.String(32), nullable=False, server_default=ACTIVE_REPLICA),
    sa.Index("ix_FC_Replicas_SE", "SE"),
)

metaFieldsTable = sa.Table(
    "FC_MetaFields", metadata,
    sa.Column("Name", sa.String(64), primary_key=True),
    sa.Column("Type", sa.String(16), nullable=False),
    sa.Column("MetaType", sa.String(2), nullable=False),  # "-d" or "-f"
)


def _meta_values_table(name: str, key: str, target: str) -> sa.Table:
    return sa.Table(
        name, metadata,
        sa.Column(key, sa.Integer, sa.ForeignKey(f"{target}.{key}", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("Name", sa.String(64), primary_key=True),
        sa.Column("IntValue", sa.BigInteger),
        sa.Column("FloatValue", sa.Float),
        sa.Column("StrValue", sa.String(255)),
        sa.Column("DateValue", sa.DateTime),
        sa.Index(f"ix_{name}_int", "Name", "IntValue"),
        sa.Index(f"ix_{name}_float", "Name", "FloatValue"),
        sa.Index(f"ix_{name}_str", "Name", "StrValue"),
        sa.Index(f"ix_{name}_date", "Name", "DateValue"),
    )


dirMetaTable = _meta_values_table("FC_DirMeta", "DirID", "FC_Directories")
fileMetaTable = _meta_values_table("FC_FileMeta", "FileID", "FC_Files")

_VALUE_COLUMN = {"int": "IntValue", "float": "FloatValue", "str": "StrValue",
                 "date": "DateValue"}


# ------------------------------------------------------------------ helpers
def getFileCatalogDBURL() -> str:
    """``DIRAC_FILECATALOGDB_URL``, else SQLite ``FileCatalogDB.sqlite`` in ``DIRAC_DATA_DIR``."""
    url = os.environ.get("DIRAC_FILECATALOGDB_URL", "").strip()
    if url:
        return url
    data = Path(os.environ.get("DIRAC_DATA_DIR") or "~/.dirac/data").expanduser()
    return f"sqlite:///{data / 'FileCatalogDB.sqlite'}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def _fail(code: int, message: str) -> SErrorException:
    return SErrorException(S_ERROR(code, message))


def _returns(func: _F) -> _F:
    """SErrorException -> its S_ERROR; database errors -> S_ERROR(EDB)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> DReturnType:
        try:
            return func(*args, **kwargs)
        except SErrorException as exc:
            return exc.result
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None) or exc
            log.error("FileCatalogDB.%s failed: %s: %s", func.__name__, type(orig).__name__,
                      orig)
            return S_ERROR(EDB, f"FileCatalogDB.{func.__name__}: {type(orig).__name__}: {orig}")

    return wrapper  # type: ignore[return-value]


def metaKind(typeName: Any) -> str:
    """``int``, ``float``, ``date`` or ``str`` from a DIRAC field type (``INT``,
    ``VARCHAR(128)``, ``float``, ``DATETIME``...); ValueError for anything else."""
    if not isinstance(typeName, str) or not typeName.strip():
        raise ValueError(f"invalid metadata type {typeName!r}")
    upper = typeName.strip().upper()
    if upper.startswith("INT") or upper == "BIGINT":
        return "int"
    if upper in ("FLOAT", "DOUBLE", "REAL"):
        return "float"
    if upper.startswith("DATE"):
        return "date"
    if upper.startswith(("VARCHAR", "STR", "TEXT", "CHAR")):
        return "str"
    raise ValueError(f"unknown metadata type {typeName!r}: use INT, FLOAT, VARCHAR(n), "
                     f"DATE or DATETIME")


def coerceMeta(kind: str, value: Any, name: str) -> Any:
    """``value`` as a field of ``kind`` holds it; ValueError naming the field if it cannot."""
    try:
        if kind == "int":
            if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            result = float(value)
            if result != result or result in (float("inf"), float("-inf")):
                raise ValueError
            return result
        if kind == "date":
            if isinstance(value, dt.datetime):
                return value.replace(tzinfo=None) if value.tzinfo is None else \
                    value.astimezone(dt.UTC).replace(tzinfo=None)
            if isinstance(value, dt.date):
                return dt.datetime(value.year, value.month, value.day)
            return dt.datetime.fromisoformat(str(value).strip())
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value)
            if len(text) > 255:
                raise ValueError
            return text
    except (TypeError, ValueError, OverflowError):
        pass
    raise ValueError(f"invalid value {value!r} for metadata field {name!r} of type {kind}")


def _parents(path: str) -> list[str]:
    """Every ancestor of ``path``, nearest last: ``/a/b/c`` -> ``["/", "/a", "/a/b"]``."""
    parts = path.strip("/").split("/")
    return ["/"] + ["/" + "/".join(parts[:i]) for i in range(1, len(parts))] if path != "/" \
        else []


def _within(path: str, top: str) -> bool:
    return top == "/" or path == top or path.startswith(top + "/")


class _Who:
    """The caller, as the permission rules need it."""

    def __init__(self, credentials: dict[str, Any] | None) -> None:
        credentials = credentials or {}
        self.user = str(credentials.get("username") or "anonymous")
        self.group = str(credentials.get("group") or "")
        self.admin = ADMIN_PROPERTY in set(credentials.get("properties") or ())
        self.anonymous = self.user == "anonymous"
        self.home = userHome(self.user, getVOForCredentials(credentials)) \
            if not self.anonymous else None

    def mayWrite(self, row: Any) -> bool:
        """Whether the caller may write in the directory (or file) ``row``."""
        if self.admin:
            return True
        if self.anonymous:
            return False
        mode = row.Mode
        if row.Owner == self.user and mode & 0o200:
            return True
        if self.group and row.OwnerGroup == self.group and mode & 0o020:
            return True
        return bool(mode & 0o002)

    def mayCreateUnder(self, nearest: Any, path: str) -> bool:
        """Whether the caller may create ``path`` whose nearest existing ancestor is
        ``nearest``: write permission there, or ``path`` is in its own home and
        ``nearest`` lies on the way to that home."""
        if self.mayWrite(nearest):
            return True
        if not self.home or nearest.Path == self.home or not _within(self.home, nearest.Path):
            return False
        return _within(path, self.home) or _within(self.home, path)


# ------------------------------------------------------------ the database
class FileCatalogDB:
    """The catalogue.  Thread-safe; one object (and engine) per URL per process."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or getFileCatalogDBURL()
        self.engine = _engine_for(self.url)
        self.isPostgres = self.engine.dialect.name == "postgresql"
        self._ready = False

    def __repr__(self) -> str:
        return f"<FileCatalogDB {self.engine.url.render_as_string(hide_password=True)}>"

    # -------------------------------------------------------- transactions
    #: The JobDB's: one transaction per operation, writers flagged for SQLite's
    #: ``BEGIN IMMEDIATE``, run again on a transient conflict.
    _transaction = JobDB._transaction

    def _run(self, work: Callable[[Connection], Any], write: bool = True) -> Any:
        """``work(conn)`` in one transaction (JobDB's rules), run again after an
        integrity conflict: two writers creating the same directory or file at once,
        the loser then finds what the winner made."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return JobDB._run(self, work, write)  # type: ignore[arg-type]
            except IntegrityError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise
                log.debug("integrity conflict (%s); running again", exc.orig)
                time.sleep(min(0.5, 0.01 * 2 ** attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    @_returns
    def initialize(self) -> DReturnType:
        """Create the schema (concurrent starts are safe) and the root directory."""
        if self._ready:
            return S_OK()

        def create(conn: Connection) -> None:
            if self.isPostgres:
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
            metadata.create_all(conn, checkfirst=True)
            if conn.execute(sa.select(dirsTable.c.DirID).where(dirsTable.c.Path == "/")
                            ).first() is None:
                now = _now()
                conn.execute(sa.insert(dirsTable).values(
                    Path="/", Parent=None, Owner="", OwnerGroup="", Mode=SYSTEM_DIR_MODE,
                    CreationDate=now, ModificationDate=now))

        self._run(create)
        self._ready = True
        return S_OK()

    def dropTables(self) -> None:
        """Drop every table of the catalogue (tests and benchmarks use it)."""
        self._run(lambda conn: metadata.drop_all(conn, checkfirst=True))
        self._ready = False

    # ----------------------------------------------------------- lookups
    @staticmethod
    def _dirs(conn: Connection, paths: Iterable[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        wanted = sorted(set(paths))
        for chunk in _chunks(wanted):
            for row in conn.execute(sa.select(dirsTable).where(dirsTable.c.Path.in_(chunk))):
                found[row.Path] = row
        return found

    @classmethod
    def _files(cls, conn: Connection, lfns: Iterable[str]) -> dict[str, Any]:
        """``{lfn: row}`` (with the directory's Path as ``DirPath``) of the files that exist.

        The directories first, then the files by ``(DirID, FileName)``: the unique index
        answers each lookup, however big the catalogue.
        """
        byDir: dict[str, list[str]] = {}
        for lfn in lfns:
            byDir.setdefault(posixpath.dirname(lfn), []).append(posixpath.basename(lfn))
        dirs = cls._dirs(conn, byDir)
        found: dict[str, Any] = {}
        for path, names in byDir.items():
            row = dirs.get(path)
            if row is None:
                continue
            for chunk in _chunks(sorted(set(names))):
                query = sa.select(filesTable, sa.literal(path).label("DirPath")).where(
                    filesTable.c.DirID == row.DirID, filesTable.c.FileName.in_(chunk))
                for f in conn.execute(query):
                    found[posixpath.join(path, f.FileName)] = f
        return found

    def _makeDirs(self, conn: Connection, who: _Who, paths: Iterable[str],
                  known: dict[str, Any]) -> dict[str, str]:
        """Create the directories ``paths`` (and their ancestors) where allowed.

        ``known`` maps existing paths to rows (completed here).  Returns
        ``{path: reason}`` for the paths that could not be made.
        """
        failed: dict[str, str] = {}
        wanted = set(paths)
        needed = set(wanted)
        for path in wanted:
            needed.update(_parents(path))
        missing = needed - known.keys()
        if missing:
            known.update(self._dirs(conn, missing))
        for path in sorted(needed - known.keys(), key=lambda p: (p.count("/"), p)):
            parent = posixpath.dirname(path)
            if parent in failed:
                failed[path] = failed[parent]
                continue
            nearest = known[parent]
            if not who.mayCreateUnder(nearest, path):
                failed[path] = f"Permission denied: cannot write in {nearest.Path}"
                continue
            inHome = bool(who.home) and _within(path, who.home)
            owned = inHome or who.admin or not who.home or nearest.Owner == who.user
            now = _now()
            values = {"Path": path, "Parent": nearest.DirID,
                      "Owner": who.user if owned else "",
                      "OwnerGroup": who.group if owned else "",
                      "Mode": DIR_MODE if owned else SYSTEM_DIR_MODE,
                      "CreationDate": now, "ModificationDate": now}
            dir_id = conn.execute(sa.insert(dirsTable).values(**values)
                                  .returning(dirsTable.c.DirID)).scalar_one()
            known[path] = conn.execute(sa.select(dirsTable).where(
                dirsTable.c.DirID == dir_id)).one()
        return {p: failed[p] for p in wanted if p in failed}

    # ------------------------------------------------------- job agents
    def _homeGroup(self, vo: str, user: str) -> str:
        """The group of ``user``'s home directory; when it has none yet, the user's
        first group in the Registry ("" when the Registry does not say)."""
        home = userHome(user, vo)
        group = self._run(lambda conn: conn.scalar(
            sa.select(dirsTable.c.OwnerGroup).where(dirsTable.c.Path == home)), write=False)
        if group:
            return str(group)
        try:
            from DIRAC import gConfig

            groups = gConfig.getValue(f"/Registry/Users/{user}/Groups", [])
        except Exception:  # no configuration: no group
            return ""
        return str(groups[0]) if isinstance(groups, list) and groups else ""

    def _forOwners(self, lfns: dict[str, Any], credentials: dict[str, Any],
                   method: Callable[[dict[str, Any], dict[str, Any]], DReturnType]
                   ) -> DReturnType:
        """Run ``method`` for a job agent: the LFNs in a user's home with that user's
        rights (owner: the user; group: its home's), the others with the agent's own
        rights; the answers merged."""
        agent = str(credentials.get("username") or "")
        own = {**credentials, "properties": [p for p in credentials.get("properties") or ()
                                             if p != JOB_AGENT_PROPERTY]}
        parts: dict[tuple[str, str] | None, dict[str, Any]] = {}
        for lfn, params in lfns.items():
            home = homeOwner(lfn)
            parts.setdefault(None if home is None or home[1] == agent else home,
                             {})[lfn] = params
        ok: dict[str, Any] = {}
        failed: dict[str, Any] = {}
        for home, part in parts.items():
            if home is None:
                creds = own
            else:
                vo, user = home
                creds = {"username": user, "group": self._homeGroup(vo, user), "VO": vo,
                         "properties": [], "actingFor": agent}
            result = method(part, creds)
            if not result["OK"]:
                failed.update(dict.fromkeys(part, result["Message"]))
                continue
            ok.update(result["Value"]["Successful"])
            failed.update(result["Value"]["Failed"])
        return S_OK({"Successful": ok, "Failed": failed})

    # ------------------------------------------------------------ files
    @_returns
    def addFile(self, lfns: dict[str, dict[str, Any]], credentials: dict[str, Any]
                ) -> DReturnType:
        """Register files: ``{lfn: {"Size", "Checksum", "GUID", "PFN", "SE"}}``.

        Size is required (an int >= 0); GUID defaults to a fresh UUID; with ``SE`` a
        replica is registered too.  A file that exists with the same GUID counts as
        registered (a repeated call); with another GUID it fails.  A job agent's
        files in a user's home are registered in that user's name.
        """
        if isJobAgent(credentials):
            return self._forOwners(lfns, credentials, self.addFile)
        who = _Who(credentials)
        failed: dict[str, str] = {}
        good: dict[str, dict[str, Any]] = {}
        for lfn, params in lfns.items():
            try:
                good[lfn] = self._fileParams(lfn, params)
            except ValueError as exc:
                failed[lfn] = str(exc)

        def add(conn: Connection) -> tuple[dict[str, bool], dict[str, str]]:
            done: dict[str, bool] = {}
            failed_here: dict[str, str] = {}
            known: dict[str, Any] = {}
            dirFailed = self._makeDirs(conn, who, {posixpath.dirname(x) for x in good}, known)
            existing = self._files(conn, good)
            asDirs = self._dirs(conn, good)
            guids = {p["GUID"] for p in good.values()}
            taken: dict[str, str] = {}
            for chunk in _chunks(sorted(guids)):
                taken.update(conn.execute(sa.select(filesTable.c.GUID, filesTable.c.FileName)
                                          .where(filesTable.c.GUID.in_(chunk))).all())
            rows, replicas = [], []
            now = _now()
            for lfn, params in good.items():
                parent = posixpath.dirname(lfn)
                if parent in dirFailed:
                    failed_here[lfn] = dirFailed[parent]
                elif lfn in asDirs:
                    failed_here[lfn] = "Is a directory"
                elif lfn in existing:
                    row = existing[lfn]
                    if row.GUID == params["GUID"] and row.Size == params["Size"]:
                        done[lfn] = True
                        if params["SE"]:
                            replicas.append((lfn, params))
                    else:
                        failed_here[lfn] = "File already registered with alternative metadata"
                elif params["GUID"] in taken:
                    failed_here[lfn] = f"GUID {params['GUID']} already registered for " \
                                       f"another file"
                elif not who.mayWrite(known[parent]):
                    failed_here[lfn] = f"Permission denied: cannot write in {parent}"
                else:
                    taken[params["GUID"]] = lfn
                    rows.append({"DirID": known[parent].DirID,
                                 "FileName": posixpath.basename(lfn), "Size": params["Size"],
                                 "Checksum": params["Checksum"],
                                 "ChecksumType": params["ChecksumType"],
                                 "GUID": params["GUID"], "Owner": who.user,
                                 "OwnerGroup": who.group, "Mode": FILE_MODE,
                                 "Status": "AprioriGood", "CreationDate": now,
                                 "ModificationDate": now})
                    done[lfn] = True
                    if params["SE"]:
                        replicas.append((lfn, params))
            ids = {lfn: existing[lfn].FileID for lfn, _ in replicas if lfn in existing}
            present = self._replicaKeys(conn, ids.values())  # only known files have any
            newLFNs = [lfn for lfn in good if lfn not in existing and lfn in done]
            made: list[int] = []
            insert = sa.insert(filesTable).returning(filesTable.c.FileID,
                                                     sort_by_parameter_order=True)
            for chunk in _chunks(rows):
                made += conn.execute(insert, list(chunk)).scalars().all()
            ids.update(zip(newLFNs, made, strict=True))
            new = [{"FileID": ids[lfn], "SE": p["SE"], "PFN": p["PFN"],
                    "Status": ACTIVE_REPLICA}
                   for lfn, p in replicas if (ids[lfn], p["SE"]) not in present]
            for chunk in _chunks(new):
                conn.execute(sa.insert(replicasTable), list(chunk))
            return done, failed_here

        done, failed_here = self._run(add) if good else ({}, {})
        return S_OK({"Successful": done, "Failed": {**failed, **failed_here}})

    @staticmethod
    def _replicaKeys(conn: Connection, fileIDs: Iterable[int]) -> set[tuple[int, str]]:
        keys: set[tuple[int, str]] = set()
        for chunk in _chunks(sorted(set(fileIDs))):
            keys.update((r.FileID, r.SE) for r in conn.execute(
                sa.select(replicasTable.c.FileID, replicasTable.c.SE)
                .where(replicasTable.c.FileID.in_(chunk))))
        return keys

    @staticmethod
    def _fileParams(lfn: str, params: Any) -> dict[str, Any]:
        if lfn == "/":
            raise ValueError("'/' is a directory")
        if len(posixpath.basename(lfn)) > 255:
            raise ValueError("file name longer than 255 characters")
        if not isinstance(params, dict):
            raise ValueError("parameters must be a dict with at least Size")
        size = params.get("Size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0 or size >= 2**63:
            raise ValueError(f"invalid Size {size!r}: expected an integer >= 0")
        checksum = params.get("Checksum") or ""
        if not isinstance(checksum, str) or len(checksum) > 16 or \
                (checksum and not all(c in "0123456789abcdefABCDEF" for c in checksum)):
            raise ValueError(f"invalid Checksum {checksum!r}: expected adler32 hex digits")
        guid = params.get("GUID") or str(uuid.uuid4()).upper()
        if not isinstance(guid, str) or len(guid) > 64:
            raise ValueError(f"invalid GUID {guid!r}")
        se = params.get("SE") or ""
        pfn = params.get("PFN") or ""
        if not isinstance(se, str) or len(se) > 64 or not isinstance(pfn, str):
            raise ValueError("invalid SE or PFN")
        checksumType = params.get("ChecksumType") or "Adler32"
        if not isinstance(checksumType, str) or len(checksumType) > 16:
            raise ValueError(f"invalid ChecksumType {checksumType!r}")
        return {"Size": size, "Checksum": checksum.lower(), "GUID": guid, "SE": se,
                "PFN": pfn, "ChecksumType": checksumType}

    @_returns
    def addReplica(self, lfns: dict[str, Any], credentials: dict[str, Any]) -> DReturnType:
        """Register replicas: ``{lfn: {"SE", "PFN"}}`` of files that exist."""
        who = _Who(credentials)
        failed: dict[str, str] = {}
        good: dict[str, tuple[str, str]] = {}
        for lfn, params in lfns.items():
            se = params.get("SE") if isinstance(params, dict) else None
            pfn = (params.get("PFN") or "") if isinstance(params, dict) else ""
            if not isinstance(se, str) or not se or len(se) > 64 or not isinstance(pfn, str):
                failed[lfn] = "parameters must be a dict with SE (and PFN)"
            else:
                good[lfn] = (se, pfn)

        def add(conn: Connection) -> dict[str, bool]:
            done: dict[str, bool] = {}
            for lfn in good:  # a transaction run again starts afresh
                failed.pop(lfn, None)
            files = self._files(conn, good)
            dirs = self._dirs(conn, {posixpath.dirname(x) for x in files})
            present = self._replicaKeys(conn, [r.FileID for r in files.values()])
            new = []
            for lfn, (se, pfn) in good.items():
                row = files.get(lfn)
                if row is None:
                    failed[lfn] = "No such file or directory"
                elif not (who.mayWrite(row) or who.mayWrite(dirs[row.DirPath])):
                    failed[lfn] = "Permission denied"
                else:
                    done[lfn] = True
                    if (row.FileID, se) not in present:
                        present.add((row.FileID, se))
                        new.append({"FileID": row.FileID, "SE": se, "PFN": pfn,
                                    "Status": ACTIVE_REPLICA})
            for chunk in _chunks(new):
                conn.execute(sa.insert(replicasTable), list(chunk))
            return done

        done = self._run(add) if good else {}
        return S_OK({"Successful": done, "Failed": failed})

    def _removable(self, who: _Who, row: Any, dirs: dict[str, Any]) -> bool:
        return who.admin or (not who.anonymous and row.Owner == who.user) or \
            who.mayWrite(dirs[row.DirPath])

    @_returns
    def removeReplica(self, lfns: dict[str, Any], credentials: dict[str, Any]) -> DReturnType:
        """Remove replicas ``{lfn: {"SE"}}`` (a replica that is not there counts as removed)."""
        who = _Who(credentials)
        failed: dict[str, str] = {}
        good: dict[str, str] = {}
        for lfn, params in lfns.items():
            se = params.get("SE") if isinstance(params, dict) else None
            if not isinstance(se, str) or not se:
                failed[lfn] = "parameters must be a dict with SE"
            else:
                good[lfn] = se

        def remove(conn: Connection) -> dict[str, bool]:
            done: dict[str, bool] = {}
            for lfn in good:  # a transaction run again starts afresh
                failed.pop(lfn, None)
            files = self._files(conn, good)
            dirs = self._dirs(conn, {posixpath.dirname(x) for x in files})
            for lfn, se in good.items():
                row = files.get(lfn)
                if row is None:
                    failed[lfn] = "No such file or directory"
                elif not self._removable(who, row, dirs):
                    failed[lfn] = "Permission denied"
                else:
                    conn.execute(sa.delete(replicasTable).where(
                        replicasTable.c.FileID == row.FileID, replicasTable.c.SE == se))
                    done[lfn] = True
            return done

        done = self._run(remove) if good else {}
        return S_OK({"Successful": done, "Failed": failed})

    @_returns
    def removeFile(self, lfns: Iterable[str], credentials: dict[str, Any]) -> DReturnType:
        """Remove files with their replicas and metadata."""
        who = _Who(credentials)
        failed: dict[str, str] = {}
        wanted = list(lfns)

        def remove(conn: Connection) -> dict[str, bool]:
            done: dict[str, bool] = {}
            failed.clear()  # a transaction run again starts afresh
            files = self._files(conn, wanted)
            dirs = self._dirs(conn, {posixpath.dirname(x) for x in files})
            doomed = []
            for lfn in wanted:
                row = files.get(lfn)
                if row is None:
                    failed[lfn] = "No such file or directory"
                elif not self._removable(who, row, dirs):
                    failed[lfn] = "Permission denied"
                else:
                    doomed.append(row.FileID)
                    done[lfn] = True
            for chunk in _chunks(doomed):
                for table in (replicasTable, fileMetaTable):
                    conn.execute(sa.delete(table).where(table.c.FileID.in_(chunk)))
                conn.execute(sa.delete(filesTable).where(filesTable.c.FileID.in_(chunk)))
            return done

        done = self._run(remove)
        return S_OK({"Successful": done, "Failed": failed})

    @_returns
    def getReplicas(self, lfns: Iterable[str], allStatus: bool = False) -> DReturnType:
        """``{lfn: {SE: PFN}}`` (only active replicas unless ``allStatus``)."""
        wanted = list(lfns)

        def read(conn: Connection) -> DReturnType:
            files = self._files(conn, wanted)
            byID = {row.FileID: lfn for lfn, row in files.items()}
            found: dict[str, dict[str, str]] = {lfn: {} for lfn in files}
            for chunk in _chunks(sorted(byID)):
                query = sa.select(replicasTable).where(replicasTable.c.FileID.in_(chunk))
                if not allStatus:
                    query = query.where(replicasTable.c.Status == ACTIVE_REPLICA)
                for row in conn.execute(query):
                    found[byID[row.FileID]][row.SE] = row.PFN
            failed = {lfn: "No such file or directory" for lfn in wanted if lfn not in files}
            return S_OK({"Successful": found, "Failed": failed})

        return self._run(read, write=False)

    @staticmethod
    def _fileMetadata(row: Any) -> dict[str, Any]:
        return {"Size": row.Size, "Checksum": row.Checksum, "ChecksumType": row.ChecksumType,
                "GUID": row.GUID, "UID": row.Owner, "GID": row.OwnerGroup,
                "Owner": row.Owner, "OwnerGroup": row.OwnerGroup, "Mode": row.Mode,
                "Status": row.Status, "CreationDate": row.CreationDate,
                "ModificationDate": row.ModificationDate, "FileID": row.FileID}

    @staticmethod
    def _dirMetadata(row: Any) -> dict[str, Any]:
        return {"Owner": row.Owner, "OwnerGroup": row.OwnerGroup, "UID": row.Owner,
                "GID": row.OwnerGroup, "Mode": row.Mode, "CreationDate": row.CreationDate,
                "ModificationDate": row.ModificationDate, "DirID": row.DirID, "Type":
                "Directory"}

    @_returns
    def getFileMetadata(self, lfns: Iterable[str]) -> DReturnType:
        """``{lfn: {Size, Checksum, ChecksumType, UID, GID, GUID, CreationDate, ...}}``;
        a directory's own metadata for a directory."""
        wanted = list(lfns)

        def read(conn: Connection) -> DReturnType:
            files = self._files(conn, wanted)
            dirs = self._dirs(conn, [x for x in wanted if x not in files])
            ok: dict[str, Any] = {}
            failed: dict[str, str] = {}
            for lfn in wanted:
                if lfn in files:
                    ok[lfn] = self._fileMetadata(files[lfn])
                elif lfn in dirs:
                    ok[lfn] = self._dirMetadata(dirs[lfn])
                else:
                    failed[lfn] = "No such file or directory"
            return S_OK({"Successful": ok, "Failed": failed})

        return self._run(read, write=False)

    @_returns
    def exists(self, lfns: Iterable[str]) -> DReturnType:
        """``{lfn: "File" | "Directory" | False}`` (truthy when it exists, as DIRAC)."""
        wanted = list(lfns)

        def read(conn: Connection) -> DReturnType:
            files = self._files(conn, wanted)
            dirs = self._dirs(conn, wanted)
            return S_OK({"Successful": {lfn: "File" if lfn in files else
                                        "Directory" if lfn in dirs else False
                                        for lfn in wanted}, "Failed": {}})

        return self._run(read, write=False)

    # -------------------------------------------------------- directories
    @_returns
    def createDirectory(self, paths: Iterable[str], credentials: dict[str, Any]
                        ) -> DReturnType:
        """Create directories with their parents (an existing directory counts as made;
        a job agent's in a user's home are made in that user's name)."""
        if isJobAgent(credentials):
            return self._forOwners(dict.fromkeys(paths), credentials,
                                   lambda part, creds: self.createDirectory(list(part), creds))
        who = _Who(credentials)
        wanted = list(paths)

        def create(conn: Connection) -> DReturnType:
            files = self._files(conn, [p for p in wanted if p != "/"])
            candidates = [p for p in wanted if p not in files]
            failedDirs = self._makeDirs(conn, who, candidates, {})
            failed = {p: "File exists (a file, not a directory)" for p in files}
            failed.update(failedDirs)
            return S_OK({"Successful": {p: True for p in wanted if p not in failed},
                         "Failed": failed})

        return self._run(create)

    @_returns
    def removeDirectory(self, paths: Iterable[str], credentials: dict[str, Any]
                        ) -> DReturnType:
        """Remove empty directories (a missing one counts as removed)."""
        who = _Who(credentials)
        wanted = list(paths)

        def remove(conn: Connection) -> DReturnType:
            dirs = self._dirs(conn, wanted)
            parents = self._dirs(conn, {posixpath.dirname(p) for p in dirs})
            ok: dict[str, bool] = {}
            failed: dict[str, str] = {}
            for path in wanted:
                row = dirs.get(path)
                if row is None:
                    ok[path] = True
                elif path == "/":
                    failed[path] = "cannot remove /"
                elif not (who.admin or who.mayWrite(parents[posixpath.dirname(path)])
                          or (row.Owner == who.user and not who.anonymous)):
                    failed[path] = "Permission denied"
                elif conn.execute(sa.select(filesTable.c.FileID).where(
                        filesTable.c.DirID == row.DirID).limit(1)).first() or \
                        conn.execute(sa.select(dirsTable.c.DirID).where(
                            dirsTable.c.Parent == row.DirID).limit(1)).first():
                    failed[path] = "Directory not empty"
                else:
                    conn.execute(sa.delete(dirMetaTable).where(
                        dirMetaTable.c.DirID == row.DirID))
                    conn.execute(sa.delete(dirsTable).where(dirsTable.c.DirID == row.DirID))
                    ok[path] = True
            return S_OK({"Successful": ok, "Failed": failed})

        return self._run(remove)

    @_returns
    def listDirectory(self, paths: Iterable[str], verbose: bool = False) -> DReturnType:
        """``{path: {"Files": {lfn: {"MetaData": {...}}}, "SubDirs": {path: {...}},
        "Links": {}}}``; with ``verbose`` each file also has its ``Replicas``."""
        wanted = list(paths)

        def read(conn: Connection) -> DReturnType:
            dirs = self._dirs(conn, wanted)
            ok: dict[str, Any] = {}
            failed: dict[str, str] = {}
            for path in wanted:
                row = dirs.get(path)
                if row is None:
                    failed[path] = "Directory does not exist" if not self._files(
                        conn, [path]) else "Not a directory"
                    continue
                files: dict[str, Any] = {}
                byID: dict[int, str] = {}
                for f in conn.execute(sa.select(filesTable).where(
                        filesTable.c.DirID == row.DirID).order_by(filesTable.c.FileName)):
                    lfn = posixpath.join(path, f.FileName)
                    files[lfn] = {"MetaData": self._fileMetadata(f)}
                    byID[f.FileID] = lfn
                if verbose:
                    for entry in files.values():
                        entry["Replicas"] = {}
                    query = sa.select(replicasTable).join(
                        filesTable, filesTable.c.FileID == replicasTable.c.FileID).where(
                        filesTable.c.DirID == row.DirID)
                    for r in conn.execute(query):
                        files[byID[r.FileID]]["Replicas"][r.SE] = {"PFN": r.PFN,
                                                                    "Status": r.Status}
                subdirs = {d.Path: self._dirMetadata(d) for d in conn.execute(
                    sa.select(dirsTable).where(dirsTable.c.Parent == row.DirID)
                    .order_by(dirsTable.c.Path))}
                ok[path] = {"Files": files, "SubDirs": subdirs, "Links": {}}
            return S_OK({"Successful": ok, "Failed": failed})

        return self._run(read, write=False)

    @_returns
    def getDirectorySize(self, paths: Iterable[str], longOut: bool = False) -> DReturnType:
        """``{path: {LogicalSize, LogicalFiles, LogicalDirectories}}`` counted recursively;
        ``longOut`` adds ``PhysicalSize: {SE: {Size, Files}, TotalSize, TotalFiles}``."""
        wanted = list(paths)

        def read(conn: Connection) -> DReturnType:
            dirs = self._dirs(conn, wanted)
            ok: dict[str, Any] = {}
            failed: dict[str, str] = {}
            for path in wanted:
                if path not in dirs:
                    failed[path] = "Directory does not exist"
                    continue
                below = self._subtree(path)
                ndirs = conn.execute(sa.select(sa.func.count()).select_from(dirsTable)
                                     .where(below, dirsTable.c.Path != path)).scalar_one()
                size, nfiles = conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(filesTable.c.Size), 0),
                              sa.func.count(filesTable.c.FileID))
                    .join(dirsTable, dirsTable.c.DirID == filesTable.c.DirID).where(below)
                ).one()
                entry: dict[str, Any] = {"LogicalSize": int(size), "LogicalFiles": int(nfiles),
                                         "LogicalDirectories": int(ndirs)}
                if longOut:
                    physical: dict[str, Any] = {}
                    total = count = 0
                    query = sa.select(replicasTable.c.SE, sa.func.sum(filesTable.c.Size),
                                      sa.func.count()).join(
                        filesTable, filesTable.c.FileID == replicasTable.c.FileID).join(
                        dirsTable, dirsTable.c.DirID == filesTable.c.DirID).where(
                        below).group_by(replicasTable.c.SE)
                    for se, sesize, sefiles in conn.execute(query):
                        physical[se] = {"Size": int(sesize or 0), "Files": int(sefiles)}
                        total += int(sesize or 0)
                        count += int(sefiles)
                    physical.update(TotalSize=total, TotalFiles=count)
                    entry["PhysicalSize"] = physical
                ok[path] = entry
            return S_OK({"Successful": ok, "Failed": failed})

        return self._run(read, write=False)

    @staticmethod
    def _subtree(path: str, column: Any = None) -> Any:
        column = dirsTable.c.Path if column is None else column
        if path == "/":
            return sa.true()
        return sa.or_(column == path, column.startswith(path + "/", autoescape=True))

    @_returns
    def changePathMode(self, modes: dict[str, Any], credentials: dict[str, Any]
                       ) -> DReturnType:
        """Set the mode (``0o775``...) of directories or files, by their owner (or an
        administrator)."""
        who = _Who(credentials)

        def change(conn: Connection) -> DReturnType:
            ok: dict[str, bool] = {}
            failed: dict[str, str] = {}
            dirs = self._dirs(conn, modes)
            files = self._files(conn, [p for p in modes if p not in dirs])
            for path, mode in modes.items():
                row = dirs.get(path) or files.get(path)
                if isinstance(mode, bool) or not isinstance(mode, int) or \
                        not 0 <= mode <= 0o777:
                    failed[path] = f"invalid mode {mode!r}: expected an integer 0..0o777"
                elif row is None:
                    failed[path] = "No such file or directory"
                elif not (who.admin or (not who.anonymous and row.Owner == who.user)):
                    failed[path] = "Permission denied: only the owner changes the mode"
                else:
                    table = dirsTable if path in dirs else filesTable
                    key = table.c.DirID if path in dirs else table.c.FileID
                    conn.execute(sa.update(table).where(
                        key == (row.DirID if path in dirs else row.FileID)).values(
                        Mode=mode, ModificationDate=_now()))
                    ok[path] = True
            return S_OK({"Successful": ok, "Failed": failed})

        return self._run(change)

    # ----------------------------------------------------------- metadata
    @_returns
    def addMetadataField(self, name: str, typeName: str, metaType: str,
                         credentials: dict[str, Any]) -> DReturnType:
        """Declare a metadata field (administrators only, as DIRAC); redeclaring a field
        with the same type is a no-op."""
        if not _Who(credentials).admin:
            return S_ERROR(errno.EACCES, f"Permission denied: declaring metadata fields needs "
                                         f"the {ADMIN_PROPERTY} property")
        if metaType not in ("-d", "-f"):
            return S_ERROR(errno.EINVAL, f"metaType must be '-d' (directories) or '-f' "
                                         f"(files), not {metaType!r}")
        if not isinstance(name, str) or not name.isidentifier() or len(name) > 64 or \
                name in FILE_ATTRIBUTES:
            return S_ERROR(errno.EINVAL, f"invalid metadata field name {name!r}")
        try:
            kind = metaKind(typeName)
        except ValueError as exc:
            return S_ERROR(errno.EINVAL, str(exc))

        def add(conn: Connection) -> DReturnType:
            row = conn.execute(sa.select(metaFieldsTable).where(
                metaFieldsTable.c.Name == name)).first()
            if row is not None:
                if row.Type == kind and row.MetaType == metaType:
                    return S_OK("Already exists")
                return S_ERROR(errno.EEXIST, f"metadata field {name} exists with type "
                                             f"{row.Type} ({row.MetaType})")
            conn.execute(sa.insert(metaFieldsTable).values(Name=name, Type=kind,
                                                           MetaType=metaType))
            return S_OK(f"Added new metadata: {name}")

        return self._run(add)

    @_returns
    def deleteMetadataField(self, name: str, credentials: dict[str, Any]) -> DReturnType:
        """Forget a field and every value of it (administrators only)."""
        if not _Who(credentials).admin:
            return S_ERROR(errno.EACCES, "Permission denied")

        def delete(conn: Connection) -> None:
            for table in (dirMetaTable, fileMetaTable):
                conn.execute(sa.delete(table).where(table.c.Name == name))
            conn.execute(sa.delete(metaFieldsTable).where(metaFieldsTable.c.Name == name))

        self._run(delete)
        return S_OK()

    def _fields(self, conn: Connection) -> dict[str, tuple[str, str]]:
        return {r.Name: (r.Type, r.MetaType) for r in conn.execute(sa.select(metaFieldsTable))}

    @_returns
    def getMetadataFields(self) -> DReturnType:
        """``{"DirectoryMetaFields": {name: type}, "FileMetaFields": {name: type}}``."""
        fields = self._run(self._fields, write=False)
        return S_OK({"DirectoryMetaFields": {n: t for n, (t, m) in fields.items() if m == "-d"},
                     "FileMetaFields": {n: t for n, (t, m) in fields.items() if m == "-f"}})

    @_returns
    def setMetadata(self, path: str, values: dict[str, Any], credentials: dict[str, Any]
                    ) -> DReturnType:
        """Set metadata of a directory (its ``-d`` fields) or a file (its ``-f`` fields)."""
        who = _Who(credentials)
        if not isinstance(values, dict) or not values:
            return S_ERROR(errno.EINVAL, "metadata must be a non-empty dict {field: value}")

        def store(conn: Connection) -> DReturnType:
            fields = self._fields(conn)
            dirs = self._dirs(conn, [path])
            files = {} if dirs else self._files(conn, [path])
            if not dirs and not files:
                return S_ERROR(errno.ENOENT, f"No such file or directory: {path}")
            isDir = bool(dirs)
            row = dirs[path] if isDir else files[path]
            if isDir:
                allowed = who.mayWrite(row)
            else:
                allowed = self._removable(who, row, self._dirs(conn, [row.DirPath]))
            if not allowed:
                return S_ERROR(errno.EACCES, f"Permission denied: cannot set metadata of "
                                             f"{path}")
            want = "-d" if isDir else "-f"
            records = []
            for name, value in values.items():
                if name not in fields:
                    return S_ERROR(errno.EINVAL, f"unknown metadata field {name!r} (declare it "
                                                 f"with addMetadataField)")
                kind, metaType = fields[name]
                if metaType != want:
                    return S_ERROR(errno.EINVAL, f"{name} is a "
                                                 f"{'directory' if metaType == '-d' else 'file'}"
                                                 f" field; {path} is a "
                                                 f"{'directory' if isDir else 'file'}")
                try:
                    coerced = coerceMeta(kind, value, name)
                except ValueError as exc:
                    return S_ERROR(errno.EINVAL, str(exc))
                records.append({"Name": name, _VALUE_COLUMN[kind]: coerced})
            table = dirMetaTable if isDir else fileMetaTable
            key = "DirID" if isDir else "FileID"
            ident = row.DirID if isDir else row.FileID
            for record in records:
                conn.execute(sa.delete(table).where(table.c[key] == ident,
                                                    table.c.Name == record["Name"]))
                conn.execute(sa.insert(table).values(**{key: ident}, **record))
            return S_OK()

        return self._run(store)

    @_returns
    def removeMetadata(self, path: str, names: Iterable[str], credentials: dict[str, Any]
                       ) -> DReturnType:
        """Remove metadata values from a directory or a file."""
        who = _Who(credentials)
        names = list(names)

        def remove(conn: Connection) -> DReturnType:
            dirs = self._dirs(conn, [path])
            files = {} if dirs else self._files(conn, [path])
            if not dirs and not files:
                return S_ERROR(errno.ENOENT, f"No such file or directory: {path}")
            if dirs:
                if not who.mayWrite(dirs[path]):
                    return S_ERROR(errno.EACCES, "Permission denied")
                conn.execute(sa.delete(dirMetaTable).where(
                    dirMetaTable.c.DirID == dirs[path].DirID, dirMetaTable.c.Name.in_(names)))
            else:
                row = files[path]
                if not self._removable(who, row, self._dirs(conn, [row.DirPath])):
                    return S_ERROR(errno.EACCES, "Permission denied")
                conn.execute(sa.delete(fileMetaTable).where(
                    fileMetaTable.c.FileID == row.FileID, fileMetaTable.c.Name.in_(names)))
            return S_OK()

        return self._run(remove)

    @staticmethod
    def _value(row: Any) -> Any:
        for column in ("IntValue", "FloatValue", "StrValue", "DateValue"):
            value = getattr(row, column)
            if value is not None:
                return value
        return None

    @_returns
    def getDirectoryUserMetadata(self, path: str) -> DReturnType:
        """The metadata of a directory, with what it inherits from its ancestors."""

        def read(conn: Connection) -> DReturnType:
            dirs = self._dirs(conn, [*_parents(path), path])
            if path not in dirs:
                return S_ERROR(errno.ENOENT, f"Directory does not exist: {path}")
            ids = {row.DirID: p for p, row in dirs.items()}
            found: dict[str, tuple[int, Any]] = {}
            for row in conn.execute(sa.select(dirMetaTable).where(
                    dirMetaTable.c.DirID.in_(list(ids)))):
                depth = ids[row.DirID].count("/") if ids[row.DirID] != "/" else 0
                if row.Name not in found or found[row.Name][0] < depth:
                    found[row.Name] = (depth, self._value(row))
            return S_OK({name: value for name, (_, value) in found.items()})

        return self._run(read, write=False)

    @_returns
    def getFileUserMetadata(self, path: str) -> DReturnType:
        """The metadata of a file: its own fields and its directory's (inherited)."""

        def read(conn: Connection) -> DReturnType:
            files = self._files(conn, [path])
            if path not in files:
                return S_ERROR(errno.ENOENT, f"No such file: {path}")
            return S_OK(files[path])

        found = self._run(read, write=False)
        if not found["OK"]:
            return found
        row = found["Value"]
        result = self.getDirectoryUserMetadata(row.DirPath)
        if not result["OK"]:
            return result
        values = dict(result["Value"])

        def own(conn: Connection) -> None:
            for meta in conn.execute(sa.select(fileMetaTable).where(
                    fileMetaTable.c.FileID == row.FileID)):
                values[meta.Name] = self._value(meta)

        self._run(own, write=False)
        return S_OK(values)

    @staticmethod
    def _conditions(column: Any, kind: str, name: str, spec: Any) -> list[Any]:
        """SQL conditions on ``column`` from DIRAC's ``value`` or ``{op: value}`` form."""
        if not isinstance(spec, dict):
            spec = {"in": spec} if isinstance(spec, (list, tuple)) else {"=": spec}
        if not spec:
            raise ValueError(f"empty condition for {name}")
        clauses = []
        for op, value in spec.items():
            if op not in _OPERATORS:
                raise ValueError(f"unknown operator {op!r} for {name}: use one of "
                                 f"{', '.join(_OPERATORS)}")
            if op in ("in", "nin"):
                if not isinstance(value, (list, tuple)) or not value:
                    raise ValueError(f"'{op}' for {name} needs a non-empty list")
                values = [coerceMeta(kind, v, name) for v in value]
                clauses.append(column.in_(values) if op == "in" else column.not_in(values))
                continue
            coerced = coerceMeta(kind, value, name)
            clauses.append({"=": column == coerced, "!=": column != coerced,
                            "<": column < coerced, ">": column > coerced,
                            "<=": column <= coerced, ">=": column >= coerced}[op])
        return clauses

    def _dirsMatching(self, conn: Connection, name: str, kind: str, spec: Any,
                      top: str) -> set[int]:
        """IDs of the directories below ``top`` whose value of the directory field
        ``name`` (their own, else the nearest ancestor's) satisfies ``spec``.

        Done in two small steps instead of a per-file subquery: the directories that hold
        the field (matching or not), then the directories below the matching ones, each
        kept when its nearest holder is a matching one (a subdirectory overrides).
        """
        column = dirMetaTable.c[_VALUE_COLUMN[kind]]
        base = sa.select(dirsTable.c.Path).join(
            dirMetaTable, dirMetaTable.c.DirID == dirsTable.c.DirID).where(
            dirMetaTable.c.Name == name)
        holders = set(conn.execute(base).scalars())
        matching = set(conn.execute(base.where(*self._conditions(column, kind, name, spec)))
                       .scalars())
        if not matching:
            return set()
        roots = sorted(matching)
        if len(roots) <= 50:
            under = sa.or_(*(self._subtree(root) for root in roots))
        else:
            under = sa.true()
        found: set[int] = set()
        query = sa.select(dirsTable.c.DirID, dirsTable.c.Path).where(
            under, self._subtree(top))
        for dir_id, dir_path in conn.execute(query):
            probe = dir_path
            while probe not in holders:
                if probe == "/":
                    probe = ""
                    break
                probe = posixpath.dirname(probe)
            if probe in matching:
                found.add(dir_id)
        return found

    @_returns
    def findFilesByMetadata(self, metaDict: dict[str, Any], path: str = "/") -> DReturnType:
        """The LFNs under ``path`` whose metadata (their own ``-f`` fields, the ``-d``
        fields of their directory or of any ancestor, or the file attributes Size, Owner,
        ...) match every condition of ``metaDict``: ``{field: value}``,
        ``{field: [values]}`` or ``{field: {op: value}}`` with op in
        ``= != < > <= >= in nin``."""
        if not isinstance(metaDict, dict):
            return S_ERROR(errno.EINVAL, "metaDict must be a dict {field: condition}")

        def find(conn: Connection) -> DReturnType:
            fields = self._fields(conn)
            d_outer = dirsTable.alias("d")
            query = sa.select(d_outer.c.Path, filesTable.c.FileName).join(
                d_outer, d_outer.c.DirID == filesTable.c.DirID).where(
                self._subtree(path, d_outer.c.Path))
            allowed: set[int] | None = None  # directories passing every -d condition
            for name, spec in metaDict.items():
                if name in FILE_ATTRIBUTES:
                    kind = FILE_ATTRIBUTES[name]
                    query = query.where(*self._conditions(filesTable.c[name], kind, name, spec))
                    continue
                if name not in fields:
                    return S_ERROR(errno.EINVAL, f"unknown metadata field {name!r}")
                kind, metaType = fields[name]
                if metaType == "-f":
                    fm = fileMetaTable.alias()
                    column = fm.c[_VALUE_COLUMN[kind]]
                    query = query.where(sa.exists(sa.select(fm.c.FileID).where(
                        fm.c.FileID == filesTable.c.FileID, fm.c.Name == name,
                        *self._conditions(column, kind, name, spec))))
                else:
                    dirs = self._dirsMatching(conn, name, kind, spec, path)
                    allowed = dirs if allowed is None else allowed & dirs
            if allowed is None:
                rows = list(conn.execute(query))
            else:
                rows = []
                for chunk in _chunks(sorted(allowed)):
                    rows += conn.execute(query.where(filesTable.c.DirID.in_(chunk)))
            return S_OK(sorted(posixpath.join(p, n) for p, n in rows))

        try:
            return self._run(find, write=False)
        except ValueError as exc:
            return S_ERROR(errno.EINVAL, str(exc))


@functools.cache
def _shared(url: str) -> FileCatalogDB:
    return FileCatalogDB(url)


def getFileCatalogDB(url: str | None = None) -> FileCatalogDB:
    """The process's FileCatalogDB for ``url`` (default :func:`getFileCatalogDBURL`)."""
    return _shared(url or getFileCatalogDBURL())


os.register_at_fork(after_in_child=_shared.cache_clear)
